#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""`make bench`: measure tfe.audit against the in-process emulator and write docs/PERFORMANCE.md + the chart.

Not a test: nothing here asserts a wall-clock number. Every timing is the median of interleaved runs
(A, B, A, B, ...) and is reported as a ratio against the baseline next to it, because the machine is
shared and noisy. Request counts are exact (bench/request_counts.py, also `make bench-smoke`).
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import harness
import request_counts

ROOT = harness.ROOT
ADMIN = "admin-bench-token"
TOKEN_PATH = "/api/v2/organizations/%s/authentication-token?token=audit-trails"
LOADS = []


def load(label):
    LOADS.append((label, os.getloadavg()))
    print("[bench] %s (load %.2f %.2f %.2f)" % ((label,) + os.getloadavg()), flush=True)


def median(values):
    return statistics.median(values) if values else float("nan")


# -- request counts --------------------------------------------------------------------------------

def bench_requests(ws):
    load("request counts")
    counts, dummy = request_counts.measure(ws, ADMIN)
    return {op: counts[op] for op in request_counts.OPERATIONS}


# -- task time -------------------------------------------------------------------------------------

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
{tasks}"""


def module_task(name, org, url, extra=""):
    return """
    - name: "{name}"
      tfe.audit.tfe_audit_trail_token:
        organization: {org}
        hostname: "{url}"{extra}
      register: result
""".format(name=name, org=org, url=url, extra=extra)


def uri_get_task(name, org, url, status="200"):
    return """
    - name: "{name}"
      ansible.builtin.uri:
        url: "{url}{path}"
        headers:
          Authorization: "Bearer {token}"
          Accept: application/vnd.api+json
        status_code: [{status}]
      register: current
""".format(name=name, url=url, path=TOKEN_PATH % org, token=ADMIN, status=status)


def uri_recipe(prefix, org, url):
    """What a user writes without the collection: GET, POST on 404, set_fact."""
    return uri_get_task(prefix + "get", org, url, "200, 404") + """
    - name: "{prefix}post"
      ansible.builtin.uri:
        url: "{url}{path}"
        method: POST
        headers:
          Authorization: "Bearer {token}"
          Content-Type: application/vnd.api+json
        body: '{{"data": {{"type": "authentication-token", "attributes": {{}}}}}}'
        body_format: raw
        status_code: [200, 201]
      register: created
      when: current.status == 404
      no_log: true

    - name: "{prefix}fact"
      ansible.builtin.set_fact:
        audit_token: "{{{{ created.json.data.attributes.token if created is not skipped else '' }}}}"
        audit_token_id: "{{{{ created.json.data.id if created is not skipped else current.json.data.id }}}}"
      no_log: true
""".format(prefix=prefix, url=url, path=TOKEN_PATH % org, token=ADMIN)


def bench_task_time(ws, emu, reps, n):
    load("task time")
    emu.add_organization("tt", entitlement=True)
    emu.regenerate_audit_trail_token("tt")
    books = {
        "module": PLAY.format(tasks="".join(module_task("t-%d" % i, "tt", emu.url) for i in range(n))),
        "uri": PLAY.format(tasks="".join(uri_get_task("t-%d" % i, "tt", emu.url) for i in range(n))),
    }
    env = {"TFE_TOKEN": ADMIN}
    per_rep = {"module": [], "uri": [], "module_cpu": [], "uri_cpu": []}
    for rep in range(reps):
        for kind in (("module", "uri") if rep % 2 == 0 else ("uri", "module")):
            result = ws.run_playbook(books[kind], env=env)
            spans = result.spans("t-")
            per_rep[kind].append(median(spans[1:]))  # the first task also builds the AnsiballZ payload
            per_rep[kind + "_cpu"].append(result.cpu / n)  # start-up included: the same for both
    return per_rep


# -- create path -----------------------------------------------------------------------------------

def bench_create(ws, emu, reps, n):
    load("create path")
    env = {"TFE_TOKEN": ADMIN}
    per_rep = {"module": [], "uri": [], "module_cpu": [], "uri_cpu": []}
    for rep in range(reps):
        for kind in (("module", "uri") if rep % 2 == 0 else ("uri", "module")):
            tasks = []
            for i in range(n):
                org = "c-%s-%d-%d" % (kind, rep, i)
                emu.add_organization(org, entitlement=True)
                prefix = "c-%d-" % i
                tasks.append(module_task(prefix + "module", org, emu.url) if kind == "module"
                             else uri_recipe(prefix, org, emu.url))
            result = ws.run_playbook(PLAY.format(tasks="".join(tasks)), env=env)
            ops = [sum(result.spans("c-%d-" % i)) for i in range(1, n)]  # op 0 warms up
            per_rep[kind].append(median(ops))
            per_rep[kind + "_cpu"].append(result.cpu / n)
            for i in range(n):
                assert emu.audit_trail_token("c-%s-%d-%d" % (kind, rep, i)), "no token created"
    return per_rep


# -- fleet -----------------------------------------------------------------------------------------

FLEET_ROLE = """
- hosts: all
  gather_facts: false
  roles:
    - role: tfe.audit.audit_trail_token
      audit_trail_token_organization: "{{{{ inventory_hostname }}}}"
      audit_trail_token_hostname: "{url}"
      audit_trail_token_vault_file: "{vault_dir}/{{{{ inventory_hostname }}}}.vault.yml"
