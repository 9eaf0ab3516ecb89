# -*- coding: utf-8 -*-
"""The feed through the real engine: every event once, oldest first, live latency, one request per idle poll,
restarts with state_file (after a stop while idle, a graceful stop mid-backlog, and SIGKILL mid-backlog)."""

import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from conftest import ORDERS, assert_clean, key, source_rulebook, trail, write_token

INTERVAL = 2
AUDIT_TRAIL = "/api/v2/organization/audit-trail"


def state_of(path):
    with open(path) as handle:
        return json.load(handle)


def start_feed(emu, rulebook, tmp_path, env=None, **extra):
    secret = emu.regenerate_audit_trail_token("acme")["token"]
    token_file = tmp_path / "audit-trail-token"
    write_token(token_file, secret)
    args = dict(hostname=emu.url, token_file=str(token_file), state_file=str(tmp_path / "state.json"),
                interval=INTERVAL, page_size=200)
    args.update(extra)
    return rulebook(source_rulebook(**args), env=env).start(), tmp_path / "state.json"


@pytest.mark.parametrize("order", ORDERS)
def test_every_event_once_live_latency_idle_poll_and_restart(order, emulator_factory, rulebook, tmp_path):
    emu = emulator_factory(order)
    # Older than the lookback (30 minutes): an idle poll reads again only the events of the last half hour.
    emu.seed_events("acme", count=1500, step_seconds=1.0,
                    start=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat())
    # 9 events arrive just before the third page request: listed newest first, every later page shifts.
    emu.add_fault(method="GET", path="audit-trail", status=None, skip=2, count=1, insert_events=9)
    book, state = start_feed(emu, rulebook, tmp_path)

    # Every event that existed or arrived during the first walk reaches the rule once, oldest first.
    total = 1500 + 1 + 9  # the seeded, the token's own creation, the inserted
    book.wait_count(total, 120)
    keys = [key(event) for event in book.events()]
    assert len(set(keys)) == len(keys), "an event reached the rule twice"
    assert keys == trail(emu), "not every event, or not oldest first"

    # Events created while the source runs fire their rule within interval + 2 s.
    for round_number in range(1, 3):
        created = time.time()
        emu.seed_events("acme", count=2, step_seconds=0.001)
        records = book.wait_count(total + 2 * round_number, INTERVAL + 10)
        fired = [when for when, event in records if "tfe_audit" in event][-2:]
        assert max(fired) - created <= INTERVAL + 2, "delay %.2f s" % (max(fired) - created)

    # An idle poll costs one request: page 1 of the audit trail, nothing else (no second platform check).
    time.sleep(0.3)
    emu.clear_requests()
    time.sleep(3 * INTERVAL + 0.5)
    requests = emu.requests
    assert [(r["method"], r["path"], r["query"].get("page[number]"), r["status"]) for r in requests] == \
        [("GET", AUDIT_TRAIL, "1", 200)] * len(requests)
    assert 3 <= len(requests) <= 4
    starts = [r["time"] for r in requests]
    assert all(later - earlier >= INTERVAL * 0.8 for earlier, later in zip(starts, starts[1:])), starts

    # SIGTERM while idle: the JVM ends the process at once (rc 143), but the state already holds every event.
    rc = book.stop(signal.SIGTERM)
    assert rc in (0, 143)
    assert_clean(book.text)
    saved = state_of(state)
    assert saved["exported"] == total + 4
    assert saved["newest"] == trail(emu)[-1][0] and list(trail(emu)[-1]) in saved["seen"]
    assert os.stat(state).st_mode & 0o777 == 0o600

    # A restart repeats nothing: only the events created while it was stopped arrive.
    emu.seed_events("acme", count=5, step_seconds=0.001)
    book.start()
    book.wait_count(5, 30)
    time.sleep(INTERVAL + 1)  # a repeat would have arrived by now
    assert [key(event) for event in book.events()] == trail(emu)[-5:]
    book.stop()
    assert_clean(book.text)


@pytest.mark.parametrize("order", ORDERS)
def test_events_listed_late_reach_the_rule_once(order, emulator_factory, rulebook, tmp_path):
    """Every event is listed up to 4 s after its own time (the emulator's late visibility), many of them behind
    events the source already emitted: each reaches the rule once, within the lookback."""
    emu = emulator_factory(order)
    emu.set_listing(visibility_delay_ms=4000)
    emu.seed_events("acme", count=300, step_seconds=0.02)
    book, dummy_state = start_feed(emu, rulebook, tmp_path)
    book.wait_count(301, 60)
    time.sleep(2 * INTERVAL + 0.5)  # a repeat would have arrived by now
    keys = [key(event) for event in book.events()]
    assert len(set(keys)) == len(keys) and sorted(keys) == trail(emu), "an event was lost or repeated"
    assert keys != sorted(keys), "no event came late: the reading was not played"
    book.stop()
    assert_clean(book.text)


