#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""`make bench`: measure tfe.audit against the in-process emulator and write docs/PERFORMANCE.md + the chart.

Not a test: nothing here asserts a wall-clock number. Every timing is the median of interleaved runs
(A, B, A, B, ...) and is reported as a ratio against the baseline next to it, because the machine is
shared and noisy. Request counts are exact (bench/request_counts.py, also `make bench-smoke`).

Each section is measured by its own module (measure_*.py; the request counts by request_counts.py) and stored
in bench/results/<section>.json; the report (report.py, report_sections.py) is rendered from what is stored,
so `--only <section>` measures one section again and the others keep their results.
"""

import argparse
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import eda_run
import harness
import measure_create
import measure_eda
import measure_emit
import measure_events
import measure_fleet
import measure_lookback
import measure_task_time
import measure_token_times
import report
import request_counts

ROOT = harness.ROOT
# The report's sections, in its order: name -> (measure(ws, emu, args), the options it reads).
SECTIONS = OrderedDict([
    ("requests", (request_counts.section, ())),
    ("task_time", (measure_task_time.measure, ("reps", "tasks"))),
    ("create", (measure_create.measure, ("reps", "create_n"))),
    ("token_times", (measure_token_times.measure, ("reps", "token_tasks", "label", "collection"))),
    ("fleet", (measure_fleet.measure, ("fleet", "fleet_reps", "fleet_reps_large", "forks"))),
    ("events", (measure_events.measure, ("events", "events_reps"))),
    ("eda", (measure_eda.measure, ("eda_samples", "eda_backlog"))),
    ("eda_emit", (measure_emit.measure, ("emit_events", "emit_reps", "label", "collection"))),
    ("lookback", (measure_lookback.measure, ("lookback_events", "lookback_reps"))),
])
QUICK = dict(reps=2, tasks=5, create_n=4, token_tasks=4, fleet="4,8", fleet_reps=1, fleet_reps_large=1,
             events="2000,10000", events_reps=1, eda_samples=5, eda_backlog=2000, emit_events=2000, emit_reps=1,
             lookback_events="0,1000", lookback_reps=1)


def knob_options(parser):
    parser.add_argument("--reps", type=int, default=6,
                        help="interleaved runs for task_time, create and token_times (their runs swing by 20%% on a "
                             "shared machine)")
    parser.add_argument("--tasks", type=int, default=20, help="identical tasks per playbook (task_time)")
    parser.add_argument("--create-n", type=int, default=10, help="creates per playbook (create)")
    parser.add_argument("--token-tasks", type=int, default=11, help="module tasks per playbook (token_times)")
    parser.add_argument("--collection", action="append", default=[], metavar="[LABEL=]REV_OR_DIR",
                        help="token_times: also measure this tfe.audit, side by side: a git revision of this "
                             "repository, a checkout, or a tree holding ansible_collections/tfe/audit (repeatable)")
    parser.add_argument("--label", default="this checkout", help="token_times: the row name of this checkout")
    parser.add_argument("--fleet", default="10,50,200", help="fleet sizes (fleet)")
    parser.add_argument("--fleet-reps", type=int, default=2, help="interleaved runs per fleet size up to 50")
    parser.add_argument("--fleet-reps-large", type=int, default=1, help="interleaved runs per fleet size above 50")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--events", default="10000,100000", help="seeded event counts (events)")
    parser.add_argument("--events-reps", type=int, default=3)
    parser.add_argument("--eda-samples", type=int, default=20, help="creation-to-rule delays measured (eda)")
    parser.add_argument("--eda-backlog", type=int, default=10000, help="backlog put through ansible-rulebook (eda)")
    parser.add_argument("--emit-events", type=int, default=20000, help="events in the trail (eda_emit)")
    parser.add_argument("--emit-reps", type=int, default=3, help="interleaved polls per case (eda_emit)")
    parser.add_argument("--lookback-events", default="0,1000,5000", help="events in the last half hour (lookback)")
    parser.add_argument("--lookback-reps", type=int, default=3, help="interleaved idle runs per kind (lookback)")


def options():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to measure: %s" % ", ".join(SECTIONS))
    parser.add_argument("--quick", action="store_true",
                        help="small knobs, for development; results and report go to build/bench/quick/")
    parser.add_argument("--render-only", action="store_true", help="measure nothing: render the stored results")
    parser.add_argument("--worktree", action="store_true",
                        help="benchmark the checkout as it is (default: the HEAD commit, exported with git archive)")
    parser.add_argument("--results", default=str(report.RESULTS), help="where each section's results are kept")
    parser.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    parser.add_argument("--chart", default=str(ROOT / "docs" / "performance-fleet.png"))
    parser.add_argument("--chart-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    knob_options(parser)
    args = parser.parse_args()
    args.argv = [a for a in sys.argv[1:] if not a.startswith("--chart-python") and a != args.chart_python]
    if args.quick:
        vars(args).update(QUICK)
        quick = ROOT / "build" / "bench" / "quick"
        args.results, args.out, args.chart = str(quick / "results"), str(quick / "PERFORMANCE.md"), str(quick / "fleet.png")
    args.only = [name for name in args.only.split(",") if name]
    unknown = [name for name in args.only if name not in SECTIONS]
    if unknown:
        parser.error("no section %s; the sections are %s" % (", ".join(unknown), ", ".join(SECTIONS)))
    if "eda" in args.only and not args.render_only and eda_run.missing():
        parser.error(eda_run.missing())
    return args


def measure(args):
    """Measure the chosen sections, in the report's order, storing each one's record as soon as it is done."""
    source = harness.Source(args.label, revision=None if args.worktree else "HEAD")
    with harness.Workspace(source=source) as ws, harness.emulator() as emu:
        for name in (name for name in SECTIONS if name in args.only):
            function, knobs = SECTIONS[name]
            first, start = len(harness.STEPS), time.monotonic()
            data = function(ws, emu, args)
            run = dict(machine=report.machine(), collection=source.describe(), argv=args.argv,
                       knobs={knob: getattr(args, knob) for knob in knobs}, steps=harness.STEPS[first:],
                       seconds=time.monotonic() - start)
            report.save_result(name, dict(run=run, data=data), args.results)
            print("[bench] %s: %.0f s, stored in %s" % (name, run["seconds"], args.results), flush=True)


def write_report(args, chart):
    results = report.load_results(SECTIONS, args.results)
    if not results:
        raise SystemExit("no results in %s: measure first" % args.results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report.render(results, args.chart, args.results))
    print("[bench] wrote %s" % args.out)
    fleet = Path(args.results) / "fleet.json"
    if not chart or "data" not in results.get("fleet", {}):
        return
    if not Path(args.chart_python).exists():
        print("[bench] no chart: %s is missing (make bench sets it up)" % args.chart_python)
        return
    subprocess.run([args.chart_python, str(harness.BENCH / "chart.py"), str(fleet), args.chart], check=True)
    print("[bench] wrote %s" % args.chart)


def main():
    args = options()
    if not args.render_only:
        measure(args)
    write_report(args, chart=args.render_only or "fleet" in args.only)


if __name__ == "__main__":
    main()
