# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tfe_audit_trail_events: whole runs against the emulator, in both listing orders.

The emulator lists newest first by default (the order the public evidence shows) and oldest first
on request; every test that reads events runs in both (the ``order`` fixture).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc
import json
import os
import re
import time
import weakref
from datetime import datetime, timedelta

import pytest

from ansible.module_utils import basic

from ansible_collections.tfe.audit.plugins.module_utils import _client, _export, _time
from ansible_collections.tfe.audit.plugins.module_utils._client import TfeClient
from ansible_collections.tfe.audit.plugins.modules import tfe_audit_trail_events as module
from ansible_collections.tfe.audit.tests.unit.plugins.modules.module_runner import run_module

ORG = "acme"
UTC = _time.UTC
TRAIL = "/api/v2/organization/audit-trail"


@pytest.fixture(params=["newest", "oldest"])
def order(request, emulator):
    emulator.set_listing(order=request.param)
    return request.param


@pytest.fixture
def secret(emulator):
    """The organization's live audit trail token (its creation is itself an event)."""
    return emulator.regenerate_audit_trail_token(ORG)["token"]


@pytest.fixture
def files(tmp_path):
    return dict(dest=str(tmp_path / "audit.ndjson"), cursor_file=str(tmp_path / "audit.cursor.json"))


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: seen.append(message))
    return seen


def args_for(emulator, secret, **kwargs):
    args = dict(hostname=emulator.url, token=secret)
    args.update(kwargs)
    return args


def trail_ids(emulator):
    """Every event id the emulator holds, in time order (ties by id, as the export writes them)."""
    events = emulator._orgs[ORG].events  # pylint: disable=protected-access
    return [e[1] for e in sorted(events, key=lambda e: (_export.format_time(e[0]), json.dumps(e[1])))]


def dest_ids(path):
    with open(path) as handle:
        return [json.loads(line)["id"] for line in handle]


def run(emulator, secret, check_mode=False, **kwargs):
    result, failed = run_module(module.main, args_for(emulator, secret, **kwargs), check_mode=check_mode)
    assert not failed, result
    return result


def run_failed(emulator, secret, **kwargs):
    result, failed = run_module(module.main, args_for(emulator, secret, **kwargs))
    assert failed, result
    return result


