# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_export: times, the cursor, the NDJSON writer, crash recovery and the page walker (no network)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
from datetime import datetime, timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils import _export
from ansible_collections.tfe.audit.plugins.module_utils._export import (
    Cursor,
    ExportError,
    NdjsonWriter,
    format_time,
    load_cursor,
    ndjson_line,
    parse_time,
    recover,
    save_cursor,
    scan_tail,
    walk,
)

UTC = _export.UTC
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


def test_cursor_boundary_ids_and_since():
    cursor = Cursor()
    assert cursor.request_since("2030-01-01T00:00:00.000Z") == "2030-01-01T00:00:00.000Z"
    assert not cursor.covers(T0, "a")
    cursor.advance(T0, "a")
    cursor.advance(T0, "b")
    assert cursor.covers(T0, "a") and cursor.covers(T0, "b") and not cursor.covers(T0, "c")
    assert cursor.covers(T0 - timedelta(milliseconds=1), "zzz")
    assert not cursor.covers(T0 + timedelta(milliseconds=1), "a")
    # inclusive-safe: one millisecond before the boundary
    assert cursor.request_since("ignored") == "2030-01-02T03:04:05.677Z"
    cursor.advance(T0 + timedelta(seconds=1), "c")
    assert cursor.ids == {"c"} and cursor.next_since == "2030-01-02T03:04:06.678Z" and cursor.exported == 3


def test_cursor_advance_batch_is_advance_per_event():
    later = T0 + timedelta(seconds=1)
    for start in (None, T0, later):
        one, batch = Cursor(), Cursor()
        if start is not None:
            one.advance(start, "old")
            batch.advance(start, "old")
        items = [(T0, "a", {}), (later, "b", {}), (later, "c", {})]
        items = [item for item in items if not one.covers(item[0], item[1])]
        for moment, event_id, dummy in items:
            one.advance(moment, event_id)
        batch.advance_batch(items)
        assert batch == one and batch.ids == one.ids
    empty = Cursor(T0, ["a"])
    empty.advance_batch([])
    assert empty == Cursor(T0, ["a"])


def test_cursor_round_trip(tmp_path):
    path = str(tmp_path / "cursor.json")
    assert load_cursor(path) is None
    cursor = Cursor(T0, ["b", "a"], "/x/dest", 123, 1, 2, 5)
    save_cursor(path, cursor)
    data = json.loads(open(path).read())
    assert data["ids"] == ["a", "b"] and data["timestamp"] == "2030-01-02T03:04:05.678Z"
    assert load_cursor(path) == cursor
    assert os.listdir(str(tmp_path)) == ["cursor.json"]  # no temp file left


def test_cursor_save_keeps_mode(tmp_path):
    path = str(tmp_path / "cursor.json")
    save_cursor(path, Cursor())
    os.chmod(path, 0o640)
    save_cursor(path, Cursor(T0, ["a"]))
    assert os.stat(path).st_mode & 0o777 == 0o640


@pytest.mark.parametrize("content, match", [
    (b"not json", "not JSON"),
    (b'{"a": 1}', "not a tfe.audit audit trail cursor"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 99}', "version"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 1, "timestamp": "junk"}', "RFC 3339"),
])
def test_bad_cursor_files_fail_clearly(tmp_path, content, match):
    path = tmp_path / "cursor.json"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=match):
        load_cursor(str(path))


# -- NDJSON ----------------------------------------------------------------------------------------


def test_ndjson_line_is_one_line_of_json():
    event = ev(1)
    event["resource"]["meta"] = {"note": "two\nlines", "name": "caf\u00e9"}
    line = ndjson_line(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line.decode("utf-8")) == event
    assert "café".encode("utf-8") in line


def test_writer_appends_pages_and_locks(tmp_path):
    path = str(tmp_path / "events.ndjson")
    with open(path, "w") as handle:
        handle.write('{"foreign": true}\n')
    with NdjsonWriter(path) as writer:
        size = writer.write_page(ev(i) for i in range(3))
        size = writer.write_page([ev(3)])
        assert size == os.path.getsize(path)
        with pytest.raises(ExportError, match="locked by another export"):
            NdjsonWriter(path)
    lines = open(path).read().splitlines()
    assert len(lines) == 5 and json.loads(lines[4])["id"] == "ev-00003"
    NdjsonWriter(path).close()  # the lock is gone with the first writer


def test_writer_reports_missing_directory(tmp_path):
    with pytest.raises(ExportError, match="cannot open dest"):
        NdjsonWriter(str(tmp_path / "missing" / "events.ndjson"))


# -- recovery (roll forward) -----------------------------------------------------------------------


def write(path, events, partial=b""):
    with open(path, "ab") as handle:
        for event in events:
            handle.write(ndjson_line(event))
        handle.write(partial)


def committed(path, events):
    """A cursor as the module commits it after writing ``events`` to ``path``."""
    cursor = Cursor()
    for event in events:
        cursor.advance(*_export.event_key(event))
    st = os.stat(path)
    cursor.dest_size, cursor.dest_device, cursor.dest_inode = st.st_size, st.st_dev, st.st_ino
    return cursor


def test_recover_nothing_to_do(tmp_path):
    path = str(tmp_path / "d")
    write(path, [ev(0), ev(1)])
    cursor = committed(path, [ev(0), ev(1)])
    again, adopted, keep = recover(path, cursor, os.stat(path))
    assert (adopted, keep) == (0, None) and again == cursor
    assert recover(path, cursor, None)[1:] == (0, None)


