#!/usr/bin/env python3
"""Replica propagation on PostgreSQL: two certgate replicas on one database; an agent is
toggled through the first 40 times and the second is polled (every 2 ms) until its verify
answer changes. Prints median, p95 and max from the toggle call to the changed answer.

  bench/propagation.py POSTGRES_SERVER_URL [CERTGATE_BINARY]

POSTGRES_SERVER_URL is a server URL ending in `/` (a scratch database is created and
dropped there); the binary defaults to the release build.
"""
import os, statistics, subprocess, sys, tempfile, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

pg = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else R.CERTGATE
R.CERTGATE = binary
dbname = "prop_%d" % os.getpid()
subprocess.run(["psql", pg + "postgres", "-qc", f"CREATE DATABASE {dbname}"], check=True)
url = pg + dbname
work = tempfile.mkdtemp(prefix="prop-")
pems = R.make_pki(work)
def start(port):
    env = dict(os.environ, CERTGATE_LISTEN=f"127.0.0.1:{port}", CERTGATE_DATA_DIR=work,
               CERTGATE_DATABASE_URL=url, CERTGATE_ADMIN_TOKEN=R.TOKEN, MTLS_VERIFY_SECRET=R.SECRET,
               CERTGATE_LOG_LEVEL="error")
    p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    R.wait_port(port); return p
pa, pb = R.free_port(), R.free_port()
a, b = start(pa), start(pb)
try:
    ca = R.api(pa, "POST", "/ca", {"name": "p", "certificate": pems["ca"]})
    agent = R.api(pa, "POST", "/agents", {"hostname": "p.bench", "certificate": pems["allowed"], "ca_id": ca["id"]})
    sha1 = R.der_sha1(os.path.join(work, "allowed.pem"))
    def status():
        req = urllib.request.Request(f"http://127.0.0.1:{pb}{R.BASE}/verify",
            headers={"X-Verify-Secret": R.SECRET, "X-Client-Cert-Fingerprint": sha1})
        try:
            with urllib.request.urlopen(req, timeout=5) as r: return r.status
        except urllib.error.HTTPError as e: return e.code
    time.sleep(1.5)
    lat = []
    enabled = True
    for i in range(40):
        enabled = not enabled
        want = 200 if enabled else 403
        t0 = time.monotonic()
        R.api(pa, "PUT", f"/agents/{agent['id']}/toggle", {"enabled": enabled})
        while status() != want:
            time.sleep(0.002)
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(0.05 + (i % 7) * 0.05)
    lat.sort()
    print(f"{os.path.basename(binary)}: n={len(lat)} median={statistics.median(lat):.1f}ms p95={lat[int(len(lat)*0.95)-1]:.1f}ms max={lat[-1]:.1f}ms")
finally:
    a.terminate(); b.terminate(); a.wait(); b.wait()
    subprocess.run(["psql", pg + "postgres", "-qc", f"DROP DATABASE {dbname}"])
