# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The event source tfe.audit.audit_trail, driven with an in-process asyncio.Queue against the emulator.

The real engine (ansible-rulebook) is exercised by tests/eda (``make eda``); these run in seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail
from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor, load_cursor, save_cursor
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time
from ansible_collections.tfe.audit.plugins.plugin_utils import _source
from ansible_collections.tfe.audit.tests.unit.extensions.eda.plugins.event_source.source_runner import (
    ORDERS, ORG, Running, args_for, control, events_within, key, run, trail)


# -- the feed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_every_event_once_oldest_first_while_pages_shift(emulator, secret, order):
    emulator.set_listing(order=order)
    emulator.seed_events(ORG, count=950, step_seconds=0.5)
    # 7 new events arrive just before the third page request: newest first, every page shifts.
    emulator.add_fault(method="GET", path="audit-trail", status=None, skip=2, count=1, insert_events=7)
    expected = trail(emulator)

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take(len(expected) + 7)
        await source.stop()
        return events

    events = run(scenario())
    keys = [key(event) for event in events]
    assert len(set(keys)) == len(keys), "an event came twice"
    assert keys == sorted(keys), "not oldest first"
    assert set(expected) <= set(keys)
    assert keys == trail(emulator)
    assert all(set(event) == {"tfe_audit"} for event in events)
    assert events[0]["tfe_audit"]["resource"]["type"] in ("workspace", "run", "variable", "team", "authentication_token")


def test_an_idle_poll_costs_one_request(emulator, secret):
    emulator.seed_events(ORG, count=30)

    async def scenario():
        queue = asyncio.Queue()
        source = _source.AuditTrailSource(_source.Options(args_for(emulator, secret), audit_trail.argument_spec()), queue)
        await source.poll()
        assert queue.qsize() == 31
        while not queue.empty():
            queue.get_nowait()
        emulator.clear_requests()
        for dummy in range(5):
            await source.poll()
        assert queue.empty()
        return [(r["method"], r["path"], r["status"]) for r in emulator.requests]

    requests = run(scenario())
    assert requests == [("GET", "/api/v2/organization/audit-trail", 200)] * 5


def test_events_created_while_running_arrive_within_the_interval(emulator, secret):
    async def scenario():
        source = Running(args_for(emulator, secret, interval=0.5))
        await source.take(1)  # the token's own creation
        delays = []
        for dummy in range(3):
            emulator.seed_events(ORG, count=2, step_seconds=0.001)
            created = time.monotonic()
            await source.take(2, timeout=5)
            delays.append(time.monotonic() - created)
        await source.stop()
        return delays

    delays = run(scenario())
    assert max(delays) <= 0.5 + 1.0, delays


def test_the_event_loop_is_never_blocked_by_a_slow_request(emulator, secret):
    emulator.add_fault(method="GET", path="audit-trail", status=None, delay=1.5, count=1)

    async def scenario():
        source = Running(args_for(emulator, secret))
        ticks, start = [], time.monotonic()
        while time.monotonic() - start < 1.2:
            await asyncio.sleep(0.05)
            ticks.append(time.monotonic())
        gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:])]
        await source.take(1, timeout=5)
        await source.stop()
        return gaps

    gaps = run(scenario())
    assert max(gaps) < 0.5, "the event loop stalled for %.2f s" % max(gaps)


# -- state_file: exactly once across restarts ----------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_a_restart_with_state_file_repeats_nothing_and_misses_nothing(emulator, secret, tmp_path, order):
    emulator.set_listing(order=order)
    emulator.seed_events(ORG, count=300, step_seconds=1.0)
    state = tmp_path / "state.json"
    args = args_for(emulator, secret, state_file=str(state))

    async def first():
        source = Running(args)
        events = await source.take(120)  # a backlog half emitted: the rulebook stops
        await source.stop()
        return events

    async def second(count):
        source = Running(args)
        events = await source.take(count)
        extra = await source.quiet(0.8)
        await source.stop()
        return events + extra

    before = run(first())
    saved = load_cursor(str(state))
    # The event put last was still in the queue (size 1) when the source stopped: not taken, not recorded.
    assert saved.exported == 120
    emulator.seed_events(ORG, count=5, step_seconds=0.001)  # while stopped
    after = run(second(len(trail(emulator)) - 120))
    keys = [key(event) for event in before + after]
    assert keys == trail(emulator), "exactly once, oldest first, across the restart"
    assert os.stat(state).st_mode & 0o777 == 0o600


