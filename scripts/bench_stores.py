"""The remote store part of scripts/bench: 10,000 membership changes sent to each fake group store of the `fakes` crate.

A file IdP holds USERS users in two IdP groups, mapped onto the production groups Team A and Team B, which the store
serves. Per store, `fake-server odc|scim|jira` holds the same users and both (empty) groups, and:
  cold  the first run: USERS adds to Team A, with no user id cached;
  warm  the mapping of Team B added: USERS adds to Team B, every user id cached.
Both are timed with /usr/bin/time; the fake counts what it was sent (GET /_fake/stats), split into change requests
(SCIM PATCH, ODC PATCH /groups/{key}/users, Jira POST/DELETE /group/user) and lookups (the rest: users, groups,
membership checks, member pages, tokens). The floor is the same two runs into the embedded store alone.

Rate limits are scaled 60x so the benchmark does not take minutes: ODC's 100 requests a minute become 100 a second
on both sides (the fake refuses the 101st in a window with 429; the client's budget is rate_limit = 100,
rate_window = "1s"), and the projected wall time at the real 100 a minute is requests x 0.6 s. Jira's fake allows
1,000 a second and the client is set to the same; the SCIM fake has no limit and the client none that binds.

Usage: python3 scripts/bench_stores.py [--users 10000]   (standalone; scripts/bench calls run())
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# How each fake counts change requests; the rest of its requests are lookups.
CHANGE_COUNTERS = {"odc": ["patch_users"], "scim": ["patches"], "jira": ["add_user", "remove_user"]}
TOTAL = {"odc": ["requests", "tokens", "discoveries"], "scim": ["requests"], "jira": ["requests"]}


def fake(binary, kind, *args):
    proc = subprocess.Popen([binary, kind, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit(f"fake-server {kind} did not start: {url!r}")
    extra = proc.stdout.readline().strip() if kind == "odc" else None
    return proc, url, extra


def stats(url):
    root = url.split("/scim/")[0]  # the SCIM fake serves its counters beside the SCIM base
    with urllib.request.urlopen(f"{root}/_fake/stats") as r:
        return json.load(r)


def counted(kind, before, after):
    diff = lambda keys: sum(after.get(k, 0) - before.get(k, 0) for k in keys)
    total = diff(TOTAL[kind])
    changes = diff(CHANGE_COUNTERS[kind])
    throttled = diff(["throttled"])
    return total, changes, total - changes, throttled


def directory(path, users):
    ids = [f"u{i}" for i in range(users)]
    doc = {"users": [{"id": f"u{i}", "email": f"user{i:06d}@example.com"} for i in range(users)],
           "groups": [{"id": "ga", "name": "Everyone A", "members": ids},
                      {"id": "gb", "name": "Everyone B", "members": ids}]}
    with open(path, "w") as f:
        json.dump(doc, f)


def config(path, store, both):
    mappings = [("Everyone A", "Team A")] + ([("Everyone B", "Team B")] if both else [])
    text = ('[daemon]\nstate = "state/stores.db"\n\n[safety]\nmax_removals = 100000000\nmax_removal_ratio = 1.0\n\n'
            f'[store]\n{store}\n\n[[idp]]\nname = "corp"\nkind = "file"\npath = "directory.json"\n')
    for group in ("Team A", "Team B"):
        text += f'\n[[group]]\nname = "{group}"\nstage = "production"\n'
    for idp_group, group in mappings:
        text += f'\n[[mapping]]\nidp = "corp"\nidp_group = "{idp_group}"\ngroup = "{group}"\nstage = "production"\n'
    with open(path, "w") as f:
        f.write(text)


def store_keys(kind, url, extra):
    if kind == "odc":
        return (f'kind = "odc"\nportal_url = "{url}"\nclient_id = "bench"\nclient_secret_file = "odc.secret"\n'
                f'stages = {{ production = "{extra}" }}\nrate_limit = 100\nrate_window = "1s"')
    if kind == "scim":
        return f'kind = "scim"\nurl = "{url}"\ntoken_file = "scim.token"\nstages = ["production"]\nrate_limit = 1000000'
    return (f'kind = "jira"\nsite_url = "{url}"\nemail = "bench@example.com"\napi_token_file = "jira.token"\n'
            f'stages = ["production"]\nrate_limit = 1000\nrate_window = "1s"')


def run(binary, fake_server, work, timed, users=10_000):
    work = os.path.join(work, "stores")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    directory(os.path.join(work, "directory.json"), users)
    for name, secret in (("odc.secret", "bench-secret"), ("scim.token", "bench-token"), ("jira.token", "bench-token")):
        with open(os.path.join(work, name), "w") as f:
            f.write(secret)
    cfg = os.path.join(work, "stores.toml")
    state = os.path.join(work, "state")
    cmd = [binary, "--config", cfg, "-q", "reconcile", "--output", "json"]

    def two_runs(store):
        shutil.rmtree(state, ignore_errors=True)
        out = []
        for both in (False, True):
            config(cfg, store, both)
            code, wall, cpu, rss, stdout = timed(cmd, work)
            doc = json.loads(stdout) if stdout.strip() else {}
            out.append((code, wall, cpu, rss, doc.get("summary", {}).get("adds"), len(doc.get("unresolved_users", []))))
        return out

    floor = two_runs('kind = "embedded"')
    rows = []
    for kind in ("odc", "scim", "jira"):
        args = ["--users", users]
        if kind == "odc":
            args += ["--rate-limit", 100, "--window-ms", 1000]
        if kind == "jira":
            args += ["--rate-limit", 1000, "--window-ms", 1000]
        proc, url, extra = fake(fake_server, kind, *args)
        try:
            store = store_keys(kind, url, extra)
            shutil.rmtree(state, ignore_errors=True)
            for phase, both in (("cold", False), ("warm", True)):
                config(cfg, store, both)
                before = stats(url)
                code, wall, cpu, rss, stdout = timed(cmd, work)
                after = stats(url)
                doc = json.loads(stdout) if stdout.strip() else {}
                total, changes, lookups, throttled = counted(kind, before, after)
                adds = doc.get("summary", {}).get("adds")
                rows.append((kind, phase, code, wall, cpu, rss, adds, len(doc.get("unresolved_users", [])),
                             total, changes, lookups, throttled, after))
                print(f"{kind} {phase}: exit {code}, {wall:.2f}s, {total} requests ({changes} change, {lookups} lookups), "
                      f"{throttled} 429s", file=sys.stderr)
        finally:
            proc.stdin.close()
            proc.wait()

    lines = ["## Remote group stores (issue 14)", "",
             f"{users:,} membership adds per run to each fake store (`fake-server odc|scim|jira`, its own process), "
             "from a file IdP: **cold** is the first run (no user id cached), **warm** the next 10,000 adds into a "
             "second group with every user id cached. The floor is the same two runs into the embedded store alone "
             f"({floor[0][1]:.2f} s and {floor[1][1]:.2f} s). ODC's and Jira's limits are scaled 60x (see "
             "`scripts/bench_stores.py`).", "",
             "| store | run | exit | wall s | × floor | CPU s | peak RSS MB | adds | unresolved | requests | change requests "
             "| per change | lookups | 429s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, phase, code, wall, cpu, rss, adds, unresolved, total, changes, lookups, throttled, _ in rows:
        base = floor[0 if phase == "cold" else 1][1]
        per = changes / adds if adds else 0
        lines.append(f"| {kind} | {phase} | {code} | {wall:.2f} | {wall / base:.1f} | {cpu:.2f} | {rss:.0f} | {adds} | "
                     f"{unresolved} | {total} | {changes} | {per:.4f} | {lookups} | {throttled} |")
    odc = [r for r in rows if r[0] == "odc"]
    projected = ", ".join(f"{r[1]} {r[8]} requests = {r[8] * 0.6 / 60:.1f} min" for r in odc)
    lines += ["", f"ODC at its real 100 requests a minute (0.6 s a request): {projected}.",
              "SCIM's lookups are the user pages (100 users each) and one membership check per new (group, user) pair "
              "(`filter=id eq … and members eq …`: an AWS group lists no members, so that is how a member found "
              "there before idpsync is told apart); Jira's are one user search per user (cold) and the member pages.",
              ""]
    return "\n".join(lines)


def timed_here(cmd, cwd):
    out_path = os.path.join(cwd, "stdout.json")
    with open(out_path, "w") as out:
        proc = subprocess.run(["/usr/bin/time", "-v"] + cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE, text=True)
    with open(out_path) as f:
        stdout = f.read()
    field = lambda name: (re.search(re.escape(name) + r":\s*(.+)", proc.stderr) or [None, "0"])[1].strip()
    parts = [float(p) for p in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return proc.returncode, wall, cpu, int(field("Maximum resident set size (kbytes)")) / 1024, stdout


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    args = ap.parse_args()
    for what in (["--bin", "idpsync"], ["-p", "fakes", "--bin", "fake-server"]):
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", *what], cwd=ROOT, check=True)
    print(run(os.path.join(ROOT, "target/release/idpsync"), os.path.join(ROOT, "target/release/fake-server"),
              os.path.join(ROOT, "target/bench"), timed_here, args.users))
