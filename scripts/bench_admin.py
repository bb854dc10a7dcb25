#!/usr/bin/env python3
"""The admin API benchmark of scripts/bench: `idpsync run` serving the admin API on the S1-scale store.

Takes the file benchmark's folder (its directory, configuration and state after S3: 100,000 users, 10,000 groups, about
1,000,000 memberships), turns the admin API on, starts the service, waits for its run at start, and then sends each
request REQUESTS times, one after another on one keep-alive connection: the floor (`GET /healthz` of the same
service), the groups list a page of 1,000 at a time, one group with its members, one user, the mappings, a direct member
added and removed again (a write through the checked apply each), and dry runs of the whole directory. Reports the
median and p99 latency and the requests a second, and returns the Markdown section for BENCHMARKS.md.

Standalone: scripts/bench_admin.py [--work target/bench] (a folder a scripts/bench run left; else one is made).
"""
import argparse
import http.client
import importlib.machinery
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-admin-token-0123456789"
REQUESTS = 200
DRY_RUNS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive connection; every request carries the admin token."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def send(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        answer = self.conn.getresponse()
        payload = answer.read()
        return answer.status, time.perf_counter() - start, payload


def timed(client, label, requests, n=REQUESTS):
    """`requests` is a list of (method, path, body, expected status), cycled through n times."""
    latencies = []
    started = time.perf_counter()
    size = 0
    for i in range(n):
        method, path, body, expected = requests[i % len(requests)]
        status, seconds, payload = client.send(method, path, body)
        if status != expected:
            raise SystemExit(f"{label}: {method} {path} answered {status}: {payload[:500]!r}")
        latencies.append(seconds)
        size = max(size, len(payload))
    total = time.perf_counter() - started
    latencies.sort()
    return {"label": label, "n": n, "p50": latencies[n // 2] * 1000, "p99": latencies[min(n - 1, n * 99 // 100)] * 1000,
            "rate": n / total, "bytes": size}


def setup(work):
    """A folder like the file benchmark's after S3, made here when scripts/bench left none."""
    loader = importlib.machinery.SourceFileLoader("bench", os.path.join(ROOT, "scripts/bench"))
    spec = importlib.util.spec_from_loader("bench", loader)
    bench = importlib.util.module_from_spec(spec)
    loader.exec_module(bench)
    args = argparse.Namespace(users=100_000, groups=10_000, memberships=1_000_000, seed=42)
    os.makedirs(work, exist_ok=True)
    users, members, nested, _ = bench.generate(args, work)
    bench.write_directory(os.path.join(work, "directory.json"), users, members, nested)
    bench.write_config(os.path.join(work, "idpsync.toml"), args.groups)
    binary = os.path.join(ROOT, "target/release/idpsync")
    subprocess.run([binary, "--config", os.path.join(work, "idpsync.toml"), "-q", "reconcile", "--output", "json"],
                   cwd=work, check=True, stdout=subprocess.DEVNULL)


def run(binary, bench_work):
    work = os.path.join(bench_work, "admin")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "state"))
    shutil.copy(os.path.join(bench_work, "state/bench.db"), os.path.join(work, "state/bench.db"))
    with open(os.path.join(bench_work, "idpsync.toml")) as f:
        config = f.read()
    listen, admin = free_port(), free_port()
    config = config.replace('path = "directory.json"', f'path = "{os.path.join(bench_work, "directory.json")}"')
    config = config.replace("[daemon]\n", f'[daemon]\nlisten = "127.0.0.1:{listen}"\nadmin_listen = "127.0.0.1:{admin}"\n'
                            'admin_token_file = "admin.token"\nschedule = "0 0 0 1 1 *"\n', 1)
    with open(os.path.join(work, "idpsync.toml"), "w") as f:
        f.write(config)
    token = os.path.join(work, "admin.token")
    with open(token, "w") as f:
        f.write(TOKEN)
    os.chmod(token, 0o600)
    log = open(os.path.join(work, "service.log"), "w")
    service = subprocess.Popen([binary, "--config", os.path.join(work, "idpsync.toml"), "run"], cwd=work,
                               stdout=log, stderr=log)
    try:
        client = Client(admin)
        deadline = time.time() + 600
        while True:
            try:
                status, _, payload = client.send("GET", "/v1/admin/runs?limit=1")
                items = json.loads(payload)["items"] if status == 200 else []
                if items and items[0]["finished"]:
                    break
            except (ConnectionError, OSError):
                client = Client(admin)
            if time.time() > deadline or service.poll() is not None:
                raise SystemExit("the service's run at start never finished; see " + log.name)
            time.sleep(0.2)
        floor_client = Client(listen)
        rows = [timed(floor_client, "floor: `GET /healthz`", [("GET", "/healthz", None, 200)])]
        pages = [("GET", f"/v1/admin/groups?limit=1000&cursor={i * 1000}" if i else "/v1/admin/groups?limit=1000",
                  None, 200) for i in range(10)]
        rows.append(timed(client, "`GET /v1/admin/groups?limit=1000` (the 10 pages in turn)", pages, n=50))
        rows.append(timed(client, "`GET /v1/admin/groups/{stage}/{name}` (about 100 members)",
                          [("GET", f"/v1/admin/groups/{['development', 'qa', 'production'][g % 3]}/Team%20{g}", None, 200)
                           for g in range(0, 10_000, 97)]))
        rows.append(timed(client, "`GET /v1/admin/users/{key}` (about 10 groups)",
                          [("GET", f"/v1/admin/users/user{u:06d}%40example.com", None, 200) for u in range(0, 100_000, 499)]))
        rows.append(timed(client, "`GET /v1/admin/mappings?limit=1000`", [("GET", "/v1/admin/mappings?limit=1000", None, 200)],
                          n=50))
        edit = "/v1/admin/groups/qa/Team%201/users"
        rows.append(timed(client, "`PATCH …/users` add, then remove, a direct member",
                          [("PATCH", edit, {"add": ["bench@example.com"]}, 200),
                           ("PATCH", edit, {"remove": ["bench@example.com"]}, 200)]))
        rows.append(timed(client, "`POST /v1/admin/reconcile?dry_run=true` (the whole directory)",
                          [("POST", "/v1/admin/reconcile?dry_run=true", None, 200)], n=DRY_RUNS))
    finally:
        service.terminate()
        service.wait(timeout=120)
        log.close()
    floor = rows[0]["p50"]
    lines = ["## Admin API (`admin_listen`)", "",
             f"`idpsync run` on the file benchmark's store after S3 (100,000 users, 10,000 groups, about 1,000,000 "
             f"memberships), each request sent {REQUESTS} times (the groups pages and mappings 50, the dry run "
             f"{DRY_RUNS}) one after another on one keep-alive connection with the admin token. The floor is `GET "
             "/healthz` of the same service: what a request costs this machine before idpsync does anything.", "",
             "| request | requests | p50 ms | p99 ms | × floor (p50) | requests/s | largest answer KB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['n']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p50'] / floor:.0f} "
                     f"| {r['rate']:.0f} | {r['bytes'] / 1024:.0f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(ROOT, "target/bench"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "idpsync"], cwd=ROOT, check=True)
    if not os.path.exists(os.path.join(args.work, "state/bench.db")):
        setup(args.work)
    print(run(os.path.join(ROOT, "target/release/idpsync"), args.work))


if __name__ == "__main__":
    main()
