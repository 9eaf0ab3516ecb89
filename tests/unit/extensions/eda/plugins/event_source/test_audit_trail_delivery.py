# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the state records: with ``feedback: true`` the events ansible-rulebook acknowledged, else what left the
queue; and recording an event costs the same however many events share its millisecond."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.tfe.audit.plugins.module_utils import _cursor
from ansible_collections.tfe.audit.plugins.module_utils._cursor import load_cursor
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time
from ansible_collections.tfe.audit.tests.unit.extensions.eda.plugins.event_source.source_runner import (
    ORG, Running, args_for, key, run, trail)


class Engine:
    """ansible-rulebook's side, reduced: takes events from the source's queue of one, and acknowledges each on the
    feedback queue (of one, so an unread acknowledgement holds it up), the first ``acknowledged`` of them only."""

    def __init__(self, acknowledge_copies=False, acknowledged=None):
        self.queue = asyncio.Queue(1)
        self.feedback = asyncio.Queue(1)
        self.taken = []
        self.acknowledged = acknowledged
        self.acknowledge_copies = acknowledge_copies

    async def run(self):
        while True:
            event = await self.queue.get()
            self.taken.append(event)
            if self.acknowledged is None or len(self.taken) <= self.acknowledged:
                await self.feedback.put(copy.deepcopy(event) if self.acknowledge_copies else event)

    async def wait_taken(self, count, source, timeout=15.0):
        """Until the engine has taken ``count`` events; fails when the source ended or it takes too long."""
        deadline = time.monotonic() + timeout
        while len(self.taken) < count:
            if source.task.done():
                source.task.result()
                raise AssertionError("the source returned")
            assert time.monotonic() < deadline, "only %d of %d events taken" % (len(self.taken), count)
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("acknowledge_copies", [False, True], ids=["the dict put", "a copy"])
def test_with_feedback_the_state_records_only_what_the_engine_acknowledged(emulator, secret, tmp_path,
                                                                           acknowledge_copies):
    emulator.seed_events(ORG, count=40)
    state = tmp_path / "state.json"

    async def scenario():
        engine = Engine(acknowledge_copies, acknowledged=20)  # takes 21 and more, acknowledges none of them
        worker = asyncio.create_task(engine.run())
        source = Running(args_for(emulator, secret, state_file=str(state), feedback=True,
                                  eda_feedback_queue=engine.feedback), queue=engine.queue)
        await engine.wait_taken(25, source)
        await source.stop()
        worker.cancel()
        return engine.taken

    taken = run(scenario())
    saved = load_cursor(str(state))
    assert len(taken) >= 25
    assert saved.exported == 20, "recorded what was taken but never acknowledged"
    assert saved.newest == trail(emulator)[19][0] and tuple(trail(emulator)[19]) in saved.seen


def test_with_feedback_every_event_is_acknowledged_without_holding_the_engine_up(emulator, secret, tmp_path):
    """The engine waits until each acknowledgement is read, events about the source included, also while the
    source is idle between polls."""
    emulator.seed_events(ORG, count=10)
    state = tmp_path / "state.json"

    async def scenario():
        engine = Engine()
        worker = asyncio.create_task(engine.run())
        source = Running(args_for(emulator, secret, state_file=str(state), feedback=True, interval=0.1,
                                  eda_feedback_queue=engine.feedback), queue=engine.queue)
        await engine.wait_taken(11, source)
        emulator.add_fault(method="GET", path="audit-trail", status=503, count=2)
        emulator.seed_events(ORG, count=3, step_seconds=0.001)
        await engine.wait_taken(16, source)
        await asyncio.sleep(0.3)
        await source.stop()
        worker.cancel()
        return engine.taken

    taken = run(scenario())
    names = [next(name for name in event if name != "meta") for event in taken]
    assert names.count("tfe_audit") == 14 and "tfe_audit_source_error" in names and "tfe_audit_source_recovered" in names
    assert [key(event) for event in taken if "tfe_audit" in event] == trail(emulator)
    assert load_cursor(str(state)).exported == 14