def later(seconds=5):
    """A start time after everything seeded so far (seed_events defaults to times before now)."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def trail_gets(emulator):
    return [r for r in emulator.requests if r["path"] == TRAIL]


# -- without dest ----------------------------------------------------------------------------------


def test_returns_events_oldest_first_without_dest(emulator, secret, order):
    emulator.seed_events(ORG, 30)
    result = run(emulator, secret, page_size=7)
    assert result["changed"] is False and result["count"] == 31 == len(result["events"])
    assert [e["id"] for e in result["events"]] == trail_ids(emulator)
    assert result["pages"] == 5 and result["next_since"] == result["events"][-1]["timestamp"]
    assert result["listing_order"] == order + "_first" and result["gap"] is False

    since = run(emulator, secret, since=result["events"][19]["timestamp"])
    assert [e["id"] for e in since["events"]] == trail_ids(emulator)[20:]


def test_max_events_returns_the_oldest_and_next_since_goes_on_for_events_listed_in_time(emulator, secret, order):
    emulator.seed_events(ORG, 2505)
    capped = run(emulator, secret, max_events=50)
    assert [e["id"] for e in capped["events"]] == trail_ids(emulator)[:50]
    rest = run(emulator, secret, since=capped["next_since"])
    assert [e["id"] for e in capped["events"] + rest["events"]] == trail_ids(emulator)


def test_empty_trail_with_since(emulator, secret):
    result = run(emulator, secret, since=later())
    assert result["count"] == 0 and result["events"] == [] and result["next_since"] is not None


# -- export: the whole trail, each event once, in time order -------------------------------------------


def test_export_2506_events_newest_or_oldest_first_each_once(emulator, secret, files, order):
    emulator.seed_events(ORG, 2505)
    emulator.clear_requests()
    result = run(emulator, secret, page_size=1000, **files)
    assert result["changed"] and result["count"] == 2506 and result["pages"] == 3 and result["recovered"] == 0
    assert "events" not in result and result["listing_order"] == order + "_first"
    assert dest_ids(files["dest"]) == trail_ids(emulator)
    assert len(trail_gets(emulator)) == 3
    cursor = json.load(open(files["cursor_file"]))
    assert cursor["dest_size"] == os.path.getsize(files["dest"]) and cursor["newest"] == result["next_since"]
    assert cursor["pending"] is None and secret not in open(files["cursor_file"]).read()

    emulator.seed_events(ORG, 10, start=later(), step_seconds=0.001)
    again = run(emulator, secret, page_size=1000, **files)
    assert again["count"] == 10 and dest_ids(files["dest"]) == trail_ids(emulator)


def test_nothing_new_costs_one_request_and_changes_nothing(emulator, secret, files, order):
    emulator.seed_events(ORG, 50)
    first = run(emulator, secret, page_size=20, lookback="0", **files)
    assert first["count"] == 51
    cursor_before = open(files["cursor_file"]).read()
    emulator.clear_requests()
    again = run(emulator, secret, page_size=20, lookback="0", **files)
    assert not again["changed"] and again["count"] == 0 and again["pages"] == 1 == len(trail_gets(emulator))
    assert open(files["cursor_file"]).read() == cursor_before and again["next_since"] == first["next_since"]


def test_the_lookback_reads_again_only_what_may_still_come_late(emulator, secret, files, order):
    """With the default lookback (30m) a rerun reads the last 30 minutes again; older events cost nothing."""
    emulator.seed_events(ORG, 50, start=datetime.now(UTC) - timedelta(hours=2))
    emulator.seed_events(ORG, 30, step_seconds=1.0)
    assert run(emulator, secret, page_size=20, **files)["count"] == 81
    emulator.clear_requests()
    again = run(emulator, secret, page_size=20, **files)
    assert again["count"] == 0 and not again["changed"] and again["pages"] == len(trail_gets(emulator)) == 2


@pytest.mark.parametrize("lookback, exported", [("30m", 3), ("0", 0)])
def test_events_listed_a_minute_late_are_exported_once_within_the_lookback(emulator, secret, files, order, lookback,
                                                                           exported):
    emulator.seed_events(ORG, 30, step_seconds=1.0)
    assert run(emulator, secret, lookback=lookback, **files)["count"] == 31
    # Three events stamped 60 s ago show up now, behind events already exported.
    emulator.add_fault(method="GET", path="audit-trail", status=None, insert_events=3, backdate_ms=60000)
    assert run(emulator, secret, lookback=lookback, **files)["count"] == exported
    assert run(emulator, secret, lookback=lookback, **files)["count"] == 0
    if exported:
        assert sorted(dest_ids(files["dest"])) == sorted(trail_ids(emulator))


def test_events_sharing_the_boundary_timestamp(emulator, secret, files, order):
    boundary = later()
    emulator.seed_events(ORG, 10, timestamp=boundary)
    first = run(emulator, secret, max_events=5, **files)  # stops in the middle of one timestamp
    assert first["count"] == 5 and first["next_since"] == boundary
    newest = json.load(open(files["cursor_file"]))["newest"]
    assert len([key for key in json.load(open(files["cursor_file"]))["seen"] if key[0] == newest]) == 4  # the token event is older

    emulator.seed_events(ORG, 3, timestamp=boundary)  # late arrivals at the cursor's very timestamp
    second = run(emulator, secret, page_size=2, **files)
    assert second["count"] == 9
    ids = dest_ids(files["dest"])  # time order within each run's block; the late ones come in the second
    assert sorted(ids) == sorted(trail_ids(emulator)) and len(set(ids)) == 14


def test_more_events_at_one_time_than_a_page(emulator, secret, files, order):
    emulator.seed_events(ORG, 45, timestamp=later())
    result = run(emulator, secret, page_size=10, **files)
    assert result["count"] == 46 and dest_ids(files["dest"]) == trail_ids(emulator)


def test_since_is_used_until_the_cursor_has_a_position(emulator, secret, files, order):
    start = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    emulator.seed_events(ORG, 10, start=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    since = (start + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run(emulator, secret, since=since, **files)
    assert result["count"] == 6  # five seeded after since, and the token's creation
    again = run(emulator, secret, since="2000-01-01T00:00:00Z", **files)  # the cursor wins now
    assert again["count"] == 0


def test_dest_without_cursor_appends_everything_again(emulator, secret, tmp_path):
    emulator.seed_events(ORG, 3)
    dest = str(tmp_path / "plain.ndjson")
    assert run(emulator, secret, dest=dest)["count"] == 4
    assert run(emulator, secret, dest=dest)["count"] == 4
    assert len(dest_ids(dest)) == 8


def test_rotated_dest_gets_only_new_events(emulator, secret, files, order):
    emulator.seed_events(ORG, 5)
    run(emulator, secret, **files)
    os.rename(files["dest"], files["dest"] + ".1")
    emulator.seed_events(ORG, 4, start=later(), step_seconds=0.001)
    result = run(emulator, secret, **files)
    assert result["count"] == 4 and len(dest_ids(files["dest"])) == 4
    assert dest_ids(files["dest"] + ".1") + dest_ids(files["dest"]) == trail_ids(emulator)


# -- pages that move while a run reads them ------------------------------------------------------------


@pytest.mark.parametrize("inserted", [5, 1000, 1500])
def test_events_arriving_between_page_requests_are_exported_once(emulator, secret, files, order, inserted):
    """New events land between two page requests of one run (they shift newest-first pages)."""
    emulator.seed_events(ORG, 2505)
    emulator.add_fault(method="GET", path="audit-trail", status=None, skip=1, count=1, insert_events=inserted)
    first = run(emulator, secret, page_size=1000, **files)
    second = run(emulator, secret, page_size=1000, **files)
    assert first["count"] + second["count"] == 2506 + inserted
    assert dest_ids(files["dest"]) == trail_ids(emulator)


def test_events_leaving_retention_while_paging_shift_nothing_past_the_reader(emulator, secret, files, order):
    emulator.seed_events(ORG, 300)
    emulator.add_fault(method="GET", path="audit-trail", status=None, skip=1, count=5, expire_events=7)
    result = run(emulator, secret, page_size=50, **files)
    written = dest_ids(files["dest"])
    assert len(written) == len(set(written)) == result["count"]
    assert set(trail_ids(emulator)) <= set(written)  # every event still kept was exported


# -- check mode ------------------------------------------------------------------------------------


def test_check_mode_counts_exactly_and_writes_nothing(emulator, secret, files, order):
    emulator.seed_events(ORG, 2500)
    result = run(emulator, secret, check_mode=True, **files)
    assert result["changed"] and result["count"] == 2501
    assert not os.path.exists(files["dest"]) and not os.path.exists(files["cursor_file"])

    run(emulator, secret, **files)
    emulator.seed_events(ORG, 1500, start=later(), step_seconds=0.001)
    size = os.path.getsize(files["dest"])
    cursor = open(files["cursor_file"]).read()
    checked = run(emulator, secret, check_mode=True, page_size=1000, **files)
    assert checked["changed"] and checked["count"] == 1500
    assert os.path.getsize(files["dest"]) == size and open(files["cursor_file"]).read() == cursor
    assert run(emulator, secret, **files)["count"] == 1500

    nothing = run(emulator, secret, check_mode=True, **files)
    assert not nothing["changed"] and nothing["count"] == 0


# -- crash safety ----------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the module catches it."""


