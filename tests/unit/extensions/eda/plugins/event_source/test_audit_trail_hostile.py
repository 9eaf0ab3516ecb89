# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The event source against a hostile server, a leaky proxy and an unsafe library: no template reaches a playbook,
no token reaches an event or a log line, and requests older than 2.28 is refused at start."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from ansible.template import Templar
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time
from ansible_collections.tfe.audit.plugins.module_utils import _client
from ansible_collections.tfe.audit.plugins.module_utils._untrusted import inert, use_installed_check
from ansible_collections.tfe.audit.tests.unit.extensions.eda.plugins.event_source.source_runner import (
    ORG, Running, args_for, control, events_within, first_events, key, plant, run, trail)
from ansible_collections.tfe.audit.tests.shared.template_forms import planted_event, template_forms, templates_in

FORMS = template_forms(lambda name: "id")
INSTALLED = Templar(loader=None).is_possibly_template
# Characters that make up every template form, and some that do not.
TEMPLATE_TEXT = st.text(alphabet="{%#}[]<>:'\n jinja2_stvr", max_size=40) | st.sampled_from(list(FORMS.values()))


JSON_VALUES = st.recursive(TEMPLATE_TEXT, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(TEMPLATE_TEXT, inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_with_the_installed_check_nothing_the_installed_ansible_core_renders_is_left(value):
    """The source hands the installed ansible-core's own check to _untrusted: what it would render never passes."""
    use_installed_check(INSTALLED)
    copy, changed = inert(value)
    assert templates_in(copy, INSTALLED) == []
    assert changed == (copy != value)


def test_no_form_of_template_planted_in_an_audit_event_reaches_the_queue(emulator, secret):
    planted = planted_event(FORMS)
    plant(emulator, planted)
    event = next(event for event in first_events(args_for(emulator, secret), 2) if event["tfe_audit"]["id"] == "planted-1")
    assert templates_in(event, INSTALLED) == []
    assert json.loads(base64.b64decode(event["tfe_audit_original"])) == planted
    assert event["tfe_audit"]["auth"]["description"].startswith("# jinja2:")
    assert len(event["tfe_audit"]["resource"]["meta"]["keys"]) == len(FORMS)  # no two keys became one


def test_a_planted_template_is_emitted_inert_with_the_original_beside_it(emulator, secret):
    planted = planted_event(FORMS)
    planted["auth"]["description"] = "{{ lookup('ansible.builtin.pipe', 'id') }}{%raw%}"
    plant(emulator, planted)
    events = first_events(args_for(emulator, secret), 2)
    assert events[1]["tfe_audit"]["auth"]["description"] == "{ { lookup('ansible.builtin.pipe', 'id') }}{ %raw%}"
    assert json.loads(base64.b64decode(events[1]["tfe_audit_original"]))["auth"] == planted["auth"]
    assert "tfe_audit_original" not in events[0]  # the token's creation, a real event: nothing to change


@pytest.mark.parametrize("form", sorted(FORMS))
def test_an_error_title_from_the_server_reaches_the_queue_inert(emulator, secret, form):
    emulator.add_fault(method="GET", path="audit-trail", status=500,
                       body=json.dumps({"errors": [{"status": "500", "title": FORMS[form]}]}))

    async def scenario():
        source = Running(args_for(emulator, secret))
        events = await source.take_until(lambda event: "tfe_audit_source_error" in event)
        await source.stop()
        return events

    errors = control(run(scenario()), "tfe_audit_source_error")
    assert len(errors) == 1 and "HTTP 500" in errors[0]["message"]
    assert templates_in(errors, INSTALLED) == []


@pytest.mark.parametrize("origin", ["token", "tfe_token", "token_file", "TFE_AUDIT_TRAIL_TOKEN", "TFE_TOKEN"])
def test_a_server_that_quotes_the_token_gets_it_masked_in_the_event_and_the_log(emulator, secret, origin, tmp_path,
                                                                                monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    args = args_for(emulator)
    if origin in ("token", "tfe_token"):
        args[origin] = secret
    elif origin == "token_file":
        (tmp_path / "token").write_text(secret + "\n")
        args["token_file"] = str(tmp_path / "token")
    else:
        monkeypatch.setenv(origin, secret)
    emulator.add_fault(method="GET", path="audit-trail", status=500,
                       body=json.dumps({"errors": [{"title": "rejected header Authorization: Bearer %s" % secret}]}))

    async def scenario():
        source = Running(args)
        events = await source.take_until(lambda event: "tfe_audit_source_recovered" in event)
        await source.stop()
        return events

    events = run(scenario())
    error = control(events, "tfe_audit_source_error")[0]
    assert "rejected header Authorization: Bearer ********" in error["message"]
    assert "Bearer ********" in caplog.text
    assert secret not in json.dumps(events) + caplog.text


def test_a_token_used_before_stays_masked_after_the_token_file_changed(emulator, secret, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(secret)

    async def scenario():
        source = Running(args_for(emulator, token_file=str(token_file)))
        await source.take(1)
        fresh = emulator.regenerate_audit_trail_token(ORG)["token"]
        await source.take_until(lambda event: "tfe_audit_token_stale" in event)
        token_file.write_text(fresh)
        await source.take(1)  # the new token's own creation: the new token is in use
        emulator.add_fault(method="GET", path="audit-trail", status=500, body=json.dumps(
            {"errors": [{"title": "old %s new %s" % (secret, fresh)}]}))
        events = await source.take_until(lambda event: "tfe_audit_source_error" in event)
        await source.stop()
        return events, fresh

    events, fresh = run(scenario())
    assert control(events, "tfe_audit_source_error")[0]["message"].endswith("old ******** new ********")
    assert secret not in json.dumps(events) + caplog.text and fresh not in json.dumps(events) + caplog.text


def test_a_token_quoted_inside_an_audit_event_is_masked_there_and_in_the_original(emulator, secret):
    planted = planted_event(FORMS)
    planted["auth"]["description"] = "token %s" % secret
    plant(emulator, planted)
    events = first_events(args_for(emulator, secret), 2)
    assert secret not in json.dumps(events)
    event = next(event for event in events if event["tfe_audit"]["id"] == "planted-1")
    assert event["tfe_audit"]["auth"]["description"] == "token ********"
    assert secret not in base64.b64decode(event["tfe_audit_original"]).decode("utf-8")


def test_a_token_quoted_inside_an_event_that_cannot_be_read_is_masked_in_its_bytes(emulator, secret):
    planted = planted_event(FORMS)
    planted["id"], planted["auth"]["description"] = None, "token %s" % secret
    plant(emulator, planted)
    events = first_events(args_for(emulator, secret), 2)
    unreadable = control(events, "tfe_audit_unreadable")[0]
    assert unreadable["masked"] is True and secret not in json.dumps(events)
    assert json.loads(base64.b64decode(unreadable["base64"]))["auth"]["description"] == "token ********"


def test_a_token_file_of_several_words_masks_no_json_and_no_short_word(emulator, secret, tmp_path):
    """The words of a refused token_file are masked from then on: not the short ones ("{", "token"), which would
    cut through every event, and the event a mask would change is masked in its values, so it stays JSON."""
    token_file = tmp_path / "token"
    token_file.write_text(secret)

    async def scenario():
        source = Running(args_for(emulator, token_file=str(token_file)))
        await source.take(1)  # the token's creation
        token_file.write_text("{ token : Bearer %s\n" % secret)
        refused = await source.take_until(lambda event: "tfe_audit_source_error" in event)
        emulator.add_event(ORG, auth={"description": "a token : {"}, resource={"type": "authentication_token"})
        token_file.write_text(secret)
        events = await source.take_until(lambda event: "tfe_audit" in event)
        await source.stop()
        return refused, events

    refused, events = run(scenario())
    assert control(refused, "tfe_audit_source_error")[0]["kind"] == "token_file"
    audit = control(events, "tfe_audit")[0]
    assert audit["auth"]["description"] == "a token : {" and audit["resource"]["type"] == "authentication_token"
    assert secret not in json.dumps(events)


def test_an_event_the_source_cannot_make_is_delivered_as_it_came_and_the_source_goes_on(emulator, secret, monkeypatch):
    from ansible_collections.tfe.audit.plugins.plugin_utils import _source  # pylint: disable=import-outside-toplevel

    emulator.add_event(ORG, auth={"description": "break-me"})
    emulator.add_event(ORG)
    real = _source.inert_json

    def failing(text):
        if '"break-me"' in text:
            raise MemoryError("planted")
        return real(text)

    monkeypatch.setattr(_source, "inert_json", failing)
    events = first_events(args_for(emulator, secret), 3)
    unreadable = control(events, "tfe_audit_unreadable")
    assert len(unreadable) == 1 and "MemoryError" in unreadable[0]["reason"]
    assert b'"break-me"' in base64.b64decode(unreadable[0]["base64"]) and len(control(events, "tfe_audit")) == 2


def test_a_requests_older_than_2_28_is_refused_at_start(emulator, secret, monkeypatch):
    """requests 2.25 to 2.27 turn TLS verification off when CURL_CA_BUNDLE is empty: the token would go to anyone."""
    monkeypatch.setattr(_client, "REQUESTS_VERSION", "2.27.1")
    with pytest.raises(ValueError, match=r"requests 2\.27\.1 is too old.*requests >= 2\.28"):
        run(asyncio.wait_for(audit_trail.main(asyncio.Queue(1), args_for(emulator, secret)), 5))
    assert emulator.requests == []


@pytest.mark.parametrize("given, warned", [("token", True), ("token_file", False), ("environment", False)])
def test_a_literal_token_is_warned_about_at_start(emulator, secret, tmp_path, monkeypatch, caplog, given, warned):
    args = args_for(emulator)
    if given == "token":
        args["token"] = secret
    elif given == "token_file":
        (tmp_path / "token").write_text(secret)
        args["token_file"] = str(tmp_path / "token")
    else:
        monkeypatch.setenv("TFE_AUDIT_TRAIL_TOKEN", secret)

    async def scenario():
        source = Running(args)
        await source.take(1)
        await source.stop()

    run(scenario())
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("ansible-rulebook prints the arguments of its sources at -vv" in text for text in warnings) == warned


def test_an_event_that_cannot_be_read_comes_once_as_it_came_and_is_recorded(emulator, secret, tmp_path):
    """An event without a string id (docs/feed.md): its bytes base64-encoded under tfe_audit_unreadable, after the
    readable events; recorded, so a restart does not bring it again."""
    planted = planted_event(FORMS)
    planted["id"] = None
    with emulator._lock:  # pylint: disable=protected-access
        emulator._orgs[ORG].events.append((emulator._orgs[ORG].events[-1][0], "no-id", planted))  # pylint: disable=protected-access
    state = tmp_path / "state.json"
    args = args_for(emulator, secret, state_file=str(state))
    events = first_events(args, 2)
    assert "tfe_audit" in events[0] and list(events[1]) == ["tfe_audit_unreadable"]
    unreadable = events[1]["tfe_audit_unreadable"]
    assert json.loads(base64.b64decode(unreadable["base64"])) == planted and "id" in unreadable["reason"]
    assert templates_in(events[1], INSTALLED) == []
    assert events_within(args, 0.8) == []  # a restart does not bring it again


def test_an_event_dated_2099_comes_once_and_the_feed_goes_on_across_a_restart(emulator, secret, tmp_path):
    """The issue's case: such an event wedged the state at 2099; the next 10 events were dropped, then the source
    refused to start. Now it comes once, and the position stays where real events are."""
    emulator.add_event(ORG, timestamp="2099-01-01T00:00:00.000Z", id="far-ahead")
    state = tmp_path / "state.json"
    args = args_for(emulator, secret, state_file=str(state))
    first = first_events(args, 3)  # the token's own creation, the one from 2099, and the warning about it
    assert [event["tfe_audit"]["id"] for event in first if "tfe_audit" in event] == [trail(emulator)[0][1], "far-ahead"]
    warning = control(first, "tfe_audit_source_warning")
    assert len(warning) == 1 and warning[0]["kind"] == "ahead" and "far-ahead" in warning[0]["message"]
    emulator.seed_events(ORG, count=10, step_seconds=0.001)
    later = events_within(args, 1.5)  # a restart: it starts, and the 10 come, the 2099 one not again, nor its warning
    assert len(later) == 10 and "far-ahead" not in json.dumps(later)


def test_an_event_nested_too_deeply_to_decode_comes_once_unreadable_and_the_feed_goes_on(emulator, secret, tmp_path):
    """A JSON answer nested 5,000 deep terminated the rulebook (RecursionError). Now the event comes as it came."""
    emulator.seed_events(ORG, count=3)
    emulator.add_fault(method="GET", path="audit-trail", count=1, mangle=[{"nest": "data.0.resource.meta", "depth": 5000}])
    state = tmp_path / "state.json"
    args = args_for(emulator, secret, state_file=str(state))
    events = first_events(args, 4)
    assert control(events, "tfe_audit_source_error") == []
    unreadable = control(events, "tfe_audit_unreadable")
    assert len(unreadable) == 1 and b"[[[[" in base64.b64decode(unreadable[0]["base64"])
    assert emulator.fault_errors == []


BROKEN_PAGES = {
    "page 2 without pagination": dict(skip=1, mangle=[{"delete": "pagination"}]),
    "next_page null on page 2 of 3": dict(skip=1, mangle=[{"set": "pagination.next_page", "value": None}]),
    "an empty page 2 that names page 3": dict(skip=1, mangle=[{"set": "data", "value": []}]),
    "data that is not a list": dict(skip=1, mangle=[{"set": "data", "value": {"0": "event"}}]),
    "page 1 for every page": dict(count=None, ignore_page_number="echo"),
}


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("case", sorted(BROKEN_PAGES))
def test_a_broken_page_is_one_error_event_and_every_event_still_comes_once(emulator, secret, case, order):
    """A walk with a broken answer emits nothing of it and keeps the position; once the server answers well again,
    every event comes, each once (a page that named none after it ended the walk and lost the rest, once)."""
    emulator.set_listing(order=order)
    emulator.seed_events(ORG, count=25)
    emulator.add_fault(method="GET", path="audit-trail", **BROKEN_PAGES[case])
    since = format_time(datetime.now(timezone.utc) - timedelta(hours=1))

    async def scenario():
        source = Running(args_for(emulator, secret, page_size=10, since=since))
        events = await source.take_until(lambda event: "tfe_audit_source_error" in event)
        emulator.clear_faults()
        events += await source.take_until(lambda event: "tfe_audit_source_recovered" in event)
        events += await source.take(len(trail(emulator)))
        events += await source.quiet(0.5)
        await source.stop()
        return events

    events = run(scenario())
    errors = control(events, "tfe_audit_source_error")
    assert len(errors) == 1 and errors[0]["kind"] == "malformed", errors
    keys = [key(event) for event in events if "tfe_audit" in event]
    assert len(keys) == len(set(keys)) and sorted(keys) == trail(emulator)
