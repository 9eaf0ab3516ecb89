# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tfe_audit_trail_events: whole runs against the emulator (pagination, resume, crashes, errors, memory)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc
import json
import os
import weakref
from datetime import datetime, timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils import _client, _export
from ansible_collections.tfe.audit.plugins.module_utils._client import TfeClient
from ansible_collections.tfe.audit.plugins.modules import tfe_audit_trail_events as module
from ansible_collections.tfe.audit.tests.unit.plugins.modules.module_runner import run_module

ORG = "acme"
UTC = _export.UTC


@pytest.fixture
def secret(emulator):
    """The organization's live audit trail token (its creation is itself an event)."""
    return emulator.regenerate_audit_trail_token(ORG)["token"]


@pytest.fixture
def files(tmp_path):
    return dict(dest=str(tmp_path / "audit.ndjson"), cursor_file=str(tmp_path / "audit.cursor.json"))


def args_for(emulator, secret, **kwargs):
    args = dict(hostname=emulator.url, token=secret)
    args.update(kwargs)
    return args


def trail_ids(emulator):
    """Every event id the emulator holds, oldest first (as the API orders them)."""
    return [e[1] for e in sorted(emulator._orgs[ORG].events, key=lambda e: (e[0], e[1]))]  # pylint: disable=protected-access


def dest_ids(path):
    with open(path) as handle:
        return [json.loads(line)["id"] for line in handle]


def run(emulator, secret, check_mode=False, **kwargs):
    result, failed = run_module(module.main, args_for(emulator, secret, **kwargs), check_mode=check_mode)
    assert not failed, result
    return result


