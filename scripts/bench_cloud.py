"""The cloud part of scripts/bench: idpsync reading the fake Microsoft Graph and the fake Okta of the `fakes` crate.

Graph: a fake tenant of USERS users and GROUPS groups with MEMBERSHIPS drawn memberships, every 100th group nesting the
next (`fakes::graph::Tenant::generate`), served by `fake-server graph` on loopback in its own process. The same
directory is written as a file export. Each timed REPEAT times, reported at the median:
  - `idpsync -q reconcile --dry-run --full` through the file IdP (the floor: the same directory, same process work
    after the read);
  - the same through the `azure_ad` IdP (nested = true: /transitiveMembers, $top=999, max_concurrency 4).
idpsync's own CPU (user + system, from /usr/bin/time; the fake is another process) per membership read, the ratio of
the two, and the requests the fake counted against Σ ceil(transitive members / 999) + group pages.

Okta: a fake org of OKTA_USERS users and OKTA_GROUPS groups limited to 600 requests a minute, read once with
rate_limit_share = 0.5: requests, wall time, the busiest minute and the 429s the fake sent.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.request

SEED = 42


def fake(binary, kind, *args):
    proc = subprocess.Popen([binary, kind, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit(f"fake-server {kind} did not start: {url!r}")
    return proc, url


def stats(url):
    with urllib.request.urlopen(f"{url}/_fake/stats") as r:
        return json.load(r)


def transitive_pages(export, page=999):
    """Σ ceil(listed / page) over every group, listing as /transitiveMembers does: users and nested groups, each once."""
    by_id = {g["id"]: g for g in export["groups"]}
    total = memberships = 0
    for g in export["groups"]:
        seen, queue, listed, users = {g["id"]}, [g], set(), set()
        while queue:
            for m in queue.pop()["members"]:
                if m in by_id:
                    if m not in seen:
                        seen.add(m)
                        queue.append(by_id[m])
                        listed.add(m)
                else:
                    listed.add(m)
                    users.add(m)
        total += max(1, math.ceil(len(listed) / page))
        memberships += len(users)
    return total, memberships


def instructions(cmd, cwd):
    """Instructions idpsync executes (callgrind), which unlike seconds do not vary with the machine's load."""
    if not shutil.which("valgrind"):
        return None
    out = os.path.join(cwd, "callgrind.out")
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd, cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.search(r"Collected : (\d+)", proc.stderr)
    return int(m.group(1)) if m else None


def config(path, idp):
    with open(path, "w") as f:
        f.write('[daemon]\nstate = "state/cloud.db"\n\n[[idp]]\nname = "corp"\n' + idp)


