# -*- coding: utf-8 -*-
"""Section token_times: the per-task time of tfe_audit_trail_token when it creates a token, and when the token is
there already (idempotent: nothing to do), for this checkout and any other (--collection), side by side.

Every collection gets its own workspace and the same emulator; the runs interleave (A, B, C, C, B, A, ...). A
rep runs one playbook of N module tasks on N new organizations twice: the first run creates N tokens, the second
finds them (and must leave them as they are). Each module process runs under bench/rsswrap.py, which records its
wall time and CPU seconds (user + system), the figure least moved by other jobs on a shared machine.
"""

import contextlib

from harness import ADMIN, Source, Workspace, interleaved, median, rss_rows, rss_wrapper, step
from playbooks import module_task, play

PHASES = ("create", "idempotent")


def sources(ws, args):
    """(label, Source) of every collection measured: this checkout first, then each --collection."""
    return [(args.label, ws.source)] + [(source.label, source) for source in map(Source.parse, args.collection)]


def run_phase(ws, emu, book, log):
    """One run of the playbook; per task (the first left out: it also builds the AnsiballZ payload):
    {seconds: task span, process: module process wall time, cpu: its CPU seconds}, medians."""
    result = ws.run_playbook(book, env={"TFE_TOKEN": ADMIN, "ANSIBLE_PYTHON_INTERPRETER": str(rss_wrapper(ws, log))})
    processes = rss_rows(log)[1:]
    return {"seconds": median(result.spans("k-")[1:]), "process": median(row["seconds"] for row in processes),
            "cpu": median(row["user"] + row["sys"] for row in processes)}


def one_rep(ws, emu, name, tasks):
    """Create, then idempotent, on `tasks` new organizations: {phase: {seconds, process, cpu}}."""
    orgs = ["tk-%s-%d" % (name, i) for i in range(tasks)]
    for org in orgs:
        emu.add_organization(org, entitlement=True)
    book = play(module_task("k-%d" % i, org, emu.url) for i, org in enumerate(orgs))
    out = {"create": run_phase(ws, emu, book, ws.path("rss-%s-create.jsonl" % name))}
    ids = [(emu.audit_trail_token(org) or {}).get("id") for org in orgs]
    assert all(ids), "a create run left an organization without a token"
    out["idempotent"] = run_phase(ws, emu, book, ws.path("rss-%s-idempotent.jsonl" % name))
    assert ids == [emu.audit_trail_token(org)["id"] for org in orgs], "the idempotent run replaced a token"
    return out


def measure(ws, emu, args):
    """{tasks, rows: [{label, commit, date, what, <phase>: [per rep], <phase>_process, <phase>_cpu}]}."""
    measured = sources(ws, args)
    rows = [dict(label=label, commit=source.commit, date=source.date, plugins=source.plugins, what=source.describe())
            for label, source in measured]
    for row in rows:
        row.update({phase + suffix: [] for phase in PHASES for suffix in ("", "_process", "_cpu")})
    with contextlib.ExitStack() as stack:
        spaces = [ws] + [stack.enter_context(Workspace(source=source)) for dummy, source in measured[1:]]
        for rep, order in interleaved(range(len(rows)), args.reps):
            step("token module per task, rep %d of %d" % (rep + 1, args.reps))
            for index in order:
                result = one_rep(spaces[index], emu, "%d-%d" % (index, rep), args.token_tasks)
                for phase in PHASES:
                    rows[index][phase].append(result[phase]["seconds"])
                    rows[index][phase + "_process"].append(result[phase]["process"])
                    rows[index][phase + "_cpu"].append(result[phase]["cpu"])
    return {"tasks": args.token_tasks, "rows": rows}
