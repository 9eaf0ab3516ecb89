# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_export: read the audit trail into the result, or export it to a file, each event once; crash recovery."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import stat
import zlib
from datetime import timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor, load_cursor, save_cursor
from ansible_collections.tfe.audit.plugins.module_utils._dest import Dest
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._export import export, read_events
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.trail import (
    NOW,
    T0,
    FakeTrail,
    ev,
    format_time,
    in_time_order,
    parse_time,
)

A = format_time(T0)


# -- read_events (no dest) -------------------------------------------------------------------------


def read(trail, since, page_size=1000, max_events=None, warn=None, now=NOW, **options):
    options.update(since=since, page_size=page_size, max_events=max_events)
    return read_events(trail, options, warn or [].append, now=now)


def ids_of(result):
    return [e["id"] for e in result["events"]]


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_max_events_returns_the_oldest_and_next_since_continues_without_a_gap(order):
    events = [ev(i) for i in range(20)] + [ev(100 + i, T0 + timedelta(seconds=20)) for i in range(5)]
    trail = FakeTrail(events, order=order)
    warnings = []
    pages = []
    since = None
    while True:
        result = read(trail, since, 7, 6, warnings.append, now=NOW)
        if not result["count"]:
            break
        pages.append(ids_of(result))
        since = result["next_since"]
    assert [i for page in pages for i in page] == in_time_order(events)
    assert [len(page) for page in pages] == [6, 6, 6, 2, 5]  # the five at one time are never split
    assert warnings == []


def test_max_events_keeps_a_group_larger_than_the_limit_whole():
    trail = FakeTrail([ev(i, T0) for i in range(8)] + [ev(9)])
    result = read(trail, None, 1000, 3, [].append, now=NOW)
    assert result["count"] == 8 and result["next_since"] == A


def test_since_is_strictly_after_whatever_the_server_does():
    for inclusive in (False, True):
        trail = FakeTrail([ev(i) for i in range(5)], inclusive=inclusive)
        result = read(trail, format_time(T0 + timedelta(seconds=2)), 1000, None, [].append, now=NOW)
        assert ids_of(result) == ["ev-00003", "ev-00004"]


# -- gaps ------------------------------------------------------------------------------------------


def test_a_position_older_than_the_retention_is_a_loud_gap():
    trail = FakeTrail([ev(i) for i in range(3)])
    warnings = []
    old = format_time(T0 - timedelta(days=15))
    result = read(trail, old, 1000, None, warnings.append, now=T0 + timedelta(hours=1))
    assert result["gap"] is True and result["gap_start"] == old and result["gap_end"] == A
    assert len(warnings) == 1 and "since is %s" % old in warnings[0] and "14 days" in warnings[0]
    assert "events between %s and %s may be lost" % (old, A) in warnings[0]

    fresh = read(trail, None, 1000, None, warnings.append, now=T0 + timedelta(days=30))
    assert fresh["gap"] is False and "gap_start" not in fresh and len(warnings) == 1  # a first run is no gap
    recent = read(trail, format_time(T0 - timedelta(days=13)), 1000, None, warnings.append, now=T0)
    assert recent["gap"] is False and len(warnings) == 1


# -- export (dest) -----------------------------------------------------------------------------------


def options(tmp_path, **kwargs):
    opts = dict(dest=str(tmp_path / "audit.ndjson"), cursor_file=str(tmp_path / "audit.cursor.json"),
                since=None, page_size=10, max_events=None)
    opts.update(kwargs)
    return opts


def run_export(trail, opts, check_mode=False, now=NOW, warnings=None):
    result = {}
    export(trail, opts, check_mode, (warnings if warnings is not None else []).append, result, now=now)
    return result


def lines_of(path):
    with open(path, "rb") as handle:
        return [json.loads(line)["id"] for line in handle.read().splitlines()]


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_export_appends_in_time_order_and_resumes(tmp_path, order):
    trail = FakeTrail([ev(i) for i in range(25)], order=order)
    opts = options(tmp_path)
    checked = run_export(trail, opts, check_mode=True)
    assert checked["count"] == 25 and checked["changed"] and os.listdir(str(tmp_path)) == []
    first = run_export(trail, opts)
    assert first["count"] == 25 and first["pages"] == 3 and first["listing_order"] == order + "_first"
    assert lines_of(opts["dest"]) == in_time_order(trail.events)
    assert stat.S_IMODE(os.stat(opts["dest"]).st_mode) == 0o600
    again = run_export(trail, opts)
    assert again["count"] == 0 and not again["changed"] and again["pages"] == 1
    trail.events += [ev(100 + i) for i in range(10)]
    assert run_export(trail, opts, check_mode=True)["count"] == 10
    assert run_export(trail, opts)["count"] == 10
    assert lines_of(opts["dest"]) == in_time_order(trail.events)
    cursor = load_cursor(opts["cursor_file"])
    assert cursor.pending is None and cursor.dest_size == os.path.getsize(opts["dest"])


