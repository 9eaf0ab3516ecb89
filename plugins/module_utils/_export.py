# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit trail feed: read every event after a position exactly once, whatever order the API lists.

Private to the collection (leading underscore): free to change between releases.
No HTTP here: pages come from ``TfeClient.read_audit_trail`` (passed in as ``fetch``).

Why this is correct whatever the order
======================================

No HashiCorp document says in which order ``GET /api/v2/organization/audit-trail`` lists events,
and the public collectors read it as newest first. Nothing below depends on the order:

* **One ``since`` per run, pages by number.** A run asks for the events after its position (the
  cursor, else ``since``) and walks ``page[number]`` 1, 2, ... until ``pagination.next_page`` is
  null, with the same ``since`` throughout. What can move under a reader between two requests:

  - *New events.* In a newest-first listing they arrive at the front and push every event one
    place back, so a later page repeats events of the page before: repeats are dropped (below),
    nothing is skipped. In an oldest-first listing they arrive at the end: nothing moves.
  - *Events leaving the 14-day retention.* They leave the old end. Newest first that is the end
    of the listing: nothing still to be read moves. Oldest first it is the front, and every event
    moves forward, so a reader paging by number would skip some. This only happens while ``since``
    lies within a run's length of the 14-day edge (a first run, or after a gap). So once a page
    *shows* the listing is oldest first (two events on one page in rising time), the walk pages by
    time instead (keyset): the next request asks for the events after the newest one seen, page 1,
    which no removal at the front can shift. If a later page contradicts that, the walk starts
    again by number from the run's ``since`` (repeats are dropped; nothing is lost).
    The one case left: an oldest-first listing whose pages never hold two different times (``page_size: 1``,
    or pages of one millisecond each) cannot show its order, so it is paged by number, and events expiring
    from its front during such a run could move past the reader.
  - Events sharing one millisecond are taken to keep one order between requests (any order).

* **Repeats are dropped, and lines are written oldest first.** Each page's new events are sorted
  by (time, id) and appended to an anonymous spool file as one sorted run; the runs are then merged
  (:class:`Spool`), which yields each (time, id) once, oldest first. Only the runs that overlap
  the merge position are open at a time, so memory stays at about one page whatever the count.

* **The cursor moves only after the whole walk.** The cursor is the newest exported timestamp and
  the ids exported at exactly that time, so events that share it (including late ones) are
  exported once. A run asks for ``since`` 1 ms before its position, so the events at the position
  come back whatever the server does with ``since`` (exclusive, inclusive, truncated), and drops
  what the position covers. Nothing is written to ``dest`` before the walk is complete: a run that
  fails half-way leaves ``dest`` and the cursor as they were.

* **Crash safety (fsync, then the cursor).** Before appending, the cursor records the intended
  write (``pending``: the byte range of ``dest`` about to be written); then the lines are appended
  and ``fsync``-ed; then the cursor moves past them (temp file, ``fsync``, rename, ``fsync`` of the
  directory). A run killed in between leaves complete lines inside the recorded range: the next
  run adopts them into the cursor instead of fetching them again (they are in time order, a prefix
  of the merge), and cuts off a trailing partial line, which it knows it wrote itself. Nothing else
  in ``dest`` is ever cut: content the cursor does not account for stops the export before it
  writes, with a message naming both files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import heapq
import json
import os
import re
import tempfile
from datetime import timedelta

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from ansible_collections.tfe.audit.plugins.module_utils import _time
from ansible_collections.tfe.audit.plugins.module_utils._files import NotRegularFile, atomic_write, open_regular, write_all
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time, utcnow

CURSOR_FORMAT = "tfe.audit.audit_trail_cursor"
CURSOR_VERSION = 2
ONE_MS = timedelta(milliseconds=1)
RETENTION = timedelta(days=14)
# A cursor this far ahead of the controller's clock is an error, not "nothing new": it would skip
# every event until then. The allowance is for clock skew between the controller and HCP Terraform.
FUTURE_ALLOWANCE = timedelta(minutes=5)
# A server that never ends its listing must not keep a run going forever.
MAX_PAGES = 100000

