#!/usr/bin/env python3
"""The write path at fleet scale: enrols a fleet through `POST B/agents` with parallel
clients and prints, per block of agents, the enrolment rate, certgate's CPU per enrolment and
the size of SQLite's write-ahead log (the largest seen during the block).

  bench/enrolment.py [--agents 100000] [--clients 8] [--block 10000] [--database-url URL]

Without --database-url, certgate runs on SQLite in a fresh data directory. Certificates are
made up front with Python's cryptography package (as bench/run.py's fleet is).
"""
import argparse
import concurrent.futures
import http.client
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
        local = threading.local()

        def enrol(agent):
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", cg.port, timeout=30)
            body = json.dumps({"hostname": agent["hostname"], "certificate": agent["pem"],
                               "ca_id": ca["id"]})
            local.conn.request("POST", R.BASE + "/agents", body, {
                "Authorization": f"Bearer {R.TOKEN}", "Content-Type": "application/json"})
            answer = local.conn.getresponse()
            answer.read()
            if answer.status != 201:
                raise RuntimeError(f"enrolment answered {answer.status}")

        print(f"{'agents':>8} {'per s':>8} {'CPU ms/enrolment':>17} {'max WAL MiB':>12}", flush=True)
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            for start in range(0, len(agents), args.block):
                block = agents[start:start + args.block]
                ticks = R.cpu_ticks([cg.proc.pid])
                began = time.monotonic()
                biggest = [0]
                done = threading.Event()

                def watch():
                    while not done.wait(0.2):
                        if os.path.exists(wal):
                            biggest[0] = max(biggest[0], os.path.getsize(wal))
                watcher = threading.Thread(target=watch)
                watcher.start()
                list(pool.map(enrol, block))
                done.set()
                watcher.join()
                took = time.monotonic() - began
                cpu = (R.cpu_ticks([cg.proc.pid]) - ticks) / R.CLK_TCK
                print(f"{start + len(block):>8} {len(block) / took:>8.0f} "
                      f"{cpu * 1000 / len(block):>17.2f} {biggest[0] / 2**20:>12.1f}", flush=True)
    finally:
        cg.stop()


if __name__ == "__main__":
    main()
