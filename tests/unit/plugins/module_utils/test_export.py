# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_export: times, the cursor, files, the spool, the walk in every listing order, export and crash recovery.

No network: :class:`FakeTrail` plays the audit trail API in each reading the docs leave open.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.tfe.audit.plugins.module_utils import _export, _time
from ansible_collections.tfe.audit.plugins.module_utils._export import (
    Cursor,
    Dest,
    ExportError,
    Spool,
    canonical_time,
    export,
    format_time,
    load_cursor,
    ndjson_lines,
    parse_time,
    read_events,
    reconcile,
    save_cursor,
    scan_lines,
    walk,
)

UTC = _time.UTC
T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def ev(i, moment=None):
    moment = moment or T0 + timedelta(seconds=i)
    return {"id": "ev-%05d" % i, "version": "0", "type": "Resource", "timestamp": format_time(moment),
            "resource": {"id": "ws-%d" % i, "type": "workspace", "action": "create", "meta": None}}


# -- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("2030-01-02T03:04:05.678Z", T0),
    ("2030-01-02T03:04:05.6789Z", T0),
    ("2030-01-02T04:04:05.678+01:00", T0),
    ("2030-01-02t03:04:05.678z", T0),
    ("2030-01-02T03:04:05Z", T0.replace(microsecond=0)),
])
def test_parse_time_keeps_milliseconds_in_utc(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2030-01-02", "2030-02-30T00:00:00Z", "2030-01-02T03:04:05+25:00",
                                  "2030-02-30T00:00:00.000Z", "2030-13-01T00:00:00.000Z"])
def test_parse_time_rejects_junk(text):
    with pytest.raises(ExportError, match="since"):
        parse_time(text, "since")


def test_parse_time_fast_path_agrees_with_the_general_path():
    """The API's own form takes a shortcut; it must give what the general path gives."""
    for moment in (T0, T0.replace(microsecond=0), datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)):
        text = format_time(moment)
        fast = parse_time(text)
        general = parse_time(text.replace("T", " "))  # not the API form: the regex path
        assert fast == general == moment and fast.utcoffset() == timedelta(0)


def test_format_time_is_the_api_format():
    assert format_time(T0) == "2030-01-02T03:04:05.678Z"


# -- cursor ----------------------------------------------------------------------------------------

A = format_time(T0)
B = format_time(T0 + timedelta(seconds=1))


def test_cursor_covers_the_boundary_ids_and_asks_one_millisecond_earlier():
    cursor = Cursor()
    assert cursor.request_since() is None and not cursor.covers(A, "a")
    cursor.advance(A, "a")
    cursor.advance(A, "b")
    assert cursor.covers(A, "a") and cursor.covers(A, "b") and not cursor.covers(A, "c")
    assert cursor.covers(format_time(T0 - timedelta(milliseconds=1)), "zzz")
    assert not cursor.covers(format_time(T0 + timedelta(milliseconds=1)), "a")
    assert cursor.request_since() == "2030-01-02T03:04:05.677Z"
    cursor.advance(B, "c")
    assert cursor.ids == {"c"} and cursor.timestamp == B and cursor.exported == 3


def test_a_since_position_covers_everything_at_its_time():
    since = Cursor.after("2030-01-02T04:04:05.678+01:00")
    assert since.timestamp == A and since.covers(A, "any") and not since.covers(B, "any")
    assert since.request_since() == "2030-01-02T03:04:05.677Z"
    assert Cursor.after(None).timestamp is None


def test_cursor_round_trip(tmp_path):
    path = str(tmp_path / "cursor.json")
    assert load_cursor(path) is None
    cursor = Cursor(A, ["b", "a"], "/x/dest", 123, 1, 2, 5, {"from": 123, "to": 456})
    save_cursor(path, cursor)
    data = json.loads(open(path).read())
    assert data["ids"] == ["a", "b"] and data["timestamp"] == A and data["pending"] == {"from": 123, "to": 456}
    assert load_cursor(path) == cursor
    assert os.listdir(str(tmp_path)) == ["cursor.json"]  # no temp file left