@pytest.mark.parametrize("extra, warned", [({"eda_feedback_queue": "queue"}, False), ({"feedback": True}, True)],
                         ids=["a queue without feedback: true", "feedback: true without a queue"])
def test_without_both_the_depth_of_the_queue_tells_what_was_taken(emulator, secret, tmp_path, caplog, extra, warned):
    """ansible-rulebook hands the queue only with feedback: true (and --persistence-id): the source never reads one
    it was not asked for, and says so when it was asked for one and got none."""
    emulator.seed_events(ORG, count=5)
    state = tmp_path / "state.json"

    async def scenario():
        if "eda_feedback_queue" in extra:
            extra["eda_feedback_queue"] = asyncio.Queue()
        source = Running(args_for(emulator, secret, state_file=str(state), **extra))
        await source.take(6)
        await asyncio.sleep(0.3)
        await source.stop()

    run(scenario())
    assert load_cursor(str(state)).exported == 6
    assert ("handed the source no feedback queue" in caplog.text) == warned


def calls_of(monkeypatch, method):
    """The size of the position's set of ids at each call of ``Cursor.<method>``, as the source runs."""
    sizes = []
    original = getattr(_cursor.Cursor, method)

    def counting(cursor, *args):
        sizes.append(len(cursor.seen))
        return original(cursor, *args)

    monkeypatch.setattr(_cursor.Cursor, method, counting)
    return sizes


def drain(emulator, secret, count):
    """Run the source (page_size 1000, one poll) until it has put ``count`` events."""
    async def scenario():
        source = Running(args_for(emulator, secret, page_size=1000, interval=30))
        await source.take(count)
        await source.stop()

    run(scenario())


def test_recording_an_event_does_not_copy_the_position(emulator, secret, monkeypatch):
    """The position (its set of ids) is copied once per poll, not once per event: with many events in one
    millisecond, a copy per event made emitting them quadratic."""
    emulator.seed_events(ORG, count=3000, timestamp=format_time(datetime.now(timezone.utc) - timedelta(hours=1)))
    copies = calls_of(monkeypatch, "copy")
    drain(emulator, secret, 3001)
    assert len(copies) <= 5, "the position was copied %d times for 3001 events" % len(copies)


def test_a_backlog_inside_the_lookback_is_trimmed_every_so_many_events_not_after_each(emulator, secret, monkeypatch):
    """Events of the last minutes (inside the 30-minute lookback) are all kept in the position while they are
    emitted: trimming it once per event past 4096 made such a backlog quadratic (023ab59)."""
    from ansible_collections.tfe.audit.plugins.module_utils import _feed  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(_feed, "TRIM_EVERY", 100)
    emulator.seed_events(ORG, count=1000, step_seconds=0.1)  # the last 100 s
    trims = calls_of(monkeypatch, "trim")
    drain(emulator, secret, 1001)
    # The walk's own trims (every TRIM_EVERY events emitted), the recorder's (every TRIM_EVERY recorded), and those
    # of finish_walk: about 2 x 1001 / 100, never one per event.
    assert 0 < len(trims) <= 2 * (1001 // 100) + 6, "trimmed %d times for 1001 events" % len(trims)


class Opaque:
    """A queue whose depth cannot be read: only put and get."""

    def __init__(self):
        self._queue = asyncio.Queue(1)

    async def put(self, item):
        await self._queue.put(item)

    async def get(self):
        return await self._queue.get()


def test_a_queue_whose_depth_cannot_be_read_lets_nothing_be_recorded(emulator, secret, tmp_path, caplog):
    emulator.seed_events(ORG, count=5)
    state = tmp_path / "state.json"

    async def scenario():
        source = Running(args_for(emulator, secret, state_file=str(state), since="2020-01-01T00:00:00Z"), queue=Opaque())
        await source.take(6)
        await asyncio.sleep(0.3)
        await source.stop()

    run(scenario())
    assert "state_file records nothing" in caplog.text
    assert load_cursor(str(state)).exported == 0
