# -*- coding: utf-8 -*-
"""Section task_time: an idempotent tfe_audit_trail_token task against one `uri` GET, and where the module's
process spends its import time."""

import sys

from harness import ADMIN, interleaved, median, step
from playbooks import module_task, play, uri_get_task

ENV = {"TFE_TOKEN": ADMIN}


def measure(ws, emu, args):
    step("task time")
    emu.add_organization("tt", entitlement=True)
    emu.regenerate_audit_trail_token("tt")
    books = {"module": play(module_task("t-%d" % i, "tt", emu.url) for i in range(args.tasks)),
             "uri": play(uri_get_task("t-%d" % i, "tt", emu.url) for i in range(args.tasks))}
    per_rep = {"module": [], "uri": [], "module_cpu": [], "uri_cpu": []}
    for dummy, kinds in interleaved(("module", "uri"), args.reps):
        for kind in kinds:
            result = ws.run_playbook(books[kind], env=ENV)
            per_rep[kind].append(median(result.spans("t-")[1:]))  # the first task also builds the AnsiballZ payload
            per_rep[kind + "_cpu"].append(result.cpu / args.tasks)  # start-up included: the same for both
    per_rep["profile"] = import_profile(ws, emu)
    return per_rep


def import_profile(ws, emu):
    """-X importtime of one idempotent module run, summarised (top-level imports by cumulative time)."""
    log = ws.path("importtime.txt")
    wrapper = ws.path("importtime.sh")
    wrapper.write_text("#!/bin/sh\nexec '%s' -X importtime \"$@\" 2>>'%s'\n" % (sys.executable, log))
    wrapper.chmod(0o755)
    task = module_task("p", "tt", emu.url)
    task["vars"] = {"ansible_python_interpreter": str(wrapper)}
    ws.run_playbook(play([task]), env=ENV)
    rows = []
    for line in log.read_text().splitlines():
        parts = line[len("import time:"):].split("|") if line.startswith("import time:") else []
        if len(parts) < 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if len(name) - len(name.lstrip()) == 1:  # top level (nested imports are indented further)
            rows.append((int(parts[1].strip()), name.strip()))
    rows.sort(reverse=True)
    text = ["%8.1f ms  %s" % (us / 1000, name) for us, name in rows[:15]]
    text.append("%8.1f ms  total of all top-level imports" % (sum(us for us, dummy in rows) / 1000))
    return "\n".join(text)