def test_export_with_max_events_continues_where_it_stopped(tmp_path):
    trail = FakeTrail([ev(i) for i in range(25)])
    opts = options(tmp_path, max_events=10)
    counts = [run_export(trail, opts)["count"] for dummy in range(4)]
    assert counts == [10, 10, 5, 0] and lines_of(opts["dest"]) == in_time_order(trail.events)


def test_export_gap_warning_names_the_previous_export(tmp_path):
    trail = FakeTrail([ev(i) for i in range(3)])
    opts = options(tmp_path)
    run_export(trail, opts)
    trail.events.append(ev(50))
    warnings = []
    later = run_export(trail, opts, now=T0 + timedelta(days=15), warnings=warnings)
    assert later["gap"] and later["gap_start"] == format_time(T0 + timedelta(seconds=2))
    assert "the previous export ended at %s" % later["gap_start"] in warnings[0]


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the code catches it."""


def kill_while_appending(trail, opts, kept):
    """Run an export that dies in its first append, after writing only ``kept(data)`` of the bytes it meant to."""
    real_append = Dest.append

    def append_then_die(self, chunks):
        real_append(self, [kept(b"".join(chunks))])
        raise Killed()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Dest, "append", append_then_die)
        with pytest.raises(Killed):
            run_export(trail, opts)


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("written", [0, 7, 250, "all"])
def test_a_run_killed_while_appending_is_completed_by_the_next(tmp_path, order, written):
    trail = FakeTrail([ev(i) for i in range(30)], order=order)
    opts = options(tmp_path)
    run_export(FakeTrail(trail.events[:5], order=order), opts)
    kill_while_appending(trail, opts, lambda data: data if written == "all" else data[:written])
    result = run_export(trail, opts)
    assert lines_of(opts["dest"]) == in_time_order(trail.events)
    assert result["recovered"] + result["count"] == 25
    if written == "all":
        assert result["recovered"] == 25 and result["pages"] == 1


def test_lines_another_program_appended_stop_the_export_before_it_writes(tmp_path):
    trail = FakeTrail([ev(i) for i in range(5)])
    opts = options(tmp_path)
    run_export(trail, opts)
    with open(opts["dest"], "ab") as handle:
        handle.write(b"a line from a log shipper\n")
    before = open(opts["dest"], "rb").read()
    trail.events.append(ev(9))
    for check_mode in (True, False):
        with pytest.raises(FeedError, match="another program changed it") as caught:
            run_export(trail, opts, check_mode=check_mode)
        assert opts["cursor_file"] in str(caught.value)
    assert open(opts["dest"], "rb").read() == before


def test_a_cursor_pointed_at_another_dest_is_refused(tmp_path):
    trail = FakeTrail([ev(i) for i in range(5)])
    run_export(trail, options(tmp_path))
    other = tmp_path / "app.log"
    log = b"somebody else's log, which must never be cut\n"
    other.write_bytes(log)
    with pytest.raises(FeedError, match="belongs to the export into") as caught:
        run_export(trail, options(tmp_path, dest=str(other)))
    assert str(other) in str(caught.value) and str(tmp_path / "audit.ndjson") in str(caught.value)
    assert other.read_bytes() == log


def test_a_replaced_dest_with_content_is_refused_and_an_empty_one_is_a_rotation(tmp_path):
    trail = FakeTrail([ev(i) for i in range(5)])
    opts = options(tmp_path)
    run_export(trail, opts)
    os.rename(opts["dest"], opts["dest"] + ".1")
    with open(opts["dest"], "wb") as handle:
        handle.write(b"not ours\n")
    with pytest.raises(FeedError, match="was replaced"):
        run_export(trail, opts)
    assert open(opts["dest"], "rb").read() == b"not ours\n"
    open(opts["dest"], "wb").close()  # rotated: a new, empty file
    trail.events.append(ev(7))
    assert run_export(trail, opts)["count"] == 1 and lines_of(opts["dest"]) == ["ev-00007"]


def test_existing_content_without_a_cursor_is_refused_not_duplicated(tmp_path):
    opts = options(tmp_path)
    with open(opts["dest"], "wb") as handle:
        handle.write(b'{"id": "an earlier export"}\n')
    with pytest.raises(FeedError, match="cursor_file .* does not exist"):
        run_export(FakeTrail([ev(1)]), opts)
    plain = options(tmp_path, cursor_file=None)  # dest alone appends after what is there, by design
    assert run_export(FakeTrail([ev(1)]), plain)["count"] == 1
    assert open(opts["dest"], "rb").read().startswith(b'{"id": "an earlier export"}\n')


def test_a_cursor_from_the_future_is_an_error(tmp_path):
    opts = options(tmp_path)
    save_cursor(opts["cursor_file"], Cursor.after(format_time(NOW + timedelta(days=365))))
    with pytest.raises(FeedError, match="later than now"):
        run_export(FakeTrail([ev(1)]), opts)
    save_cursor(opts["cursor_file"], Cursor.after(format_time(NOW + timedelta(minutes=1))))
    assert run_export(FakeTrail([ev(1)]), opts)["count"] == 0  # within the allowance for clock skew


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_one_event_dated_in_2099_is_exported_once_warned_once_and_wedges_nothing(tmp_path, order):
    """The issue's case: the cursor no longer jumps to 2099, so later runs neither fail nor skip."""
    trail = FakeTrail([ev(i) for i in range(5)] + [ev(99, parse_time("2099-01-01T00:00:00.000Z"))], order=order)
    opts = options(tmp_path)
    warnings = []
    assert run_export(trail, opts, warnings=warnings)["count"] == 6
    assert len(warnings) == 1 and "ahead of this controller's clock" in warnings[0] and "ev-00099" in warnings[0]
    assert load_cursor(opts["cursor_file"]).newest == format_time(T0 + timedelta(seconds=4))
    trail.events += [ev(i) for i in range(5, 15)]
    later = run_export(trail, opts, now=NOW + timedelta(minutes=5), warnings=warnings)
    assert later["count"] == 10 and len(warnings) == 1
    assert lines_of(opts["dest"]) == in_time_order(trail.events[:6]) + in_time_order(trail.events[6:])