@pytest.mark.parametrize("partial", [False, True])
def test_killed_run_recovery_each_event_exactly_once(emulator, secret, files, monkeypatch, order, partial):
    emulator.seed_events(ORG, 2500)
    real_append = _export.Dest.append

    def append_some_then_die(self, chunks):
        data = next(iter(chunks))
        lines = data.split(b"\n")
        real_append(self, [b"\n".join(lines[:1200]) + b"\n" + (lines[1200][:17] if partial else b"")])
        raise Killed()

    monkeypatch.setattr(_export.Dest, "append", append_some_then_die)
    with pytest.raises(Killed):
        run_module(module.main, args_for(emulator, secret, page_size=1000, **files))
    monkeypatch.undo()

    emulator.seed_events(ORG, 10, start=later(), step_seconds=0.001)
    result = run(emulator, secret, page_size=1000, **files)
    assert result["recovered"] == 1200 and result["count"] == 2501 + 10 - 1200
    assert dest_ids(files["dest"]) == trail_ids(emulator)


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


def test_429_mid_export_is_retried(emulator, secret, files, order):
    emulator.seed_events(ORG, 2500)
    emulator.add_fault(method="GET", path="audit-trail", status=429, skip=1, count=2,
                       headers={"Retry-After": "0", "X-RateLimit-Reset": "0.05"})
    result = run(emulator, secret, page_size=1000, **files)
    assert result["count"] == 2501 and dest_ids(files["dest"]) == trail_ids(emulator)
    assert [r["status"] for r in trail_gets(emulator)].count(429) == 2