def test_cancelled_while_paging_leaves_the_state_as_emitted_and_stops_requesting(emulator, secret, tmp_path):
    emulator.seed_events(ORG, count=40)
    state = tmp_path / "state.json"
    args = args_for(emulator, secret, state_file=str(state), page_size=10)

    async def scenario():
        source = Running(args)
        await source.take(41)
        emulator.seed_events(ORG, count=30, step_seconds=0.001)
        emulator.clear_requests()
        emulator.add_fault(method="GET", path="audit-trail", status=None, delay=1.0, skip=1, count=1)
        await asyncio.sleep(0.6)  # the next poll waits for its second page, which takes a second
        before = load_cursor(str(state)).to_dict()
        await source.stop()
        await asyncio.sleep(1.5)  # the walk thread gets its page, then asks for nothing more
        return before

    before = run(scenario())
    assert load_cursor(str(state)).to_dict() == before
    assert load_cursor(str(state)).exported == 41
    pages = [r["query"].get("page[number]") for r in emulator.requests if r["path"].endswith("audit-trail")]
    assert pages == ["1", "2"]


def test_cancelled_while_the_queue_is_full_records_what_was_put(emulator, secret, tmp_path):
    emulator.seed_events(ORG, count=60)
    state = tmp_path / "state.json"

    async def scenario():
        source = Running(args_for(emulator, secret, state_file=str(state)))
        taken = await source.take(25)
        await asyncio.sleep(0.3)  # the 27th put waits for room
        await source.stop()
        return taken

    taken = run(scenario())
    saved = load_cursor(str(state))
    assert [key(event) for event in taken] == trail(emulator)[:25]
    # 25 taken; the 26th sat in the queue (put, never taken) and the 27th put was cancelled: neither is recorded.
    assert saved.exported == 25
    assert saved.newest == trail(emulator)[24][0] and tuple(trail(emulator)[24]) in saved.seen


@pytest.mark.parametrize("save_every, recorded_during_backlog", [(0.0, True), (3600.0, False)])
def test_the_state_is_written_while_a_backlog_is_emitted(emulator, secret, tmp_path, monkeypatch, save_every,
                                                         recorded_during_backlog):
    """A hard kill repeats only what was emitted after the last write: writes come every SAVE_EVERY seconds."""
    monkeypatch.setattr(_source, "SAVE_EVERY", save_every)
    emulator.seed_events(ORG, count=200)
    state = tmp_path / "state.json"

    async def scenario():
        source = Running(args_for(emulator, secret, state_file=str(state)))
        await source.take(50)
        saved = load_cursor(str(state))
        await source.stop()
        return saved

    saved = run(scenario())
    if recorded_during_backlog:
        assert saved.exported >= 49  # every event the engine took, but maybe the one just put
    else:
        assert saved is None or saved.exported == 0


def test_since_now_is_recorded_at_start_so_a_restart_keeps_it(emulator, secret, tmp_path):
    emulator.seed_events(ORG, count=20)
    state = tmp_path / "state.json"
    args = args_for(emulator, secret, state_file=str(state), since="now")
    assert events_within(args, 0.6) == []
    start = load_cursor(str(state)).newest
    time.sleep(0.01)
    emulator.seed_events(ORG, count=3, step_seconds=0.001)  # while stopped, after "now"

    async def second():
        source = Running(args)
        events = await source.take(3)
        extra = await source.quiet(0.5)
        await source.stop()
        return events + extra

    events = run(second())
    assert [key(event) for event in events] == trail(emulator)[-3:]
    assert all(key(event)[0] > start for event in events)


