# -*- coding: utf-8 -*-
"""Section eda: the event source tfe.audit.audit_trail in a real ansible-rulebook: the delay from an event's
creation to its rule firing, and a backlog's events per second against the engine's own eda.builtin.range."""

import random
import time

from eda_run import INTERVAL, EdaRun, audit_source
from harness import step
from measure_events import ORDERS

FIRED = ("event.tfe_audit is defined", "event.tfe_audit.id")


def delays(ws, emu, order, samples):
    """Seconds from the emulator call that creates one event to its rule firing, one event at a time."""
    org = "eda-delay-" + order
    emu.add_organization(org, entitlement=True)
    out = []
    with EdaRun(ws, "delay-" + order, audit_source(ws, emu, org), *FIRED) as run:
        run.wait(1, 120)  # the token's own creation: the source is polling
        for number in range(samples):
            time.sleep(random.uniform(0, INTERVAL))  # any phase of the polling cycle
            created = time.time()
            emu.seed_events(org, count=1, step_seconds=0.001)
            out.append(run.wait(number + 2, 30)[-1][0] - created)
    return out


def backlog(ws, emu, order, count):
    """A backlog of count seeded events (and the token's own) read and emitted from a cold start."""
    org = "eda-backlog-" + order
    emu.add_organization(org, entitlement=True)
    source = audit_source(ws, emu, org)
    emu.seed_events(org, count=count, step_seconds=0.01)
    with EdaRun(ws, "backlog-" + order, source, *FIRED) as run:
        return run.span(count + 1, 1800)


def measure(ws, emu, args):
    """Delay at interval 2 s, and a backlog through the engine, in both listing orders; the engine's floor."""
    out = {"interval": INTERVAL, "backlog": args.eda_backlog, "latency": {}, "throughput": {}}
    for order in ORDERS:
        emu.set_listing(order=order)
        step("EDA delay, %s first" % order)
        out["latency"][order] = delays(ws, emu, order, args.eda_samples)
        step("EDA backlog of %d, %s first" % (args.eda_backlog, order))
        out["throughput"][order] = backlog(ws, emu, order, args.eda_backlog)
    step("EDA floor: eda.builtin.range")
    with EdaRun(ws, "floor", "eda.builtin.range: {limit: %d}" % (args.eda_backlog + 1), "event.i is defined",
                "event.i") as run:
        out["floor"] = run.span(args.eda_backlog + 1, 1800)
    emu.set_listing(order="newest")
    return out
