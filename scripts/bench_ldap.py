"""The LDAP part of scripts/bench: idpsync reading a real OpenLDAP server against ldapsearch reading the same.

A throwaway slapd (mdb, syncprov for contextCSN) on a free loopback port is loaded with slapadd: USERS users and
GROUPS groupOfNames of MEMBERS members drawn from the seed, mapped one to one onto declared groups and applied once.
Then, each timed REPEAT times and reported at the median:
  - `idpsync -q reconcile --dry-run --full`: a full read and plan, nothing written;
  - `ldapsearch` paging through the same users and groups with the same attributes and page size (the floor);
  - `idpsync -q reconcile` on the unchanged directory (the contextCSN check answers "unchanged").
"""
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "bench-secret"
PAGE = 500


def tool(name):
    """The path of an OpenLDAP program, also where /usr/sbin is not on PATH."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def slapd_version(slapd):
    """`slapd 2.5.13` from `slapd -VV`."""
    text = subprocess.run([slapd, "-VV"], capture_output=True, text=True).stderr
    match = re.search(r"slapd ([0-9][0-9.]*)", text)
    return f"slapd {match.group(1)}" if match else "slapd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_ldif(path, users, groups, members, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Bench\ndc: example\n\n")
        for ou in ("people", "groups"):
            f.write(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n")
        for u in range(users):
            f.write(f"dn: uid=u{u:05d},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: u{u:05d}\n"
                    f"cn: User {u}\nsn: {u}\nmail: user{u:05d}@example.com\n\n")
        total = 0
        for g in range(groups):
            chosen = sorted(rng.sample(range(users), members))
            total += len(chosen)
            f.write(f"dn: cn=g{g:04d},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: g{g:04d}\n")
            f.writelines(f"member: uid=u{u:05d},ou=people,{SUFFIX}\n" for u in chosen)
            f.write("\n")
    return total


def slapd_conf(path, db):
    schema = "/etc/ldap/schema"
    with open(path, "w") as f:
        f.write("\n".join([
            *(f"include {schema}/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
            "modulepath /usr/lib/ldap", "moduleload back_mdb", "moduleload syncprov",
            "database mdb", "maxsize 1073741824", f'suffix "{SUFFIX}"', f'rootdn "{ROOT_DN}"', f"rootpw {ROOT_PW}",
            f"directory {db}", "index objectClass eq", "overlay syncprov", ""]))


def write_config(path, port, groups):
    lines = ['[daemon]', 'state = "state/ldap.db"', '', '[safety]', 'max_removals = 100000000',
             'max_removal_ratio = 1.0', '', '[[idp]]', 'name = "dir"', 'kind = "ldap"',
             f'url = "ldap://127.0.0.1:{port}"', f'bind_dn = "{ROOT_DN}"', 'bind_password_file = "ldap.password"',
             f'base_dn = "{SUFFIX}"', f'user_base_dn = "ou=people,{SUFFIX}"', f'group_base_dn = "ou=groups,{SUFFIX}"',
             f'page_size = {PAGE}', '']
    for g in range(groups):
        lines += ['[[group]]', f'name = "Team {g}"', 'stage = "production"', '',
                  '[[mapping]]', 'idp = "dir"', f'idp_group = "g{g:04d}"', f'group = "Team {g}"', 'stage = "production"', '']
    with open(path, "w") as f:
        f.write("\n".join(lines))


def wall(cmd, cwd, repeat):
    """Median wall seconds of `cmd` over `repeat` runs (standard output discarded); fails on a non-zero exit."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def run(binary, work, users=10_000, groups=1_000, members=100, seed=42, repeat=3):
    """Runs the LDAP benchmark; returns the Markdown section for BENCHMARKS.md (or why it was skipped)."""
    slapd, slapadd, ldapsearch = tool("slapd"), tool("slapadd"), tool("ldapsearch")
    if not (slapd and slapadd and ldapsearch):
        return "## LDAP\n\nSkipped: slapd, slapadd or ldapsearch is missing (scripts/test installs them).\n"
    base = tempfile.mkdtemp(prefix="ldap-", dir=work)
    db = os.path.join(base, "db")
    os.makedirs(db)
    ldif, conf = os.path.join(base, "bench.ldif"), os.path.join(base, "slapd.conf")
    total = write_ldif(ldif, users, groups, members, seed)
    slapd_conf(conf, db)
    started = time.perf_counter()
    subprocess.run([slapadd, "-q", "-w", "-f", conf, "-l", ldif], check=True, capture_output=True)
    loaded = time.perf_counter() - started
    port = free_port()
    server = subprocess.Popen([slapd, "-f", conf, "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        search = [ldapsearch, "-x", "-LLL", "-H", f"ldap://127.0.0.1:{port}", "-D", ROOT_DN, "-w", ROOT_PW,
                  "-E", f"pr={PAGE}/noprompt"]
        for _ in range(200):
            if subprocess.run(search + ["-b", SUFFIX, "-s", "base", "dn"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        with open(os.path.join(base, "ldap.password"), "w") as f:
            f.write(ROOT_PW)
        config = os.path.join(base, "idpsync.toml")
        write_config(config, port, groups)
        idpsync = [binary, "--config", config, "-q", "reconcile"]
        first, _ = wall(idpsync, base, 1)
        dry_full, dry_runs = wall(idpsync + ["--dry-run", "--full"], base, repeat)
        users_search = search + ["-b", f"ou=people,{SUFFIX}", "(objectClass=inetOrgPerson)", "mail", "entryUUID", "uid"]
        groups_search = search + ["-b", f"ou=groups,{SUFFIX}",
                                  "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
                                  "cn", "member", "uniqueMember", "memberUid"]
        floor_runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            for cmd in (users_search, groups_search):
                subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            floor_runs.append(time.perf_counter() - started)
        floor = statistics.median(floor_runs)
        unchanged, unchanged_runs = wall(idpsync, base, repeat)
    finally:
        server.kill()
        server.wait()
    ratio = dry_full / floor
    print(f"ldap: first apply {first:.2f}s, dry run --full {dry_full:.2f}s, ldapsearch {floor:.2f}s "
          f"(ratio {ratio:.2f}), unchanged {unchanged:.2f}s", file=sys.stderr)
    fmt = lambda runs: " ".join(f"{t:.2f}" for t in runs)
    return "\n".join([
        "## LDAP (OpenLDAP)", "",
        f"A throwaway {slapd_version(slapd)} "
        f"on loopback, loaded with slapadd in {loaded:.1f} s: {users:,} users, {groups:,} groupOfNames, {total:,} memberships "
        f"(seed {seed}), mapped one to one onto declared groups; page size {PAGE}, bound as the root DN. "
        f"Median of {repeat} runs.", "",
        "| measurement | wall s | all runs s |", "|---|---|---|",
        f"| first `idpsync reconcile` (read and apply {total:,} adds) | {first:.2f} | {first:.2f} |",
        f"| `idpsync -q reconcile --dry-run --full` | {dry_full:.2f} | {fmt(dry_runs)} |",
        f"| `ldapsearch` paging through the same users and groups (the floor) | {floor:.2f} | {fmt(floor_runs)} |",
        f"| **ratio, dry run ÷ ldapsearch** | **{ratio:.2f} ×** | |",
        f"| `idpsync -q reconcile` on the unchanged directory (contextCSN check) | {unchanged:.2f} | {fmt(unchanged_runs)} |",
        ""])