# -- it never stops by itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    dict(status=503),
    dict(status=429, headers={"X-RateLimit-Reset": "0.05"}),
    dict(drop=True),
], ids=["503", "429", "dropped"])
def test_an_outage_gives_one_error_event_then_one_recovered_event_and_no_loss(emulator, secret, fault):
    emulator.seed_events(ORG, count=10)

    async def scenario():
        source = Running(args_for(emulator, secret))
        before = await source.take(11)
        emulator.add_fault(method="GET", path="audit-trail", count=8, **fault)
        emulator.seed_events(ORG, count=4, step_seconds=0.001)
        events = await source.take_until(lambda event: "tfe_audit_source_recovered" in event, timeout=30)
        events += await source.take(4)
        events += await source.quiet(0.5)
        await source.stop()
        return before, events

    before, events = run(scenario())
    errors = control(events, "tfe_audit_source_error")
    recovered = control(events, "tfe_audit_source_recovered")
    assert len(errors) == 1 and len(recovered) == 1, events
    expected_kind = "network" if fault.get("drop") else "http"
    assert errors[0]["kind"] == expected_kind and errors[0]["status"] == fault.get("status")
    assert errors[0]["hostname"] == emulator.url and errors[0]["message"]
    assert recovered[0]["failures"] >= 1 and recovered[0]["since"] == errors[0]["since"]
    names = [next(iter(event)) for event in events]
    assert names.index("tfe_audit_source_error") < names.index("tfe_audit_source_recovered") < names.index("tfe_audit")
    # The four new events, oldest first (one may share its millisecond with an event emitted before the outage).
    assert [key(event) for event in events if "tfe_audit" in event] == sorted(set(trail(emulator)) - set(map(key, before)))