def test_cursor_is_created_0600_whatever_the_umask_and_keeps_a_chosen_mode(tmp_path):
    path = str(tmp_path / "cursor.json")
    old = os.umask(0)
    try:
        save_cursor(path, Cursor())
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    save_cursor(path, Cursor(A, ["a"]))
    assert os.stat(path).st_mode & 0o777 == 0o640


@pytest.mark.parametrize("content, match", [
    (b"not json", "not JSON"),
    (b'{"a": 1}', "not a tfe.audit audit trail cursor"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 99}', "version"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 2, "timestamp": "junk"}', "RFC 3339"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 2, "pending": {"from": "x"}}', "damaged"),
])
def test_bad_cursor_files_fail_clearly(tmp_path, content, match):
    path = tmp_path / "cursor.json"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=match):
        load_cursor(str(path))


def test_a_cursor_file_that_is_a_link_or_a_fifo_is_refused(tmp_path):
    target = tmp_path / "elsewhere.json"
    save_cursor(str(target), Cursor(A, ["a"]))
    link = tmp_path / "cursor.json"
    link.symlink_to(target)
    with pytest.raises(ExportError, match="symbolic link"):
        load_cursor(str(link))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(str(fifo))
    with pytest.raises(ExportError, match="not a regular file"):
        load_cursor(str(fifo))  # and it did not block


# -- NDJSON ----------------------------------------------------------------------------------------


def test_ndjson_line_is_one_line_of_json():
    event = ev(1)
    event["resource"]["meta"] = {"note": "two\nlines", "name": "caf\u00e9", "odd": "\ud800"}
    line = ndjson_lines([event])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line.decode("utf-8")) == event
    assert "café".encode("utf-8") in line or b"caf\\u00e9" in line


def test_canonical_time_sorts_as_time():
    assert canonical_time("2030-01-02T04:04:05.6+01:00") == "2030-01-02T03:04:05.600Z"
    assert canonical_time("2030-01-02T03:04:05.678Z") == A
    with pytest.raises(ExportError):
        canonical_time("2030-02-30T00:00:00.000Z")


# -- dest ------------------------------------------------------------------------------------------