@pytest.mark.parametrize("acknowledged", [False, True], ids=["queue depth", "acknowledgements"])
def test_a_graceful_stop_mid_backlog_then_a_restart_is_exactly_once(acknowledged, emulator_factory, rulebook, tmp_path):
    """A rule's shutdown action stops the rulebook in the middle of a backlog: the source is cancelled, without a
    traceback, and its state holds exactly the events the engine took; a restart continues right after them. Both
    ways the source knows what the engine took: the depth of its queue, and the engine's acknowledgements
    (``feedback: true`` with ``ansible-rulebook --persistence-id``).

    (Not a signal: ansible-rulebook 1.3.2 swallows a SIGINT/SIGTERM whose KeyboardInterrupt lands inside its call
    into the rule engine, ``rule_set_runner`` catching BaseException around ``lang.post``, so a signal during a
    busy backlog may be lost. While idle a signal lands in the event loop: the last step tests that.)"""
    emu = emulator_factory("oldest")
    emu.seed_events("acme", count=4000, step_seconds=0.2)
    stop_at = trail(emu)[1500][1]
    token_file = tmp_path / "audit-trail-token"
    write_token(token_file, emu.regenerate_audit_trail_token("acme")["token"])
    state = tmp_path / "state.json"
    args = dict(hostname=emu.url, token_file=str(token_file), state_file=str(state), interval=INTERVAL, page_size=1000)
    if acknowledged:
        args["feedback"] = True
    rules = yaml.safe_load(source_rulebook(**args))
    rules[0]["rules"].insert(0, {"name": "stop", "condition": 'event.tfe_audit.id == "%s"' % stop_at,
                                 "action": {"shutdown": {"kind": "now", "delay": 0, "message": "bench stop"}}})
    book = rulebook(yaml.safe_dump(rules, sort_keys=False), env={"JAVA_TOOL_OPTIONS": "-Xrs"}, verbosity=1,
                    extra_args=["--persistence-id", "1"] if acknowledged else ()).start()
    rc = book.proc.wait(120)
    assert rc == 0
    first = book.text
    assert_clean(first)
    assert "tfe.audit.audit_trail task cancelled" in first
    assert "known by %s" % ("acknowledgements" if acknowledged else "queue depth") in first
    taken = state_of(state)["exported"]
    fired = [key(event) for event in book.events(run=1)]
    assert 1500 <= taken < 4001, "the rulebook was meant to stop in the middle of the backlog"
    assert fired == trail(emu)[:len(fired)] and len(fired) <= taken

    # The restart (without the stop rule) continues exactly after the recorded events.
    book.path.write_text(source_rulebook(**args))
    book.start()
    book.wait_count(len(trail(emu)) - taken, 60)
    time.sleep(INTERVAL + 1)
    assert [key(event) for event in book.events(run=2)] == trail(emu)[taken:]

    # SIGINT while idle, the JVM leaving signals to ansible-rulebook: a clean stop, the state complete.
    stopping = time.monotonic()
    assert book.stop(signal.SIGINT, timeout=30) == 0 and time.monotonic() - stopping < 10
    assert_clean(book.text)
    assert state_of(state)["exported"] == len(trail(emu))


def test_sigkill_mid_backlog_loses_nothing_and_repeats_only_the_last_second(emulator_factory, rulebook, tmp_path):
    emu = emulator_factory("newest")
    emu.seed_events("acme", count=5000, step_seconds=0.2)
    book, state = start_feed(emu, rulebook, tmp_path, page_size=1000)
    book.wait_count(2000, 60)
    killed = time.time()
    book.kill_tree()
    saved = state_of(state)
    # Written at least every second while events flow (SAVE_EVERY), plus a put's wait on a busy machine.
    assert killed - os.stat(state).st_mtime <= 2.0, "the state was not written every second"
    first = [key(event) for event in book.events(run=1)]
    assert saved["exported"] <= len(first) < 5001

    book.start()
    book.wait_count(5001 - saved["exported"], 60)
    time.sleep(INTERVAL + 1)
    second = [key(event) for event in book.events(run=2)]
    assert second == trail(emu)[saved["exported"]:], "the restart did not continue after the recorded events"
    assert sorted(set(first) | set(second)) == trail(emu), "an event was lost"
    repeated = set(first) & set(second)
    assert repeated == set(trail(emu)[saved["exported"]:len(first)])
    book.stop()
    assert_clean(book.text)
