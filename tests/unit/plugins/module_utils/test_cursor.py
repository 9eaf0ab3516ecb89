# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cursor: which events a feed delivered, the lookback, events dated ahead, and the cursor file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
from datetime import timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils._cursor import (
    Cursor,
    check_not_ahead,
    load_cursor,
    save_cursor,
)
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.trail import T0, format_time

A = format_time(T0)
B = format_time(T0 + timedelta(seconds=1))
FAR = format_time(T0 + timedelta(days=365))


def ms(offset):
    return format_time(T0 + timedelta(milliseconds=offset))


def test_a_position_covers_what_it_delivered_and_asks_one_millisecond_earlier():
    cursor = Cursor()
    assert cursor.request_since() is None and not cursor.covers(A, "a")
    cursor.deliver(A, "a", FAR)
    cursor.deliver(A, "b", FAR)
    cursor.finish_walk(B, None)
    assert cursor.covers(A, "a") and cursor.covers(A, "b") and not cursor.covers(A, "c")
    assert cursor.covers(ms(-1), "zzz") and not cursor.covers(ms(1), "a")
    assert cursor.request_since() == ms(-1) and cursor.newest == A and cursor.exported == 2
    cursor.deliver(B, "c", FAR)
    cursor.finish_walk(B, None)
    assert cursor.seen == {(B, "c")} and cursor.horizon == B


def test_a_since_position_covers_everything_at_its_time():
    since = Cursor.after("2030-01-02T04:04:05.678+01:00")
    assert since.covers(A, "any") and not since.covers(ms(1), "any")
    assert since.request_since() == A and since.newest == A
    assert Cursor.after(None).request_since() is None


def test_the_lookback_reaches_back_from_the_last_read_and_remembers_what_it_must():
    """Busy: the last read was 10 s after the newest event; a 1 min lookback asks from 50 s before the newest."""
    cursor = Cursor()
    for offset in range(0, 120000, 10000):  # an event every 10 s for 2 minutes
        cursor.deliver(ms(offset), "e%d" % offset, FAR)
    cursor.finish_walk(ms(120000), timedelta(minutes=1))
    assert cursor.newest == ms(110000) and cursor.horizon == ms(60000)
    assert min(cursor.seen)[0] == ms(60000) and len(cursor.seen) == 6
    assert cursor.request_since(timedelta(minutes=1)) == ms(59999)
    assert cursor.covers(ms(59999), "anything") and cursor.covers(ms(70000), "e70000")
    assert not cursor.covers(ms(70000), "late")  # listed late at a known time: delivered
    # Idle since: the last read is long after the newest event, so nothing before the newest can still appear.
    cursor.finish_walk(ms(3600000), timedelta(minutes=1))
    assert cursor.horizon == ms(110000) and cursor.seen == {(ms(110000), "e110000")}
    assert cursor.request_since(timedelta(minutes=1)) == ms(109999)


def test_a_longer_lookback_never_reaches_before_what_the_cursor_remembers():
    cursor = Cursor()
    cursor.deliver(ms(0), "a", FAR)
    cursor.finish_walk(ms(1000), None)
    assert cursor.horizon == ms(0)
    assert cursor.request_since(timedelta(hours=1)) == ms(-1)  # not an hour back: those ids are forgotten
    cursor.finish_walk(ms(2000), timedelta(hours=1))
    assert cursor.horizon == ms(0)  # the horizon never moves back


def test_an_event_dated_ahead_is_remembered_without_moving_the_position():
    cursor = Cursor()
    cursor.deliver(A, "real", FAR)
    assert cursor.deliver("2099-01-01T00:00:00.000Z", "odd", ms(5 * 60000)) is True
    cursor.finish_walk(ms(1000), timedelta(minutes=1))
    assert cursor.newest == A and cursor.covers("2099-01-01T00:00:00.000Z", "odd")
    assert cursor.request_since(timedelta(minutes=1)) == ms(1000 - 60000 - 1)  # the lookback, not 2099
    check_not_ahead(cursor, T0, "cursor_file x")  # the event ahead does not make the cursor ahead