def test_dest_is_created_0600_only_when_written_and_locked(tmp_path):
    path = str(tmp_path / "events.ndjson")
    old = os.umask(0)
    try:
        with Dest(path) as dest:
            assert dest.fd is None and not os.path.exists(path)
            dest.create()
            dest.append([b"x\n"])
            with pytest.raises(ExportError, match="locked by another export"):
                Dest(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    Dest(path).close()  # the lock went with the first one


def test_dest_never_follows_a_link_or_blocks_on_a_fifo(tmp_path):
    victim = tmp_path / "victim.log"
    victim.write_text("precious\n")
    link = tmp_path / "events.ndjson"
    link.symlink_to(victim)
    for check_mode in (False, True):
        with pytest.raises(ExportError, match="symbolic link"):
            Dest(str(link), check_mode)
    os.mkfifo(str(tmp_path / "fifo"))
    with pytest.raises(ExportError, match="not a regular file"):
        Dest(str(tmp_path / "fifo"))
    assert victim.read_text() == "precious\n"


def test_check_mode_dest_creates_nothing(tmp_path):
    with Dest(str(tmp_path / "new.ndjson"), check_mode=True) as dest:
        dest.create = None  # check mode never gets there
        assert dest.fd is None and dest.stat() is None
    assert os.listdir(str(tmp_path)) == []


# -- the spool -------------------------------------------------------------------------------------


def key(moment, event_id):
    return moment.encode() + json.dumps(event_id).encode()


def test_spool_merges_runs_oldest_first_and_drops_repeats():
    with Spool() as spool:
        spool.add([(key(B, "b"), b"B"), (key(A, "a"), b"A")])
        spool.add([(key(A, "a"), b"A"), (key(A, "0"), b"0")])  # overlaps the first run
        spool.add([])
        spool.add([(key(B, "c"), b"C")])
        assert [line for dummy, line in spool.merged()] == [b"0", b"A", b"B", b"C"]
        assert list(spool.merged()) == list(spool.merged())  # read again, same answer


def test_spool_opens_only_the_runs_that_overlap(monkeypatch):
    """1000 pages of a newest-first listing: the merge reads at most two runs at a time."""
    open_runs, peak = [0], [0]
    real_next = _export._Run.next

    class Counted(_export._Run):
        def __init__(self, *args):
            super(Counted, self).__init__(*args)
            open_runs[0] += 1
            peak[0] = max(peak[0], open_runs[0])

        def next(self):
            item = real_next(self)
            if item is None:
                open_runs[0] -= 1
            return item

    monkeypatch.setattr(_export, "_Run", Counted)
    with Spool() as spool:
        for page in range(1000):
            start = T0 + timedelta(seconds=1000 - page)
            spool.add([(key(format_time(start + timedelta(milliseconds=i)), "%d-%d" % (page, i)), b"x")
                       for i in range(3)])
        assert sum(1 for dummy in spool.merged()) == 3000
    assert peak[0] <= 2


# -- the walk, in every reading the API docs leave open ---------------------------------------------


class FakeTrail:
    """The audit trail API in one reading of what its docs leave open.

    ``order``: ``newest`` or ``oldest`` first; ``ties``: events sharing a millisecond listed in
    ``insertion`` order (reversed with the listing) or by ``id``; ``inclusive``: ``since`` includes
    its own time; ``max_page_size``: the server's cap; ``before(trail, call)``: changes the trail
    before a request is answered (new events, retention).
    """

    def __init__(self, events=(), order="newest", ties="insertion", inclusive=False, max_page_size=None,
                 before=None):
        self.events = list(events)
        self.order, self.ties, self.inclusive = order, ties, inclusive
        self.max_page_size, self.before = max_page_size, before
        self.calls = []

    def listing(self):
        rank = dict((e["id"], n) for n, e in enumerate(self.events))
        tie = (lambda e: rank[e["id"]]) if self.ties == "insertion" else (lambda e: e["id"])
        ascending = sorted(self.events, key=lambda e: (parse_time(e["timestamp"]), tie(e)))
        if self.order == "oldest":
            return ascending
        if self.ties == "insertion":
            return ascending[::-1]
        return sorted(ascending, key=lambda e: (-parse_time(e["timestamp"]).timestamp(), e["id"]))

    def expire(self, count):
        for event in sorted(self.events, key=lambda e: parse_time(e["timestamp"]))[:count]:
            self.events.remove(event)

    def __call__(self, since, page, page_size):
        self.calls.append((since, page))
        if self.before:
            self.before(self, len(self.calls))
        size = min(page_size, self.max_page_size or page_size)
        moment = parse_time(since) if since else None
        selected = [e for e in self.listing() if moment is None or parse_time(e["timestamp"]) > moment
                    or (self.inclusive and parse_time(e["timestamp"]) == moment)]
        pages = max(1, -(-len(selected) // size))
        return {"data": selected[(page - 1) * size:page * size],
                "pagination": {"current_page": page, "prev_page": page - 1 or None,
                               "next_page": page + 1 if page < pages else None, "total_pages": pages,
                               "total_count": len(selected), "page_size": size}}


READINGS = [dict(order=order, ties=ties, inclusive=inclusive)
            for order in ("newest", "oldest") for ties in ("insertion", "id") for inclusive in (False, True)]


def collect(trail, cursor=None, page_size=1000):
    """The ids a walk would export, in export order, and the walk."""
    with Spool() as spool:
        seen = walk(trail, cursor or Cursor(), page_size, spool)
        return [_export.split_key(k)[1] for k, dummy in spool.merged()], seen


def in_time_order(events):
    return [e["id"] for e in sorted(events, key=lambda e: (canonical_time(e["timestamp"]), json.dumps(e["id"])))]


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: "-".join(str(v) for v in r.values()))
@pytest.mark.parametrize("page_size", [1, 7, 1000])
def test_walk_exports_every_event_once_oldest_first(reading, page_size):
    events = [ev(i) for i in range(40)] + [ev(100 + i, T0 + timedelta(seconds=20)) for i in range(15)]
    trail = FakeTrail(events, **reading)
    got, seen = collect(trail, page_size=page_size)
    assert got == in_time_order(events)
    expected_order = "unknown" if page_size == 1 else reading["order"] + "_first"
    assert seen.order == expected_order and seen.oldest == format_time(T0)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_walk_with_a_server_that_caps_the_page_size(order):
    trail = FakeTrail([ev(i) for i in range(95)], order=order, max_page_size=10)
    got, seen = collect(trail, page_size=1000)
    assert got == in_time_order(trail.events) and seen.pages >= 10


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: "-".join(str(v) for v in r.values()))
def test_walk_resumes_after_the_cursor_with_events_that_share_its_time(reading):
    trail = FakeTrail([ev(i) for i in range(5)], **reading)
    cursor = Cursor()
    for event_id in collect(trail, cursor)[0]:
        cursor.advance(canonical_time(next(e for e in trail.events if e["id"] == event_id)["timestamp"]), event_id)
    boundary = parse_time(trail.events[-1]["timestamp"])
    trail.events += [ev(10, boundary), ev(11, boundary), ev(12, boundary + timedelta(milliseconds=1))]
    assert collect(trail, cursor, page_size=2)[0] == ["ev-00010", "ev-00011", "ev-00012"]


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("inserted", [3, 10, 25])
def test_new_events_arriving_while_paging_are_never_lost_or_repeated(order, inserted):
    """New events push a newest-first listing along between two requests; two runs export each event once."""
    newest = [T0 + timedelta(seconds=60)]

    def arrive(trail, call):
        if call in (2, 4):
            for dummy in range(inserted):
                newest[0] += timedelta(milliseconds=7)
                trail.events.append(ev(len(trail.events) + 1000, newest[0]))

    trail = FakeTrail([ev(i) for i in range(50)], order=order, before=arrive)
    cursor = Cursor()
    first, dummy = collect(trail, cursor, page_size=10)
    for event_id in first:
        cursor.advance(canonical_time(next(e for e in trail.events if e["id"] == event_id)["timestamp"]), event_id)
    trail.before = None
    second, dummy = collect(trail, cursor, page_size=10)
    assert first + second == in_time_order(trail.events)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_events_leaving_retention_while_paging_do_not_shift_others_past_the_reader(order):
    """The oldest events expire between requests (a first run near the 14-day edge)."""
    expired = []

    def retention(trail, call):
        if call > 1:
            oldest = sorted(trail.events, key=lambda e: e["timestamp"])[:3]
            expired.extend(e["id"] for e in oldest)
            trail.expire(3)

    trail = FakeTrail([ev(i) for i in range(60)], order=order, before=retention)
    got, seen = collect(trail, page_size=10)
    survivors = in_time_order(trail.events)
    assert len(got) == len(set(got)) and set(survivors) <= set(got)
    assert got == [i for i in in_time_order([ev(n) for n in range(60)]) if i in set(got)]


def test_a_listing_that_changes_its_mind_is_walked_again_by_number():
    """Page 1 looks oldest first, page 2 newest first: the walk restarts by page number, nothing is lost."""

    def flip(trail, call):
        trail.order = "oldest" if call == 1 else "newest"

    trail = FakeTrail([ev(i) for i in range(30)], before=flip)
    got, seen = collect(trail, page_size=10)
    assert got == in_time_order(trail.events) and seen.order == "unordered"
    assert (None, 1) in trail.calls[1:]  # started again from the run's own since


def test_walk_refuses_a_server_that_ignores_the_page_number():
    def stuck(since, page, size):
        return {"data": [ev(1), ev(0)], "pagination": {"current_page": 1, "next_page": 2}}

    with pytest.raises(ExportError, match="answered page 1 when asked for page 2"):
        collect(stuck, page_size=2)


def test_walk_rejects_malformed_answers_without_echoing_them():
    with pytest.raises(ExportError, match="without a string id") as caught:
        collect(lambda since, page, size: {"data": [{"timestamp": "2030-01-01T00:00:00.000Z", "x": "secret"}]})
    assert "secret" not in str(caught.value)
    with pytest.raises(ExportError, match="without a data list"):
        collect(lambda since, page, size: {"errors": []})
    with pytest.raises(ExportError, match="RFC 3339"):
        collect(lambda since, page, size: {"data": [{"id": "a", "timestamp": "{{ lookup('pipe', 'id') }}"}]})


events_strategy = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2)), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.sampled_from(READINGS), st.integers(1, 9), st.integers(0, 40),
       st.one_of(st.none(), st.integers(1, 5)))