def test_a_regenerated_token_gives_one_stale_event_and_a_rewritten_token_file_continues(emulator, secret, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    emulator.seed_events(ORG, count=5)

    async def scenario():
        source = Running(args_for(emulator, token_file=str(token_file)))
        await source.take(6)
        fresh = emulator.regenerate_audit_trail_token(ORG)["token"]  # "someone else" rotated it
        emulator.seed_events(ORG, count=3, step_seconds=0.001)
        stale = await source.take(1)
        more = await source.quiet(1.0)  # several polls with the stale token: no second event
        token_file.write_text(fresh)
        events = await source.take(4)  # the new token's own creation + 3
        events += await source.quiet(0.5)
        await source.stop()
        return stale, more, events, fresh

    stale, more, events, fresh = run(scenario())
    assert list(stale[0]) == ["tfe_audit_token_stale"]
    assert stale[0]["tfe_audit_token_stale"]["token_source"] == "token_file"
    assert stale[0]["tfe_audit_token_stale"]["token_file"] == str(token_file)
    assert more == []
    assert [key(event) for event in events] == trail(emulator)[-4:]
    everything = json.dumps(stale + events)
    assert secret not in everything and fresh not in everything


def test_a_gap_is_reported_once_with_both_times(emulator, secret, tmp_path):
    emulator.seed_events(ORG, count=5)
    state = tmp_path / "state.json"
    old = format_time(datetime.now(timezone.utc) - timedelta(days=20))
    save_cursor(str(state), Cursor(old, [(old, "some-old-event")], old))

    async def scenario():
        source = Running(args_for(emulator, secret, state_file=str(state)))
        events = await source.take(7)
        events += await source.quiet(0.7)
        await source.stop()
        return events

    events = run(scenario())
    gaps = control(events, "tfe_audit_gap")
    assert len(gaps) == 1
    assert gaps[0]["start"] == old and gaps[0]["end"] == trail(emulator)[0][0]
    assert "tfe_audit_gap" in events[0]
    assert [key(event) for event in events[1:]] == trail(emulator)


def test_a_token_never_appears_in_events_logs_or_state(emulator, secret, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(secret)
    state = tmp_path / "state.json"
    emulator.seed_events(ORG, count=5)

    async def scenario():
        source = Running(args_for(emulator, token_file=str(token_file), state_file=str(state)))
        await source.take(6)
        emulator.add_fault(method="GET", path="audit-trail", status=503, count=3)
        await source.take_until(lambda event: "tfe_audit_source_recovered" in event)
        emulator.regenerate_audit_trail_token(ORG)
        await source.take_until(lambda event: "tfe_audit_token_stale" in event)
        await source.stop()
        return source.seen

    seen = run(scenario())
    assert {next(iter(event)) for event in seen} >= {"tfe_audit", "tfe_audit_source_error", "tfe_audit_token_stale"}
    text = caplog.text + json.dumps(seen) + state.read_text()
    assert "HTTP 401" in caplog.text and "503" in caplog.text  # the logs did speak
    for value in emulator.issued_secrets:
        assert value not in text


def test_after_a_poll_the_state_holds_every_event_the_engine_took(emulator, secret, tmp_path):
    """A rulebook stopped by SIGTERM exits without cancelling its sources (the JVM handles the signal): the
    state written after each poll must already hold the last event, once the engine has taken it."""
    emulator.seed_events(ORG, count=30)
    state = tmp_path / "state.json"

    async def scenario():
        source = Running(args_for(emulator, secret, state_file=str(state), interval=30))
        await source.take(31)
        await asyncio.sleep(0.3)  # no second poll within the interval: only the settle step can record it
        saved = load_cursor(str(state))
        await source.stop()
        return saved

    saved = run(scenario())
    assert saved.exported == 31
    assert saved.newest == trail(emulator)[-1][0] and tuple(trail(emulator)[-1]) in saved.seen


def test_a_keyboard_interrupt_inside_the_source_goes_back_to_the_event_loop(emulator, secret, tmp_path):
    """ansible-rulebook raises KeyboardInterrupt for SIGINT/SIGTERM wherever the main thread is; caught by its
    source wrapper it would mean "the source ended" (and a 60 s wait): it must stop the event loop instead."""
    emulator.seed_events(ORG, count=50)
    state = tmp_path / "state.json"

    class Interrupting(asyncio.Queue):
        puts = 0

        async def put(self, item):
            Interrupting.puts += 1
            if Interrupting.puts == 20:
                raise KeyboardInterrupt()
            await super().put(item)

    async def scenario():
        queue = Interrupting(1)

        async def consume():
            while True:
                await queue.get()

        consumer = asyncio.create_task(consume())
        try:  # what ansible-rulebook's source wrapper does with a source that ends
            await audit_trail.main(queue, args_for(emulator, secret, state_file=str(state)))
        except (asyncio.CancelledError, KeyboardInterrupt):
            pass
        await asyncio.sleep(10)  # never reached: the loop stops first
        consumer.cancel()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(scenario())
    assert time.monotonic() - start < 5
    assert load_cursor(str(state)).exported in (18, 19)  # 19 put; the last maybe still in the queue


# -- late events, tokens that read nothing, the last resort ---------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("lookback, delivered", [("30m", 3), ("0", 0)])
def test_events_listed_a_minute_late_are_emitted_once_within_the_lookback(emulator, secret, order, lookback, delivered):
    emulator.set_listing(order=order)
    emulator.seed_events(ORG, count=20, step_seconds=1.0)

    async def scenario():
        source = Running(args_for(emulator, secret, lookback=lookback))
        first = await source.take(21)
        # Three events stamped a minute ago show up now, behind the events already emitted.
        emulator.add_fault(method="GET", path="audit-trail", status=None, insert_events=3, backdate_ms=60000)
        late = await source.take(delivered, timeout=5) if delivered else []
        extra = await source.quiet(1.0)
        await source.stop()
        return first, late, extra

    first, late, extra = run(scenario())
    keys = [key(event) for event in first + late]
    assert extra == [] and len(set(keys)) == len(keys)
    if delivered:
        assert sorted(keys) == trail(emulator)


@pytest.mark.parametrize("kind", ["user", "team"])
@pytest.mark.parametrize("reading", ["empty", "404", "401"])
def test_a_user_or_team_token_never_looks_like_an_empty_trail(emulator, secret, reading, kind):
    """The docs say user and team tokens cannot read the audit trail, not how: all three answers are played."""
    emulator.set_readings(user_token_trail=reading)
    emulator.seed_events(ORG, count=5)
    team_token = emulator.add_user_token(ORG) if kind == "user" else emulator.add_team_token(ORG)

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take(6)
        await source.stop()
        # The same state, read with a token that sees nothing (or is refused).
        source = Running(args_for(emulator, team_token))
        events += await source.take(1, timeout=5)
        events += await source.quiet(0.8)
        await source.stop()
        return events

    events = run(scenario())
    about = events[6:]
    assert len(about) == 1, about  # once, not once per poll
    (kind, body), = about[0].items()
    assert kind == {"empty": "tfe_audit_source_warning", "404": "tfe_audit_source_error",
                    "401": "tfe_audit_token_stale"}[reading]
    assert "user or team token" in body["message"] or "not an audit trail or organization token" in body["message"]
    assert team_token not in json.dumps(events)


@pytest.mark.parametrize("reading", ["empty", "404"])
def test_an_audit_trail_turned_off_is_said_once_whatever_the_endpoint_answers(emulator, secret, reading):
    """An organization may send its events to HCP audit log streaming with the audit trail off; what the endpoint
    answers then is undocumented: both readings are played."""
    emulator.set_readings(disabled_trail=reading)
    emulator.seed_events(ORG, count=5)

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take(6)
        emulator.set_audit_trail_enabled(ORG, False)
        events += await source.take(1, timeout=5)
        events += await source.quiet(0.8)
        await source.stop()
        return events

    about = run(scenario())[6:]
    assert len(about) == 1, about
    (kind, body), = about[0].items()
    assert kind == {"empty": "tfe_audit_source_warning", "404": "tfe_audit_source_error"}[reading]
    assert "audit trail is turned off" in body["message"] or "turned off" in body["message"], body["message"]


def test_a_token_over_a_lowered_lifetime_policy_is_a_stale_token(emulator, secret):
    """A token that lives longer than a newly lowered organization policy answers 401: one stale-token event."""
    emulator.seed_events(ORG, count=2)

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take(3)
        emulator.set_token_ttl_policy(ORG, timedelta(days=30))  # the token was made to live two years
        events += await source.take(1, timeout=5)
        events += await source.quiet(0.8)
        await source.stop()
        return events

    about = run(scenario())[3:]
    assert len(about) == 1 and "tfe_audit_token_stale" in about[0], about
    assert secret not in json.dumps(about)


def test_an_unexpected_failure_while_reading_is_an_error_event_and_the_source_goes_on(emulator, secret, monkeypatch):
    from ansible_collections.tfe.audit.plugins.module_utils import _feed  # pylint: disable=import-outside-toplevel

    real_walk, calls = _feed.walk, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError()
        return real_walk(*args, **kwargs)

    monkeypatch.setattr(_feed, "walk", flaky)
    emulator.seed_events(ORG, count=3)

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take(6, timeout=10)
        await source.stop()
        return events

    events = run(scenario())
    errors = control(events, "tfe_audit_source_error")
    assert len(errors) == 1 and "MemoryError" in errors[0]["message"] and errors[0]["kind"] == "internal"
    assert control(events, "tfe_audit_source_recovered") and len([e for e in events if "tfe_audit" in e]) == 4