def later(seconds=5):
    """A start time after everything seeded so far (seed_events defaults to times before now)."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def trail_gets(emulator):
    return [r for r in emulator.requests if r["path"] == "/api/v2/organization/audit-trail"]


# -- without dest ----------------------------------------------------------------------------------


def test_returns_events_without_dest(emulator, secret):
    emulator.seed_events(ORG, 30)
    result = run(emulator, secret, page_size=7)
    assert result["changed"] is False and result["count"] == 31 == len(result["events"])
    assert [e["id"] for e in result["events"]] == trail_ids(emulator)
    assert result["pages"] == 5 and result["next_since"] == result["events"][-1]["timestamp"]

    capped = run(emulator, secret, page_size=7, max_events=10)
    assert [e["id"] for e in capped["events"]] == trail_ids(emulator)[:10] and capped["pages"] == 2

    since = run(emulator, secret, since=result["events"][19]["timestamp"])
    assert [e["id"] for e in since["events"]] == trail_ids(emulator)[20:]


def test_empty_trail_with_since(emulator, secret):
    result = run(emulator, secret, since=later())
    assert result["count"] == 0 and result["events"] == [] and result["next_since"] is not None


# -- export: pagination, resume, boundary ------------------------------------------------------------


def test_export_2500_events_in_3_pages_each_once(emulator, secret, files):
    emulator.seed_events(ORG, 2500)
    emulator.clear_requests()
    result = run(emulator, secret, page_size=1000, **files)
    assert result["changed"] and result["count"] == 2501 and result["pages"] == 3 and result["recovered"] == 0
    assert "events" not in result
    assert dest_ids(files["dest"]) == trail_ids(emulator)
    assert len(trail_gets(emulator)) == 3
    cursor = json.load(open(files["cursor_file"]))
    assert cursor["dest_size"] == os.path.getsize(files["dest"]) and cursor["timestamp"] == result["next_since"]
    assert secret not in open(files["cursor_file"]).read()


def test_resume_after_new_events_and_idempotent(emulator, secret, files):
    emulator.seed_events(ORG, 50)
    first = run(emulator, secret, page_size=20, **files)
    assert first["count"] == 51
    cursor_before = open(files["cursor_file"]).read()

    again = run(emulator, secret, page_size=20, **files)
    assert not again["changed"] and again["count"] == 0 and again["pages"] == 1
    assert open(files["cursor_file"]).read() == cursor_before and again["next_since"] == first["next_since"]

    emulator.seed_events(ORG, 25, start=later())
    resumed = run(emulator, secret, page_size=20, **files)
    assert resumed["changed"] and resumed["count"] == 25
    assert dest_ids(files["dest"]) == trail_ids(emulator)


def test_events_sharing_the_boundary_timestamp(emulator, secret, files):
    boundary = later()
    emulator.seed_events(ORG, 10, timestamp=boundary)
    first = run(emulator, secret, max_events=5, **files)  # stops in the middle of one timestamp
    assert first["count"] == 5 and first["next_since"] == boundary
    assert len(json.load(open(files["cursor_file"]))["ids"]) == 4  # the token event is older

    emulator.seed_events(ORG, 3, timestamp=boundary)  # late arrivals at the cursor's very timestamp
    second = run(emulator, secret, page_size=2, **files)
    assert second["count"] == 9
    ids = dest_ids(files["dest"])
    assert sorted(ids) == sorted(trail_ids(emulator)) and len(ids) == len(set(ids)) == 14


def test_more_events_at_one_time_than_a_page(emulator, secret, files):
    emulator.seed_events(ORG, 45, timestamp=later())
    result = run(emulator, secret, page_size=10, **files)
    ids = dest_ids(files["dest"])
    assert result["count"] == 46 and sorted(ids) == sorted(trail_ids(emulator)) and len(set(ids)) == 46


def test_since_is_used_until_the_cursor_has_a_position(emulator, secret, files):
    emulator.seed_events(ORG, 10, start="2030-01-01T00:00:00Z")
    result = run(emulator, secret, since="2030-01-01T00:00:04Z", **files)
    assert result["count"] == 5
    again = run(emulator, secret, since="2000-01-01T00:00:00Z", **files)  # the cursor wins now
    assert again["count"] == 0


def test_dest_without_cursor_appends_everything_again(emulator, secret, tmp_path):
    emulator.seed_events(ORG, 3)
    dest = str(tmp_path / "plain.ndjson")
    assert run(emulator, secret, dest=dest)["count"] == 4
    assert run(emulator, secret, dest=dest)["count"] == 4
    assert len(dest_ids(dest)) == 8


def test_rotated_dest_gets_only_new_events(emulator, secret, files):
    emulator.seed_events(ORG, 5)
    run(emulator, secret, **files)
    os.rename(files["dest"], files["dest"] + ".1")
    emulator.seed_events(ORG, 4, start=later())
    result = run(emulator, secret, **files)
    assert result["count"] == 4 and len(dest_ids(files["dest"])) == 4
    assert dest_ids(files["dest"] + ".1") + dest_ids(files["dest"]) == trail_ids(emulator)


# -- check mode ------------------------------------------------------------------------------------


def test_check_mode_writes_nothing_and_counts(emulator, secret, files):
    emulator.seed_events(ORG, 2500)
    emulator.clear_requests()
    result = run(emulator, secret, check_mode=True, **files)
    assert result["changed"] and result["count"] == 2501 and result["pages"] == 1
    assert len(trail_gets(emulator)) == 1
    assert not os.path.exists(files["dest"]) and not os.path.exists(files["cursor_file"])

    run(emulator, secret, **files)
    emulator.seed_events(ORG, 1500, start=later())
    size = os.path.getsize(files["dest"])
    cursor = open(files["cursor_file"]).read()
    checked = run(emulator, secret, check_mode=True, page_size=1000, **files)
    assert checked["changed"] and checked["count"] == 1500
    assert os.path.getsize(files["dest"]) == size and open(files["cursor_file"]).read() == cursor

    run(emulator, secret, **files)
    nothing = run(emulator, secret, check_mode=True, **files)
    assert not nothing["changed"] and nothing["count"] == 0


# -- crash safety ----------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the module catches it."""


