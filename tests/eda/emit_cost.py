# -*- coding: utf-8 -*-
"""How long the event source takes to emit a backlog whose events share one millisecond, against one whose events
have distinct timestamps. A measurement, not a test (pytest does not collect it): it prints seconds.

    mkdir -p /tmp/coll/ansible_collections/tfe && ln -sfn "$PWD" /tmp/coll/ansible_collections/tfe/audit
    PYTHONPATH=/tmp/coll .venv/bin/python tests/eda/emit_cost.py [--count 20000] [--repeat 3]

The source runs in process (``main(queue, args)``) against the emulator on loopback; a consumer takes every event
from a queue of size 1, as ansible-rulebook does. The time is from the first audit event taken to the last, so the
walk (the HTTP requests, the same in both cases) is not in it: only what the source does per event. It prints the
CPU time of the process (steady on a shared machine) and the wall-clock time.
"""

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "emulator"))

from tfe_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail  # noqa: E402


async def emit(url, token, count):
    queue = asyncio.Queue(1)
    source = asyncio.create_task(audit_trail.main(queue, {"hostname": url, "token": token, "interval": 3600}))
    first = None
    taken = 0
    while taken < count:
        event = await queue.get()
        if "tfe_audit" in event:
            taken += 1
            first = first or (time.process_time(), time.perf_counter())
    seconds = (time.process_time() - first[0], time.perf_counter() - first[1])
    source.cancel()
    try:
        await source
    except asyncio.CancelledError:
        pass
    return seconds


def measure(count, same_millisecond):
    with Emulator(platform="hcp", api_tokens=("admin",)) as emu:
        emu.add_organization("acme", entitlement=True)
        token = emu.regenerate_audit_trail_token("acme")["token"]
        stamp = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if same_millisecond:
            emu.seed_events("acme", count=count - 1, timestamp=stamp)
        else:
            emu.seed_events("acme", count=count - 1, step_seconds=0.01)
        return asyncio.run(emit(emu.url, token, count))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    for label, same in (("distinct timestamps", False), ("one millisecond", True)):
        runs = [measure(options.count, same) for dummy in range(options.repeat)]
        print("%-20s %d events: CPU %s s (best %.2f s); wall-clock %s s"
              % (label, options.count, ", ".join("%.2f" % cpu for cpu, dummy in runs), min(runs)[0],
                 ", ".join("%.2f" % wall for dummy, wall in runs)))


if __name__ == "__main__":
    main()
