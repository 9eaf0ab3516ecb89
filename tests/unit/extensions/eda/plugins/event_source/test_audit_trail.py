# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The event source tfe.audit.audit_trail, driven with an in-process asyncio.Queue against the emulator.

The real engine (ansible-rulebook) is exercised by tests/eda (``make eda``); these run in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail
from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor, load_cursor, save_cursor
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time

ORG = "acme"
ORDERS = ("newest", "oldest")


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    """Errors surface after 0.1 s of client retries instead of 5 s; the stale-token check runs every 50 ms."""
    monkeypatch.setattr(audit_trail, "MIN_REQUEST_WAIT", 0.1)
    monkeypatch.setattr(audit_trail, "STALE_CHECK_EVERY", 0.05)
    monkeypatch.setattr(audit_trail, "SETTLE_LIMIT", 0.5)
    for name in ("TFE_AUDIT_TRAIL_TOKEN", "TFE_TOKEN", "TFE_HOSTNAME", "TFE_ADDRESS", "TFE_SSL_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def secret(emulator):
    return emulator.regenerate_audit_trail_token(ORG)["token"]


def args_for(emulator, secret=None, **extra):
    args = {"hostname": emulator.url, "interval": 0.2, "page_size": 100}
    if secret is not None:
        args["token"] = secret
    args.update(extra)
    return args


def trail(emulator):
    """Every (timestamp, id) the emulator holds for the organization, oldest first."""
    return sorted((format_time(ts), event_id) for ts, event_id, dummy in emulator._orgs[ORG].events)  # pylint: disable=protected-access


def key(event):
    return event["tfe_audit"]["timestamp"], event["tfe_audit"]["id"]


class Running:
    """The source as a task on a bounded queue (as ansible-rulebook gives it), with helpers to read it."""

    def __init__(self, args, maxsize=1):
        self.queue = asyncio.Queue(maxsize)
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
        source = audit_trail.AuditTrailSource(audit_trail.Options(args_for(emulator, secret)), queue)
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
    monkeypatch.setattr(audit_trail, "SAVE_EVERY", save_every)
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

    async def first():
        source = Running(args)
        quiet = await source.quiet(0.6)
        await source.stop()
        return quiet

    assert run(first()) == []
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


def control(events, name):
    return [event[name] for event in events if name in event]


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


# -- arguments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, names", [
    ({"interval": 0}, ["interval", "interval: 60"]),
    ({"interval": "soon"}, ["interval", "interval: 60"]),
    ({"page_size": 5000}, ["page_size", "page_size: 1000"]),
    ({"page_size": 2.5}, ["page_size", "page_size: 1000"]),
    ({"since": "yesterday"}, ["since", "since: 2030-12-31"]),
    ({"hostname": "ftp://example.com"}, ["hostname", "app.terraform.io"]),
    ({"validate_certs": "maybe"}, ["validate_certs", "validate_certs: true"]),
    ({"ca_path": "/nonexistent/ca.pem"}, ["ca_path", "ca_path: "]),
    ({"state_file": "/nonexistent/dir/state.json"}, ["state_file", "does not exist"]),
    ({"token_file": "/nonexistent/token"}, ["token_file", "token_file: "]),
    ({"intervall": 5}, ["intervall", "interval"]),
], ids=lambda value: str(value)[:40])
def test_bad_arguments_fail_at_start_naming_the_argument(emulator, secret, bad, names):
    args = args_for(emulator, secret)
    args.update(bad)
    with pytest.raises(audit_trail.ArgumentError) as failure:
        run(audit_trail.main(asyncio.Queue(), args))
    for name in names:
        assert name in str(failure.value)
    assert secret not in str(failure.value)
    assert emulator.requests == []


