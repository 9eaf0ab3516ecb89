# -*- coding: utf-8 -*-
"""The sections of docs/PERFORMANCE.md, each rendered from its stored results: ``render_<section>(data, knobs)``
returns the section's Markdown lines (its heading first). Nothing here measures."""

import statistics
from pathlib import Path

import request_counts
from harness import median


def verdict(ok):
    return "**met**" if ok else "**missed**"


def runs(values, digits=3):
    return ", ".join("%.*f" % (digits, value) for value in values)


def cpu_lines(per_rep, what):
    """CPU seconds of the whole ansible-playbook run / operations: a cross-check that load does not skew."""
    if not per_rep.get("module_cpu"):
        return []
    mod, uri = median(per_rep["module_cpu"]), median(per_rep["uri_cpu"])
    return ["", "Cross-check, less sensitive to other jobs on the machine: CPU seconds of the whole `ansible-playbook` "
            "run (controller, workers and module processes; start-up included, the same for both) per %s: module "
            "%.3f s, uri %.3f s, module / uri = %.2f." % (what, mod, uri, mod / uri)]


def module_vs_uri(data, heading, text, what, labels, outcome):
    """A section comparing the module with uri tasks: its text, the per-operation table, the outcome, the CPU
    cross-check."""
    lines = ["## " + heading, "", text, "", "| | Per %s (median) | Runs |" % what, "|---|--:|---|"]
    for kind, label in zip(("module", "uri"), labels):
        lines.append("| %s | %.3f s | %s |" % (label, median(data[kind]), runs(data[kind])))
    return lines + ["", outcome] + cpu_lines(data, what)


def render_requests(data, knobs):
    lines = ["## HTTP requests per operation", "",
             "Counted in the emulator's request log, host `http://127.0.0.1:<port>` (not an HCP Terraform hostname, "
             "so every module run starts with the platform check `GET /api/v2/ping`). On `app.terraform.io` the "
             "platform is known without asking: the idempotent `present` is **1 request**, proven by the unit "
             "test `tests/unit/plugins/modules/test_tfe_audit_trail_token.py::"
             "test_idempotent_present_on_app_terraform_io_is_one_request`.", "",
             "| Operation | Target | Measured | Requests | |", "|---|--:|--:|---|---|"]
    for op, (what, target, dummy) in request_counts.OPERATIONS.items():
        reqs = data[op]
        target_text = "2 (1 on app.terraform.io)" if op == "idempotent_present" else "≤ %d" % target
        lines.append("| %s | %s | %d | %s | %s |" % (what, target_text, len(reqs), "<br>".join("`%s`" % r for r in reqs),
                                                     verdict(len(reqs) <= target)))
    return lines


def render_task_time(data, knobs):
    ratio = median(data["module"]) / median(data["uri"])
    lines = module_vs_uri(
        data, "Task time: idempotent `tfe_audit_trail_token` vs one `ansible.builtin.uri` GET",
        "A playbook of %d identical tasks on localhost; a task's time is the distance between consecutive task "
        "starts (bench/callback_plugins/bench_timer.py), the first task (which also builds the AnsiballZ "
        "payload) left out; median over the tasks of a run, then over %d interleaved runs. The module makes "
        "2 requests (ping + read) here, the `uri` task 1 (the read)." % (knobs["tasks"], knobs["reps"]),
        "task", ("`tfe.audit.tfe_audit_trail_token` (idempotent)", "`ansible.builtin.uri` GET"),
        "Ratio module / uri: **%.2f** (target ≤ 1.10): %s." % (ratio, verdict(ratio <= 1.10)))
    if data.get("profile"):
        lines += ["", "Where the module's process spends its time (`python -X importtime` of the module's AnsiballZ "
                  "payload, cumulative import time, the largest top-level imports):", "", "```", data["profile"], "```"]
    return lines


def render_create(data, knobs):
    speed = median(data["uri"]) / median(data["module"])
    return module_vs_uri(
        data, "Create path: the module vs the `uri` recipe",
        "Per organization without a token: one module task (ping, GET 404, POST) vs the recipe a user writes "
        "without the collection: `uri` GET (200/404), `uri` POST when 404, `set_fact` (3 tasks, 2 requests). "
        "Time from the start of the operation's first task to the start of the next operation; median over "
        "%d operations per run (the first left out), then over %d interleaved runs."
        % (knobs["create_n"] - 1, knobs["reps"]),
        "create", ("`tfe.audit.tfe_audit_trail_token`", "`uri` recipe"),
        "The module is **%.2f×** faster (target ≥ 1.8×): %s." % (speed, verdict(speed >= 1.8)))


