#!/usr/bin/env python3
"""Instructions per verify, counted by valgrind's callgrind: certgate against the trivial
handler, with a different fleet certificate on every request.

  bench/instructions.py [--agents 100000] [--seconds 10] [--modes fingerprint,full]
                        [--compare OTHER_CERTGATE_BINARY]

On a shared 2-core machine req/s moves by ±10 % from one round to the next, more than most
single changes to the verify path are worth; the count of instructions a request costs
repeats to within a fraction of a percent. It is not time: a cache miss counts as one
instruction, the kernel's work (the sockets) is not counted, and code under valgrind runs
some fifty times slower. Use it to tell whether a change makes certgate do less, and
bench/run.py to see what that buys.

Each backend runs under `valgrind --tool=callgrind --separate-threads=yes`, uninstrumented
while it starts and while wrk (one thread, 8 connections, bench/fleet.lua) warms it up, then
instrumented for `--seconds` of load. Threads that ran actix-web's HTTP/1 dispatcher are the
request path, which repeats to within 0.1 % from run to run; certgate's other threads are
its background work, mostly the `last_seen` flush. That figure is lumpy (±40 %: which
flushes and write-ahead log checkpoints fall inside the window, sightings of the warm-up
written in it); at the request rate under valgrind nearly every request is a new sighting,
so it is of the order of the cost of one written row. `--compare` counts a second certgate
build over a copy of the same database, for a before/after of a change.
Requirements: those of bench/run.sh, and valgrind.
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

# A function only a thread serving HTTP/1 requests runs.
REQUEST_THREAD_MARK = "actix_http::h1::dispatcher::Dispatcher"
MODES = {"fingerprint": "X-Client-Cert-Fingerprint", "full": "X-Client-Cert"}


def callgrind(command, env, port, out, values, header, seconds):
    """Runs `command` under callgrind, loads it, and returns (requests, Ir of the request
    threads, Ir of the other threads) for the instrumented part."""
    for stale in glob.glob(out + ".*"):
        os.remove(stale)
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
         f"--callgrind-out-file={out}.%p", *command],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        R.wait_port(port, timeout=600)
        load = ["wrk", "-t1", "-c8", "-H", f"X-Verify-Secret: {R.SECRET}",
                "-H", "X-Real-IP: 127.0.0.1", "-s", R.FLEET_SCRIPT]
        url = f"http://127.0.0.1:{port}{R.BASE}/verify"
        tail = ["--", values, header]
        subprocess.run(load + ["-d3s", url, *tail], check=True, capture_output=True)
        toggle = ["callgrind_control", "--instr"]
        subprocess.run(toggle + ["on", str(proc.pid)], check=True, capture_output=True)
        report = R.run(load + [f"-d{seconds}s", url, *tail]).stdout
        subprocess.run(toggle + ["off", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    if "Non-2xx" in report:
        sys.exit(f"bench: {command[0]} answered some requests with an error:\n{report}")
    requests = int(re.search(r"(\d+) requests in", report).group(1))
    request_path = background = 0
    for thread in glob.glob(out + ".*"):
        # A thread that ran nothing while instrumented has no totals to annotate.
        annotated = subprocess.run(["callgrind_annotate", thread], capture_output=True,
                                   text=True).stdout
        total = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotated)
        count = int(total.group(1).replace(",", "")) if total else 0
        with open(thread) as f:
            serves = REQUEST_THREAD_MARK in f.read()
        if serves:
            request_path += count
        else:
            background += count
    return requests, request_path, background


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=100_000)
    p.add_argument("--seconds", type=int, default=10, help="instrumented load per backend")
    p.add_argument("--modes", default="fingerprint,full")
    p.add_argument("--compare", help="another certgate binary, counted the same way")
    args = p.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is required (Debian: valgrind, wrk)")

    work = tempfile.mkdtemp(prefix="certgate-instructions-")
    try:
        pems = R.make_pki(work)
        data = os.path.join(work, "data-main")
        ca_id = R.seed_store(data, pems, 0)
        fleet, agents = R.make_fleet(work, args.agents, 0)
        R.seed_fleet(os.path.join(data, "certgate.db"), ca_id, agents)
        del agents
        builds = {"certgate": R.CERTGATE}
        if args.compare:
            builds["compared"] = args.compare
        for mode in args.modes.split(","):
            header, values = MODES[mode], fleet[(mode, "allow")]
            port = R.free_port()
            requests, served, _ = callgrind(
                [R.TRIVIAL, f"127.0.0.1:{port}"], os.environ, port,
                os.path.join(work, "trivial"), values, header, args.seconds)
            trivial = served / requests
            print(f"{mode}: trivial handler {trivial:,.0f} instructions per request "
                  f"({requests} requests)", flush=True)
            for name, binary in builds.items():
                copy = os.path.join(work, f"data-{name}")
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(data, copy)
                port = R.free_port()
                started = time.monotonic()
                requests, served, background = callgrind(
                    [binary, "serve"], R.certgate_env(copy, port), port, os.path.join(work, name), values, header,
                    args.seconds)
                print(f"{mode}: {name} ({binary}) {served / requests:,.0f} on the request "
                      f"path ({trivial / (served / requests):.3f} of the trivial handler's), "
                      f"{background / requests:,.0f} in the background per request "
                      f"({requests} requests, {time.monotonic() - started:.0f}s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
