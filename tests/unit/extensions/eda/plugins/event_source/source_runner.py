# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the event source's unit tests: the source as a task on a bounded queue, as ansible-rulebook runs it
(``main(queue, args)``), against the in-process emulator."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest

from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time

ORG = "acme"
ORDERS = ("newest", "oldest")
TOKEN_VARIABLES = ("TFE_AUDIT_TRAIL_TOKEN", "TFE_TOKEN", "TFE_HOSTNAME", "TFE_ADDRESS", "TFE_SSL_SKIP_VERIFY")
# Errors surface after 0.1 s of client retries instead of 5 s; the stale-token check runs every 50 ms.
FAST = {"MIN_REQUEST_WAIT": 0.1, "STALE_CHECK_EVERY": 0.05, "SETTLE_LIMIT": 0.5}
_MODULES = ("ansible_collections.tfe.audit.plugins.plugin_utils._source",
            "ansible_collections.tfe.audit.plugins.plugin_utils._source_options")


def make_fast(monkeypatch):
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    modules = [audit_trail]
    for module_name in _MODULES:
        try:
            modules.append(importlib.import_module(module_name))
        except ImportError:
            pass
    for module in modules:
        for name, value in FAST.items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, value)


def args_for(emulator, secret=None, **extra):
    args = {"hostname": emulator.url, "interval": 0.2, "page_size": 100}
    if secret is not None:
        args["token"] = secret
    args.update(extra)
    return args


def trail(emulator):
    """Every (timestamp, id) the emulator holds for the organization, oldest first."""
    return sorted((format_time(ts), event_id) for ts, event_id, dummy in emulator._orgs[ORG].events)  # pylint: disable=protected-access


def plant(emulator, event):
    """Append an event of any shape to the organization's audit trail, as a hostile server would list it."""
    with emulator._lock:  # pylint: disable=protected-access
        emulator._orgs[ORG].events.append((emulator_time(event["timestamp"]), event["id"], event))  # pylint: disable=protected-access


def emulator_time(text):
    from tfe_emulator import parse_iso8601  # pylint: disable=import-outside-toplevel

    return parse_iso8601(text)


def key(event):
    return event["tfe_audit"]["timestamp"], event["tfe_audit"]["id"]


def control(events, name):
    return [event[name] for event in events if name in event]


class Running:
    """The source as a task on a bounded queue (as ansible-rulebook gives it), with helpers to read it."""

    def __init__(self, args, maxsize=1, queue=None):
        self.queue = queue if queue is not None else asyncio.Queue(maxsize)
        self.task = asyncio.create_task(audit_trail.main(self.queue, args))
        self.seen = []

    async def take(self, count=1, timeout=15.0):
        taken = []
        deadline = time.monotonic() + timeout
        while len(taken) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("only %d of %d events arrived in %ss: %r" % (len(taken), count, timeout, taken[-3:]))
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise AssertionError("the source returned")
            try:
                taken.append(await asyncio.wait_for(self.queue.get(), min(remaining, 0.5)))
            except asyncio.TimeoutError:
                continue
        self.seen.extend(taken)
        return taken

    async def take_until(self, predicate, timeout=15.0):
        taken = []
        while True:
            event = (await self.take(1, timeout))[0]
            taken.append(event)
            if predicate(event):
                return taken

    async def quiet(self, seconds):
        """Events that arrive within ``seconds``."""
        taken = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                taken.append(await asyncio.wait_for(self.queue.get(), max(0.01, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                break
        self.seen.extend(taken)
        return taken

    async def stop(self):
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def run(coroutine):
    return asyncio.run(coroutine)


def started_then_stopped(args, read):
    """What ``read(source)`` (a coroutine) gives for a source started with ``args``; then the source is stopped."""

    async def scenario():
        source = Running(args)
        result = await read(source)
        await source.stop()
        return result

    return run(scenario())


def first_events(args, count):
    """The first ``count`` events a source started with ``args`` puts on its queue; then it is stopped."""
    return started_then_stopped(args, lambda source: source.take(count))


def events_within(args, seconds):
    """The events a source started with ``args`` puts on its queue within ``seconds``; then it is stopped."""
    return started_then_stopped(args, lambda source: source.quiet(seconds))