def test_property_two_runs_export_each_event_exactly_once_in_time_order(shape, reading, page_size, split, cap):
    """Any trail, any reading, any page size: a run, new events, a second run: each event once, in order."""
    events = [ev(n, T0 + timedelta(milliseconds=ms)) for n, (ms, dummy) in enumerate(shape)]
    trail = FakeTrail(events[:split], max_page_size=cap, **reading)
    cursor = Cursor()
    first = collect(trail, cursor, page_size)[0]
    for event_id in first:
        cursor.advance(canonical_time(next(e for e in trail.events if e["id"] == event_id)["timestamp"]), event_id)
    assert first == in_time_order(trail.events)
    newest = max([parse_time(e["timestamp"]) for e in trail.events] or [T0])
    trail.events += [ev(1000 + n, max(newest, T0 + timedelta(milliseconds=ms)) if late else
                     T0 + timedelta(milliseconds=ms + 13)) for n, (ms, late) in enumerate(shape[split:])]
    second = collect(trail, cursor, page_size)[0]
    assert first + second == in_time_order(trail.events)


# -- read_events (no dest) -------------------------------------------------------------------------

NOW = T0 + timedelta(days=1)


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
        result = read_events(trail, since, 7, 6, warnings.append, now=NOW)
        if not result["count"]:
            break
        pages.append(ids_of(result))
        since = result["next_since"]
    assert [i for page in pages for i in page] == in_time_order(events)
    assert [len(page) for page in pages] == [6, 6, 6, 2, 5]  # the five at one time are never split
    assert warnings == []


