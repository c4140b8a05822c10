//! A do-nothing auth backend for the benchmark's baseline arms: answers every request with
//! 200, two identity headers and no body, like certgate's allow path but without deciding
//! anything.
//!
//! `cargo run --release --example trivial_auth -- 127.0.0.1:3100 [workers]`

use actix_web::{App, HttpResponse, HttpServer, web};

async fn allow() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("X-Agent-Id", "00000000-0000-4000-8000-000000000000"))
        .insert_header(("X-Agent-Hostname", "bench"))
        .finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:3100".to_owned());
    let workers = args
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    HttpServer::new(|| App::new().default_service(web::to(allow)))
        .workers(workers)
        .keep_alive(std::time::Duration::from_secs(75))
        .bind(address)?
        .run()
        .await
}
