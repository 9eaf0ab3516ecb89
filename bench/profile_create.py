#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Where a tfe_audit_trail_token run spends its time: cProfile of the real module processes (the AnsiballZ
payload that ansible-playbook starts, imports included) of this checkout and of other collections, side by side.

usage: .venv/bin/python bench/profile_create.py [--collection [LABEL=]REV_OR_DIR ...] [--tasks 10] [--reps 3]
                                                [--phase create|idempotent] [--clock cpu|wall]

Each rep runs, for every collection in turn (interleaved), a playbook of N module tasks on new organizations
(create: each generates a token; idempotent: each finds one). Printed per collection: medians over the module
processes of the cumulative time (``--clock cpu``, the default: the process's CPU time, which other jobs hardly
move; ``wall``: what a loaded machine inflates) and of the number of calls (which load does not move at all) of
the collection's functions and of the big steps (imports, compiling the payload's sources), then the functions
whose call counts differ most from the first collection's. Not part of `make bench`: a tool for finding where a
difference between two checkouts comes from.
"""

import argparse
import pstats
import sys

from harness import ADMIN, BENCH, Source, Workspace, emulator, interleaved, median
from playbooks import module_task, play

STEPS = {"<total>": "the whole process", "~:<built-in method builtins.compile>": "compiling the payload's sources",
         "<frozen importlib._bootstrap>:_find_and_load": "imports", "<frozen runpy>:run_path": "the payload"}


def key_of(function):
    path, dummy, name = function
    return "%s:%s" % (path.split("/plugins/")[-1] if "ansible_collections" in path else path.split("/")[-1], name)


def summarise(files):
    """[{key: (cumulative seconds, calls)}], one per process profile."""
    out = []
    for path in files:
        stats, row = pstats.Stats(str(path)).stats, {}
        for function, (dummy, calls, dummy_tt, cumulative, dummy_callers) in stats.items():
            total = row.get(key_of(function), (0.0, 0))
            row[key_of(function)] = (max(total[0], cumulative), total[1] + calls)
        row["<total>"] = (max(value[3] for value in stats.values()), sum(value[1] for value in stats.values()))
        out.append(row)
    return out


def profile(spaces, emu, args):
    """{label: [per-process summaries]}: every collection runs the same playbooks, interleaved."""
    for label, ws in spaces.items():
        ws.path("profiles").mkdir()
        wrapper = ws.path("cprofile.sh")
        wrapper.write_text("#!/bin/sh\nBENCH_PROFILE_CLOCK=%s BENCH_PROFILE_DIR='%s' exec '%s' '%s' \"$@\"\n"
                           % (args.clock, ws.path("profiles"), sys.executable, BENCH / "cprofile_launch.py"))
        wrapper.chmod(0o755)
    for rep, order in interleaved(spaces, args.reps):
        for label in order:
            orgs = ["pr-%d-%d-%d" % (rep, list(spaces).index(label), i) for i in range(args.tasks)]
            for org in orgs:
                emu.add_organization(org, entitlement=True)
                if args.phase == "idempotent":
                    emu.regenerate_audit_trail_token(org)
            book = play(module_task("p-%d" % i, org, emu.url) for i, org in enumerate(orgs))
            spaces[label].run_playbook(book, env={"TFE_TOKEN": ADMIN, "ANSIBLE_PYTHON_INTERPRETER":
                                                  str(spaces[label].path("cprofile.sh"))})
    return {label: summarise(sorted(ws.path("profiles").glob("p-*.out"))) for label, ws in spaces.items()}


def medians(rows, key):
    return median(row.get(key, (0.0, 0))[0] for row in rows) * 1000, median(row.get(key, (0.0, 0))[1] for row in rows)


def report(found):
    labels = list(found)
    keys = sorted({key for rows in found.values() for row in rows for key in row})
    ours = [key for key in keys if key.startswith(("module_utils/", "modules/"))
            and max(medians(rows, key)[0] for rows in found.values()) >= 0.1]
    print("%-62s %s" % ("median over %s module processes: ms / calls" % "/".join(str(len(found[l])) for l in labels),
                        " ".join("%22s" % label for label in labels)))
    for key in list(STEPS) + ours:
        cells = ["%10.2f / %9d" % medians(found[label], key) for label in labels]
        print("%-62s %s" % ((STEPS.get(key) or key)[:62], " ".join(cells)))
    base = labels[0]
    for label in labels[1:]:
        calls = {key: (medians(found[base], key)[1], medians(found[label], key)[1]) for key in keys}
        print("\ncalls: %s, %s, and the difference; the 12 largest differences" % (base, label))
        for key in sorted(keys, key=lambda key: -abs(calls[key][0] - calls[key][1]))[:12]:
            print("%-62s %10d %10d %+10d" % (key[:62], calls[key][0], calls[key][1], calls[key][0] - calls[key][1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", action="append", default=[], metavar="[LABEL=]REV_OR_DIR")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--phase", choices=("create", "idempotent"), default="create")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = parser.parse_args()
    sources = [Source("this checkout")] + [Source.parse(spec) for spec in args.collection]
    spaces = {source.label: Workspace(source=source) for source in sources}
    try:
        with emulator() as emu:
            report(profile(spaces, emu, args))
    finally:
        for ws in spaces.values():
            ws.cleanup()


if __name__ == "__main__":
    main()