def test_max_events_keeps_a_group_larger_than_the_limit_whole():
    trail = FakeTrail([ev(i, T0) for i in range(8)] + [ev(9)])
    result = read_events(trail, None, 1000, 3, [].append, now=NOW)
    assert result["count"] == 8 and result["next_since"] == A


def test_since_is_strictly_after_whatever_the_server_does():
    for inclusive in (False, True):
        trail = FakeTrail([ev(i) for i in range(5)], inclusive=inclusive)
        result = read_events(trail, format_time(T0 + timedelta(seconds=2)), 1000, None, [].append, now=NOW)
        assert ids_of(result) == ["ev-00003", "ev-00004"]


# -- gaps ------------------------------------------------------------------------------------------


def test_a_position_older_than_the_retention_is_a_loud_gap():
    trail = FakeTrail([ev(i) for i in range(3)])
    warnings = []
    old = format_time(T0 - timedelta(days=15))
    result = read_events(trail, old, 1000, None, warnings.append, now=T0 + timedelta(hours=1))
    assert result["gap"] is True and result["gap_start"] == old and result["gap_end"] == A
    assert len(warnings) == 1 and "since is %s" % old in warnings[0] and "14 days" in warnings[0]
    assert "events between %s and %s may be lost" % (old, A) in warnings[0]

    fresh = read_events(trail, None, 1000, None, warnings.append, now=T0 + timedelta(days=30))
    assert fresh["gap"] is False and "gap_start" not in fresh and len(warnings) == 1  # a first run is no gap
    recent = read_events(trail, format_time(T0 - timedelta(days=13)), 1000, None, warnings.append, now=T0)
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


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("written", [0, 7, 250, "all"])
def test_a_run_killed_while_appending_is_completed_by_the_next(tmp_path, monkeypatch, order, written):
    trail = FakeTrail([ev(i) for i in range(30)], order=order)
    opts = options(tmp_path)
    run_export(FakeTrail(trail.events[:5], order=order), opts)
    real_append = Dest.append

    def append_then_die(self, chunks):
        data = b"".join(chunks)
        real_append(self, [data if written == "all" else data[:written]])
        raise Killed()

    monkeypatch.setattr(Dest, "append", append_then_die)
    with pytest.raises(Killed):
        run_export(trail, opts)
    monkeypatch.undo()
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
        with pytest.raises(ExportError, match="another program changed it") as caught:
            run_export(trail, opts, check_mode=check_mode)
        assert opts["cursor_file"] in str(caught.value)
    assert open(opts["dest"], "rb").read() == before