def test_429_that_does_not_end_writes_nothing_and_the_next_run_exports_all(emulator, secret, files, monkeypatch,
                                                                           order):
    monkeypatch.setattr(_client, "TOTAL_WAIT_CAP", 1.0)  # 60 s in real life; a 429 is waited out until then
    emulator.seed_events(ORG, 2500)
    emulator.add_fault(method="GET", path="audit-trail", status=429, skip=1, count=1000, headers={"Retry-After": "0"})
    result, failed = run_module(module.main, args_for(emulator, secret, page_size=1000, max_retries=1, **files))
    assert failed and "rate limited" in result["msg"] and result["count"] == 0 and not result["changed"]
    assert not os.path.exists(files["dest"]) and not os.path.exists(files["cursor_file"])
    monkeypatch.undo()
    emulator.clear_faults()
    again = run(emulator, secret, page_size=1000, **files)
    assert again["count"] == 2501 and dest_ids(files["dest"]) == trail_ids(emulator)


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


# -- gaps ------------------------------------------------------------------------------------------


def test_a_cursor_15_days_old_is_a_gap_and_a_first_run_is_not(emulator, secret, files, warnings, order):
    emulator.seed_events(ORG, 20)
    first = run(emulator, secret, **files)
    assert first["gap"] is False and warnings == []
    cursor = json.load(open(files["cursor_file"]))
    old = _export.format_time(datetime.now(UTC) - timedelta(days=15))
    cursor.update(newest=old, horizon=old, seen=[])
    with open(files["cursor_file"], "w") as handle:
        json.dump(cursor, handle)
    result = run(emulator, secret, **files)
    oldest = min(e[2]["timestamp"] for e in emulator._orgs[ORG].events)  # pylint: disable=protected-access
    assert result["gap"] is True and result["gap_start"] == old and result["gap_end"] == oldest
    assert len(warnings) == 1 and "the previous export ended at %s" % old in warnings[0]
    assert "HCP Terraform keeps 14 days" in warnings[0] and "more often than every 14 days" in warnings[0]


# -- memory ----------------------------------------------------------------------------------------


class TrackedEvent(dict):
    """A weak-referenceable event, so the test can count the events still alive."""

    __hash__ = object.__hash__


class TrackedBody(dict):
    __hash__ = object.__hash__


def test_nothing_of_a_page_is_alive_when_the_next_is_fetched(emulator, secret, files, monkeypatch, order):
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
    assert alive_at_fetch == [(0, 0)] * 21
    assert dest_ids(files["dest"]) == trail_ids(emulator)


# -- the chain of positions, and bad positions ---------------------------------------------------------


