# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The export's ``dest``: the NDJSON file, its lock, and reconciling it with the cursor before a run writes.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import stat

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from ansible_collections.tfe.audit.plugins.module_utils import _time
from ansible_collections.tfe.audit.plugins.module_utils._cursor import FUTURE_ALLOWANCE, open_owned
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._feed import UNREADABLE
from ansible_collections.tfe.audit.plugins.module_utils._files import write_all


class Dest:
    """``dest`` opened for appending, never through a symbolic link, under an exclusive ``flock`` so that two
    exports cannot interleave (shared in check mode). ``fd`` is ``None`` while the file does not exist:
    :meth:`create` makes it (0600, whatever the umask) once the run knows it will write."""

    def __init__(self, path, check_mode=False):
        self.path, self.check_mode, self.fd = path, check_mode, None
        try:
            self._lock(open_owned(path, os.O_RDONLY if check_mode else os.O_RDWR | os.O_APPEND, "dest"))
        except OSError:
            pass  # it does not exist (yet)

    def create(self):
        if self.fd is not None:
            return
        try:
            fd = open_owned(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, "dest")
            os.fchmod(fd, 0o600)  # the events name people, teams and resources
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise FeedError("cannot create dest %s: %s" % (self.path, exc.strerror or exc))
            fd = open_owned(self.path, os.O_RDWR | os.O_APPEND, "dest")  # another export was first
        self._lock(fd)

    def _lock(self, fd):
        self.fd = fd
        if fcntl is not None:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.check_mode else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except OSError:
                self.close()
                raise FeedError("dest %s is locked by another export; try again when it has finished" % self.path)

    def stat(self):
        return os.fstat(self.fd) if self.fd is not None else None

    def append(self, chunks):
        """Append the byte chunks and make them durable; returns how many bytes were written."""
        written = 0
        try:
            for chunk in chunks:
                write_all(self.fd, chunk)
                written += len(chunk)
            os.fsync(self.fd)
        except OSError as exc:
            raise FeedError("cannot append to dest %s: %s" % (self.path, exc.strerror or exc))
        return written

    def truncate(self, size):
        try:
            os.ftruncate(self.fd, size)
            os.fsync(self.fd)
        except OSError as exc:
            raise FeedError("cannot truncate dest %s: %s" % (self.path, exc.strerror or exc))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)  # also releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def line_key(line):
    """``(time, id)`` of a line this export wrote, ``(None, digest)`` for an unreadable event's line; ValueError
    when it is not one."""
    record = json.loads(line.decode("utf-8"))
    if not isinstance(record, dict):
        raise ValueError("not an event")
    if UNREADABLE in record:
        return None, str(record[UNREADABLE]["sha256"])
    event_id = record["id"]
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        event_id = str(event_id)
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("no id")
    return _time.canonical_time(record["timestamp"]), event_id