def test_a_cursor_pointed_at_another_dest_is_refused(tmp_path):
    trail = FakeTrail([ev(i) for i in range(5)])
    run_export(trail, options(tmp_path))
    other = tmp_path / "app.log"
    log = b"somebody else's log, which must never be cut\n"
    other.write_bytes(log)
    with pytest.raises(ExportError, match="belongs to the export into") as caught:
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
    with pytest.raises(ExportError, match="was replaced"):
        run_export(trail, opts)
    assert open(opts["dest"], "rb").read() == b"not ours\n"
    open(opts["dest"], "wb").close()  # rotated: a new, empty file
    trail.events.append(ev(7))
    assert run_export(trail, opts)["count"] == 1 and lines_of(opts["dest"]) == ["ev-00007"]


def test_existing_content_without_a_cursor_is_refused_not_duplicated(tmp_path):
    opts = options(tmp_path)
    with open(opts["dest"], "wb") as handle:
        handle.write(b'{"id": "an earlier export"}\n')
    with pytest.raises(ExportError, match="cursor_file .* does not exist"):
        run_export(FakeTrail([ev(1)]), opts)
    plain = options(tmp_path, cursor_file=None)  # dest alone appends after what is there, by design
    assert run_export(FakeTrail([ev(1)]), plain)["count"] == 1
    assert open(opts["dest"], "rb").read().startswith(b'{"id": "an earlier export"}\n')


def test_a_cursor_from_the_future_is_an_error(tmp_path):
    opts = options(tmp_path)
    save_cursor(opts["cursor_file"], Cursor(format_time(NOW + timedelta(days=365)), ["x"]))
    with pytest.raises(ExportError, match="later than now"):
        run_export(FakeTrail([ev(1)]), opts)
    save_cursor(opts["cursor_file"], Cursor(format_time(NOW + timedelta(minutes=1)), ["x"]))
    assert run_export(FakeTrail([ev(1)]), opts)["count"] == 0  # within the allowance for clock skew


def test_reconcile_keeps_a_partial_line_only_inside_its_own_write(tmp_path):
    path = str(tmp_path / "d")
    with open(path, "wb") as handle:
        handle.write(ndjson_lines([ev(0)]))
    st = os.stat(path)
    stored = Cursor(A, ["ev-00000"], path, st.st_size, st.st_dev, st.st_ino, 1)
    with open(path, "ab") as handle:
        handle.write(ndjson_lines([ev(1)]) + b'{"id": "ev-0000')
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ExportError, match="another program"):
            reconcile(path, os.stat(path), fd, stored, "c.json")  # no write was pending
        stored.pending = {"from": st.st_size, "to": size + 100}
        cursor, adopted, cut_to = reconcile(path, os.stat(path), fd, stored, "c.json")
        assert adopted == 1 and cut_to == st.st_size + len(ndjson_lines([ev(1)]))
        assert cursor.timestamp == format_time(T0 + timedelta(seconds=1)) and cursor.ids == {"ev-00001"}
        assert scan_lines(fd, 0, size)[1] == cut_to
    finally:
        os.close(fd)
