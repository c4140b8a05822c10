#!/usr/bin/env python3
"""Side-by-side benchmark of certgate's verify path against do-nothing auth backends.

Arms (interleaved in every round, see README.md):
  A nginx alone   B nginx auth_request -> nginx 204   C trivial actix handler, direct
  D nginx auth_request -> trivial handler   E certgate verify, direct
  F nginx auth_request -> certgate verify
for fingerprint mode (X-Client-Cert-Fingerprint, nginx's SHA-1) and full-certificate mode
(X-Client-Cert, escaped PEM), allow and deny paths, for one agent and for a fleet (a
different enrolled certificate on every request), the seed's GET configuration and the
cached recipe; plus E at 1k vs 1M agents, RSS per agent and start-up time. Only ratios
taken round by round mean anything on a shared machine.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CERTGATE_BIN runs another build (e.g. a copy of the previous commit's) for a side by side.
CERTGATE = os.environ.get("CERTGATE_BIN") or os.path.join(ROOT, "target", "release", "certgate")
TRIVIAL = os.path.join(ROOT, "target", "release", "examples", "trivial_auth")
FLEET_SCRIPT = os.path.join(ROOT, "bench", "fleet.lua")
# The header the fleet arms' client sends nginx in place of a TLS handshake's identity.
BENCH_IDENTITY = "X-Bench-Identity"
BASE = "/api/ext/cockpit-enterprise/mtls"
SECRET = "bench-secret"
TOKEN = "bench-admin"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def children(pid):
    try:
        out = run(["pgrep", "-P", str(pid)]).stdout.split()
    except subprocess.CalledProcessError:
        out = []
    return [pid] + [int(p) for p in out]


def api(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{BASE}{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def certgate_env(data_dir, port, cache_seconds=0):
    """The environment every bench certgate runs with: its data, port, token and secret."""
    return dict(os.environ, CERTGATE_LISTEN=f"127.0.0.1:{port}", CERTGATE_DATA_DIR=data_dir,
                CERTGATE_ADMIN_TOKEN=TOKEN, MTLS_VERIFY_SECRET=SECRET,
                CERTGATE_LOG_LEVEL="error",
                CERTGATE_DECISION_CACHE_SECONDS=str(cache_seconds))


class Certgate:
    """A release certgate on a fresh port over a given data directory."""

    def __init__(self, data_dir, port=None, cache_seconds=0):
        self.data_dir = data_dir
        self.port = port or free_port()
        env = certgate_env(data_dir, self.port, cache_seconds)
        started = time.monotonic()
        self.proc = subprocess.Popen([CERTGATE, "serve"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout=120)
        self.startup_seconds = time.monotonic() - started

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def verify_decisions(self):
        """How many verify decisions certgate has made, from its metrics."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("certgate_verify_decisions_total"))