# One encoder for every line (json.dumps with options builds a new one per call); events are trees.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode
_ENCODE_ASCII = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
# An id that JSON quotes as it is: printable ASCII without a quote or a backslash.
_PLAIN_ID = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z")

# Listing orders, as reported in results.
NEWEST_FIRST, OLDEST_FIRST, UNORDERED, UNKNOWN = "newest_first", "oldest_first", "unordered", "unknown"


class ExportError(Exception):
    """Anything that stops an export that is not an API error: files, cursor, malformed events."""


# -- times -------------------------------------------------------------------------------------


def parse_time(value, what="timestamp"):
    """:func:`_time.parse_time`, with :class:`ExportError` naming ``what``."""
    try:
        return _time.parse_time(value)
    except _time.TimeError as exc:
        raise ExportError("%s %s; for example 2030-12-31T23:59:59.000Z" % (what, exc))


def canonical_time(value, what="timestamp"):
    """:func:`_time.canonical_time`, with :class:`ExportError` naming ``what``."""
    try:
        return _time.canonical_time(value)
    except _time.TimeError as exc:
        raise ExportError("%s %s; for example 2030-12-31T23:59:59.000Z" % (what, exc))


def event_key(event):
    """``(canonical time, id)`` of an event from the API; :class:`ExportError` when it has neither."""
    if isinstance(event, dict):
        event_id, timestamp = event.get("id"), event.get("timestamp")
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            event_id = str(event_id)
        if isinstance(event_id, str) and event_id and timestamp:
            return canonical_time(timestamp, "event timestamp"), event_id
    # Never the whole event: the server's answer is untrusted and may be huge.
    raise ExportError("the audit trail returned an event without a string id or a timestamp (an %s)"
                      % type(event).__name__)


def encode_line(event):
    """One event as one NDJSON line (compact, the API's key order, UTF-8, no newline)."""
    try:
        return _ENCODE(event).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a hostile server: escape instead of failing
        return _ENCODE_ASCII(event).encode("ascii")


def ndjson_lines(events):
    """Events as NDJSON, one bytes object, each line ``\\n``-terminated."""
    return b"".join(encode_line(event) + b"\n" for event in events)


# -- the position ------------------------------------------------------------------------------