def scan_lines(fd, start, end, limit=None):
    """The event lines of ``fd`` between ``start`` and ``end`` (the first ``limit`` of them, if given); returns
    ``(keys, good_end)``.

    ``keys`` are ``(time, id)`` in file order (keys only: memory stays small); ``good_end`` is the offset after the
    last complete event line. Anything after it (a partial line, or bytes that are not an event) is not an event
    this module can vouch for.
    """
    keys, good_end, buffered, offset = [], start, b"", start
    while offset < end:
        chunk = os.pread(fd, min(1 << 20, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        lines = (buffered + chunk).split(b"\n")
        buffered = lines.pop()
        for line in lines:
            try:
                keys.append(line_key(line))
            except (ValueError, KeyError, TypeError, RecursionError, _time.TimeError):
                return keys, good_end
            good_end += len(line) + 1
            if limit is not None and len(keys) >= limit:
                return keys, good_end
    return keys, good_end


def _adopt(cursor, keys, now):
    ahead_from = _time.format_time(now + FUTURE_ALLOWANCE)
    for moment, event_id in keys:
        if moment is None:
            if not cursor.covers_unreadable(event_id):
                cursor.deliver_unreadable(event_id, _time.format_time(now))
        elif not cursor.covers(moment, event_id):
            cursor.deliver(moment, event_id, ahead_from)


def _first_line_is(fd, offset, size, first):
    """Whether the file holds, at ``offset``, the complete line of the event ``first`` (a key as a list)."""
    if first is None or offset > size or (offset and os.pread(fd, 1, offset - 1) != b"\n"):
        return False
    keys, dummy = scan_lines(fd, offset, size, limit=1)
    return bool(keys) and list(keys[0]) == list(first)


def _rotated_copy(dest_path, cursor, dest_identity):
    """An open descriptor of the file that holds the interrupted write after dest was rotated, or ``None``.

    Looked for in dest's directory: the recorded file itself (rotated by moving it), else a copy holding the
    write's first line at the recorded offset (rotated by copying and truncating). Never opened for writing.
    """
    directory = os.path.dirname(os.path.abspath(dest_path))
    pending, recorded = cursor.pending, (cursor.dest_device, cursor.dest_inode)
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return None
    for by_identity in (True, False):
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            identity = (info.st_dev, info.st_ino)
            if not stat.S_ISREG(info.st_mode) or identity == dest_identity or (identity == recorded) != by_identity:
                continue
            try:
                fd = open_owned(entry.path, os.O_RDONLY, "the rotated dest")
            except (OSError, FeedError):
                continue
            if by_identity or _first_line_is(fd, pending["from"], info.st_size, pending.get("first")):
                return fd
            os.close(fd)
    return None


def _adopt_rotated(dest_path, cursor, cursor_file, dest_identity, now):
    """A run was killed while appending, and dest was rotated since: adopt what reached the rotated file."""
    fd = _rotated_copy(dest_path, cursor, dest_identity)
    if fd is None:
        pending = cursor.pending
        raise FeedError(
            "cursor_file %s records a write into dest that a run did not finish (bytes %d to %d of the file with inode "
            "%s, starting with the event %s), and dest %s has since been rotated; the rotated file was not found in "
            "%s, so the export cannot tell which of those events reached it. Nothing was written. Put the rotated "
            "file back into that directory (any name, uncompressed) and run again. If it is lost, delete the "
            "\"pending\" entry of cursor_file: those events are then exported again, and the ones that had reached "
            "the lost file are written twice." % (cursor_file, pending["from"], pending["to"], cursor.dest_inode,
                                                  pending.get("first"), dest_path, os.path.dirname(dest_path)))
    try:
        size = os.fstat(fd).st_size
        keys, dummy = scan_lines(fd, cursor.pending["from"], min(size, cursor.pending["to"]))
    finally:
        os.close(fd)
    _adopt(cursor, keys, now)
    return len(keys)


def reconcile(dest_path, dest_stat, fd, stored, cursor_file, now):
    """Check that ``dest`` is the file the cursor describes, before anything is fetched or written.

    :returns: ``(cursor, adopted, cut_to)``: the cursor to continue from (covering the lines a killed run appended
        after its last cursor write, also when dest was rotated since), how many events it adopted, and the size
        ``dest`` must be cut back to (its own partial last line), or ``None``.
    :raises FeedError: when ``dest`` holds content the cursor does not account for.
    """
    cursor = stored.copy()
    where = os.path.abspath(dest_path)
    fix = ("If dest is right, move cursor_file %s away (the next run exports again from since into dest); "
           "if cursor_file is right, point dest back at %s." % (cursor_file, cursor.dest))
    if cursor.dest and cursor.dest != where:
        raise FeedError("cursor_file %s belongs to the export into %s, not into dest %s. %s"
                        % (cursor_file, cursor.dest, where, fix))
    size = dest_stat.st_size if dest_stat is not None else 0
    identity = (dest_stat.st_dev, dest_stat.st_ino) if dest_stat is not None else None
    same_file = identity == (cursor.dest_device, cursor.dest_inode)
    pending = cursor.pending
    adopted = 0
    if pending is not None and not (same_file and size >= pending["from"] == cursor.dest_size):
        adopted = _adopt_rotated(dest_path, cursor, cursor_file, identity, now)
        cursor.pending = pending = None
    if size == 0:
        # Missing, new or emptied (rotated by move-and-create or copy-and-truncate): start at its beginning.
        cursor.dest_size, cursor.pending = 0, None
        cursor.dest_device, cursor.dest_inode = identity or (None, None)
        return cursor, adopted, None
    if not same_file:
        raise FeedError("dest %s is not the file cursor_file %s recorded (it was replaced) and it already holds "
                        "%d bytes that this export did not write there. %s" % (where, cursor_file, size, fix))
    if size == cursor.dest_size:
        cursor.pending = None
        return cursor, adopted, None
    if size < cursor.dest_size or pending is None or size > pending["to"]:
        raise FeedError("dest %s is %d bytes long, but cursor_file %s says this export ended it at byte %d and "
                        "wrote nothing since: another program changed it. Nothing was written. Give the export a "
                        "file of its own; %s" % (where, size, cursor_file, cursor.dest_size, fix))
    return _adopt_own(cursor, fd, size, cursor_file, where, now)


def _adopt_own(cursor, fd, size, cursor_file, where, now):
    """A run was killed while appending to this very file: what lies in the recorded range is ours."""
    keys, good_end = scan_lines(fd, cursor.dest_size, size)
    tail_is_partial = good_end < size and b"\n" not in os.pread(fd, size - good_end, good_end)
    if good_end < size and not tail_is_partial:
        raise FeedError("dest %s holds bytes at offset %d that are not a complete audit event, inside the range "
                        "this export was writing (cursor_file %s). Nothing was written; inspect the file"
                        % (where, good_end, cursor_file))
    _adopt(cursor, keys, now)
    cursor.dest_size, cursor.pending = good_end, None
    return cursor, len(keys), (good_end if tail_is_partial else None)
