# -*- coding: utf-8 -*-
"""Section eda_emit: the event source reading and emitting a backlog in-process, without ansible-rulebook:
N events that share one millisecond against N events with distinct timestamps.

The source (extensions/eda/plugins/event_source/audit_trail.py of the collection under test) polls once into an
asyncio queue that a consumer drains as the engine would. A measurement hook for the emit path (its cost for
events sharing a timestamp), not the engine's throughput: the eda section has that.
"""

import asyncio
import datetime
import importlib
import sys
import time

from harness import interleaved, step

SOURCE = "ansible_collections.tfe.audit.extensions.eda.plugins.event_source.audit_trail"
CASES = ("one millisecond", "distinct")


async def drain(queue, count):
    """Take events off the queue until count audit events came; the time the last one was taken."""
    seen = 0
    while seen < count:
        seen += "tfe_audit" in await queue.get()
    return time.perf_counter()


async def poll_once(module, url, token, count):
    """{poll, emit, last}: seconds of the poll, of its emit step when the source has one, to the last event taken."""
    queue = asyncio.Queue(1)  # as ansible-rulebook gives a source (app.py: asyncio.Queue(1))
    source = module.AuditTrailSource(module.Options({"hostname": url, "token": token}, environ={}), queue)
    timed = {"emit": None}
    inner = getattr(source, "_emit", None)
    if inner is not None:  # the source's own emit step, when it still has one by that name
        async def emit(spool):
            start = time.perf_counter()
            await inner(spool)
            timed["emit"] = time.perf_counter() - start
        source._emit = emit  # pylint: disable=protected-access
    consumer = asyncio.ensure_future(drain(queue, count))
    start = time.perf_counter()
    await source.poll()
    poll = time.perf_counter() - start
    last = await asyncio.wait_for(consumer, 600)
    return {"poll": poll, "emit": timed["emit"], "last": last - start}


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


def measure(ws, emu, args):
    """{events, rows: {case: [{poll, emit, last}]}}; each poll reads the whole trail (the token's event too)."""
    sys.path.insert(0, str(ws.path("collections")))
    module = importlib.import_module(SOURCE)
    tokens = {case: seed(emu, case, args.emit_events) for case in CASES}
    rows = {case: [] for case in CASES}
    for rep, cases in interleaved(CASES, args.emit_reps):
        step("event source emit, rep %d of %d" % (rep + 1, args.emit_reps))
        for case in cases:
            rows[case].append(asyncio.run(poll_once(module, emu.url, tokens[case], args.emit_events + 1)))
    return {"events": args.emit_events, "rows": rows}
