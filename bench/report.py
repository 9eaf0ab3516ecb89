# -*- coding: utf-8 -*-
"""docs/PERFORMANCE.md from the stored results (bench/results/<section>.json): the frame, the table of how and
when each section was measured, and the sections in their order (bench/report_sections.py). Nothing here measures.

A section's results file holds ``run`` (when, at which commit, with which command and knobs, the load at each
step) and either ``data`` (rendered by ``report_sections.render_<section>``) or ``text``: the section as an
earlier report printed it, for a section not measured again since the benchmark began to keep its results.
"""

import datetime
import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import report_sections
from harness import BENCH

RESULTS = BENCH / "results"
INTRO = ("Against the in-process API emulator (`tests/emulator/`, HTTP on loopback, rate limit off), with real "
         "`ansible-playbook` runs of the collection. Timings are medians of interleaved runs (A, B, A, B, ...) "
         "and are compared as ratios, because the machine is shared; request counts are exact. The benchmark "
         "is not a test: nothing asserts a wall-clock number (`make bench-smoke`, also run by `make system`, "
         "checks the request counts only).")
NOTES = ["## Notes", "",
         "- The emulator runs in the benchmark's own process (a thread); on a %s-core machine it competes with "
         "`ansible-playbook` and its forks for CPU, which inflates every absolute number; the ratios are what "
         "to compare.",
         "- Load averages above show whether other jobs were running; numbers from a loaded machine are noisier.",
         "- Each section can be measured again on its own (`make bench BENCH_ARGS='--only <section>'`); the others "
         "keep their stored results, so sections may come from different dates and commits: the "
         "table above says which.", ""]


def machine():
    """What the numbers were measured on."""
    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in ("ansible-core", "requests", "urllib3"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "?"
    return dict(cores=os.cpu_count(), cpu=model, python=platform.python_version(), system=platform.platform(),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **versions)


def load_results(sections, where=RESULTS):
    """{section: stored record} of the sections that have one, in the order of ``sections``."""
    found = {}
    for name in sections:
        path = Path(where) / ("%s.json" % name)
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def save_result(name, record, where=RESULTS):
    Path(where).mkdir(parents=True, exist_ok=True)
    (Path(where) / ("%s.json" % name)).write_text(json.dumps(record, indent=1, default=str, ensure_ascii=False) + "\n")


def machine_lines(newest):
    m = newest["machine"]
    return ["## Machine", "", "Of the newest run (%s); the next table says when each section was measured."
            % m["date"], "", "| | |", "|---|---|",
            "| CPU | %s, %s cores |" % (m["cpu"], m["cores"]),
            "| System | %s |" % m["system"],
            "| Python | %s |" % m["python"],
            "| ansible-core | %s |" % m["ansible-core"],
            "| requests / urllib3 | %s / %s |" % (m["requests"], m["urllib3"]), ""]


def runs_lines(results):
    """When, on what and how each section was measured, with the load at each of its steps."""
    lines = ["## How each section was measured", "",
             "| Section | Date | Collection | Command (`bench/run.py ...`) | Load average (1, 5, 15 min) at each step "
             "| Duration |", "|---|---|---|---|---|--:|"]
    for name, record in results.items():
        run = record["run"]
        loads = "; ".join("%s: %.2f %.2f %.2f" % ((label,) + tuple(avg)) for label, avg in run["steps"])
        duration = run["seconds"] if isinstance(run["seconds"], str) else "%.0f s" % run["seconds"]
        command = "`%s`" % " ".join(run["argv"]) if run["argv"] else "(no options)"
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            name, run["machine"]["date"], run["collection"], command, loads, duration))
    return lines + [""]


def render(results, chart, where=RESULTS):
    """The whole report, from {section: record} in the report's order (kept in ``where``)."""
    newest = max((record["run"] for record in results.values()), key=lambda run: run["machine"]["date"])
    kept = Path(where).resolve()
    kept = kept.relative_to(BENCH.parent) if BENCH.parent in kept.parents else kept
    lines = ["# Performance", "",
             "Generated by `make bench` (`bench/run.py`) from the results it keeps in `%s/`; do not edit by "
             "hand. Regenerate on a quiet machine." % kept, "", INTRO, ""]
    lines += machine_lines(newest) + runs_lines(results)
    for name, record in results.items():
        if "data" in record:
            knobs = dict(record["run"]["knobs"], chart=chart, measured=record["run"]["machine"]["date"])
            lines += getattr(report_sections, "render_" + name)(record["data"], knobs) + [""]
        else:
            lines += [record["text"].rstrip("\n"), ""]
    notes = list(NOTES)
    notes[2] = notes[2] % newest["machine"]["cores"]
    return "\n".join(lines + notes)