"""


def fleet_uri(url):
    """The create-path recipe, with the organization taken from the inventory host."""
    return PLAY.replace("localhost", "all").format(tasks=uri_recipe("", "{{ inventory_hostname }}", url))


def bench_fleet(ws, emu, sizes, reps_for, forks):
    results = []  # dicts: kind, n, phase, seconds
    for n in sizes:
        for rep in range(reps_for(n)):
            load("fleet N=%d rep %d" % (n, rep + 1))
            for kind in (("role", "uri") if rep % 2 == 0 else ("uri", "role")):
                orgs = ["f-%s-%d-%d-%d" % (kind, n, rep, i) for i in range(n)]
                for org in orgs:
                    emu.add_organization(org, entitlement=True)
                inventory = ws.path("work", "fleet-%s-%d-%d.yml" % (kind, n, rep))
                inventory.write_text(json.dumps({"all": {
                    "hosts": {org: {} for org in orgs},
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
                vault_dir = ws.path("vaults-%s-%d-%d" % (kind, n, rep))
                vault_dir.mkdir()
                book = (FLEET_ROLE.format(url=emu.url, vault_dir=vault_dir) if kind == "role"
                        else fleet_uri(emu.url))
                args = ["-f", str(forks), "--vault-password-file", str(ws.password_file)]
                for phase in ("first", "idempotent"):
                    result = ws.run_playbook(book, args=args, env={"TFE_TOKEN": ADMIN}, inventory=str(inventory))
                    results.append(dict(kind=kind, n=n, rep=rep, phase=phase, seconds=result.wall))
                    print("[bench]   %s %s N=%d: %.1f s" % (kind, phase, n, result.wall), flush=True)
                missing = [org for org in orgs if not emu.audit_trail_token(org)]
                assert not missing, "fleet left organizations without a token: %s" % missing[:5]
                if kind == "role":
                    assert len(list(vault_dir.glob("*.vault.yml"))) == n, "not every vault file was written"
    return results


def fit(points):
    """Least squares seconds = intercept + slope * n."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if len(set(xs)) < 2:
        return float("nan"), float("nan")
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


# -- events export ---------------------------------------------------------------------------------

EVENTS_BOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: "export"
      tfe.audit.tfe_audit_trail_events:
        hostname: "{url}"
        token: "{token}"
        dest: "{dest}"
        cursor_file: "{cursor}"
      vars:
        ansible_python_interpreter: "{wrapper}"
      register: exported
      no_log: true
"""


def make_wrapper(ws, log):
    wrapper = ws.path("rsswrap.sh")
    wrapper.write_text("#!/bin/sh\nBENCH_RSS_LOG='%s' BENCH_RSS_PYTHON='%s' exec '%s' '%s' \"$@\"\n"
                       % (log, sys.executable, sys.executable, harness.BENCH / "rsswrap.py"))
    wrapper.chmod(0o755)
    return wrapper


def last_line(path):
    return json.loads(Path(path).read_text().splitlines()[-1])


ORDERS = ("newest", "oldest")
# The report's sections, in its order (--only takes these names).
SECTIONS = ("requests", "task_time", "create", "fleet", "events", "eda")


def sorted_digest(path):
    """SHA-256 of the file's lines in sorted order: the same events, whatever order they were written in."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for line in sorted(handle):
            digest.update(line)
    return digest.hexdigest()