class Cursor:
    """Where an export stands: the newest exported timestamp and the ids exported at exactly that time
    (``through`` instead means every event at that time is behind, as for ``since``), plus where ``dest``
    ended when the cursor was written (size and file identity) and the write in progress, if any."""

    def __init__(self, timestamp=None, ids=None, dest=None, dest_size=0, dest_device=None, dest_inode=None,
                 exported=0, pending=None, through=False):
        self.timestamp = timestamp          # canonical time string, or None (nothing exported yet)
        self.ids = set(ids or ())
        self.through = through
        self.dest = dest
        self.dest_size = dest_size
        self.dest_device = dest_device
        self.dest_inode = dest_inode
        self.exported = exported            # events written over all runs (informational)
        self.pending = pending              # {"from": int, "to": int} while lines are being appended

    @classmethod
    def after(cls, since):
        """The position of the option ``since``: every event at or before it is behind."""
        return cls(canonical_time(since, "since"), through=True) if since else cls()

    def copy(self):
        return Cursor(self.timestamp, self.ids, self.dest, self.dest_size, self.dest_device, self.dest_inode,
                      self.exported, dict(self.pending) if self.pending else None, self.through)

    def covers(self, moment, event_id):
        """Whether the event (canonical time and id) is behind the position."""
        if self.timestamp is None or moment > self.timestamp:
            return False
        return moment < self.timestamp or self.through or event_id in self.ids

    def advance(self, moment, event_id):
        """Record an exported event; events come oldest first."""
        if self.timestamp is None or moment > self.timestamp:
            self.timestamp, self.ids, self.through = moment, set([event_id]), False
        elif moment == self.timestamp:
            self.ids.add(event_id)
        self.exported += 1

    def request_since(self):
        """The ``since`` to ask for: 1 ms before the position, so events at it come back whatever the
        server does with ``since``; the position then drops what it covers."""
        if self.timestamp is None:
            return None
        return format_time(parse_time(self.timestamp) - ONE_MS)

    def to_dict(self):
        return {
            "format": CURSOR_FORMAT,
            "version": CURSOR_VERSION,
            "timestamp": self.timestamp,
            "ids": sorted(self.ids),
            "dest": self.dest,
            "dest_size": self.dest_size,
            "dest_device": self.dest_device,
            "dest_inode": self.dest_inode,
            "pending": self.pending,
            "exported": self.exported,
        }

    @classmethod
    def from_dict(cls, data, path="cursor"):
        if not isinstance(data, dict) or data.get("format") != CURSOR_FORMAT:
            raise ExportError("%s is not a tfe.audit audit trail cursor; point cursor_file at another path "
                              "or move the file away" % path)
        if data.get("version") != CURSOR_VERSION:
            raise ExportError("%s has cursor version %r; this collection reads version %s. Move it away to export "
                              "again from since" % (path, data.get("version"), CURSOR_VERSION))
        try:
            timestamp = canonical_time(data["timestamp"], "%s timestamp" % path) if data.get("timestamp") else None
            ids = [item for item in data.get("ids") or [] if isinstance(item, str)]
            pending = data.get("pending")
            if pending is not None:
                pending = {"from": int(pending["from"]), "to": int(pending["to"])}
            cursor = cls(timestamp, ids, data.get("dest"), int(data.get("dest_size") or 0),
                         data.get("dest_device"), data.get("dest_inode"), int(data.get("exported") or 0), pending)
        except (TypeError, ValueError, KeyError, ExportError) as exc:
            raise ExportError("%s is damaged (%s); move it away to export again from since" % (path, exc))
        return cursor

    def __eq__(self, other):
        return isinstance(other, Cursor) and self.to_dict() == other.to_dict() and self.through == other.through

    def __ne__(self, other):
        return not self == other


# -- files ---------------------------------------------------------------------------------------

def _open_regular(path, flags, option):
    """:func:`_files.open_regular`, with :class:`ExportError` naming ``option``; ``OSError`` only for ENOENT."""
    try:
        return open_regular(path, flags)
    except NotRegularFile as exc:
        raise ExportError("%s %s; point %s at a regular file of its own (the export never follows a link there)"
                          % (option, exc, option))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        raise ExportError("cannot open %s %s: %s" % (option, path, exc.strerror or exc))


def load_cursor(path):
    """The cursor stored at ``path``, or ``None`` when there is no such file."""
    try:
        fd = _open_regular(path, os.O_RDONLY, "cursor_file")
    except OSError:  # ENOENT only: the rest became ExportError
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(1024 * 1024 + 1)
    except (IOError, OSError) as exc:
        raise ExportError("cannot read cursor_file %s: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ExportError("cursor_file %s is not JSON; point cursor_file at another path or move the file away"
                          % path)
    return Cursor.from_dict(data, "cursor_file %s" % path)


def save_cursor(path, cursor):
    try:
        atomic_write(path, (json.dumps(cursor.to_dict(), indent=1, sort_keys=True) + "\n").encode("utf-8"))
    except (IOError, OSError) as exc:
        raise ExportError("cannot write cursor_file %s: %s" % (path, exc.strerror or exc))


