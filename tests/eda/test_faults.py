# -*- coding: utf-8 -*-
"""The source never stops by itself: a 429 storm and a 30 s outage, each one error event and one recovered event,
no audit event lost or repeated; in both listing orders, in the real engine."""

import json
import time

import pytest

from conftest import ORDERS, assert_clean, key, source_rulebook, trail, write_token

INTERVAL = 2


def control(book, name):
    return [event[name] for dummy, event in book.records() if name in event]


@pytest.mark.parametrize("order", ORDERS)
def test_a_429_storm_and_a_30_s_outage_each_give_one_error_and_one_recovered_event(order, emulator_factory, rulebook,
                                                                                   tmp_path):
    emu = emulator_factory(order)
    secret = emu.regenerate_audit_trail_token("acme")["token"]
    emu.seed_events("acme", count=20)
    # The token from the environment this time (TFE_AUDIT_TRAIL_TOKEN), at -v.
    book = rulebook(source_rulebook(hostname=emu.url, interval=INTERVAL, state_file=str(tmp_path / "state.json")),
                    env={"TFE_AUDIT_TRAIL_TOKEN": secret}, verbosity=1).start()
    book.wait_count(21, 60)

    # A storm: every audit trail request answered 429 with Retry-After: 1, for about 12 s. The client waits each
    # one out, gives the poll up after 5 s of waiting, and the source backs off and tries again.
    emu.add_fault(method="GET", path="audit-trail", status=429, headers={"Retry-After": "1"}, count=12)
    emu.seed_events("acme", count=3, step_seconds=0.001)
    book.wait_for(lambda records: control(book, "tfe_audit_source_recovered"), 60, "the recovery from the storm")
    book.wait_count(24, INTERVAL + 5)

    # An outage: every connection dropped for 30 s.
    emu.add_fault(method="GET", path="audit-trail", drop=True, count=100000)
    emu.seed_events("acme", count=3, step_seconds=0.001)
    time.sleep(30)
    emu.clear_faults()
    ended = time.time()
    book.wait_for(lambda records: len(control(book, "tfe_audit_source_recovered")) == 2, 30, "the recovery from the outage")
    book.wait_count(27, INTERVAL + 5)
    time.sleep(INTERVAL + 0.5)  # a repeat, or a second error event, would have arrived by now

    errors, recovered = control(book, "tfe_audit_source_error"), control(book, "tfe_audit_source_recovered")
    assert len(errors) == 2 and len(recovered) == 2, (errors, recovered)
    assert (errors[0]["kind"], errors[0]["status"]) == ("http", 429)
    assert (errors[1]["kind"], errors[1]["status"]) == ("network", None)
    assert [r["since"] for r in recovered] == [e["since"] for e in errors]
    names = [next(name for name in event if name != "meta") for dummy, event in book.records()]
    controls = [name for name in names if name != "tfe_audit"]
    assert controls == ["tfe_audit_source_error", "tfe_audit_source_recovered"] * 2
    fired = {event["tfe_audit_source_recovered"]["recovered_at"] for dummy, event in book.records()
             if "tfe_audit_source_recovered" in event}
    assert fired and all(isinstance(value, str) for value in fired)
    keys = [key(event) for event in book.events()]
    assert keys == trail(emu), "an audit event was lost, repeated or out of order"
    outage_recovery = [when for when, event in book.records() if "tfe_audit_source_recovered" in event][-1]
    assert outage_recovery - ended <= 10, "the recovery took %.1f s after the outage ended" % (outage_recovery - ended)
    book.stop()
    assert_clean(book.text)
    assert secret not in book.text


def test_broken_pages_are_error_events_and_lose_nothing_in_the_engine(emulator_factory, rulebook, tmp_path):
    """A page without pagination, then a server that answers page 1 for every page: each one malformed error event
    and one recovered event, and every audit event once (newest first; both orders run in the unit tests)."""
    emu = emulator_factory("newest")
    secret = emu.regenerate_audit_trail_token("acme")["token"]
    emu.seed_events("acme", count=5)
    write_token(tmp_path / "token", secret)
    book = rulebook(source_rulebook(hostname=emu.url, interval=1, page_size=10, token_file=str(tmp_path / "token"),
                                    state_file=str(tmp_path / "state.json"))).start()
    book.wait_count(6, 60)
    for number, fault in enumerate([dict(skip=1, mangle=[{"delete": "pagination"}]),
                                    dict(count=None, ignore_page_number="echo")], start=1):
        emu.add_fault(method="GET", path="audit-trail", **fault)
        emu.seed_events("acme", count=25, step_seconds=0.001)
        book.wait_for(lambda records, n=number: len(control(book, "tfe_audit_source_error")) == n, 30, "the error")
        emu.clear_faults()
        book.wait_for(lambda records, n=number: len(control(book, "tfe_audit_source_recovered")) == n, 30,
                      "the recovery")
        book.wait_count(6 + 25 * number, 15)
    time.sleep(1.5)  # a repeat would have arrived by now
    book.stop()
    assert [error["kind"] for error in control(book, "tfe_audit_source_error")] == ["malformed", "malformed"]
    assert [key(event) for event in book.events()] == trail(emu), "an audit event was lost, repeated or out of order"
    assert_clean(book.text)
    assert secret not in book.text


def test_odd_events_come_once_and_the_feed_goes_on_across_a_restart_in_the_engine(emulator_factory, rulebook,
                                                                                  tmp_path):
    """An event dated 2099 (once, one warning, the position stays where real events are) and one nested 5,000 deep
    (once, unreadable): neither ends the rulebook, and after a restart only the new events come."""
    emu = emulator_factory("newest")
    secret = emu.regenerate_audit_trail_token("acme")["token"]
    write_token(tmp_path / "token", secret)
    emu.seed_events("acme", count=3)
    emu.add_event("acme", timestamp="2099-01-01T00:00:00.000Z", id="far-ahead")
    emu.add_fault(method="GET", path="audit-trail", count=1, mangle=[{"nest": "data.1.resource.meta", "depth": 5000}])
    book = rulebook(source_rulebook(hostname=emu.url, interval=1, token_file=str(tmp_path / "token"),
                                    state_file=str(tmp_path / "state.json"))).start()
    book.wait_count(1, 60, name="tfe_audit_unreadable")
    book.wait_count(1, 10, name="tfe_audit_source_warning")
    # The token's creation, the three seeded and the one from 2099: the one answered nested once comes readable
    # too, when the next poll reads the lookback window again and the server sends it whole.
    book.wait_count(5, 10)
    time.sleep(2.5)  # a repeat would have arrived by now
    assert [event["tfe_audit"]["id"] for event in book.events()].count("far-ahead") == 1
    assert len(book.events(name="tfe_audit_unreadable")) == 1 and control(book, "tfe_audit_source_error") == []
    assert control(book, "tfe_audit_source_warning")[0]["kind"] == "ahead"
    book.stop()
    assert_clean(book.text)

    emu.seed_events("acme", count=5, step_seconds=0.001)
    book.start()
    book.wait_count(5, 30)
    time.sleep(2.5)
    assert [key(event) for event in book.events()] == [k for k in trail(emu) if k[1] != "far-ahead"][-5:]
    assert "far-ahead" not in json.dumps(book.records()) and book.events(name="tfe_audit_unreadable") == []
    book.stop()
    assert_clean(book.text)
    assert secret not in book.text
