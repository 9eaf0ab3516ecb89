# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Audit trail export: event times, the resume cursor, the NDJSON writer and the page walker.

Private to the collection (leading underscore): free to change between releases.
No HTTP here: pages come from ``TfeClient.read_audit_trail`` (passed in as ``fetch``).

Design (also in the module's notes):

* The API's ``since`` is a time, and whether it is exclusive or inclusive is not documented. The
  :class:`Cursor` keeps the newest exported timestamp *and the ids exported at exactly that time*.
  Requests ask for ``since = cursor time - 1 ms`` (so events at the cursor time come back whatever
  the semantics, also with a server that truncates to the second) and drop every event that is
  older than the cursor time or whose id is in the boundary set.
* Pages are walked by time (keyset): after each page the next request starts from the new cursor,
  page 1. Only when a whole page adds nothing after the cursor time (more events share one
  timestamp than a page holds) does the walk go on with ``page[number]`` for the same ``since``.
  Keyset paging is immune to the retention window shifting page boundaries during a long export.
* Crash safety (roll forward): for each page, the lines are appended to ``dest`` and ``fsync``-ed,
  then the cursor (with the size and identity of ``dest``) is written atomically (temp file,
  ``fsync``, rename, ``fsync`` of the directory). A run that starts finds any complete lines after
  the size recorded in the cursor (written by a run killed before its cursor write), adopts them
  into the cursor instead of fetching them again, and cuts off a trailing partial line. Lines a
  forwarder may already have shipped are therefore never removed or written twice. If ``dest`` is
  not the file the cursor describes (rotated, replaced or truncated), the whole file is scanned
  the same way; lines the cursor already covers are ignored.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import re
import tempfile
from datetime import datetime, timedelta

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

try:
    from datetime import timezone

    UTC = timezone.utc
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps the import sanity test quiet
    UTC = None

CURSOR_FORMAT = "tfe.audit.audit_trail_cursor"
CURSOR_VERSION = 1
ONE_MS = timedelta(milliseconds=1)

_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
# How the API writes every timestamp: parsed by the C parser, 10x faster than the general path.
_API_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
# One encoder for every line (json.dumps with options builds a new one per call); events are trees.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


class ExportError(Exception):
    """Anything that stops an export that is not an API error: files, cursor, malformed events."""


# -- times -------------------------------------------------------------------------------------


def parse_time(value, what="timestamp"):
    """An RFC 3339 date-time into an aware UTC ``datetime`` with millisecond precision.

    Raises :class:`ExportError` (``what`` names the value in the message).
    """
    if isinstance(value, str) and _API_TIME.match(value):
        try:
            return datetime.fromisoformat(value[:23] + "+00:00")
        except ValueError:
            pass  # e.g. month 13: the general path below explains
    text = str(value).strip() if value is not None else ""
    match = _TIME.match(text)
    if not match:
        raise ExportError("%s must be an RFC 3339 date-time with a time zone offset or Z, got %r; "
                          "for example 2030-12-31T23:59:59.000Z" % (what, text))
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    millis = int((match.group(7) or "0")[:3].ljust(3, "0"))
    offset = match.group(8).upper()
    try:
        moment = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
        if offset != "Z":
            sign = 1 if offset[0] == "+" else -1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("invalid offset %s" % offset)
            moment -= sign * timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError) as exc:
        raise ExportError("%s %r is not a real date-time (%s)" % (what, text, exc))
    return moment