def bench_events(ws, emu, counts, reps, orders=ORDERS):
    """Both listing orders the API may use (its documents do not say): {order: {count: {kind: [rows]}}}."""
    log = ws.path("rss.jsonl")
    wrapper = make_wrapper(ws, log)
    out = {}
    for order in orders:
        emu.set_listing(order=order)
        out[order] = {}
        for count in counts:
            load("events export %d, %s first" % (count, order))
            org = "ev-%s-%d" % (order, count)
            emu.add_organization(org, entitlement=True)
            secret = emu.regenerate_audit_trail_token(org)["token"]
            emu.seed_events(org, count=count, step_seconds=1.0)
            total = len(emu._orgs[org].events)  # pylint: disable=protected-access  # + the token's own event
            rows = {"module": [], "floor": []}
            digests = set()
            for rep in range(reps):
                for kind in (("module", "floor") if rep % 2 == 0 else ("floor", "module")):
                    dest = ws.path("events-%s-%s-%d-%d.ndjson" % (order, kind, count, rep))
                    if kind == "module":
                        book = EVENTS_BOOK.format(url=emu.url, token=secret, dest=dest, wrapper=wrapper,
                                                  cursor=ws.path("cursor-%s-%d-%d.json" % (order, count, rep)))
                        ws.run_playbook(book)
                        times = [json.loads(line)["timestamp"] for line in open(dest, "rb")]
                        assert times == sorted(times), "the module did not write in time order"
                    else:
                        subprocess.run([str(wrapper), str(harness.BENCH / "floor_export.py"), emu.url, secret,
                                        str(dest)], check=True, capture_output=True, timeout=3600)
                    row = last_line(log)
                    row["argv"] = [Path(row["argv"][0]).name]  # no temp paths or tokens in the results
                    lines = sum(1 for dummy in open(dest, "rb"))
                    assert lines == total, "%s wrote %d events, expected %d" % (kind, lines, total)
                    digests.add(sorted_digest(dest))
                    dest.unlink()
                    rows[kind].append(row)
            assert len(digests) == 1, "the module and the floor did not write the same events"
            out[order][count] = rows
    emu.set_listing(order="newest")
    return out


# -- Event-Driven Ansible --------------------------------------------------------------------------

EDA_INTERVAL = 2
EDA_RULEBOOK = """
- name: bench
  hosts: localhost
  sources:
    - name: source
      {source}
  rules:
    - name: fired
      condition: {condition}
      action:
        debug:
          msg: "FIRED {{{{ {field} }}}}"
"""
EDA_INVENTORY = "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"


def rulebook_bin():
    """ansible-rulebook of .venv-eda (`make eda` creates it), with ansible-galaxy beside it; None when missing."""
    path = ROOT / ".venv-eda" / "bin" / "ansible-rulebook"
    return path if path.exists() else None


class EdaRun:
    """One ansible-rulebook process whose rule prints ``FIRED <value>``; fired() reads the debug banners' times."""

    def __init__(self, ws, name, source, condition, field):
        self.dir = ws.path("eda", name)
        self.dir.mkdir(parents=True)
        (self.dir / "rulebook.yml").write_text(EDA_RULEBOOK.format(source=source, condition=condition, field=field))
        (self.dir / "inventory.yml").write_text(EDA_INVENTORY)
        self.out = self.dir / "out.txt"
        binary = rulebook_bin()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "TFE_"))}
        env.update(PATH="%s:%s" % (binary.parent, env.get("PATH", "")), PYTHONUNBUFFERED="1", HOME=str(self.dir),
                   ANSIBLE_COLLECTIONS_PATH=str(ws.path("collections")))
        self.started = time.time()
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen([str(binary), "-r", "rulebook.yml", "-i", "inventory.yml"], cwd=str(self.dir),
                                         env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def fired(self):
        found, when = [], None
        for line in self.out.read_text(errors="replace").splitlines():
            if line.startswith("** ") and line.rstrip("*").endswith("[debug] "):
                when = datetime.datetime.strptime(line[3:29], "%Y-%m-%d %H:%M:%S.%f").timestamp()
            elif line.startswith("FIRED "):
                found.append((when, line[6:]))
        return found

    def wait(self, count, timeout):
        deadline = time.monotonic() + timeout
        while True:
            fired = self.fired()
            if len(fired) >= count:
                return fired
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ansible-rulebook: %d of %d rules fired\n%s" % (
                    len(fired), count, self.out.read_text(errors="replace")[-3000:]))
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(60)


def audit_source(ws, emu, org, **extra):
    """The source's rulebook line for an organization of the emulator, reading its own token file."""
    token = ws.path("eda", "%s.token" % org)
    token.parent.mkdir(exist_ok=True)
    token.write_text(emu.regenerate_audit_trail_token(org)["token"])
    args = dict(hostname=emu.url, token_file=str(token), interval=EDA_INTERVAL)
    args.update(extra)
    return "tfe.audit.audit_trail: %s" % json.dumps(args)