def no_id(moment):
    """An event that cannot be read (no id), listed at ``moment``: it has no time a later run could go on from."""
    return {"id": None, "timestamp": format_time(moment), "resource": {"type": "workspace", "action": "create"}}


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_an_unreadable_event_is_returned_by_the_run_that_lists_it_whatever_max_events(order):
    events = [ev(i) for i in range(10)] + [no_id(T0 + timedelta(milliseconds=1500))]
    trail = FakeTrail(events, order=order)
    runs, position = [], None
    for dummy in range(6):
        result = read(trail, None, 4, 3, position=position)
        runs.append([e.get("id", "unreadable" if "tfe_audit_unreadable" in e else "?") for e in result["events"]])
        position = result["next_position"]
    assert runs[0] == ["ev-00000", "ev-00001", "ev-00002", "unreadable"]  # with the run that listed it, not lost
    assert [i for run in runs for i in run] == in_time_order(events[:3]) + ["unreadable"] + in_time_order(events[3:10])


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_an_export_cut_by_max_events_writes_the_unreadable_event_it_listed(tmp_path, order):
    events = [ev(i) for i in range(10)] + [no_id(T0 + timedelta(milliseconds=1500))]
    trail = FakeTrail(events, order=order)
    opts = options(tmp_path, max_events=3, page_size=4)
    counts = [run_export(trail, opts)["count"] for dummy in range(5)]
    assert counts == [4, 3, 3, 1, 0]
    written = [json.loads(line) for line in open(opts["dest"], "rb").read().splitlines()]
    assert [e.get("id", "unreadable" if "tfe_audit_unreadable" in e else "?") for e in written] == (
        in_time_order(events[:3]) + ["unreadable"] + in_time_order(events[3:10]))


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_next_since_never_goes_to_an_event_dated_in_the_future(order):
    trail = FakeTrail([ev(i) for i in range(3)] + [ev(99, parse_time("2099-01-01T00:00:00.000Z"))], order=order)
    warnings = []
    result = read(trail, None, warn=warnings.append)
    assert result["count"] == 4 and result["next_since"] == format_time(T0 + timedelta(seconds=2))
    assert len(warnings) == 1 and "1 audit event(s) are dated more than 5 minutes ahead" in warnings[0]


def test_the_ahead_warning_counts_only_the_events_returned():
    trail = FakeTrail([ev(i, NOW + timedelta(days=i + 1)) for i in range(3)] + [ev(9)])
    warnings = []
    assert read(trail, None, max_events=2, warn=warnings.append)["count"] == 2
    assert len(warnings) == 1 and warnings[0].startswith("1 audit event(s)")