def format_time(moment):
    """As the API writes it: ``2030-12-31T23:59:59.123Z`` (UTC, milliseconds)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def event_key(event):
    """``(time, id)`` of an event from the API; :class:`ExportError` when it has neither."""
    if not isinstance(event, dict) or not event.get("id") or not event.get("timestamp"):
        raise ExportError("the audit trail returned an event without an id or a timestamp: %s"
                          % json.dumps(event, sort_keys=True)[:300])
    return parse_time(event["timestamp"], "event timestamp"), str(event["id"])


# -- the cursor --------------------------------------------------------------------------------


class Cursor:
    """The export position: newest timestamp exported, the ids exported at exactly that time,
    and where ``dest`` ended when it was written (size and file identity)."""

    def __init__(self, timestamp=None, ids=None, dest=None, dest_size=0, dest_device=None, dest_inode=None,
                 exported=0):
        self.timestamp = timestamp          # aware datetime or None (nothing exported yet)
        self.ids = set(ids or ())
        self.dest = dest
        self.dest_size = dest_size
        self.dest_device = dest_device
        self.dest_inode = dest_inode
        self.exported = exported            # events written over all runs (informational)

    def copy(self):
        return Cursor(self.timestamp, self.ids, self.dest, self.dest_size, self.dest_device, self.dest_inode,
                      self.exported)

    def covers(self, moment, event_id):
        """Whether the event (its time and id) was exported already (or lies before the cursor)."""
        if self.timestamp is None:
            return False
        return moment < self.timestamp or (moment == self.timestamp and event_id in self.ids)

    def advance(self, moment, event_id):
        """Record an exported event (events come oldest first)."""
        if self.timestamp is None or moment > self.timestamp:
            self.timestamp = moment
            self.ids = set([event_id])
        elif moment == self.timestamp:
            self.ids.add(event_id)
        self.exported += 1

    def advance_batch(self, batch):
        """Record a page's exported events: ``(time, id, ...)`` items, oldest first, none covered yet."""
        if not batch:
            return
        newest = batch[-1][0]
        at_newest = set(item[1] for item in batch if item[0] == newest)
        if newest == self.timestamp:
            self.ids.update(at_newest)
        elif self.timestamp is None or newest > self.timestamp:
            self.timestamp, self.ids = newest, at_newest
        self.exported += len(batch)

    def request_since(self, default=None):
        """The ``since`` to ask for: 1 ms before the cursor (inclusive-safe), else ``default``."""
        if self.timestamp is None:
            return default
        return format_time(self.timestamp - ONE_MS)

    @property
    def next_since(self):
        return format_time(self.timestamp) if self.timestamp is not None else None

    def to_dict(self):
        return {
            "format": CURSOR_FORMAT,
            "version": CURSOR_VERSION,
            "timestamp": self.next_since,
            "ids": sorted(self.ids),
            "dest": self.dest,
            "dest_size": self.dest_size,
            "dest_device": self.dest_device,
            "dest_inode": self.dest_inode,
            "exported": self.exported,
        }

    @classmethod
    def from_dict(cls, data, path="cursor"):
        if not isinstance(data, dict) or data.get("format") != CURSOR_FORMAT:
            raise ExportError("%s is not a tfe.audit audit trail cursor; point cursor_file at another path "
                              "or move the file away" % path)
        if data.get("version") != CURSOR_VERSION:
            raise ExportError("%s has cursor version %r; this collection reads version %s"
                              % (path, data.get("version"), CURSOR_VERSION))
        try:
            timestamp = parse_time(data["timestamp"], "%s timestamp" % path) if data.get("timestamp") else None
            ids = [str(item) for item in data.get("ids") or []]
            dest_size = int(data.get("dest_size") or 0)
            exported = int(data.get("exported") or 0)
        except (TypeError, ValueError) as exc:
            raise ExportError("%s is damaged (%s); move it away to export again from since" % (path, exc))
        return cls(timestamp, ids, data.get("dest"), dest_size, data.get("dest_device"), data.get("dest_inode"),
                   exported)

    def __eq__(self, other):
        return isinstance(other, Cursor) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other


def load_cursor(path):
    """The cursor stored at ``path``, or ``None`` when there is no such file."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ExportError("cannot read cursor_file %s: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ExportError("cursor_file %s is not JSON; point cursor_file at another path or move the file away"
                          % path)
    return Cursor.from_dict(data, "cursor_file %s" % path)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


def atomic_write(path, data):
    """Replace ``path`` with ``data`` (bytes): temp file in the same directory, fsync, rename, fsync dir.

    A new file gets the mode the umask gives (like ``open``); an existing file keeps its mode.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def save_cursor(path, cursor):
    try:
        atomic_write(path, (json.dumps(cursor.to_dict(), indent=1, sort_keys=True) + "\n").encode("utf-8"))
    except (IOError, OSError) as exc:
        raise ExportError("cannot write cursor_file %s: %s" % (path, exc.strerror or exc))


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- NDJSON ------------------------------------------------------------------------------------


def ndjson_lines(events):
    """Events as NDJSON, one bytes object: a line per event (compact JSON, the API's key order, UTF-8,
    ``\\n``-terminated)."""
    text = "\n".join(_ENCODE(event) for event in events)
    return (text + "\n").encode("utf-8") if text else b""


def ndjson_line(event):
    """One event as one line."""
    return ndjson_lines((event,))