def test_unreadable_events_are_remembered_until_the_retention_forgets_them():
    cursor = Cursor()
    cursor.deliver_unreadable("d1", A)
    assert cursor.covers_unreadable("d1") and cursor.exported == 1
    cursor.finish_walk(format_time(T0 + timedelta(days=14)), None)
    assert cursor.covers_unreadable("d1")
    cursor.finish_walk(format_time(T0 + timedelta(days=15, seconds=1)), None)
    assert not cursor.covers_unreadable("d1")


def test_cursor_round_trip(tmp_path):
    path = str(tmp_path / "cursor.json")
    assert load_cursor(path) is None
    cursor = Cursor(A, [(A, "b"), (B, "a")], B, B, {"d": A}, 5, "/x/dest", 123, 1, 2,
                    {"from": 123, "to": 456, "first": [B, "a"]})
    save_cursor(path, cursor)
    data = json.loads(open(path).read())
    assert data["seen"] == [[A, "b"], [B, "a"]] and data["pending"]["from"] == 123 and data["version"] == 3
    assert load_cursor(path) == cursor
    assert os.listdir(str(tmp_path)) == ["cursor.json"]  # no temp file left


def test_a_version_2_cursor_continues_where_it_stopped(tmp_path):
    path = tmp_path / "cursor.json"
    path.write_text(json.dumps({"format": "tfe.audit.audit_trail_cursor", "version": 2, "timestamp": A,
                                "ids": ["a", "b"], "dest": "/x", "dest_size": 9, "exported": 7, "pending": None}))
    cursor = load_cursor(str(path))
    assert cursor.covers(A, "a") and not cursor.covers(A, "c") and cursor.covers(ms(-1), "x")
    assert cursor.request_since() == ms(-1) and cursor.exported == 7 and cursor.dest_size == 9


def test_cursor_is_created_0600_whatever_the_umask_and_keeps_a_chosen_mode(tmp_path):
    path = str(tmp_path / "cursor.json")
    old = os.umask(0)
    try:
        save_cursor(path, Cursor())
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    save_cursor(path, Cursor.after(A))
    assert os.stat(path).st_mode & 0o777 == 0o640


@pytest.mark.parametrize("content, match", [
    (b"not json", "not a cursor"),
    (b"[" * 5000, "not a cursor"),
    (b'{"a": 1}', "not a tfe.audit audit trail cursor"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 99}', "version"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 2, "timestamp": "junk"}', "RFC 3339"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 3, "seen": [["9999-12-31T23:30:00-01:00", "a"]]}',
     "outside the years"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 3, "seen": [], "pending": {"from": "x"}}', "damaged"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 3, "seen": [], "exported": 1e999}', "damaged"),
    (b'{"format": "tfe.audit.audit_trail_cursor", "version": 3, "seen": [], "dest_inode": Infinity}', "damaged"),
])
def test_a_damaged_position_file_fails_clearly_in_the_words_of_the_caller(tmp_path, content, match):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(FeedError, match=match) as caught:
        load_cursor(str(path), "state_file")
    assert "state_file %s" % path in str(caught.value) and "cursor_file" not in str(caught.value)


def test_a_cursor_file_that_is_a_link_or_a_fifo_is_refused(tmp_path):
    target = tmp_path / "elsewhere.json"
    save_cursor(str(target), Cursor.after(A))
    link = tmp_path / "cursor.json"
    link.symlink_to(target)
    with pytest.raises(FeedError, match="symbolic link"):
        load_cursor(str(link))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(str(fifo))
    with pytest.raises(FeedError, match="not a regular file"):
        load_cursor(str(fifo))  # and it did not block


def test_a_cursor_ahead_of_the_clock_is_an_error_within_the_allowance_it_is_not():
    check_not_ahead(Cursor.after(format_time(T0 + timedelta(minutes=4))), T0, "cursor_file c")
    with pytest.raises(FeedError, match="later than now"):
        check_not_ahead(Cursor.after(format_time(T0 + timedelta(minutes=6))), T0, "cursor_file c")