def run(binary, fake_server, work, timed, repeat, users=50_000, groups=5_000, memberships=500_000,
        okta_users=20_000, okta_groups=2_000, okta_memberships=100_000):
    work = os.path.join(work, "cloud")
    os.makedirs(work, exist_ok=True)
    export_path = os.path.join(work, "tenant.json")
    proc, url = fake(fake_server, "graph", "--users", users, "--groups", groups, "--memberships", memberships,
                     "--seed", SEED, "--export", export_path)
    try:
        with open(export_path) as f:
            export = json.load(f)
        expected_members, read_memberships = transitive_pages(export)
        expected = expected_members + math.ceil(groups / 999)
        with open(os.path.join(work, "secret"), "w") as f:
            f.write("bench-secret")
        file_cfg, graph_cfg = os.path.join(work, "file.toml"), os.path.join(work, "graph.toml")
        config(file_cfg, 'kind = "file"\npath = "tenant.json"\nnested = true\n')
        config(graph_cfg, f'kind = "azure_ad"\ntenant_id = "bench-tenant"\nclient_id = "bench-client"\n'
                          f'client_secret_file = "secret"\nauthority_url = "{url}"\ngraph_url = "{url}"\nnested = true\n')
        results = {"file": [], "graph": []}
        requests = []
        for _ in range(repeat):
            for name, cfg in (("file", file_cfg), ("graph", graph_cfg)):
                before = stats(url)["requests"]
                code, wall, cpu, rss, _ = timed([binary, "--config", cfg, "-q", "reconcile", "--dry-run", "--full",
                                                 "--output", "json"], work)
                if code != 0:
                    raise SystemExit(f"{name} read failed with exit {code}")
                results[name].append((wall, cpu, rss))
                if name == "graph":
                    requests.append(stats(url)["requests"] - before)
        dry = ["-q", "reconcile", "--dry-run", "--full", "--output", "json"]
        file_ir = instructions([binary, "--config", file_cfg] + dry, work)
        graph_ir = instructions([binary, "--config", graph_cfg] + dry, work)
        s = stats(url)
    finally:
        proc.stdin.close()
        proc.wait()

    def median(rows):
        return sorted(rows)[len(rows) // 2]
    fw, fc, fr = median(results["file"])
    gw, gc, gr = median(results["graph"])
    made = median(requests)
    member_requests = made - 1 - math.ceil(groups / 999)  # one token, the group pages
    per_file, per_graph = fc / read_memberships * 1e6, gc / read_memberships * 1e6
    print(f"graph: {gw:.2f}s wall, {gc:.2f}s CPU, {made} requests (expected {expected} + 1 token); "
          f"file: {fw:.2f}s wall, {fc:.2f}s CPU", file=sys.stderr)

    # Okta, once: about 2,010 requests at 300 a minute take some minutes.
    proc, url = fake(fake_server, "okta", "--users", okta_users, "--groups", okta_groups, "--memberships",
                     okta_memberships, "--seed", SEED, "--rate-limit", 600)
    try:
        with open(os.path.join(work, "okta.token"), "w") as f:
            f.write("bench-token")
        okta_cfg = os.path.join(work, "okta.toml")
        config(okta_cfg, f'kind = "okta"\norg_url = "{url}"\napi_token_file = "okta.token"\nrate_limit_share = 0.5\n')
        code, ow, oc, orss, _ = timed([binary, "--config", okta_cfg, "-q", "reconcile", "--dry-run", "--output", "json"],
                                      work)
        o = stats(url)
    finally:
        proc.stdin.close()
        proc.wait()
    okta_expected = math.ceil(okta_groups / 200) + okta_groups
    print(f"okta: exit {code}, {ow:.1f}s wall, {o['requests']} requests, {o['throttled']} 429s", file=sys.stderr)

    return "\n".join([
        "## Entra ID (fake Microsoft Graph)",
        "",
        f"A fake tenant (`fake-server graph`, its own process on loopback) of {users:,} users and {groups:,} groups: "
        f"{memberships:,} memberships drawn (seed {SEED}), every 100th group nesting the next, "
        f"{read_memberships:,} memberships once nesting is expanded. The same directory as a file export, read through "
        f"the file IdP, is the floor. `idpsync -q reconcile --dry-run --full`, median of {repeat}; CPU is idpsync's own "
        "(user + system).",
        "",
        "| read | wall s | idpsync CPU s | CPU µs per membership | peak RSS MB | requests |",
        "|---|---|---|---|---|---|",
        f"| file IdP, same directory | {fw:.2f} | {fc:.2f} | {per_file:.2f} | {fr:.0f} | — |",
        f"| azure_ad, /transitiveMembers | {gw:.2f} | {gc:.2f} | {per_graph:.2f} | {gr:.0f} | {made} |",
        f"| **CPU ratio, azure_ad ÷ file** | | **{gc / fc:.2f} ×** | | | |",
        "",
        (f"Instructions (callgrind, one run each, independent of the machine's load): file IdP {file_ir:,}, azure_ad "
         f"{graph_ir:,} — **{graph_ir / file_ir:.2f} ×**, {graph_ir / read_memberships:,.0f} against "
         f"{file_ir / read_memberships:,.0f} per membership."
         if file_ir and graph_ir else "Instructions: valgrind is not installed."),
        "",
        f"Requests: 1 token, {math.ceil(groups / 999)} group pages and {member_requests:,} member pages; "
        f"Σ ceil(transitive members / 999) is {expected_members:,}, so member requests are "
        f"{(member_requests - expected_members) / expected_members * 100:+.2f} % off it. No per-user request is made "
        f"(the fake serves none). Throttled by the fake: {s['throttled']}.",
        "",
        "## Okta (fake org, 600 requests a minute)",
        "",
        f"A fake org (`fake-server okta`) of {okta_users:,} users and {okta_groups:,} groups, {okta_memberships:,} "
        f"memberships drawn (seed {SEED}), limited to 600 requests per one-minute window. One "
        "`idpsync -q reconcile --dry-run` with `rate_limit_share = 0.5`.",
        "",
        "| exit | wall s | idpsync CPU s | requests | expected (group pages + one page per group) | busiest minute | 429s received |",
        "|---|---|---|---|---|---|---|",
        f"| {code} | {ow:.1f} | {oc:.2f} | {o['requests']} | {okta_expected} | {o['busiest_window']} | {o['throttled']} |",
        "",
        f"The wall time is the budget at work: at most 300 of each window's 600 requests are ours, so "
        f"{o['requests']:,} requests need {math.ceil(o['requests'] / 300)} windows (the first is entered partway).",
        "",
    ])
