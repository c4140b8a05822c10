//! The protected application: echoes every header it received, and counts requests so a
//! test can tell that a refused request never reached it.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// What the application saw: every header, names in lower case, in the order received (a
/// forged copy that slipped through shows up as a second value).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Echo {
    pub headers: Vec<(String, String)>,
}

impl Echo {
    /// Every value of header `name`.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
    handle: ServerHandle,
    task: JoinHandle<std::io::Result<()>>,
}

impl Upstream {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = web::Data::from(Arc::clone(&hits));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(counter.clone())
                .default_service(web::to(echo))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        Self {
            port,
            hits,
            handle: server.handle(),
            task: tokio::spawn(server),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops answering: the proxy finds the application down.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Requests the application has answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        self.task.abort();
    }
}

async fn echo(req: HttpRequest, hits: web::Data<AtomicUsize>) -> HttpResponse {
    hits.fetch_add(1, Ordering::SeqCst);
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    HttpResponse::Ok().json(Echo { headers })
}