class Dest:
    """``dest`` opened for appending, never through a symbolic link, under an exclusive ``flock`` so that
    two exports cannot interleave (shared in check mode). ``fd`` is ``None`` while the file does not
    exist: :meth:`create` makes it (0600, whatever the umask) once the run knows it will write."""

    def __init__(self, path, check_mode=False):
        self.path, self.check_mode, self.fd = path, check_mode, None
        try:
            self._lock(_open_regular(path, os.O_RDONLY if check_mode else os.O_RDWR | os.O_APPEND, "dest"))
        except OSError:
            pass  # it does not exist (yet)

    def create(self):
        if self.fd is not None:
            return
        try:
            fd = _open_regular(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, "dest")
            os.fchmod(fd, 0o600)  # the events name people, teams and resources
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise ExportError("cannot create dest %s: %s" % (self.path, exc.strerror or exc))
            fd = _open_regular(self.path, os.O_RDWR | os.O_APPEND, "dest")  # another export was first
        self._lock(fd)

    def _lock(self, fd):
        self.fd = fd
        if fcntl is not None:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.check_mode else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except (IOError, OSError):
                self.close()
                raise ExportError("dest %s is locked by another export; try again when it has finished" % self.path)

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
            raise ExportError("cannot append to dest %s: %s" % (self.path, exc.strerror or exc))
        return written

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


def scan_lines(fd, start, end):
    """The event lines of ``fd`` between ``start`` and ``end``; returns ``(keys, good_end)``.

    ``keys`` are ``(time, id)`` in file order (keys only: memory stays small); ``good_end`` is the
    offset after the last complete event line. Anything after it (a partial line, or bytes that are
    not an event) is not an event this module can vouch for.
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
                keys.append(event_key(json.loads(line.decode("utf-8"))))
            except (ValueError, ExportError):
                return keys, good_end
            good_end += len(line) + 1
    return keys, good_end


def reconcile(dest_path, dest_stat, fd, stored, cursor_file):
    """Check that ``dest`` is the file the cursor describes, before anything is fetched or written.

    :returns: ``(cursor, adopted, cut_to)``: the cursor to continue from (covering the lines a killed
        run appended after its last cursor write), how many events it adopted, and the size ``dest``
        must be cut back to (its own partial last line), or ``None``.
    :raises ExportError: when ``dest`` holds content the cursor does not account for.
    """
    cursor = stored.copy()
    where = os.path.abspath(dest_path)
    fix = ("If dest is right, move cursor_file %s away (the next run exports again from since into dest); "
           "if cursor_file is right, point dest back at %s." % (cursor_file, cursor.dest))
    if cursor.dest and cursor.dest != where:
        raise ExportError("cursor_file %s belongs to the export into %s, not into dest %s. %s"
                          % (cursor_file, cursor.dest, where, fix))
    size = dest_stat.st_size if dest_stat is not None else 0
    identity = (dest_stat.st_dev, dest_stat.st_ino) if dest_stat is not None else None
    same_file = identity == (cursor.dest_device, cursor.dest_inode)
    if dest_stat is None or size == 0:
        # Missing, new or emptied (rotated by move-and-create or copy-and-truncate): start at its beginning.
        cursor.dest_size, cursor.pending = 0, None
        cursor.dest_device, cursor.dest_inode = identity or (None, None)
        return cursor, 0, None
    if not same_file:
        raise ExportError("dest %s is not the file cursor_file %s recorded (it was replaced) and it already holds "
                          "%d bytes that this export did not write there. %s" % (where, cursor_file, size, fix))
    if size == cursor.dest_size:
        cursor.pending = None
        return cursor, 0, None
    pending = cursor.pending
    if size < cursor.dest_size or pending is None or pending["from"] != cursor.dest_size or size > pending["to"]:
        raise ExportError("dest %s is %d bytes long, but cursor_file %s says this export ended it at byte %d and "
                          "wrote nothing since: another program changed it. Nothing was written. Give the export a "
                          "file of its own; %s" % (where, size, cursor_file, cursor.dest_size, fix))
    # A run was killed while appending: what lies in the recorded range is ours.
    keys, good_end = scan_lines(fd, cursor.dest_size, size)
    tail_is_partial = good_end < size and b"\n" not in os.pread(fd, size - good_end, good_end)
    if good_end < size and not tail_is_partial:
        raise ExportError("dest %s holds bytes at offset %d that are not a complete audit event, inside the range "
                          "this export was writing (cursor_file %s). Nothing was written; inspect the file"
                          % (where, good_end, cursor_file))
    for moment, event_id in keys:
        if not cursor.covers(moment, event_id):
            cursor.advance(moment, event_id)
    cursor.dest_size, cursor.pending = good_end, None
    return cursor, len(keys), (good_end if tail_is_partial else None)


# -- the spool: pages as sorted runs, read back merged --------------------------------------------


class _Run:
    """One page's new events in the spool: ``key\\tline\\n`` records sorted by key, read with ``pread``."""

    CHUNK = 1 << 16

    def __init__(self, fd, offset, size):
        self.fd, self.offset, self.end = fd, offset, offset + size
        self.lines, self.rest = iter(()), b""

    def next(self):
        while True:
            record = next(self.lines, None)
            if record is not None:
                key, dummy, line = record.partition(b"\t")
                return key, line
            if self.offset >= self.end:
                return None
            chunk = os.pread(self.fd, min(self.CHUNK, self.end - self.offset), self.offset)
            if not chunk:
                raise ExportError("the spool file ended early")
            self.offset += len(chunk)
            records = (self.rest + chunk).split(b"\n")
            self.rest = records.pop()
            self.lines = iter(records)