def test_token_and_token_file_together_are_refused(emulator, secret, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(secret)
    with pytest.raises(audit_trail.ArgumentError, match="token or token_file, not both"):
        audit_trail.Options(args_for(emulator, secret, token_file=str(token_file)))


def test_an_empty_token_file_fails_at_start(emulator, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("\n")
    with pytest.raises(audit_trail.ArgumentError, match="token_file .* must hold only the token .*empty"):
        audit_trail.Options(args_for(emulator, token_file=str(token_file)))


def test_without_a_token_the_message_says_where_to_put_one(emulator):
    with pytest.raises(audit_trail.ArgumentError, match="TFE_AUDIT_TRAIL_TOKEN or TFE_TOKEN"):
        audit_trail.Options(args_for(emulator), environ={})


def test_the_audit_trail_token_variable_comes_before_tfe_token(emulator):
    options = audit_trail.Options(args_for(emulator), environ={"TFE_TOKEN": "owner", "TFE_AUDIT_TRAIL_TOKEN": "trail"})
    assert options.token_and_origin() == ("trail", "TFE_AUDIT_TRAIL_TOKEN")
    options = audit_trail.Options(args_for(emulator), environ={"TFE_TOKEN": "owner"})
    assert options.token_and_origin() == ("owner", "TFE_TOKEN")


def test_string_arguments_from_rulebook_variables_are_accepted(emulator, secret):
    options = audit_trail.Options(args_for(emulator, secret, interval="2.5", page_size="50", validate_certs="false"))
    assert (options.interval, options.page_size, options.connection.verify) == (2.5, 50, False)


def test_an_export_cursor_is_refused_as_state_file(emulator, secret, tmp_path):
    state = tmp_path / "cursor.json"
    then = "2030-01-01T00:00:00.000Z"
    save_cursor(str(state), Cursor(then, [(then, "x")], then, dest="/var/log/audit.ndjson"))
    with pytest.raises(audit_trail.ArgumentError, match="cursor_file of the export into /var/log/audit.ndjson"):
        run(audit_trail.main(asyncio.Queue(), args_for(emulator, secret, state_file=str(state))))


def test_a_damaged_state_file_is_named(emulator, secret, tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(audit_trail.ArgumentError, match=r"state_file .*state.json is not a cursor \(not JSON\)"):
        run(audit_trail.main(asyncio.Queue(), args_for(emulator, secret, state_file=str(state))))


def test_a_state_from_the_future_is_refused(emulator, secret, tmp_path):
    state = tmp_path / "state.json"
    ahead = format_time(datetime.now(timezone.utc) + timedelta(days=1))
    save_cursor(str(state), Cursor(ahead, [(ahead, "x")], ahead))
    with pytest.raises(audit_trail.ArgumentError, match="later than now"):
        run(audit_trail.main(asyncio.Queue(), args_for(emulator, secret, state_file=str(state))))


def test_the_documentation_lists_exactly_the_arguments():
    documentation = yaml.safe_load(audit_trail.DOCUMENTATION)
    assert sorted(documentation["options"]) == sorted(audit_trail.ARGUMENTS)
    assert documentation["options"]["interval"]["default"] == audit_trail.DEFAULT_INTERVAL
    assert documentation["options"]["page_size"]["default"] == audit_trail.MAX_PAGE_SIZE
    examples = yaml.safe_load(audit_trail.EXAMPLES)
    assert set(examples[0]["sources"][0]["tfe.audit.audit_trail"]) <= set(audit_trail.ARGUMENTS)


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


def test_plain_http_to_a_host_that_is_not_loopback_is_refused_unless_allowed(emulator, secret):
    with pytest.raises(audit_trail.ArgumentError, match="clear text.*allow_insecure_http: true"):
        audit_trail.Options(args_for(emulator, secret, hostname="http://tfe.example.com"))
    options = audit_trail.Options(args_for(emulator, secret, hostname="http://tfe.example.com", allow_insecure_http=True))
    assert options.connection.base_url == "http://tfe.example.com"
    assert audit_trail.Options(args_for(emulator, secret)).connection.base_url == emulator.url  # loopback: allowed


# -- server values never become templates ------------------------------------------------------------------


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet="{%#} ab"),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(alphabet="{%#} ab", max_size=6), inner, max_size=4),
                           max_leaves=12)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_inert_leaves_no_template_delimiter_and_touches_nothing_else(value):
    copy, changed = audit_trail.inert(value)
    assert not any(marker in text for text in _strings(copy) for marker in ("{{", "{%", "{#"))
    assert changed == (copy != value)  # a value without a delimiter comes out as it went in


def test_a_planted_template_is_emitted_inert_with_the_original_beside_it(emulator, secret):
    from tfe_emulator import User, _now  # pylint: disable=import-outside-toplevel

    plant = "{{ lookup('ansible.builtin.pipe', 'id') }}{%raw%}"
    with emulator._lock:  # pylint: disable=protected-access
        emulator._append_event(emulator._orgs[ORG], User("user-planted", plant), "workspace",  # pylint: disable=protected-access
                               "ws-1", "destroy", _now())

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take(2)
        await source.stop()
        return events

    events = run(scenario())
    planted = [event for event in events if event["tfe_audit"]["auth"]["accessor_id"] == "user-planted"]
    assert len(planted) == 1
    assert planted[0]["tfe_audit"]["auth"]["description"] == "{ { lookup('ansible.builtin.pipe', 'id') }}{ %raw%}"
    assert json.loads(base64.b64decode(planted[0]["tfe_audit_original"]))["auth"]["description"] == plant
    assert all("tfe_audit_original" not in event for event in events if event is not planted[0])