class NdjsonWriter:
    """Appends pages of events to ``path``, one JSON object per line; ``fsync`` after each page.

    Holds an exclusive ``flock`` on the file while open, so two exports to the same file cannot interleave.
    """

    def __init__(self, path):
        self.path = path
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ExportError("cannot open dest %s for appending: %s" % (path, exc.strerror or exc))
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (IOError, OSError):
                os.close(self.fd)
                raise ExportError("dest %s is locked by another export; try again when it has finished" % path)

    def stat(self):
        return os.fstat(self.fd)

    def write_page(self, events):
        """Append the events and make them durable; returns the size of the file afterwards."""
        data = ndjson_lines(events)
        try:
            _write_all(self.fd, data)
            os.fsync(self.fd)
        except OSError as exc:
            raise ExportError("cannot append to dest %s: %s" % (self.path, exc.strerror or exc))
        return self.stat().st_size

    def truncate(self, size):
        try:
            os.ftruncate(self.fd, size)
            os.fsync(self.fd)
        except OSError as exc:
            raise ExportError("cannot truncate dest %s: %s" % (self.path, exc.strerror or exc))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)  # also releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def scan_tail(path, start):
    """Complete event lines of ``path`` from byte ``start``; returns ``(events, good_end)``.

    ``events`` is a list of ``(time, id)`` (keys only, never whole events: memory stays small);
    ``good_end`` is the offset just after the last line that is a complete event. Anything after
    it (a partial line from a killed run, or bytes that are not an event) is not trusted.
    """
    keys = []
    good_end = start
    with open(path, "rb") as handle:
        handle.seek(start)
        while True:
            line = handle.readline()
            if not line:
                break
            if not line.endswith(b"\n"):
                break
            try:
                keys.append(event_key(json.loads(line.decode("utf-8"))))
            except (ValueError, ExportError):
                break
            good_end += len(line)
    return keys, good_end


def recover(path, cursor, stat_result):
    """Roll the cursor forward over lines of ``dest`` a killed run wrote after its last cursor write.

    :param stat_result: ``os.stat`` of ``dest`` as it is now, or ``None`` when it does not exist.
    :returns: ``(cursor, adopted, keep_size)``: a new cursor covering those lines, how many events it
        adopted, and the size ``dest`` must be cut to (``None`` when nothing needs cutting).
    """
    cursor = cursor.copy()
    if stat_result is None:
        return cursor, 0, None
    same_file = (cursor.dest_device, cursor.dest_inode) == (stat_result.st_dev, stat_result.st_ino)
    start = cursor.dest_size if same_file and stat_result.st_size >= cursor.dest_size else 0
    if stat_result.st_size == start:
        cursor.dest_size, cursor.dest_device, cursor.dest_inode = start, stat_result.st_dev, stat_result.st_ino
        return cursor, 0, None
    keys, good_end = scan_tail(path, start)
    adopted = 0
    for moment, event_id in sorted(keys):
        if not cursor.covers(moment, event_id):
            cursor.advance(moment, event_id)
            adopted += 1
    cursor.dest_size, cursor.dest_device, cursor.dest_inode = good_end, stat_result.st_dev, stat_result.st_ino
    return cursor, adopted, (good_end if good_end < stat_result.st_size else None)


# -- walking the audit trail --------------------------------------------------------------------


class Page:
    """One response, reduced to what the export needs: the events after the cursor, in order."""

    def __init__(self, number, since, new_events, covered, total_count, last):
        self.number = number
        self.since = since
        self.new_events = new_events    # list of (time, id, event), oldest first
        self.covered = covered          # events in the response the cursor already covers
        self.total_count = total_count  # pagination.total_count for this since
        self.last = last                # no next page


def _split(body, cursor):
    """The events of one response after the cursor, oldest first, and how many it covers."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ExportError("the audit trail answered without a data list; is hostname an HCP Terraform host?")
    keyed = []
    for position, event in enumerate(body["data"]):
        moment, event_id = event_key(event)
        keyed.append((moment, position, event_id, event))
    keyed.sort()  # oldest first; ties keep the API's order (positions are unique: events never compared)
    new_events, seen, covered = [], set(), 0
    for moment, dummy, event_id, event in keyed:
        if cursor.covers(moment, event_id) or event_id in seen:
            covered += 1
            continue
        seen.add(event_id)
        new_events.append((moment, event_id, event))
    return new_events, covered


def walk(fetch, cursor, since=None, page_size=1000):
    """Yield a :class:`Page` per request, starting after ``cursor`` (else from ``since``).

    ``fetch(since, page, page_size)`` returns the decoded body of one request. The caller must
    ``cursor.advance`` every event it exports before asking for the next page: the next request
    starts from the cursor as it is then (keyset by time), with ``page[number]`` only used while a
    whole page brings nothing newer than the cursor's time. Stops after the API's last page.
    No reference to a page is kept while the next one is fetched.
    """
    number = 1
    basis = None
    while True:
        request_since = cursor.request_since(since)
        if (cursor.timestamp, request_since) != basis:
            basis, number = (cursor.timestamp, request_since), 1
        body = fetch(request_since, number, page_size)
        new_events, covered = _split(body, cursor)
        pagination = body.get("pagination") or {}
        del body
        last = not pagination.get("next_page") or (not new_events and not covered)
        total = pagination.get("total_count")
        page = Page(number, request_since, new_events, covered, total if isinstance(total, int) else None, last)
        del new_events
        yield page
        del page
        if last:
            return
        if (cursor.timestamp, cursor.request_since(since)) == basis:
            number += 1  # a whole page at the cursor's time: go on by page number