class Spool:
    """The new events of one walk, on disk in an anonymous file (nothing is left behind by a killed run).

    :meth:`add` stores one page as a sorted run; :meth:`merged` yields every ``(key, line)`` once,
    oldest first. A key is the canonical time followed by the JSON-quoted id: bytes that sort by time.
    """

    def __init__(self, directory=None):
        try:
            self._file = tempfile.TemporaryFile(prefix=".tfe-audit-spool.", dir=directory)
        except (IOError, OSError) as exc:
            raise ExportError("cannot create a spool file in %s: %s" % (directory or tempfile.gettempdir(),
                                                                        exc.strerror or exc))
        self._fd = self._file.fileno()
        self._runs = []      # (first key, last key, offset, size)
        self._size = 0
        self.line_bytes = 0  # bytes of NDJSON the runs would make, repeats included (an upper bound)

    def add(self, items):
        """Store one run: ``(key, line)`` pairs, sorted here."""
        if not items:
            return
        items.sort()
        data = b"".join(key + b"\t" + line + b"\n" for key, line in items)
        try:
            os.pwrite(self._fd, data, self._size)
        except OSError as exc:
            raise ExportError("cannot write the spool file: %s" % (exc.strerror or exc))
        self._runs.append((items[0][0], items[-1][0], self._size, len(data)))
        self._size += len(data)
        self.line_bytes += sum(len(line) + 1 for dummy, line in items)

    def merged(self):
        """Every ``(key, line)`` once, in key order. A run is opened only when the merge reaches its first
        key, so only the runs that overlap are read at a time (pages rarely overlap by more than repeats),
        and a run that overlaps no other is read straight through."""
        runs = sorted(self._runs)
        heap, opened, last = [], 0, None
        while True:
            while opened < len(runs) and (not heap or runs[opened][0] <= heap[0][0]):
                first, final, offset, size = runs[opened]
                reader = _Run(self._fd, offset, size)
                key, line = reader.next()
                heapq.heappush(heap, (key, opened, line, reader, final))
                opened += 1
            if not heap:
                return
            key, number, line, reader, final = heap[0]
            if len(heap) == 1 and (opened == len(runs) or runs[opened][0] > final):
                heap.pop()  # alone until its end: no other run can come between its records
                while key is not None:
                    if key != last:
                        yield key, line
                        last = key
                    key, line = reader.next() or (None, None)
                continue
            if key != last:
                yield key, line
                last = key
            following = reader.next()
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following[0], number, following[1], reader, final))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def spool_key(moment, event_id):
    """The spool key of an event: its canonical time, then its id JSON-quoted (plain ids skip the encoder)."""
    if _PLAIN_ID.match(event_id):
        return ("%s\"%s\"" % (moment, event_id)).encode("ascii")
    return moment.encode("ascii") + json.dumps(event_id).encode("ascii")