def make_pki(work):
    def ossl(*args):
        run(["openssl", *args], cwd=work)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "30", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE")
    with open(os.path.join(work, "ext.cnf"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name in ("allowed", "denied"):
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "30", "-out", f"{name}.pem", "-extfile", "ext.cnf")
    pems = {}
    for name in ("ca", "allowed", "denied"):
        with open(os.path.join(work, f"{name}.pem")) as f:
            pems[name] = f.read()
    return pems


# The agent columns both bulk inserts fill.
INSERT_AGENT = """
        INSERT INTO agents (id, hostname, description, tags, ca_id, fingerprint,
            fingerprint_sha1, subject, serial, issuer_serial, not_before, not_after,
            certificate_pem, enabled, allowed_ips, created_at, updated_at, version)"""


def make_fleet(work, count, disabled):
    """`count` enabled and `disabled` disabled agents' certificates under the bench CA,
    signed with Python's cryptography package (openssl would take minutes for 100k), and
    the header values a proxy would send for them, one file per mode and path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with open(os.path.join(work, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    with open(os.path.join(work, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    # Distinct certificates are what the index sees; distinct keys would only cost time.
    keys = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(64)]
    agents = []
    paths = {(mode, path): os.path.join(work, f"fleet-{mode}-{path}.txt")
             for mode in ("fingerprint", "full") for path in ("allow", "deny")}
    files = {key: open(name, "w") for key, name in paths.items()}
    try:
        for i in range(count + disabled):
            serial = int.from_bytes(os.urandom(16), "big") >> 1
            cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                f"fleet-{i}.bench")]))
                    .issuer_name(ca.subject).public_key(keys[i % len(keys)])
                    .serial_number(serial)
                    .not_valid_before(now - datetime.timedelta(hours=1))
                    .not_valid_after(now + datetime.timedelta(days=30))
                    .add_extension(usage, critical=False)
                    .sign(ca_key, hashes.SHA256()))
            der = cert.public_bytes(serialization.Encoding.DER)
            pem = cert.public_bytes(serialization.Encoding.PEM).decode()
            enabled = i < count
            path = "allow" if enabled else "deny"
            sha1 = hashlib.sha1(der).hexdigest()
            files[("fingerprint", path)].write(sha1 + "\n")
            files[("full", path)].write(urllib.parse.quote(pem, safe="-") + "\n")
            hex_serial = f"{serial:X}"
            agents.append({
                "hostname": f"fleet-{i}.bench", "fingerprint": hashlib.sha256(der).hexdigest(),
                "fingerprint_sha1": sha1,
                "subject": f"CN=fleet-{i}.bench",
                "serial": hex_serial.zfill(len(hex_serial) + len(hex_serial) % 2),
                "not_before": int(cert.not_valid_before_utc.timestamp()),
                "not_after": int(cert.not_valid_after_utc.timestamp()),
                "pem": pem, "enabled": enabled})
    finally:
        for f in files.values():
            f.close()
    return paths, agents


def seed_fleet(db_path, ca_id, agents):
    """The fleet's agents, inserted as enrolment would store them; certgate fills in their
    issuer and serial identity from the certificates when it starts."""
    now_us = int(time.time() * 1_000_000)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executemany(INSERT_AGENT + """
        VALUES (?, ?, NULL, '["fleet"]', ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, '[]', ?, ?, 1)""",
        [(str(uuid.uuid4()), a["hostname"], ca_id, a["fingerprint"], a["fingerprint_sha1"],
          a["subject"], a["serial"], a["not_before"], a["not_after"], a["pem"],
          1 if a["enabled"] else 0, now_us, now_us) for a in agents])
    db.commit()
    db.close()


def seed_store(data_dir, pems, agents):
    """Enrols the two real agents through the API, then adds synthetic ones in bulk.
    Returns the CA's id."""
    cg = Certgate(data_dir)
    try:
        ca = api(cg.port, "POST", "/ca", {"name": "bench", "certificate": pems["ca"]})
        for name in ("allowed", "denied"):
            agent = api(cg.port, "POST", "/agents", {
                "hostname": f"{name}.bench", "certificate": pems[name], "ca_id": ca["id"],
                "tags": ["bench"]})
            if name == "denied":
                api(cg.port, "PUT", f"/agents/{agent['id']}/toggle", {"enabled": False})
    finally:
        cg.stop()
    seed_synthetic(os.path.join(data_dir, "certgate.db"), ca["id"], max(0, agents - 2))
    return ca["id"]


def seed_synthetic(db_path, ca_id, count):
    """Synthetic agents with random fingerprints and identities (issuer and serial),
    inserted by SQLite itself in one statement: they only need to occupy the trust index like
    real ones."""
    if count == 0:
        return
    now_us = int(time.time() * 1_000_000)
    not_after = int(time.time()) + 30 * 86400
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?),
        r(i, h) AS (SELECT i, lower(hex(randomblob(16))) FROM n)
        """ + INSERT_AGENT + """
        SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-8'
                   || substr(h, 18, 3) || '-' || substr(h, 21, 12),
               'synthetic-' || i || '.bench', NULL, '["synthetic"]', ?,
               lower(hex(randomblob(32))), lower(hex(randomblob(20))), 'CN=synthetic', '01',
               lower(hex(randomblob(32))), ?, ?, '', 1, '[]', ?, ?, 1
        FROM r""", (count, ca_id, not_after - 60 * 86400, not_after, now_us, now_us))
    db.commit()
    db.close()


def parse_duration(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url, headers, args, pids, fleet=None, certgate=None):
    """One arm: a warm-up, then the measured run. `fleet` = (values file, header name[, run
    length]) makes every request (or run of requests) carry another value; `certgate` counts
    the verify decisions it made."""
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if fleet:
        cmd += ["-s", FLEET_SCRIPT]
    tail = ["--", *fleet] if fleet else []
    subprocess.run(cmd + [f"-d{args.warmup}s", url, *tail], check=True, capture_output=True)
    decisions = certgate.verify_decisions() if certgate else None
    before = {k: cpu_ticks(v) for k, v in pids.items()}
    out = run(cmd + [f"-d{args.duration}s", url, *tail]).stdout
    after = {k: cpu_ticks(v) for k, v in pids.items()}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = parse_duration(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_duration(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))
    cpu = {k: (after[k] - before[k]) / CLK_TCK * 1e6 / max(total, 1) for k in pids}
    result = {"rps": rps, "p50": p50, "p99": p99, **{f"cpu_{k}": v for k, v in cpu.items()}}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = int(errors.group(1)) / max(total, 1) if errors else 0.0
    if certgate:
        result["calls"] = (certgate.verify_decisions() - decisions) / max(total, 1)
    return result


def render_nginx(work, mode, ports, certgate_port, trivial_port, allow, deny, header):
    """Starts nginx with the arms' servers for one mode."""
    with open(os.path.join(ROOT, "bench", "nginx.conf.template")) as f:
        text = f.read()
    prefix = os.path.join(work, f"nginx-{mode}")
    for sub in ("tmp", "logs"):
        os.makedirs(os.path.join(prefix, sub), exist_ok=True)
    values = {"PREFIX": prefix, "CERTGATE": f"127.0.0.1:{certgate_port}",
              "TRIVIAL": f"127.0.0.1:{trivial_port}", "SECRET": SECRET, "BASE": BASE,
              "IDENTITY_HEADER": header, "ALLOW_VALUE": allow, "DENY_VALUE": deny,
              "CACHE_DIR": cache_dir(work, mode),
              "USER": "user root;" if os.geteuid() == 0 else ""}
    values.update({f"PORT_{k}": str(v) for k, v in ports.items()})
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports.values():
        wait_port(port)
    return proc