def token_row(row):
    cells = [row["label"], "`%s`" % row["commit"][:7] if row.get("commit") else "?", (row.get("date") or "?")[:10],
             "`%s`" % row["plugins"][:7] if row.get("plugins") else "?"]
    for phase in ("create", "idempotent"):
        cells += ["%.3f s" % median(row[phase]), "%.0f ms / %.0f ms" % (
            median(row[phase + "_process"]) * 1000, median(row[phase + "_cpu"]) * 1000)]
    cells.append("%s / %s" % (runs(row["create"]), runs(row["idempotent"])))
    return "| %s |" % " | ".join(cells)


def render_token_times(data, knobs):
    lines = ["## The token module per task: create and idempotent, side by side", "",
             "`tfe.audit.tfe_audit_trail_token` in real `ansible-playbook` runs, one collection per workspace, all "
             "against the same emulator. A rep is a playbook of %d module tasks on %d new organizations, run twice: "
             "the first run creates every token (ping, GET 404, POST), the second finds them (ping, GET 200) and "
             "changes nothing (checked). Per task: the distance between consecutive task starts, the first task left "
             "out; the module process's wall time and CPU seconds (user + system, through bench/rsswrap.py, which "
             "adds its fork to both); medians over the tasks of a run, then over %d interleaved reps. Measured %s."
             % (data["tasks"], data["tasks"], knobs["reps"], knobs["measured"]), "",
             "| Collection | Commit | Committed | `plugins/` tree | Create per task | Create: process wall / CPU "
             "| Idempotent per task | Idempotent: process wall / CPU | Runs (create / idempotent) |",
             "|---|---|---|---|--:|--:|--:|--:|---|"]
    lines += [token_row(row) for row in data["rows"]]
    lines += ["", "Collections: " + "; ".join("%s: %s" % (row["label"], row["what"]) for row in data["rows"]) + ". "
              "Rows with the same `plugins/` tree run the same module code: their difference is the noise of the "
              "machine."]
    if not any(row["label"] == "after" for row in data["rows"]):
        command = " ".join(["--only token_times"] + ["--collection '%s=%s'" % (row["label"], row["commit"][:7])
                                                     for row in data["rows"][1:] if row.get("commit")])
        lines += ["", "**After**: not measured yet. On the code to compare (e.g. main after the round of work), run "
                  "`nice -n 5 make bench BENCH_ARGS=\"%s --label after\"`: it measures that checkout as the row "
                  "`after`, side by side with the rows above, and rewrites this section." % command]
    return lines


def fleet_medians(rows):
    """{n: {(kind, phase): median seconds}} and {n: runs of the role's first run}."""
    summary, counts = {}, {}
    for n in sorted({r["n"] for r in rows}):
        summary[n] = {(kind, phase): median(r["seconds"] for r in rows if (r["n"], r["kind"], r["phase"]) == (n, kind, phase))
                      for kind in ("role", "uri") for phase in ("first", "idempotent")}
        counts[n] = len([r for r in rows if (r["n"], r["kind"], r["phase"]) == (n, "role", "first")])
    return summary, counts