def split_key(key):
    """``(canonical time, id)`` of a spool key."""
    quoted = key[24:]
    if b"\\" not in quoted:
        return key[:24].decode("ascii"), quoted[1:-1].decode("ascii")
    return key[:24].decode("ascii"), json.loads(quoted.decode("ascii"))


# -- the walk ------------------------------------------------------------------------------------


class Walk:
    """What one walk saw: pages requested, the oldest event time returned, and the listing order."""

    def __init__(self):
        self.pages = 0
        self.oldest = None
        self.rising = self.falling = False

    @property
    def order(self):
        if self.rising and self.falling:
            return UNORDERED
        return OLDEST_FIRST if self.rising else NEWEST_FIRST if self.falling else UNKNOWN


def _direction(times):
    """Whether one page's times (in listing order) rise, fall, both or neither."""
    rising = falling = False
    for earlier, later in zip(times, times[1:]):
        if later > earlier:
            rising = True
        elif later < earlier:
            falling = True
    return rising, falling


def _page(body):
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ExportError("the audit trail answered without a data list; is hostname an HCP Terraform host?")
    pagination = body.get("pagination")
    return body["data"], pagination if isinstance(pagination, dict) else {}


def _new_items(data, cursor):
    """The times of one page's events (listing order) and its events the cursor does not cover, keyed."""
    times, items = [], []
    for event in data:
        moment, event_id = event_key(event)
        times.append(moment)
        if not cursor.covers(moment, event_id):
            items.append((spool_key(moment, event_id), encode_line(event)))
    return times, items


def walk(fetch, cursor, page_size, spool):
    """Read every event after ``cursor`` into ``spool``; returns a :class:`Walk`.

    ``fetch(since, page, page_size)`` returns the decoded body of one request. See the module
    docstring for why this holds in either listing order. No page is referenced while the next
    one is fetched.
    """
    first_since = since = cursor.request_since()
    number, keyset = 1, None   # keyset: None until a page shows the order, then True (oldest first) or False
    seen = Walk()
    while True:
        if seen.pages >= MAX_PAGES:
            raise ExportError("the audit trail did not end after %d pages; nothing was written" % MAX_PAGES)
        data, pagination = _page(fetch(since, number, page_size))
        seen.pages += 1
        current = pagination.get("current_page")
        if isinstance(current, int) and not isinstance(current, bool) and current != number:
            raise ExportError("the audit trail answered page %d when asked for page %d; it cannot be read page by "
                              "page, so nothing was written" % (current, number))
        times, items = _new_items(data, cursor)
        del data
        spool.add(items)
        del items
        if times:
            oldest = min(times)
            seen.oldest = oldest if seen.oldest is None or oldest < seen.oldest else seen.oldest
        rising, falling = _direction(times)
        seen.rising, seen.falling = seen.rising or rising, seen.falling or falling
        if falling and keyset:
            # The listing was taken for oldest first and this page says otherwise: walk again by number.
            since, number, keyset = first_since, 1, False
            continue
        if not times or not pagination.get("next_page"):
            return seen
        if falling:
            keyset = False
        elif rising and keyset is None:
            keyset = True
        if keyset:
            following = format_time(parse_time(max(times)) - ONE_MS)
            if since is None or following > since:
                since, number = following, 1
                continue
        number += 1


