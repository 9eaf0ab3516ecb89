# -*- coding: utf-8 -*-
"""Section eda_emit: the event source emitting a backlog in-process, without ansible-rulebook: N events that share
one millisecond against N events with distinct timestamps, for this checkout and any other (--collection).

Each measurement runs in a process of its own (two versions of the collection cannot share one): the source runs
as ansible-rulebook runs it (``main(queue, args)``, a queue of one place, drained as the engine does). The time is
from the first audit event taken to the last, so the walk's requests (the same in both cases) are not in it: only
what the source does per event. CPU seconds (steady on a shared machine) and wall-clock seconds.
"""

import contextlib
import datetime
import json
import subprocess
import sys

from harness import BENCH, Workspace, interleaved, step
from measure_token_times import sources

CASES = ("one millisecond", "distinct")
PROBE = r'''
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail

async def emit(url, token, count):
    queue = asyncio.Queue(1)
    source = asyncio.ensure_future(audit_trail.main(queue, {"hostname": url, "token": token, "interval": 3600}))
    first, taken = None, 0
    while taken < count:
        taken += "tfe_audit" in await asyncio.wait_for(queue.get(), 600)
        first = first or (time.process_time(), time.perf_counter())
    timed = {"cpu": time.process_time() - first[0], "wall": time.perf_counter() - first[1]}
    source.cancel()
    try:
        await source
    except asyncio.CancelledError:
        pass
    return timed

print(json.dumps(asyncio.run(emit(sys.argv[2], sys.argv[3], int(sys.argv[4])))))
'''


def seed(emu, case, count):
    org = "emit-%s" % case.replace(" ", "-")
    emu.add_organization(org, entitlement=True)
    token = emu.regenerate_audit_trail_token(org)["token"]
    if case == "distinct":
        emu.seed_events(org, count=count, step_seconds=0.001)
    else:
        moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        emu.seed_events(org, count=count, timestamp=moment.strftime("%Y-%m-%dT%H:%M:%S.123Z"))
    return token


def probe(collections, url, token, count):
    done = subprocess.run([sys.executable, "-c", PROBE, str(collections), url, token, str(count)], check=True,
                          capture_output=True, text=True, timeout=900, cwd=str(BENCH))
    return json.loads(done.stdout.splitlines()[-1])


def measure(ws, emu, args):
    """{events, rows: [{label, commit, <case>: [{cpu, wall}]}]}; each source reads the whole trail (and the token's
    own event)."""
    measured = sources(ws, args)
    tokens = {case: seed(emu, case, args.emit_events) for case in CASES}
    rows = [dict(label=label, commit=source.commit, **{case: [] for case in CASES}) for label, source in measured]
    with contextlib.ExitStack() as stack:
        spaces = [ws] + [stack.enter_context(Workspace(source=source)) for dummy, source in measured[1:]]
        trees = [space.path("collections") for space in spaces]
        for rep, order in interleaved(range(len(rows)), args.emit_reps):
            step("event source emit, rep %d of %d" % (rep + 1, args.emit_reps))
            for index in order:
                for case in CASES:
                    rows[index][case].append(probe(trees[index], emu.url, tokens[case], args.emit_events + 1))
    return {"events": args.emit_events, "rows": rows}