def fit(points):
    """Least squares seconds = intercept + slope * n."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if len(set(xs)) < 2:
        return float("nan"), float("nan")
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def fleet_table(summary, counts):
    lines = ["| N | Runs | role first | role idempotent | uri first | uri idempotent | role/uri first | role/uri idempotent |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for n, cell in summary.items():
        times = ["%.1f s (%.3f s/org)" % (cell[key], cell[key] / n) for key in
                 (("role", "first"), ("role", "idempotent"), ("uri", "first"), ("uri", "idempotent"))]
        ratios = ["%.2f" % (cell[("role", phase)] / cell[("uri", phase)]) for phase in ("first", "idempotent")]
        lines.append("| %d | %d | %s |" % (n, counts[n], " | ".join(times + ratios)))
    return lines


def render_fleet(data, knobs):
    summary, counts = fleet_medians(data)
    lines = ["## Fleet: N organizations, forks %d" % knobs["forks"], "",
             "One inventory host per organization (`ansible_connection: local`), `ansible-playbook -f %d`. **role**: "
             "`tfe.audit.audit_trail_token`, Ansible Vault store, one vault file per organization in a temp dir, "
             "a vault password file (the first run creates and stores, the idempotent run reads, verifies the "
             "stored secret, writes nothing). **uri**: the recipe of section 3 as three tasks (it does not store "
             "the secret anywhere, so it does less than the role). Wall time of the whole `ansible-playbook` run "
             "(start-up included); median of the runs at each N (runs per N in the table)." % knobs["forks"], ""]
    lines += fleet_table(summary, counts)
    lines += ["", "Growth with N (least-squares fit of the medians, seconds = intercept + slope × N):", "",
              "| | slope (s per organization) | intercept (s) |", "|---|--:|--:|"]
    for kind in ("role", "uri"):
        for phase in ("first", "idempotent"):
            slope, intercept = fit([(n, summary[n][(kind, phase)]) for n in summary])
            lines.append("| %s %s | %.3f | %.1f |" % (kind, phase, slope, intercept))
    return lines + ["", "![fleet time vs N](%s)" % Path(knobs["chart"]).name]


def events_rows(ev):
    """The table rows of one listing order, and {count: (module seconds, floor seconds, module peak RSS KiB)}."""
    lines, summary = [], {}
    for count in sorted(ev, key=int):
        rows = ev[count]
        ms, fs = median(r["seconds"] for r in rows["module"]), median(r["seconds"] for r in rows["floor"])
        mr, fr = median(r["maxrss_kib"] for r in rows["module"]), median(r["maxrss_kib"] for r in rows["floor"])
        summary[int(count)] = (ms, fs, mr)
        lines.append("| %d | %.2f s (%.0f events/s) | %.2f s (%.0f events/s) | **%.2f** | %.1f MiB | %.1f MiB |" % (
            int(count), ms, int(count) / ms, fs, int(count) / fs, fs / ms, mr / 1024, fr / 1024))
    return lines, summary


def events_table(order, ev):
    lines = ["", "### Listed %s first" % order, "",
             "| Events | module | floor | module/floor rate | module peak RSS | floor peak RSS |",
             "|--:|--:|--:|--:|--:|--:|"]
    rows, summary = events_rows(ev)
    lines += rows
    if summary:
        small, big = min(summary), max(summary)
        rate = summary[big][1] / summary[big][0]
        lines += ["", "Rate at %d events, %s first: module / floor = **%.2f** (target ≥ 0.8): %s."
                  % (big, order, rate, verdict(rate >= 0.8))]
        if big != small:
            growth = summary[big][2] / summary[small][2] - 1
            lines += ["Peak RSS %d vs %d events, %s first: %+.1f%% (target within 10%%): %s." % (
                big, small, order, growth * 100, verdict(abs(growth) <= 0.10))]
    return lines


def render_events(data, knobs):
    lines = ["## Events export to NDJSON: `tfe_audit_trail_events` vs a plain `requests` loop", "",
             "Seeded events (one second apart) exported with `dest` + `cursor_file` by the module in a real "
             "`ansible-playbook` run, vs `bench/floor_export.py` (a plain `requests` loop walking the same pages "
             "and writing the lines as they come: no sorting, no de-duplication, no cursor, no fsync, no crash "
             "safety). Both files hold the same events (checked by SHA-256 of the sorted lines); the module's are "
             "in time order. The emulator lists newest first and then oldest first (the API's documents do not "
             "say which it does). Time and peak RSS are those of the module process itself (AnsiballZ start-up "
             "included) and of the floor's process: both run through `bench/rsswrap.py`, which forks the "
             "interpreter and reads `os.wait4`'s `ru_maxrss`. Medians of %d interleaved runs." % knobs["events_reps"]]
    for order in sorted(data):
        lines += events_table(order, data[order])
    return lines


def rate(span):
    return (span["events"] - 1) / (span["last"] - span["first"])


def render_eda(data, knobs):
    target = data["interval"] + 1
    lines = ["## Event-Driven Ansible: the event source `tfe.audit.audit_trail` in `ansible-rulebook`", "",
             "Real `ansible-rulebook` runs (`.venv-eda`: its Drools engine on a Java 17 runtime) with one rule, `debug` "
             "of the event's id; the time a rule fired is the `debug` banner's. **Delay**: events created one at a time "
             "at a random moment of the polling cycle (`interval: %d`), from the emulator call that creates one to its "
             "rule firing. **Backlog**: %d seeded events (plus the token's own) read and emitted from a cold start, "
             "oldest first; the rate counts from the first rule firing to the last. The floor is ansible-rulebook's own "
             "`eda.builtin.range` source putting the same number of events through the same rule: what the engine "
             "itself costs." % (data["interval"], data["backlog"]), "",
             "| Listed | Samples | Delay median | p95 | max | target ≤ %d s |" % target, "|---|--:|--:|--:|--:|---|"]
    for order in sorted(data["latency"]):
        delays = sorted(data["latency"][order])
        p95 = delays[min(len(delays) - 1, int(round(0.95 * (len(delays) - 1))))]
        lines.append("| %s first | %d | %.2f s | %.2f s | %.2f s | %s |" % (
            order, len(delays), median(delays), p95, delays[-1], verdict(delays[-1] <= target)))
    lines += ["", "| Backlog | Listed | first rule after start | last rule after start | events/s through the engine "
              "| floor `eda.builtin.range` events/s | source / floor |", "|--:|---|--:|--:|--:|--:|--:|"]
    for order in sorted(data["throughput"]):
        row, floor = data["throughput"][order], rate(data["floor"])
        lines.append("| %d | %s first | %.1f s | %.1f s | %.0f | %.0f | %.2f |" % (
            row["events"], order, row["first"], row["last"], rate(row), floor, rate(row) / floor))
    return lines


def render_eda_emit(data, knobs):
    lines = ["## The event source's emit path: events sharing one millisecond", "",
             "The event source of each collection runs as ansible-rulebook runs it (`main(queue, args)`, a queue of "
             "one place that a consumer drains), in a process of its own, on a trail of %d seeded events (plus the "
             "token's own) that all share one millisecond, or that each have their own. From the first audit event "
             "taken to the last (the walk's requests, the same in both cases, are not counted): CPU seconds (steady on "
             "a shared machine) and wall-clock seconds. Medians of %d interleaved runs. Measure it with "
             "`make bench BENCH_ARGS='--only eda_emit --collection before=REV'` (no Java needed)."
             % (data["events"], knobs["emit_reps"]),
             "", "| Collection | Commit | One millisecond: CPU | wall | Distinct: CPU | wall | one ms / distinct (CPU) |",
             "|---|---|--:|--:|--:|--:|--:|"]
    for row in data["rows"]:
        same, distinct = (median(run["cpu"] for run in row[case]) for case in ("one millisecond", "distinct"))
        lines.append("| %s | %s | %.2f s | %.2f s | %.2f s | %.2f s | %.1f |" % (
            row["label"], (row["commit"] or "")[:10], same, median(run["wall"] for run in row["one millisecond"]),
            distinct, median(run["wall"] for run in row["distinct"]), same / distinct if distinct else float("nan")))
    return lines


def render_lookback(data, knobs):
    lines = ["## The lookback's cost: an export run that finds nothing new", "",
             "`lookback` (default `30m`) makes each run read again the events of the last half hour before its "
             "previous run, so that an event HCP Terraform lists late is exported once. What that costs an export "
             "that finds nothing new, against `lookback: 0`: the organization holds 2,000 older events and the "
             "given number in the last 25 minutes, was exported once, and is exported again (`page_size` 1000). "
             "Requests to the audit trail are exact (the emulator's log); the module process's wall and CPU time "
             "(`bench/rsswrap.py`) are medians of %d interleaved runs. An organization quiet for longer than the "
             "lookback costs one request either way." % knobs["lookback_reps"], "",
             "| Events in the last half hour | lookback | Requests | Module process | CPU |", "|--:|---|--:|--:|--:|"]
    for recent, rows in data.items():
        for kind, runs_of_kind in rows.items():
            lines.append("| %s | %s | %d | %.2f s | %.2f s |" % (
                recent, "30m (default)" if kind == "30m" else "0 (off)", max(r["requests"] for r in runs_of_kind),
                median(r["seconds"] for r in runs_of_kind), median(r["cpu"] for r in runs_of_kind)))
    return lines