def test_recover_adopts_lines_written_after_the_cursor_and_cuts_a_partial_line(tmp_path):
    path = str(tmp_path / "d")
    write(path, [ev(0), ev(1)])
    cursor = committed(path, [ev(0), ev(1)])
    write(path, [ev(2), ev(3)], partial=b'{"id": "ev-00004", "timest')  # killed mid-line
    good = os.path.getsize(path) - len(b'{"id": "ev-00004", "timest')
    again, adopted, keep = recover(path, cursor, os.stat(path))
    assert adopted == 2 and keep == good and again.dest_size == good
    assert again.covers(*_export.event_key(ev(3))) and not again.covers(*_export.event_key(ev(4)))
    assert again.exported == 4


def test_recover_after_rotation_scans_the_new_file(tmp_path):
    path = str(tmp_path / "d")
    write(path, [ev(0), ev(1)])
    cursor = committed(path, [ev(0), ev(1)])
    os.rename(path, path + ".1")
    write(path, [ev(1), ev(2)])  # new file; a covered line is ignored, a new one adopted
    again, adopted, keep = recover(path, cursor, os.stat(path))
    assert adopted == 1 and keep is None and again.dest_size == os.path.getsize(path)
    assert again.dest_inode == os.stat(path).st_ino


def test_recover_after_copytruncate(tmp_path):
    path = str(tmp_path / "d")
    write(path, [ev(0), ev(1), ev(2)])
    cursor = committed(path, [ev(0), ev(1), ev(2)])
    open(path, "w").close()
    again, adopted, keep = recover(path, cursor, os.stat(path))
    assert (adopted, keep, again.dest_size) == (0, None, 0)


def test_scan_tail_stops_at_garbage(tmp_path):
    path = str(tmp_path / "d")
    write(path, [ev(0)], partial=b"\x00\x00\x00\n")
    write(path, [ev(1)])
    keys, good_end = scan_tail(path, 0)
    assert len(keys) == 1 and good_end == len(ndjson_line(ev(0)))


# -- the page walker -------------------------------------------------------------------------------


class FakeTrail:
    """The audit trail's paging: events after ``since`` (exclusive or inclusive), oldest first."""

    def __init__(self, events, inclusive=False):
        self.events = sorted(events, key=lambda e: (e["timestamp"], e["id"]))
        self.inclusive = inclusive
        self.calls = []

    def __call__(self, since, page, page_size):
        self.calls.append((since, page))
        moment = parse_time(since) if since else None
        selected = [e for e in self.events if moment is None or parse_time(e["timestamp"]) > moment
                    or (self.inclusive and parse_time(e["timestamp"]) == moment)]
        pages = max(1, -(-len(selected) // page_size))
        return {"data": selected[(page - 1) * page_size:page * page_size],
                "pagination": {"current_page": page, "next_page": page + 1 if page < pages else None,
                               "total_pages": pages, "total_count": len(selected)}}


def drain(fetch, cursor, since=None, page_size=1000):
    out = []
    for page in walk(fetch, cursor, since, page_size):
        for moment, event_id, event in page.new_events:
            cursor.advance(moment, event_id)
            out.append(event["id"])
    return out


@pytest.mark.parametrize("inclusive", [False, True])
def test_walk_pages_every_event_once(inclusive):
    trail = FakeTrail([ev(i) for i in range(2500)], inclusive)
    cursor = Cursor()
    assert drain(trail, cursor) == ["ev-%05d" % i for i in range(2500)]
    assert len(trail.calls) == 3


@pytest.mark.parametrize("inclusive", [False, True])
def test_walk_more_events_at_one_time_than_a_page_holds(inclusive):
    trail = FakeTrail([ev(i, T0) for i in range(25)] + [ev(100 + i) for i in range(3)], inclusive)
    cursor = Cursor()
    got = drain(trail, cursor, page_size=10)
    assert sorted(got) == sorted(e["id"] for e in trail.events) and len(got) == len(set(got)) == 28


@pytest.mark.parametrize("inclusive", [False, True])
def test_walk_resumes_with_events_that_share_the_boundary_time(inclusive):
    events = [ev(i) for i in range(5)]
    trail = FakeTrail(events, inclusive)
    cursor = Cursor()
    assert len(drain(trail, cursor)) == 5
    boundary = parse_time(events[-1]["timestamp"])
    trail.events += [ev(10, boundary), ev(11, boundary), ev(12, boundary + timedelta(milliseconds=1))]
    trail.events.sort(key=lambda e: (e["timestamp"], e["id"]))
    assert drain(trail, cursor) == ["ev-00010", "ev-00011", "ev-00012"]
    assert drain(trail, cursor) == []


def test_walk_from_since_and_stops_on_an_empty_trail():
    trail = FakeTrail([])
    assert drain(trail, Cursor(), since="2030-01-01T00:00:00.000Z") == []
    assert trail.calls == [("2030-01-01T00:00:00.000Z", 1)]


def test_walk_rejects_events_without_id():
    with pytest.raises(ExportError, match="without an id"):
        drain(lambda since, page, size: {"data": [{"timestamp": "2030-01-01T00:00:00.000Z"}]}, Cursor())
    with pytest.raises(ExportError, match="without a data list"):
        drain(lambda since, page, size: {"errors": []}, Cursor())
