#!/usr/bin/env python3
"""The write path at fleet scale: enrols a fleet through `POST B/agents` with parallel
clients and prints, per block of agents, the enrolment rate, certgate's CPU per enrolment,
the client's latency and the size of SQLite's write-ahead log (the largest seen during the
block).

  bench/enrolment.py [--agents 100000] [--clients 8] [--block 10000] [--database-url URL]

Without --database-url, certgate runs on SQLite in a fresh data directory. Certificates are
made up front with Python's cryptography package (as bench/run.py's fleet is), and so are the
requests: `--clients` kept-alive connections on one asyncio loop send them and read the
answers, so the client takes little of the CPU it shares with certgate (a thread per client
with http.client took more CPU per enrolment than certgate itself).
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=100_000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--block", type=int, default=10_000)
    p.add_argument("--database-url")
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="certgate-enrol-")
    pems = R.make_pki(work)
    started = time.monotonic()
    _, agents = R.make_fleet(work, args.agents, 0)
    print(f"{len(agents)} certificates made in {time.monotonic() - started:.1f}s", flush=True)
    data = os.path.join(work, "data")
    env = {"CERTGATE_DATABASE_URL": args.database_url} if args.database_url else {}
    os.environ.update(env)
    cg = R.Certgate(data)
    wal = os.path.join(data, "certgate.db-wal")
    try:
        ca = R.api(cg.port, "POST", "/ca", {"name": "bench", "certificate": pems["ca"]})
        print(f"{'agents':>8} {'per s':>8} {'CPU ms/enrolment':>17} {'max WAL MiB':>12}",
              flush=True)
        for start in range(0, len(agents), args.block):
            block = agents[start:start + args.block]
            requests = [enrolment_request(agent, ca["id"]) for agent in block]
            ticks = R.cpu_ticks([cg.proc.pid])
            biggest = [0]
            done = threading.Event()

            def watch():
                while not done.wait(0.2):
                    if os.path.exists(wal):
                        biggest[0] = max(biggest[0], os.path.getsize(wal))
            watcher = threading.Thread(target=watch)
            watcher.start()
            began = time.monotonic()
            refused = asyncio.run(send_all(cg.port, requests, args.clients))
            took = time.monotonic() - began
            done.set()
            watcher.join()
            cpu = (R.cpu_ticks([cg.proc.pid]) - ticks) / R.CLK_TCK
            if refused:
                raise RuntimeError(f"{refused} enrolments refused")
            total = R.api(cg.port, "GET", "/agents?limit=1")["total"]
            if total != start + len(block):
                raise RuntimeError(f"{total} agents stored, {start + len(block)} sent")
            print(f"{start + len(block):>8} {len(block) / took:>8.0f} "
                  f"{cpu * 1000 / len(block):>17.2f} {biggest[0] / 2**20:>12.1f}", flush=True)
    finally:
        cg.stop()


def enrolment_request(agent, ca_id):
    """The bytes of one `POST B/agents`, built before the clock starts."""
    body = json.dumps({"hostname": agent["hostname"], "certificate": agent["pem"],
                       "ca_id": ca_id}).encode()
    head = (f"POST {R.BASE}/agents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {R.TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def send_all(port, requests, clients):
    """Sends each prepared request once over `clients` kept-alive connections; returns how
    many were answered with anything but 201."""
    pending = iter(requests)
    refused = 0

    async def client():
        nonlocal refused
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in pending:
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            refused += status != 201
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return refused


if __name__ == "__main__":
    main()