def crash_on_cursor_write(monkeypatch, after):
    """Let ``after`` cursor writes happen, then die right before the next one (lines already fsync-ed)."""
    real = module.save_cursor
    calls = []

    def save_then_die(path, cursor):
        calls.append(path)
        if len(calls) > after:
            raise Killed()
        real(path, cursor)

    monkeypatch.setattr(module, "save_cursor", save_then_die)


@pytest.mark.parametrize("partial_line", [b"", b'{"id":"half-writ'])
def test_killed_run_recovery_each_event_exactly_once(emulator, secret, files, monkeypatch, partial_line):
    emulator.seed_events(ORG, 2500)
    crash_on_cursor_write(monkeypatch, after=2)  # initial position + page 1 committed, page 2 written only
    with pytest.raises(Killed):
        run_module(module.main, args_for(emulator, secret, page_size=1000, **files))
    monkeypatch.undo()
    with open(files["dest"], "ab") as handle:
        handle.write(partial_line)  # killed in the middle of a line of a further page
    # page 2 starts at page 1's last timestamp (keyset), so it adds 999 new events
    assert len(dest_ids_lenient(files["dest"])) == 1999
    assert json.load(open(files["cursor_file"]))["exported"] == 1000

    emulator.seed_events(ORG, 10, start=later())
    result = run(emulator, secret, page_size=1000, **files)
    assert result["recovered"] == 999 and result["count"] == 2501 + 10 - 1999
    assert dest_ids(files["dest"]) == trail_ids(emulator)
    assert not open(files["dest"], "rb").read().endswith(partial_line or b"\0")


def dest_ids_lenient(path):
    with open(path, "rb") as handle:
        return [json.loads(line)["id"] for line in handle if line.endswith(b"\n")]


def test_killed_first_run_before_any_cursor_position(emulator, secret, files, monkeypatch):
    with open(files["dest"], "w") as handle:
        handle.write('{"id": "older export, not ours", "timestamp": "2000-01-01T00:00:00.000Z"}\n')
    emulator.seed_events(ORG, 30)
    crash_on_cursor_write(monkeypatch, after=1)  # initial position saved, page 1 written, then killed
    with pytest.raises(Killed):
        run_module(module.main, args_for(emulator, secret, page_size=10, **files))
    monkeypatch.undo()
    result = run(emulator, secret, page_size=10, **files)
    assert result["recovered"] == 10 and result["count"] == 21
    assert dest_ids(files["dest"])[1:] == trail_ids(emulator)


# -- errors ----------------------------------------------------------------------------------------


def test_401_with_a_stale_token(emulator, secret, files):
    emulator.regenerate_audit_trail_token(ORG)  # replaced outside Ansible: ours is stale now
    result, failed = run_module(module.main, args_for(emulator, secret, **files))
    assert failed and result["error"]["status"] == 401
    assert "token is invalid" in result["msg"] and "not an audit trail token or an organization token" in result["msg"]
    assert secret not in json.dumps(result)
    assert not os.path.exists(files["cursor_file"])


def test_user_token_is_refused_with_the_same_hint(emulator):
    result, failed = run_module(module.main, dict(hostname=emulator.url, token="admin-token-for-tests"))
    assert failed and "not an audit trail token" in result["msg"] and "admin-token-for-tests" not in result["msg"]


def test_404_without_entitlement(emulator):
    emulator.add_organization("free", entitlement=False)
    secret = emulator.regenerate_audit_trail_token("free")["token"]
    result, failed = run_module(module.main, dict(hostname=emulator.url, token=secret))
    assert failed and "entitlement" in result["msg"]


def fault_after_first_page(emulator, monkeypatch, **fault):
    real = TfeClient.read_audit_trail
    calls = []

    def spy(self, since=None, page=1, page_size=1000):
        calls.append(page)
        if len(calls) == 2:
            emulator.add_fault(method="GET", path="/organization/audit-trail", **fault)
        return real(self, since=since, page=page, page_size=page_size)

    monkeypatch.setattr(TfeClient, "read_audit_trail", spy)