def bench_eda(ws, emu, samples, backlog, orders=ORDERS):
    """Creation-to-rule delay at interval 2 s, and a backlog through the engine; in both listing orders."""
    out = {"interval": EDA_INTERVAL, "backlog": backlog, "latency": {}, "throughput": {}}
    for order in orders:
        emu.set_listing(order=order)
        load("EDA delay, %s first" % order)
        org = "eda-delay-" + order
        emu.add_organization(org, entitlement=True)
        run = EdaRun(ws, "delay-" + order, audit_source(ws, emu, org), "event.tfe_audit is defined",
                     "event.tfe_audit.id")
        try:
            run.wait(1, 120)  # the token's own creation: the source is polling
            delays = []
            for number in range(samples):
                time.sleep(random.uniform(0, EDA_INTERVAL))  # any phase of the polling cycle
                created = time.time()
                emu.seed_events(org, count=1, step_seconds=0.001)
                delays.append(run.wait(number + 2, 30)[-1][0] - created)
        finally:
            run.stop()
        out["latency"][order] = delays

        load("EDA backlog of %d, %s first" % (backlog, order))
        org = "eda-backlog-" + order
        emu.add_organization(org, entitlement=True)
        source = audit_source(ws, emu, org)
        emu.seed_events(org, count=backlog, step_seconds=0.01)
        run = EdaRun(ws, "backlog-" + order, source, "event.tfe_audit is defined", "event.tfe_audit.id")
        try:
            fired = run.wait(backlog + 1, 1800)
        finally:
            run.stop()
        out["throughput"][order] = {"events": len(fired), "first": fired[0][0] - run.started,
                                    "last": fired[-1][0] - run.started}
    load("EDA floor: eda.builtin.range")
    run = EdaRun(ws, "floor", "eda.builtin.range: {limit: %d}" % (backlog + 1), "event.i is defined", "event.i")
    try:
        fired = run.wait(backlog + 1, 1800)
    finally:
        run.stop()
    out["floor"] = {"events": len(fired), "first": fired[0][0] - run.started, "last": fired[-1][0] - run.started}
    emu.set_listing(order="newest")
    return out


def eda_lines(eda):
    interval, target = eda["interval"], eda["interval"] + 1
    lines = ["", "## Event-Driven Ansible: the event source `tfe.audit.audit_trail` in `ansible-rulebook`", "",
             "Real `ansible-rulebook` runs (`.venv-eda`: its Drools engine on a Java 17 runtime) with one rule, `debug` "
             "of the event's id; the time a rule fired is the `debug` banner's. **Delay**: events created one at a time "
             "at a random moment of the polling cycle (`interval: %d`), from the emulator call that creates one to its "
             "rule firing. **Backlog**: %d seeded events (plus the token's own) read and emitted from a cold start, "
             "oldest first; the rate counts from the first rule firing to the last. The floor is ansible-rulebook's own "
             "`eda.builtin.range` source putting the same number of events through the same rule: what the engine "
             "itself costs." % (interval, eda["backlog"]), "",
             "| Listed | Samples | Delay median | p95 | max | target ≤ %d s |" % target, "|---|--:|--:|--:|--:|---|"]
    for order in sorted(eda["latency"]):
        delays = sorted(eda["latency"][order])
        p95 = delays[min(len(delays) - 1, int(round(0.95 * (len(delays) - 1))))]
        lines.append("| %s first | %d | %.2f s | %.2f s | %.2f s | %s |" % (
            order, len(delays), median(delays), p95, delays[-1], verdict(delays[-1] <= target)))
    floor = eda["floor"]
    floor_rate = (floor["events"] - 1) / (floor["last"] - floor["first"])
    lines += ["", "| Backlog | Listed | first rule after start | last rule after start | events/s through the engine "
              "| floor `eda.builtin.range` events/s | source / floor |", "|--:|---|--:|--:|--:|--:|--:|"]
    for order in sorted(eda["throughput"]):
        row = eda["throughput"][order]
        rate = (row["events"] - 1) / (row["last"] - row["first"])
        lines.append("| %d | %s first | %.1f s | %.1f s | %.0f | %.0f | %.2f |" % (
            row["events"], order, row["first"], row["last"], rate, floor_rate, rate / floor_rate))
    return lines