def test_a_chain_of_next_position_gets_events_listed_late_once(emulator, secret, order):
    """Every event is listed up to 1.5 s after its time (the emulator's late visibility): a chain of runs with
    next_position gets each once; the same chain through next_since loses some."""
    emulator.set_listing(visibility_delay_ms=1500)
    got, position = [], None
    for dummy in range(12):
        emulator.seed_events(ORG, 20, step_seconds=0.01)
        result = run(emulator, secret, **({"position": position} if position else {}))
        got += [e["id"] for e in result["events"]]
        position = result["next_position"]
        time.sleep(0.25)
    time.sleep(1.6)
    got += [e["id"] for e in run(emulator, secret, position=position)["events"]]
    assert sorted(got) == sorted(trail_ids(emulator)) and len(got) == len(set(got))
    # The reading is played: the same chain through next_since loses the events listed late.
    since, lost_chain = _time.format_time(datetime.now(UTC) - timedelta(seconds=1)), []
    for dummy in range(8):
        emulator.seed_events(ORG, 20, step_seconds=0.01)
        result = run(emulator, secret, since=since)
        lost_chain += [e["id"] for e in result["events"]]
        since = result["next_since"]
        time.sleep(0.25)
    time.sleep(1.6)
    lost_chain += [e["id"] for e in run(emulator, secret, since=since)["events"]]
    assert len(set(lost_chain)) < 160


@pytest.mark.parametrize("args, match", [
    (dict(position="{{ lookup('pipe', 'id') }}"), "position is not a position this module returned"),
    (dict(position="eJwLycgsVgCiRIXi1KLMvMy8dAVFhcSSEoWCzLTMvJJEAF4WB5E"), "position is not a position"),
    (dict(position="x", since="2030-01-01T00:00:00Z"), "mutually exclusive"),
    (dict(lookback="soon"), "lookback must be a duration"),
])
def test_bad_positions_and_lookbacks_fail_before_any_request(emulator, secret, tmp_path, args, match):
    emulator.clear_requests()
    result = run_failed(emulator, secret, **args)
    assert re.search(match, result["msg"]) and emulator.requests == []
    assert "lookup" not in result["msg"]


# -- tokens that cannot read the audit trail, and a trail turned off -------------------------------------


def token_of_kind(emulator, kind):
    if kind == "user":
        return emulator.add_user_token(ORG)
    return emulator.add_team_token(ORG, owners=kind == "owners team")


@pytest.mark.parametrize("kind", ["user", "team", "owners team"])
@pytest.mark.parametrize("reading", ["401", "404", "empty"])
def test_a_token_that_cannot_read_the_trail_never_looks_like_an_empty_trail(emulator, secret, files, warnings,
                                                                            kind, reading):
    """The docs say user and team tokens cannot read the audit trail, not with which answer: all three are played."""
    emulator.set_readings(user_token_trail=reading)
    emulator.seed_events(ORG, 5)
    assert run(emulator, secret, **files)["count"] == 6  # the export ran with the audit trail token before
    result, failed = run_module(module.main, args_for(emulator, token_of_kind(emulator, kind), **files))
    if reading == "empty":
        assert not failed and result["count"] == 0 and len(warnings) == 1
        assert "user or team token" in warnings[0] and "audit trail token or an organization token" in warnings[0]
    else:
        assert failed and "user or team token" in result["msg"].replace("user and team tokens", "user or team token")
        assert "organization token" in result["msg"]


@pytest.mark.parametrize("reading", ["empty", "404"])
def test_a_trail_turned_off_is_named(emulator, secret, files, warnings, reading):
    emulator.set_readings(disabled_trail=reading)
    emulator.seed_events(ORG, 5)
    run(emulator, secret, **files)
    emulator.set_audit_trail_enabled(ORG, False)
    result, failed = run_module(module.main, args_for(emulator, secret, **files))
    text = result["msg"] if failed else " ".join(warnings)
    assert failed == (reading == "404") and "audit trail turned off" in text.replace("trail is turned off",
                                                                                     "trail turned off")


def test_a_token_over_a_lowered_lifetime_policy_is_named(emulator, secret, files):
    emulator.set_token_ttl_policy(ORG, timedelta(days=30))  # the secret's default lifetime is two years
    result, failed = run_module(module.main, args_for(emulator, secret, **files))
    assert failed and result["error"]["status"] == 401 and "token lifetime policy" in result["msg"]