def test_429_mid_export_is_retried(emulator, secret, files, monkeypatch):
    emulator.seed_events(ORG, 2500)
    fault_after_first_page(emulator, monkeypatch, status=429, count=2,
                           headers={"Retry-After": "0", "X-RateLimit-Reset": "0.05"})
    result = run(emulator, secret, page_size=1000, **files)
    assert result["count"] == 2501 and dest_ids(files["dest"]) == trail_ids(emulator)
    assert [r["status"] for r in trail_gets(emulator)].count(429) == 2


def test_429_that_does_not_end_keeps_what_was_written(emulator, secret, files, monkeypatch):
    monkeypatch.setattr(_client, "TOTAL_WAIT_CAP", 1.0)  # 60 s in real life; a 429 is waited out until then
    emulator.seed_events(ORG, 2500)
    fault_after_first_page(emulator, monkeypatch, status=429, count=1000, headers={"Retry-After": "0"})
    result, failed = run_module(module.main, args_for(emulator, secret, page_size=1000, max_retries=1, **files))
    assert failed and "rate limited" in result["msg"] and result["count"] == 1000 and result["changed"]
    monkeypatch.undo()
    emulator.clear_faults()
    again = run(emulator, secret, page_size=1000, **files)
    assert again["count"] == 1501 and dest_ids(files["dest"]) == trail_ids(emulator)


@pytest.mark.parametrize("args, match", [
    (dict(page_size=0), "page_size must be from 1 to 1000"),
    (dict(page_size=1001), "page_size must be from 1 to 1000"),
    (dict(max_events=0), "max_events must be 1 or more"),
    (dict(since="yesterday"), "since must be an RFC 3339 date-time"),
    (dict(cursor_file="/tmp/x.json"), "cursor_file"),
    (dict(dest="/nonexistent-dir-for-tests/a.ndjson"), "does not exist"),
])
def test_bad_options_fail_before_any_request(emulator, secret, args, match):
    emulator.clear_requests()
    result, failed = run_module(module.main, args_for(emulator, secret, **args))
    assert failed and match in result["msg"], result["msg"]
    assert trail_gets(emulator) == []


def test_damaged_cursor_fails_clearly(emulator, secret, files):
    with open(files["cursor_file"], "w") as handle:
        handle.write("{}")
    result, failed = run_module(module.main, args_for(emulator, secret, **files))
    assert failed and "not a tfe.audit audit trail cursor" in result["msg"]


# -- memory ----------------------------------------------------------------------------------------


class TrackedEvent(dict):
    """A weak-referenceable event, so the test can count the events still alive."""

    __hash__ = object.__hash__


class TrackedBody(dict):
    __hash__ = object.__hash__


def test_memory_bounded_to_one_page(emulator, secret, files, monkeypatch):
    emulator.seed_events(ORG, 20000, step_seconds=0.5)
    emulator.set_rate_limit(0)
    live_events = weakref.WeakSet()
    live_bodies = weakref.WeakSet()
    alive_at_fetch = []
    real = TfeClient.read_audit_trail

    def spy(self, since=None, page=1, page_size=1000):
        gc.collect()
        alive_at_fetch.append((len(live_bodies), len(live_events)))
        body = real(self, since=since, page=page, page_size=page_size)
        tracked = TrackedBody(body)
        tracked["data"] = [TrackedEvent(event) for event in body["data"]]
        live_events.update(tracked["data"])
        live_bodies.add(tracked)
        return tracked

    monkeypatch.setattr(TfeClient, "read_audit_trail", spy)
    result = run(emulator, secret, page_size=1000, **files)
    assert result["count"] == 20001 and result["pages"] == 21
    # When the next page is fetched, nothing of the previous one is still referenced.
    assert alive_at_fetch == [(0, 0)] * 21
    assert len(dest_ids(files["dest"])) == 20001