# -- report ----------------------------------------------------------------------------------------

def machine():
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("ansible-core", "requests", "urllib3"):
        try:
            from importlib.metadata import version  # pylint: disable=import-outside-toplevel
            versions[name] = version(name)
        except Exception:  # pylint: disable=broad-except
            versions[name] = "?"
    return dict(cores=os.cpu_count(), cpu=model, python=platform.python_version(), system=platform.platform(),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **versions)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def cpu_lines(per_rep, what):
    """CPU seconds of the whole ansible-playbook run / operations: a cross-check that load does not skew."""
    if not per_rep.get("module_cpu"):
        return []
    mod, uri = median(per_rep["module_cpu"]), median(per_rep["uri_cpu"])
    return ["", "Cross-check, less sensitive to other jobs on the machine: CPU seconds of the whole `ansible-playbook` "
            "run (controller, workers and module processes; start-up included, the same for both) per %s: module "
            "%.3f s, uri %.3f s, module / uri = %.2f." % (what, mod, uri, mod / uri)]


def render(data, args):
    m = data["machine"]
    lines = ["# Performance", "",
             "Generated by `make bench` (`bench/run.py%s`); do not edit by hand. Regenerate on a quiet machine."
             % ((" " + " ".join(args.argv)) if args.argv else ""), "",
             "Against the in-process API emulator (`tests/emulator/`, HTTP on loopback, rate limit off), with real "
             "`ansible-playbook` runs of the collection. Timings are medians of interleaved runs (A, B, A, B, ...) "
             "and are compared as ratios, because the machine is shared; request counts are exact. The benchmark "
             "is not a test: nothing asserts a wall-clock number (`make bench-smoke`, also run by `make system`, "
             "checks the request counts only).", "",
             "## Machine", "",
             "| | |", "|---|---|",
             "| Date | %s |" % m["date"],
             "| Collection | commit %s |" % m.get("commit", "?"),
             "| CPU | %s, %s cores |" % (m["cpu"], m["cores"]),
             "| System | %s |" % m["system"],
             "| Python | %s |" % m["python"],
             "| ansible-core | %s |" % m["ansible-core"],
             "| requests / urllib3 | %s / %s |" % (m["requests"], m["urllib3"]),
             "| Load average (1, 5, 15 min) at each step | %s |" % "; ".join(
                 "%s: %.2f %.2f %.2f" % ((label,) + tuple(avg)) for label, avg in data["loads"]),
             "| Duration of this run | %.0f s |" % data["duration"],
             ""]
    # 1
    lines += ["## HTTP requests per operation", "",
              "Counted in the emulator's request log, host `http://127.0.0.1:<port>` (not an HCP Terraform hostname, "
              "so every module run starts with the platform check `GET /api/v2/ping`). On `app.terraform.io` the "
              "platform is known without asking: the idempotent `present` is **1 request**, proven by the unit "
              "test `tests/unit/plugins/modules/test_tfe_audit_trail_token.py::"
              "test_idempotent_present_on_app_terraform_io_is_one_request`.", "",
              "| Operation | Target | Measured | Requests | |", "|---|--:|--:|---|---|"]
    for op, (what, target, dummy) in request_counts.OPERATIONS.items():
        reqs = data["requests"][op]
        target_text = "2 (1 on app.terraform.io)" if op == "idempotent_present" else "≤ %d" % target
        requests_text = "<br>".join("`%s`" % r for r in reqs)
        lines.append("| %s | %s | %d | %s | %s |" % (what, target_text, len(reqs), requests_text,
                                                     verdict(len(reqs) <= target)))
    # 2
    tt = data["task_time"]
    mod, uri = median(tt["module"]), median(tt["uri"])
    ratio = mod / uri
    lines += ["", "## Task time: idempotent `tfe_audit_trail_token` vs one `ansible.builtin.uri` GET", "",
              "A playbook of %d identical tasks on localhost; a task's time is the distance between consecutive task "
              "starts (bench/callback_plugins/bench_timer.py), the first task (which also builds the AnsiballZ "
              "payload) left out; median over the tasks of a run, then over %d interleaved runs. The module makes "
              "2 requests (ping + read) here, the `uri` task 1 (the read)." % (args.tasks, args.reps), "",
              "| | Per task (median) | Runs |", "|---|--:|---|",
              "| `tfe.audit.tfe_audit_trail_token` (idempotent) | %.3f s | %s |" % (mod, ", ".join("%.3f" % v for v in tt["module"])),
              "| `ansible.builtin.uri` GET | %.3f s | %s |" % (uri, ", ".join("%.3f" % v for v in tt["uri"])),
              "", "Ratio module / uri: **%.2f** (target ≤ 1.10): %s." % (ratio, verdict(ratio <= 1.10))]
    lines += cpu_lines(tt, "task")
    if data.get("profile"):
        lines += ["", "Where the module's process spends its time (`python -X importtime` of the module's AnsiballZ "
                  "payload, cumulative import time, the largest top-level imports):", "", "```", data["profile"], "```"]
    # 3
    cr = data["create"]
    mod, uri = median(cr["module"]), median(cr["uri"])
    speed = uri / mod
    lines += ["", "## Create path: the module vs the `uri` recipe", "",
              "Per organization without a token: one module task (ping, GET 404, POST) vs the recipe a user writes "
              "without the collection: `uri` GET (200/404), `uri` POST when 404, `set_fact` (3 tasks, 2 requests). "
              "Time from the start of the operation's first task to the start of the next operation; median over "
              "%d operations per run (the first left out), then over %d interleaved runs." % (args.create_n - 1, args.reps), "",
              "| | Per create (median) | Runs |", "|---|--:|---|",
              "| `tfe.audit.tfe_audit_trail_token` | %.3f s | %s |" % (mod, ", ".join("%.3f" % v for v in cr["module"])),
              "| `uri` recipe | %.3f s | %s |" % (uri, ", ".join("%.3f" % v for v in cr["uri"])),
              "", "The module is **%.2f×** faster (target ≥ 1.8×): %s." % (speed, verdict(speed >= 1.8))]
    lines += cpu_lines(cr, "create")
    # 4
    fl = data["fleet"]
    lines += ["", "## Fleet: N organizations, forks %d" % args.forks, "",
              "One inventory host per organization (`ansible_connection: local`), `ansible-playbook -f %d`. **role**: "
              "`tfe.audit.audit_trail_token`, Ansible Vault store, one vault file per organization in a temp dir, "
              "a vault password file (the first run creates and stores, the idempotent run reads, verifies the "
              "stored secret, writes nothing). **uri**: the recipe of section 3 as three tasks (it does not store "
              "the secret anywhere, so it does less than the role). Wall time of the whole `ansible-playbook` run "
              "(start-up included); median of the runs at each N (runs per N in the table)." % args.forks, "",
              "| N | Runs | role first | role idempotent | uri first | uri idempotent | role/uri first | role/uri idempotent |",
              "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    summary = {}
    for n in sorted({r["n"] for r in fl}):
        cell = {}
        for kind in ("role", "uri"):
            for phase in ("first", "idempotent"):
                vals = [r["seconds"] for r in fl if r["n"] == n and r["kind"] == kind and r["phase"] == phase]
                cell[(kind, phase)] = median(vals)
        summary[n] = cell
        runs = len([r for r in fl if r["n"] == n and r["kind"] == "role" and r["phase"] == "first"])
        lines.append("| %d | %d | %.1f s (%.3f s/org) | %.1f s (%.3f s/org) | %.1f s (%.3f s/org) | %.1f s (%.3f s/org) | %.2f | %.2f |" % (
            n, runs,
            cell[("role", "first")], cell[("role", "first")] / n, cell[("role", "idempotent")], cell[("role", "idempotent")] / n,
            cell[("uri", "first")], cell[("uri", "first")] / n, cell[("uri", "idempotent")], cell[("uri", "idempotent")] / n,
            cell[("role", "first")] / cell[("uri", "first")], cell[("role", "idempotent")] / cell[("uri", "idempotent")]))
    lines += ["", "Growth with N (least-squares fit of the medians, seconds = intercept + slope × N):", "",
              "| | slope (s per organization) | intercept (s) |", "|---|--:|--:|"]
    fits = {}
    for kind in ("role", "uri"):
        for phase in ("first", "idempotent"):
            slope, intercept = fit([(n, summary[n][(kind, phase)]) for n in summary])
            fits["%s %s" % (kind, phase)] = (slope, intercept)
            lines.append("| %s %s | %.3f | %.1f |" % (kind, phase, slope, intercept))
    data["fits"] = {k: list(v) for k, v in fits.items()}
    lines += ["", "![fleet time vs N](%s)" % Path(args.chart).name]
    # 5
    lines += ["", "## Events export to NDJSON: `tfe_audit_trail_events` vs a plain `requests` loop", "",
              "Seeded events (one second apart) exported with `dest` + `cursor_file` by the module in a real "
              "`ansible-playbook` run, vs `bench/floor_export.py` (a plain `requests` loop walking the same pages "
              "and writing the lines as they come: no sorting, no de-duplication, no cursor, no fsync, no crash "
              "safety). Both files hold the same events (checked by SHA-256 of the sorted lines); the module's are "
              "in time order. The emulator lists newest first and then oldest first (the API's documents do not "
              "say which it does). Time and peak RSS are those of the module process itself (AnsiballZ start-up "
              "included) and of the floor's process: both run through `bench/rsswrap.py`, which forks the "
              "interpreter and reads `os.wait4`'s `ru_maxrss`. Medians of %d interleaved runs." % args.events_reps]
    for order in sorted(data["events"]):
        lines += events_table(order, data["events"][order])
    if data.get("eda"):
        lines += eda_lines(data["eda"])
    lines += ["", "## Notes", "",
              "- The emulator runs in the benchmark's own process (a thread); on a %s-core machine it competes with "
              "`ansible-playbook` and its forks for CPU, which inflates every absolute number; the ratios are what "
              "to compare." % m["cores"],
              "- Load averages above show whether other jobs were running; numbers from a loaded machine are noisier.",
              ""]
    return "\n".join(lines)


def events_table(order, ev):
    lines = ["", "### Listed %s first" % order, "",
             "| Events | module | floor | module/floor rate | module peak RSS | floor peak RSS |",
             "|--:|--:|--:|--:|--:|--:|"]
    rss = {}
    for count in sorted(ev, key=int):
        rows = ev[count]
        ms, fs = median([r["seconds"] for r in rows["module"]]), median([r["seconds"] for r in rows["floor"]])
        mr, fr = median([r["maxrss_kib"] for r in rows["module"]]), median([r["maxrss_kib"] for r in rows["floor"]])
        rss[int(count)] = mr
        lines.append("| %d | %.2f s (%.0f events/s) | %.2f s (%.0f events/s) | **%.2f** | %.1f MiB | %.1f MiB |" % (
            int(count), ms, int(count) / ms, fs, int(count) / fs, fs / ms, mr / 1024, fr / 1024))
    counts = sorted(rss)
    if counts:
        big = counts[-1]
        rows = ev[big] if big in ev else ev[str(big)]
        rate = median([r["seconds"] for r in rows["floor"]]) / median([r["seconds"] for r in rows["module"]])
        lines += ["", "Rate at %d events, %s first: module / floor = **%.2f** (target ≥ 0.8): %s."
                  % (big, order, rate, verdict(rate >= 0.8))]
        if len(counts) > 1:
            growth = rss[big] / rss[counts[0]] - 1
            lines += ["Peak RSS %d vs %d events, %s first: %+.1f%% (target within 10%%): %s." % (
                big, counts[0], order, growth * 100, verdict(abs(growth) <= 0.10))]
    return lines


def profile_module(ws, emu):
    """-X importtime of one idempotent module run, summarised (top-level imports by cumulative time)."""
    log = ws.path("importtime.txt")
    wrapper = ws.path("importtime.sh")
    wrapper.write_text("#!/bin/sh\nexec '%s' -X importtime \"$@\" 2>>'%s'\n" % (sys.executable, log))
    wrapper.chmod(0o755)
    book = PLAY.format(tasks=module_task("p", "tt", emu.url).replace(
        "      register: result\n", "      register: result\n      vars:\n        ansible_python_interpreter: \"%s\"\n" % wrapper))
    ws.run_playbook(book, env={"TFE_TOKEN": ADMIN})
    rows = []
    for line in log.read_text().splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:"):].split("|")
        if not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if len(name) - len(name.lstrip()) == 1:  # top level (nested imports are indented further)
            rows.append((int(parts[1].strip()), name.strip()))
    rows.sort(reverse=True)
    total = sum(us for us, dummy in rows)
    text = ["%8.1f ms  %s" % (us / 1000, name) for us, name in rows[:15]]
    text.append("%8.1f ms  total of all top-level imports" % (total / 1000))
    return "\n".join(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small knobs, for development")
    parser.add_argument("--reps", type=int, default=6, help="interleaved runs for task_time and create (their runs swing by 20%% on a shared machine)")
    parser.add_argument("--tasks", type=int, default=20, help="identical tasks per playbook (task_time)")
    parser.add_argument("--create-n", type=int, default=10, help="creates per playbook (create)")
    parser.add_argument("--fleet", default="10,50,200", help="fleet sizes (fleet)")
    parser.add_argument("--fleet-reps", type=int, default=2, help="interleaved runs per fleet size up to 50")
    parser.add_argument("--fleet-reps-large", type=int, default=1, help="interleaved runs per fleet size above 50")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--events", default="10000,100000", help="seeded event counts (events)")
    parser.add_argument("--events-reps", type=int, default=3)
    parser.add_argument("--eda-samples", type=int, default=20, help="creation-to-rule delays measured (eda)")
    parser.add_argument("--eda-backlog", type=int, default=10000, help="backlog put through ansible-rulebook (eda)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run (the report needs all): %s" % ", ".join(SECTIONS))
    parser.add_argument("--worktree", action="store_true",
                        help="benchmark the checkout as it is (default: the HEAD commit, exported with git archive)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    parser.add_argument("--chart", default=str(ROOT / "docs" / "performance-fleet.png"))
    parser.add_argument("--chart-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "results.json"))
    parser.add_argument("--from-json", help="render the report from a saved results.json instead of measuring")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    args.argv = [a for a in args.argv if not a.startswith("--chart-python") and a != args.chart_python]
    if args.quick:
        args.reps, args.tasks, args.create_n = 2, 5, 4
        args.fleet, args.fleet_reps, args.fleet_reps_large = "4,8", 1, 1
        args.events, args.events_reps = "2000,10000", 1
        args.eda_samples, args.eda_backlog = 5, 2000
    if args.from_json:  # re-render a saved run (e.g. after changing the report's text)
        data = json.loads(Path(args.from_json).read_text())
        args.argv = data.get("argv", args.argv)
        for knob, value in data.get("knobs", {}).items():
            setattr(args, knob, value)
        report = render(data, args)
        subprocess.run([args.chart_python, str(harness.BENCH / "chart.py"), args.from_json, args.chart], check=True)
        Path(args.out).write_text(report)
        print("[bench] wrote %s and %s from %s" % (args.out, args.chart, args.from_json))
        return
    only = set(args.only.split(","))
    if "eda" in only and (rulebook_bin() is None or not shutil.which("java")):
        raise SystemExit("the eda section needs ansible-rulebook in .venv-eda and a Java 17 runtime: run `make eda` once "
                         "(it sets up both), or leave it out with --only %s" % ",".join(SECTIONS[:-1]))
    start = time.monotonic()
    data = {"machine": machine()}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "plugins", "roles", "meta"],
                           check=True, capture_output=True, text=True).stdout.strip()
    data["machine"]["commit"] = commit + (" (the checkout, with uncommitted changes)" if dirty and args.worktree
                                          else "" if args.worktree else " (committed tree, `git archive`)")
    with harness.Workspace(snapshot=None if args.worktree else commit) as ws, harness.emulator(ADMIN) as emu:
        if "requests" in only:
            data["requests"] = bench_requests(ws)
        if "task_time" in only:
            data["task_time"] = bench_task_time(ws, emu, args.reps, args.tasks)
            data["profile"] = profile_module(ws, emu)
        if "create" in only:
            data["create"] = bench_create(ws, emu, args.reps, args.create_n)
        if "fleet" in only:
            sizes = [int(n) for n in args.fleet.split(",")]
            data["fleet"] = bench_fleet(ws, emu, sizes, lambda n: args.fleet_reps if n <= 50 else args.fleet_reps_large,
                                        args.forks)
        if "events" in only:
            data["events"] = bench_events(ws, emu, [int(c) for c in args.events.split(",")], args.events_reps)
        if "eda" in only:
            data["eda"] = bench_eda(ws, emu, args.eda_samples, args.eda_backlog)
    load("done")
    data["loads"] = LOADS
    data["argv"] = args.argv
    data["knobs"] = {knob: getattr(args, knob) for knob in ("reps", "tasks", "create_n", "forks", "events_reps",
                                                            "eda_samples", "eda_backlog")}
    data["duration"] = time.monotonic() - start
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(data, indent=1, default=str))
    print("[bench] raw results: %s" % args.json)
    if only != set(SECTIONS):
        return
    report = render(data, args)
    Path(args.json).write_text(json.dumps(data, indent=1, default=str))
    subprocess.run([args.chart_python, str(harness.BENCH / "chart.py"), args.json, args.chart], check=True)
    Path(args.out).write_text(report)
    print("[bench] wrote %s and %s in %.0f s" % (args.out, args.chart, data["duration"]))


if __name__ == "__main__":
    main()