def cache_dir(work, mode):
    """Where nginx keeps cached decisions: on tmpfs, as the cached recipes do (/run)."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else work
    return os.path.join(base, f"{os.path.basename(work)}-cache-{mode}")


def der_sha1(path):
    der = subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return hashlib.sha1(der).hexdigest()


def median(values):
    return statistics.median(values) if values else float("nan")


ARMS = ("A", "B", "C", "D", "E", "F", "E_deny", "F_deny", "D_get", "F_get",
        "A_fleet", "C_fleet", "D_fleet", "E_fleet", "F_fleet", "E_fleet_deny",
        "F_fleet_deny", "F_cached", "A_sessions", "F_cached_sessions")

# Numerator, denominator: each ratio is taken round by round, then its median reported.
RATIOS = (("F", "D"), ("E", "C"), ("F_deny", "D"), ("E_deny", "C"), ("F_get", "D_get"),
          ("D", "B"), ("B", "A"), ("E_fleet", "C_fleet"), ("F_fleet", "D_fleet"),
          ("E_fleet_deny", "C_fleet"), ("F_fleet_deny", "D_fleet"), ("F_cached", "A_fleet"),
          ("F_cached_sessions", "A_sessions"), ("A_fleet", "A"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=100_000,
                   help="enrolled agents of the fleet, each with its own certificate "
                        "(a tenth as many disabled ones are added for the deny arms)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--modes", default="fingerprint,full")
    p.add_argument("--arms", default=",".join(ARMS), help="arms to run, comma-separated")
    p.add_argument("--cache-seconds", type=int, default=5,
                   help="CERTGATE_DECISION_CACHE_SECONDS for the F_cached arms")
    p.add_argument("--session-requests", type=int, default=8,
                   help="requests each drawn agent makes in a row in the *_sessions arms")
    p.add_argument("--scale", action="store_true",
                   help="also compare E at 1k and 1M agents, RSS per agent, start-up time")
    args = p.parse_args()
    selected = args.arms.split(",")
    unknown = set(selected) - set(ARMS)
    if unknown:
        p.error(f"unknown arms: {', '.join(sorted(unknown))}")

    work = tempfile.mkdtemp(prefix="certgate-bench-")
    procs = []
    try:
        pems = make_pki(work)
        identities = {
            "fingerprint": ("X-Client-Cert-Fingerprint", der_sha1(os.path.join(work, "allowed.pem")),
                            der_sha1(os.path.join(work, "denied.pem"))),
            "full": ("X-Client-Cert", urllib.parse.quote(pems["allowed"], safe="-"),
                     urllib.parse.quote(pems["denied"], safe="-")),
        }
        data = os.path.join(work, "data-main")
        ca_id = seed_store(data, pems, 0)
        started = time.monotonic()
        fleet, agents = make_fleet(work, args.agents, args.agents // 10)
        seed_fleet(os.path.join(data, "certgate.db"), ca_id, agents)
        print(f"fleet: {len(agents)} certificates made and stored in "
              f"{time.monotonic() - started:.1f}s", flush=True)
        del agents
        # The cache setting only changes what nginx may keep: every answer carries
        # X-Accel-Expires, and only F_cached's location caches.
        cg = Certgate(data, cache_seconds=args.cache_seconds)
        procs.append(cg.proc)
        print(f"certgate: {args.agents + args.agents // 10 + 2} agents, ready in "
              f"{cg.startup_seconds:.2f}s, RSS {rss_bytes(cg.proc.pid) / 2**20:.1f} MiB",
              flush=True)
        trivial_port = free_port()
        trivial = subprocess.Popen([TRIVIAL, f"127.0.0.1:{trivial_port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(trivial)
        wait_port(trivial_port)

        modes = args.modes.split(",")
        nginx = {}
        for mode in modes:
            header, allow, deny = identities[mode]
            ports = {k: free_port() for k in ("NOOP", "A", "B", "D", "F", "F_DENY", "D_GET",
                                              "F_GET", "D_FLEET", "F_FLEET", "F_CACHED")}
            proc = render_nginx(work, mode, ports, cg.port, trivial_port, allow, deny, header)
            procs.append(proc)
            nginx[mode] = (proc, ports)

        results = {}  # (mode, arm) -> list of per-round dicts
        verify = f"http://127.0.0.1:{cg.port}{BASE}/verify"
        trivial_verify = f"http://127.0.0.1:{trivial_port}/verify"
        direct = {"X-Verify-Secret": SECRET, "X-Real-IP": "127.0.0.1"}
        for rnd in range(args.rounds):
            for mode in modes:
                header, allow, deny = identities[mode]
                proc, ports = nginx[mode]
                ngx = children(proc.pid)

                def via(port):
                    return f"http://127.0.0.1:{ports[port]}/"
                proxy, backend = {"proxy": ngx}, {"backend": [cg.proc.pid]}
                both = {**proxy, **backend}
                to_trivial = {"proxy": ngx, "backend": [trivial.pid]}
                # Through nginx the fleet's identity goes in X-Bench-Identity, direct in
                # the identity header itself.
                allow_fleet = (fleet[(mode, "allow")], BENCH_IDENTITY)
                deny_fleet = (fleet[(mode, "deny")], BENCH_IDENTITY)
                allow_direct = (fleet[(mode, "allow")], header)
                sessions = (*allow_fleet, str(args.session_requests))
                deny_direct = (fleet[(mode, "deny")], header)
                # arm: url, headers, CPU to account, fleet values, certgate to count calls of
                arms = {
                    "A": (via("A"), {}, proxy, None),
                    "B": (via("B"), {}, proxy, None),
                    "C": (trivial_verify, {**direct, header: allow},
                          {"backend": [trivial.pid]}, None),
                    "D": (via("D"), {}, to_trivial, None),
                    "E": (verify, {**direct, header: allow}, backend, None),
                    "F": (via("F"), {}, both, None),
                    "E_deny": (verify, {**direct, header: deny}, backend, None),
                    "F_deny": (via("F_DENY"), {}, both, None),
                    "D_get": (via("D_GET"), {}, to_trivial, None),
                    "F_get": (via("F_GET"), {}, both, None),
                    "A_fleet": (via("A"), {}, proxy, allow_fleet),
                    "C_fleet": (trivial_verify, direct, {"backend": [trivial.pid]},
                                allow_direct),
                    "D_fleet": (via("D_FLEET"), {}, to_trivial, allow_fleet),
                    "E_fleet": (verify, direct, backend, allow_direct),
                    "F_fleet": (via("F_FLEET"), {}, both, allow_fleet),
                    "E_fleet_deny": (verify, direct, backend, deny_direct),
                    "F_fleet_deny": (via("F_FLEET"), {}, both, deny_fleet),
                    "F_cached": (via("F_CACHED"), {}, both, allow_fleet),
                    "A_sessions": (via("A"), {}, proxy, sessions),
                    "F_cached_sessions": (via("F_CACHED"), {}, both, sessions),
                }
                for arm in selected:
                    url, headers, pids, values = arms[arm]
                    counted = cg if arm.startswith(("E", "F")) else None
                    r = wrk(url, headers, args, pids, values, counted)
                    results.setdefault((mode, arm), []).append(r)
                    calls = f" certgate calls/req {r['calls']:.3f}" if "calls" in r else ""
                    failed = f" non-2xx {r['non2xx']:.3f}" if r["non2xx"] else ""
                    print(f"round {rnd + 1} {mode:11} {arm:17} {r['rps']:10.0f} req/s "
                          f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms{calls}{failed}",
                          flush=True)

        print("\n| mode | arm | req/s | p50 ms | p99 ms | proxy CPU µs/req "
              "| backend CPU µs/req | certgate calls/req |")
        print("|---|---|---|---|---|---|---|---|")
        for (mode, arm), rs in results.items():
            def med(key):
                return median([r[key] for r in rs if key in r])
            calls = f"{med('calls'):.3f}" if "calls" in rs[0] else ""
            print(f"| {mode} | {arm} | {med('rps'):.0f} | {med('p50'):.3f} | {med('p99'):.3f} "
                  f"| {med('cpu_proxy'):.1f} | {med('cpu_backend'):.1f} | {calls} |")
        print("\n| mode | ratio | median over rounds | per round |")
        print("|---|---|---|---|")
        for mode in modes:
            for num, den in RATIOS:
                if (mode, num) not in results or (mode, den) not in results:
                    continue
                ratios = [n["rps"] / d["rps"] for n, d in
                          zip(results[(mode, num)], results[(mode, den)])]
                print(f"| {mode} | {num}/{den} | {median(ratios):.3f} | "
                      f"{' '.join(f'{x:.3f}' for x in ratios)} |")
        cg.stop()
        procs.remove(cg.proc)

        if args.scale:
            scale(args, work, pems, identities)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)
        for mode in ("fingerprint", "full"):
            shutil.rmtree(cache_dir(work, mode), ignore_errors=True)


def scale(args, work, pems, identities):
    """E at 1k vs 1M agents (interleaved per round), RSS per agent, start-up time."""
    header, allow, _ = identities["fingerprint"]
    sizes = [1_000, 100_000, 1_000_000]
    stores = {}
    for size in sizes:
        data = os.path.join(work, f"data-{size}")
        seed_store(data, pems, size)
        stores[size] = data
    print("\n| agents | start-up to listening (s) | RSS after load (MiB) |")
    print("|---|---|---|")
    rss = {}
    for size in sizes:
        cg = Certgate(stores[size])
        time.sleep(0.5)
        rss[size] = rss_bytes(cg.proc.pid)
        print(f"| {size} | {cg.startup_seconds:.2f} | {rss[size] / 2**20:.1f} |")
        cg.stop()
    print(f"\nbytes per agent 1k→100k: {(rss[100_000] - rss[1_000]) / 99_000:.0f}; "
          f"100k→1M: {(rss[1_000_000] - rss[100_000]) / 900_000:.0f}")
    small, large = Certgate(stores[1_000]), Certgate(stores[1_000_000])
    try:
        direct = {"X-Verify-Secret": SECRET, "X-Real-IP": "127.0.0.1", header: allow}
        ratios = []
        for _ in range(args.rounds):
            r_small = wrk(f"http://127.0.0.1:{small.port}{BASE}/verify", direct, args,
                          {"backend": [small.proc.pid]})
            r_large = wrk(f"http://127.0.0.1:{large.port}{BASE}/verify", direct, args,
                          {"backend": [large.proc.pid]})
            ratios.append(r_large["rps"] / r_small["rps"])
        print(f"\nE(1M)/E(1k) median {median(ratios):.3f} per round "
              f"{' '.join(f'{x:.3f}' for x in ratios)}")
    finally:
        small.stop()
        large.stop()


if __name__ == "__main__":
    sys.exit(main())