def test_the_earliest_since_does_not_overflow(tmp_path):
    trail = FakeTrail([ev(i) for i in range(3)])
    result = read(trail, "0001-01-01T00:00:00Z", 1000, None, [].append, now=NOW)
    assert result["count"] == 3 and trail.calls[0][0] == "0001-01-01T00:00:00.000Z"


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_a_kill_while_appending_then_a_rotation_does_not_duplicate_the_backlog(tmp_path, order):
    """The issue's case: kill with the cursor pending, move dest to dest.1, create an empty dest, run again."""
    trail = FakeTrail([ev(i) for i in range(300)], order=order)
    opts = options(tmp_path)
    run_export(FakeTrail(trail.events[:5], order=order), opts)
    kill_while_appending(trail, opts, lambda data: data[:len(data) // 2])
    os.rename(opts["dest"], opts["dest"] + ".1")
    open(opts["dest"], "wb").close()
    result = run_export(trail, opts)
    rotated = [json.loads(line)["id"] for line in open(opts["dest"] + ".1", "rb").read().splitlines()[:-1]]
    fresh = lines_of(opts["dest"])
    assert not set(rotated) & set(fresh), "events in both files"
    assert rotated + fresh == in_time_order(trail.events)
    assert result["recovered"] == len(rotated) - 5 and result["count"] == len(fresh)


# -- late events, the chain of positions, and a trail that says nothing ------------------------------------


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_a_chain_of_next_position_loses_nothing_listed_late_or_at_the_same_millisecond(order):
    """Runs every 10 s, events visible up to 50 s late, new events at the newest millisecond: each once."""
    events = [ev(i, T0 + timedelta(seconds=i // 3)) for i in range(300)]  # three per second
    delay = dict((e["id"], timedelta(seconds=(i * 37) % 50)) for i, e in enumerate(events))
    clock = [T0]
    trail = FakeTrail(events, order=order, visible=lambda e: parse_time(e["timestamp"]) + delay[e["id"]] <= clock[0])
    got, position = [], None
    while clock[0] < T0 + timedelta(seconds=200):
        result = read(trail, None, 7, 5, now=clock[0], position=position, lookback=timedelta(minutes=1))
        got += [e["id"] for e in result["events"]]
        position = result["next_position"]
        clock[0] += timedelta(seconds=2)
    assert sorted(got) == sorted(e["id"] for e in events) and len(got) == len(set(got))


def test_a_position_that_is_not_one_is_refused_without_echoing_it():
    overflowing = base64.urlsafe_b64encode(zlib.compress(b'{"seen": [], "exported": 1e999}')).decode("ascii")
    for text in ("not-a-position", "{{ lookup('pipe', 'id') }}", "eJwLycgsVgCiRIXi1KLMvMy8dAVFhcSSEoWCzLTMvJJEAF4WB5E",
                 overflowing):
        with pytest.raises(FeedError, match="position is not a position this module returned") as caught:
            read(FakeTrail([ev(1)]), None, position=text)
        assert text not in str(caught.value)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_an_export_with_a_lookback_writes_late_events_once(tmp_path, order):
    events = [ev(i, T0 + timedelta(seconds=i)) for i in range(120)]
    delay = dict((e["id"], timedelta(seconds=(i * 13) % 40)) for i, e in enumerate(events))
    clock = [T0]
    trail = FakeTrail(events, order=order, visible=lambda e: parse_time(e["timestamp"]) + delay[e["id"]] <= clock[0])
    opts = options(tmp_path, lookback=timedelta(minutes=1))
    while clock[0] < T0 + timedelta(seconds=200):
        run_export(trail, opts, now=clock[0])
        clock[0] += timedelta(seconds=5)
    written = lines_of(opts["dest"])
    assert sorted(written) == sorted(e["id"] for e in events) and len(written) == len(set(written))
    assert written != in_time_order(events)  # late ones came after newer ones: the reading was played


def test_a_trail_that_lists_nothing_where_events_were_delivered_warns(tmp_path):
    """A user or team token may be answered with an empty list; so may a trail that was turned off."""
    trail = FakeTrail([ev(i) for i in range(5)])
    opts = options(tmp_path)
    warnings = []
    run_export(trail, opts, warnings=warnings)
    assert warnings == []
    trail.events = []  # the same organization, read with a token that sees nothing
    run_export(trail, opts, warnings=warnings)
    assert len(warnings) == 1 and "not even the 1 already delivered" in warnings[0]
    assert "user or team token" in warnings[0] and "audit trail is turned off" in warnings[0]
    first_run = []
    read(FakeTrail([]), None, warn=first_run.append)
    assert len(first_run) == 1 and "no audit event at all for the 14 days" in first_run[0]
    since_given = []
    read(FakeTrail([]), format_time(T0), warn=since_given.append)
    assert since_given == []  # nothing after a given time is no sign of anything
