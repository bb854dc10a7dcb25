"""The login benchmark of scripts/bench: `login-load` (fakes/src/bin/login-load.rs) against `idpsync run`.

login-load serves a fake OpenID provider, starts the service on a configuration with a login-only IdP of 200 mapped
groups, and posts pre-signed tokens of 1,000 subjects: a first login of each (untimed), then timed logins with fresh
tokens, at 10, 200 and 5,000 group claims; then 200 claims paced at PACED_RATE a second, PACED_RUNS times; then 200
claims again, the first logins done beforehand, from a service's start until its run at start has read and applied
the S1 directory (1,000,000 memberships) of the file benchmark. Returns the Markdown section for BENCHMARKS.md.
"""
import json
import os
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = os.path.join(ROOT, "tests/fixtures/keys/entra-app.key")
# Logins per second of the paced (open-loop) row.
PACED_RATE = 1000
# How many times the paced row runs.
PACED_RUNS = 3


def load(loader, binary, work, extra):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cmd = [loader, "--idpsync", binary, "--work", work, "--key", KEY] + extra
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        raise SystemExit(f"login-load failed: {out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def run(binary, bench_work, logins=5000, concurrency=8):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fakes", "--bin", "login-load"], cwd=ROOT, check=True)
    loader = os.path.join(ROOT, "target/release/login-load")
    work = os.path.join(bench_work, "login")
    common = ["--logins", str(logins), "--concurrency", str(concurrency)]
    rows = load(loader, binary, os.path.join(work, "quiet"), common)
    # The same logins at a steady pace below the closed loop's throughput (an open loop: each latency counts from
    # when its login was due), for the latency a service sees that is not run flat out.
    # Three times: an open loop's tail is what this machine's noisiest seconds make it.
    for attempt in range(PACED_RUNS):
        rows += load(loader, binary, os.path.join(work, f"paced-{attempt}"),
                     ["--logins", str(logins), "--claims", "200", "--rate", str(PACED_RATE)])
    # The S1 directory and its 10,000 mappings, into a state holding only the login IdP's first logins: the run at
    # start applies the directory whole, while the timed logins go on.
    with open(os.path.join(bench_work, "idpsync.toml")) as f:
        base = f.read()
    base = base.replace('state = "state/bench.db"', 'state = "state/login-batch.db"')
    base = re.sub(r'path = "directory.json"', f'path = "{os.path.join(bench_work, "directory.json")}"', base)
    base_path = os.path.join(bench_work, "login-base.toml")
    with open(base_path, "w") as f:
        f.write(base)
    rows += load(loader, binary, os.path.join(work, "batch"),
                 ["--concurrency", str(concurrency), "--claims", "200", "--during-batch", "--base", base_path])
    lines = ["## Logins (`POST /v1/login`)", "",
             f"`login-load` against `idpsync run`: a login-only IdP with 200 mapped groups; 1,000 subjects, each first "
             f"signed in once (untimed), then {logins:,} timed logins with fresh tokens: {concurrency} at a time, each sent "
             f"as another answers (a closed loop, flat out), or paced at {PACED_RATE}/s whatever the answers (an open "
             "loop; each latency counts from when its login was due). During the S1 run, the timed logins go on from "
             "the service's start until its run at start has read and applied the S1 directory. CPU is each "
             "process's own over the timed logins. The first row is the floor: the same client sending "
             "`GET /healthz`.", "",
             "| claims | sent | token body bytes | logins | errors | logins/s | p50 ms | p99 ms | max ms | idpsync CPU s | "
             "idpsync CPU ms per login | load generator CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("floor") and r is not rows[0]:
            continue  # each login-load run measures a floor; the table shows the first
        label = f"{r['claims']}" + (" during the S1 run" if r["during_batch"] else "")
        if r.get("floor"):
            label = f"floor: {r['floor']}"
        sent = f"{r['rate']:.0f}/s" if r.get("rate") else f"{concurrency} at a time"
        per = r["idpsync_cpu_s"] / max(1, r["logins"]) * 1e3
        lines.append(f"| {label} | {sent} | {r['body_bytes']:,} | {r['logins']:,} | {r['errors']} | "
                     f"{r['per_second']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{r['idpsync_cpu_s']:.2f} | {per:.2f} | {r['loader_cpu_s']:.2f} |")
    batch = [r for r in rows if r["during_batch"]]
    if batch and batch[0].get("batch_seconds"):
        lines += ["", f"During the S1 run: the run at start read and applied the directory "
                  f"{batch[0]['batch_seconds']:.1f} s after the service started, while the timed logins went on."]
    floors = [r for r in rows if r.get("floor")]
    quiet = [r for r in rows if r["claims"] == 200 and not r.get("rate") and not r["during_batch"]]
    if floors and quiet:
        rates = ", ".join("%.0f/s" % f["per_second"] for f in floors)
        share = quiet[0]["per_second"] / floors[0]["per_second"]
        lines += ["", f"The floor is the same load generator sending as many `GET /healthz` {concurrency} at a time, "
                  f"measured at the start of each login-load run ({rates}): logins at 200 claims ran at {share:.3f} × "
                  "its rate."]
    return "\n".join(lines) + "\n"
