# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_dest: the export's file, its lock, and reconciling it with the cursor (also after a kill and a rotation)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
from datetime import timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor
from ansible_collections.tfe.audit.plugins.module_utils._dest import Dest, reconcile, scan_lines
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._feed import encode_line
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.trail import NOW, T0, ev, format_time

A = format_time(T0)


def ndjson(*events):
    return b"".join(encode_line(event) + b"\n" for event in events)


def test_dest_is_created_0600_only_when_written_and_locked(tmp_path):
    path = str(tmp_path / "events.ndjson")
    old = os.umask(0)
    try:
        with Dest(path) as dest:
            assert dest.fd is None and not os.path.exists(path)
            dest.create()
            dest.append([b"x\n"])
            with pytest.raises(FeedError, match="locked by another export"):
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
        with pytest.raises(FeedError, match="symbolic link"):
            Dest(str(link), check_mode)
    os.mkfifo(str(tmp_path / "fifo"))
    with pytest.raises(FeedError, match="not a regular file"):
        Dest(str(tmp_path / "fifo"))
    assert victim.read_text() == "precious\n"


def test_check_mode_dest_creates_nothing(tmp_path):
    with Dest(str(tmp_path / "new.ndjson"), check_mode=True) as dest:
        dest.create = None  # check mode never gets there
        assert dest.fd is None and dest.stat() is None
    assert os.listdir(str(tmp_path)) == []


def written(path, *events):
    """dest holding ``events`` and the cursor that wrote them."""
    with open(path, "wb") as handle:
        handle.write(ndjson(*events))
    info = os.stat(path)
    cursor = Cursor()
    for event in events:
        cursor.deliver(event["timestamp"], event["id"], "9999")
    cursor.finish_walk(format_time(NOW), None)
    cursor.dest, cursor.dest_size, cursor.dest_device, cursor.dest_inode = path, info.st_size, info.st_dev, info.st_ino
    return cursor


def reconciled(path, stored):
    info = os.stat(path) if os.path.exists(path) else None
    fd = os.open(path, os.O_RDONLY) if info else None
    try:
        return reconcile(path, info, fd, stored, "c.json", NOW)
    finally:
        if fd is not None:
            os.close(fd)


def test_reconcile_keeps_a_partial_line_only_inside_its_own_write(tmp_path):
    path = str(tmp_path / "d")
    stored = written(path, ev(0))
    size0 = stored.dest_size
    with open(path, "ab") as handle:
        handle.write(ndjson(ev(1)) + b'{"id": "ev-0000')
    with pytest.raises(FeedError, match="another program"):
        reconciled(path, stored)  # no write was pending
    stored.pending = {"from": size0, "to": os.path.getsize(path) + 100, "first": [ev(1)["timestamp"], "ev-00001"]}
    cursor, adopted, cut_to = reconciled(path, stored)
    assert adopted == 1 and cut_to == size0 + len(ndjson(ev(1)))
    assert cursor.newest == format_time(T0 + timedelta(seconds=1)) and cursor.covers(ev(1)["timestamp"], "ev-00001")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert scan_lines(fd, 0, os.path.getsize(path))[1] == cut_to
    finally:
        os.close(fd)


def killed_mid_append(path, lines):
    """A cursor recording a pending write of ev(1..9) of which ``lines`` reached dest, then the kill."""
    stored = written(path, ev(0))
    batch = [ev(i) for i in range(1, 10)]
    stored.pending = {"from": stored.dest_size, "to": stored.dest_size + len(ndjson(*batch)),
                      "first": [batch[0]["timestamp"], batch[0]["id"]]}
    with open(path, "ab") as handle:
        handle.write(ndjson(*batch[:lines]))
    return stored


@pytest.mark.parametrize("rotation", ["move-and-create", "move-only", "copy-and-truncate"])
def test_a_write_killed_and_then_rotated_is_reconciled_against_the_rotated_file(tmp_path, rotation):
    """The issue's case: kill while pending, rotate, rerun. What reached the rotated file is adopted, not repeated."""
    path = str(tmp_path / "audit.ndjson")
    stored = killed_mid_append(path, 4)
    before = open(path, "rb").read()
    if rotation == "copy-and-truncate":
        with open(path + ".1", "wb") as handle:
            handle.write(before)
        open(path, "r+b").truncate(0)
    else:
        os.rename(path, path + ".1")
        if rotation == "move-and-create":
            open(path, "wb").close()
    cursor, adopted, cut_to = reconciled(path, stored)
    assert adopted == 4 and cut_to is None and cursor.pending is None and cursor.dest_size == 0
    assert all(cursor.covers(ev(i)["timestamp"], ev(i)["id"]) for i in range(5))
    assert not cursor.covers(ev(5)["timestamp"], ev(5)["id"])
    assert open(path + ".1", "rb").read() == before  # the rotated file is only read


def test_a_rotated_file_that_cannot_be_found_stops_the_export_with_what_to_do(tmp_path):
    path = str(tmp_path / "audit.ndjson")
    stored = killed_mid_append(path, 4)
    os.rename(path, str(tmp_path / "elsewhere.ndjson.gz"))
    os.unlink(str(tmp_path / "elsewhere.ndjson.gz"))
    open(path, "wb").close()
    with pytest.raises(FeedError, match="the rotated file was not found") as caught:
        reconciled(path, stored)
    assert "Put the rotated file back" in str(caught.value) and "pending" in str(caught.value)


def test_a_copy_that_does_not_hold_the_write_is_not_taken_for_it(tmp_path):
    path = str(tmp_path / "audit.ndjson")
    stored = killed_mid_append(path, 4)
    with open(str(tmp_path / "other.ndjson"), "wb") as handle:
        handle.write(ndjson(ev(0), ev(7), ev(8)))  # same size class, other events at the recorded offset
    open(path, "r+b").truncate(0)
    with pytest.raises(FeedError, match="not found"):
        reconciled(path, stored)