def gap(cursor, oldest, now):
    """``(start, end)`` of the events that may be lost because the position is older than the retention,
    or ``None``. A position that is not set (a first run) is never a gap."""
    if cursor.timestamp is None:
        return None
    edge = now - RETENTION
    if parse_time(cursor.timestamp) >= edge:
        return None
    return cursor.timestamp, oldest or format_time(edge)


def _gap_warning(span, has_cursor):
    start, end = span
    where = "the previous export ended at %s" % start if has_cursor else "since is %s" % start
    return ("%s; HCP Terraform keeps 14 days of audit events; events between %s and %s may be lost: run the "
            "export more often than every 14 days." % (where, start, end))


# -- the two jobs: read events into the result, or export them to a file -------------------------------


def read_events(fetch, since, page_size, max_events, warn, now=None):
    """Without dest: the oldest events after ``since`` (all, or ``max_events``), oldest first.

    A group of events sharing one timestamp is never split at ``max_events`` (the result then ends
    before it, unless it is the only group), so ``next_since`` continues without a gap or a repeat.
    """
    cursor = Cursor.after(since)
    with Spool() as spool:
        seen = walk(fetch, cursor, page_size, spool)
        events, times = [], []
        for key, line in spool.merged():
            moment = key[:24].decode("ascii")
            if max_events is not None and len(events) >= max_events and moment != times[-1]:
                break
            events.append(line)
            times.append(moment)
    if max_events is not None and len(events) > max_events:
        boundary = times[max_events]  # the group that max_events would split
        kept = times.index(boundary)
        if kept:
            del events[kept:], times[kept:]
    result = dict(events=[json.loads(line.decode("utf-8")) for line in events], count=len(events),
                  pages=seen.pages, next_since=times[-1] if times else cursor.timestamp, listing_order=seen.order)
    _report_gap(result, cursor, seen, warn, now, has_cursor=False)
    return result


def _report_gap(result, cursor, seen, warn, now, has_cursor):
    span = gap(cursor, seen.oldest, now or utcnow())
    result["gap"] = span is not None
    if span:
        result["gap_start"], result["gap_end"] = span
        warn(_gap_warning(span, has_cursor))


def follow(spool, cursor, limit=None):
    """The spool's events oldest first, each once, as ``(time, id, line)``, moving ``cursor`` past each
    as it is taken; at most ``limit`` (None: all). The one way out of a walk, for every consumer."""
    count = 0
    for key, line in spool.merged():
        if limit is not None and count >= limit:
            return
        moment, event_id = split_key(key)
        cursor.advance(moment, event_id)
        count += 1
        yield moment, event_id, line


def _lines(events):
    for dummy, dummy_id, line in events:
        yield line + b"\n"


def _chunks(lines, size=1 << 20):
    batch, length = [], 0
    for line in lines:
        batch.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(batch)
            batch, length = [], 0
    if batch:
        yield b"".join(batch)


def export(fetch, options, check_mode, warn, result, now=None):
    """With dest: append every event after the position to ``dest``, oldest first, each once.

    ``options``: ``dest``, ``cursor_file`` (or None), ``since``, ``page_size``, ``max_events``.
    Fills ``result`` as it goes, so that a caller that catches an error can report what was done.
    """
    result.update(changed=False, count=0, pages=0, gap=False)
    return _ExportRun(options, check_mode, warn, result, now or utcnow()).run(fetch)


class _ExportRun:
    """One export into ``dest``: resume (dest checked against the cursor, a killed run's lines adopted), walk,
    then count (check mode) or append and move the cursor."""

    def __init__(self, options, check_mode, warn, result, now):
        self.options, self.check_mode, self.warn, self.result, self.now = options, check_mode, warn, result, now
        self.dest, self.cursor_file = options["dest"], options.get("cursor_file")
        self.target = self.stored = self.cursor = None
        self.adopted, self.cut_to = 0, None

    def run(self, fetch):
        with Dest(self.dest, self.check_mode) as self.target:
            self._resume()
            position = self.cursor if self.cursor.timestamp else Cursor.after(self.options.get("since"))
            self.result["next_since"] = position.timestamp
            with Spool(os.path.dirname(os.path.abspath(self.dest))) as spool:
                seen = walk(fetch, position, self.options["page_size"], spool)
                self.result.update(pages=seen.pages, listing_order=seen.order)
                _report_gap(self.result, position, seen, self.warn, self.now, has_cursor=self.cursor.timestamp is not None)
                if self.check_mode:
                    self._count(spool, position.copy())
                else:
                    self._recover()
                    self._append(spool)
        return self.result

    def _resume(self):
        """The cursor to continue from; fails before anything is fetched when dest or the cursor is not as left."""
        self.stored = load_cursor(self.cursor_file) if self.cursor_file else None
        dest_stat = self.target.stat()
        if self.stored is None:
            if self.cursor_file and dest_stat is not None and dest_stat.st_size:
                raise ExportError(
                    "dest %s already holds %d bytes, and cursor_file %s does not exist, so the export cannot tell "
                    "which events it holds: it would write them again. Move dest away to export everything again "
                    "into a new file, or restore cursor_file." % (self.dest, dest_stat.st_size, self.cursor_file))
            self.cursor = Cursor()
        else:
            if self.stored.timestamp and parse_time(self.stored.timestamp) > self.now + FUTURE_ALLOWANCE:
                raise ExportError(
                    "cursor_file %s says the export reached %s, which is later than now (%s) on this controller: it "
                    "would skip every event until then. If the controller's clock is wrong, fix it; otherwise move "
                    "the cursor away to export again from since."
                    % (self.cursor_file, self.stored.timestamp, format_time(self.now)))
            self.cursor, self.adopted, self.cut_to = reconcile(self.dest, dest_stat, self.target.fd, self.stored,
                                                               self.cursor_file)
        if self.cursor_file:
            self.result["recovered"] = self.adopted

    def _count(self, spool, scratch):
        """Check mode: what a real run would append, counted on the same merge."""
        count = sum(1 for dummy in follow(spool, scratch, self.options.get("max_events")))
        self.result.update(count=count, changed=bool(count or self.adopted or self.cut_to is not None))
        if count:
            self.result["next_since"] = scratch.timestamp

    def _commit(self, pending=None):
        """The cursor, with where dest ends now and the write about to begin (``pending``), if any."""
        self.target.create()
        current = self.target.stat()
        cursor = self.cursor
        cursor.dest, cursor.dest_size = os.path.abspath(self.dest), current.st_size
        cursor.dest_device, cursor.dest_inode, cursor.pending = current.st_dev, current.st_ino, pending
        if self.cursor_file:
            save_cursor(self.cursor_file, cursor)

    def _recover(self):
        """Cut the partial last line of this export's own killed write, and commit what was adopted."""
        if self.cut_to is not None:
            self.target.truncate(self.cut_to)
            self.result["changed"] = True
        if self.stored is not None and (self.adopted or self.cut_to is not None or self.cursor != self.stored):
            self._commit()  # adopted lines or a rotated dest: committed before any new line
            self.result["changed"] = self.result["changed"] or bool(self.adopted)

    def _append(self, spool):
        """Record the write, append the merge (fsync), then move the cursor past it."""
        if not spool.line_bytes:
            return
        self.target.create()
        start = self.target.stat().st_size
        self._commit(pending={"from": start, "to": start + spool.line_bytes})
        before = self.cursor.exported
        self.target.append(_chunks(_lines(follow(spool, self.cursor, self.options.get("max_events")))))
        self._commit()
        self.result.update(count=self.cursor.exported - before, changed=True, next_since=self.cursor.timestamp)
