# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The position of a feed: which audit events were delivered (docs/feed.md explains why it holds).

Private to the collection (leading underscore): free to change between releases.

* ``horizon``: every event before it is behind. Every event delivered at or after it is in ``seen``.
* ``seen``: ``(time, id)`` of the events delivered at or after the horizon. A run asks again for the
  events since ``min(newest, last read - lookback)`` (never before the horizon), so that events HCP
  Terraform lists late, and new events sharing the newest millisecond, are delivered, each once.
* ``newest``: the newest delivered time that is not ahead of the controller's clock. An event dated
  further ahead is delivered and remembered in ``seen``, but it never moves the position past events
  still to come.
* ``unreadable``: digests of delivered events that could not be read (they have no time), with when
  they were first delivered; forgotten once HCP Terraform no longer keeps them.
* ``dest``, ``dest_size``, ``dest_device``, ``dest_inode``, ``pending``: the export's file, as the
  cursor last saw it, and the write in progress, if any.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import json
import os
import zlib
from datetime import timedelta

from ansible_collections.tfe.audit.plugins.module_utils import _time
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._files import NotRegularFile, atomic_write, open_regular

CURSOR_FORMAT = "tfe.audit.audit_trail_cursor"
CURSOR_VERSION = 3
ONE_MS = timedelta(milliseconds=1)
RETENTION = timedelta(days=14)
# Clock skew allowed between the controller and HCP Terraform: an event dated later than this ahead of the
# controller's clock does not move the position, and a cursor that far ahead is an error.
FUTURE_ALLOWANCE = timedelta(minutes=5)
_EXAMPLE_TIME = "for example 2030-12-31T23:59:59.000Z"
_LIMIT = 64 << 20  # a cursor file larger than this is not one
_TOKEN_FIELDS = ("horizon", "newest", "read_at", "seen", "unreadable")


def canonical_time(value, what="timestamp"):
    """:func:`_time.canonical_time`, with :class:`FeedError` naming ``what``."""
    try:
        return _time.canonical_time(value)
    except _time.TimeError as exc:
        raise FeedError("%s %s; %s" % (what, exc, _EXAMPLE_TIME))


def _shifted(moment, delta):
    return _time.format_time(_time.shift(_time.parse_time(moment), delta))


class Cursor:
    """Which events a feed delivered; see the module docstring."""

    def __init__(self, horizon=None, seen=(), newest=None, read_at=None, unreadable=None, exported=0,
                 dest=None, dest_size=0, dest_device=None, dest_inode=None, pending=None):
        self.horizon = horizon
        self.seen = set(seen)
        self.newest = newest
        self.read_at = read_at
        self.unreadable = dict(unreadable or {})
        self.exported = exported
        self.dest, self.dest_size, self.dest_device, self.dest_inode = dest, dest_size, dest_device, dest_inode
        self.pending = pending

    @classmethod
    def after(cls, since):
        """The position of the option ``since``: every event at or before it is behind."""
        if not since:
            return cls()
        since = canonical_time(since, "since")
        return cls(horizon=_shifted(since, ONE_MS), newest=since)

    @property
    def empty(self):
        """Whether the position holds nothing at all (no horizon, nothing delivered)."""
        return self.horizon is None and not self.seen and not self.unreadable

    def start_after(self, since):
        """A position that has no horizon yet (nothing delivered) starts after ``since``, the option."""
        if self.horizon is None and since:
            after = Cursor.after(since)
            self.horizon = after.horizon
            self.newest = max(self.newest or after.newest, after.newest)
        return self

    def copy(self):
        return Cursor(self.horizon, self.seen, self.newest, self.read_at, self.unreadable, self.exported, self.dest,
                      self.dest_size, self.dest_device, self.dest_inode, dict(self.pending) if self.pending else None)

    def covers(self, moment, event_id):
        """Whether the event (canonical time and id) was delivered, or lies behind the horizon."""
        return (self.horizon is not None and moment < self.horizon) or (moment, event_id) in self.seen

    def covers_unreadable(self, digest):
        return digest in self.unreadable

    def start(self, lookback):
        """The oldest time at which an event not yet delivered may be listed (``None``: any time)."""
        if self.horizon is None:
            return None
        start = self.newest or self.horizon
        if self.read_at is not None and lookback:
            start = min(start, _shifted(self.read_at, -lookback))
        return max(start, self.horizon)

    def request_since(self, lookback=None):
        """The ``since`` to ask for: 1 ms before :meth:`start`, so events at it come back whatever the server does
        with ``since``; the cursor then drops what it covers."""
        start = self.start(lookback)
        return None if start is None else _shifted(start, -ONE_MS)

    def deliver(self, moment, event_id, ahead_from):
        """Record a delivered event. One dated at or after ``ahead_from`` (the controller's clock plus the allowed
        skew) is remembered without moving ``newest``; returns whether it was such an event."""
        self.seen.add((moment, event_id))
        self.exported += 1
        if moment >= ahead_from:
            return True
        if self.newest is None or moment > self.newest:
            self.newest = moment
        return False

    def deliver_unreadable(self, digest, now):
        self.unreadable[digest] = now
        self.exported += 1

    def trim(self, read_at, lookback):
        """While a walk that began at ``read_at`` is delivered (oldest first), move the horizon to where
        :meth:`finish_walk` will put it at least, and forget what lies before: what was delivered there stays
        covered (a position saved half-way through a backlog repeats nothing), and memory stays at the window."""
        if self.newest is None:
            return
        bound = min(self.newest, _shifted(read_at, -(lookback or timedelta(0))))
        if self.horizon is None or bound > self.horizon:
            self.horizon = bound
            self.seen = set(key for key in self.seen if key[0] >= bound)

    def finish_walk(self, read_at, lookback):
        """After every event of a walk that started at ``read_at`` was delivered: remember the read, and forget
        what no later walk can list again (before the new horizon; unreadable events older than the retention)."""
        self.read_at = read_at
        self.trim(read_at, lookback)
        forget = _shifted(read_at, -(RETENTION + timedelta(days=1)))
        self.unreadable = dict((digest, when) for digest, when in self.unreadable.items() if when >= forget)

    def to_dict(self):
        return {
            "format": CURSOR_FORMAT,
            "version": CURSOR_VERSION,
            "horizon": self.horizon,
            "newest": self.newest,
            "read_at": self.read_at,
            "seen": sorted([moment, event_id] for moment, event_id in self.seen),
            "unreadable": sorted([digest, when] for digest, when in self.unreadable.items()),
            "exported": self.exported,
            "dest": self.dest,
            "dest_size": self.dest_size,
            "dest_device": self.dest_device,
            "dest_inode": self.dest_inode,
            "pending": self.pending,
        }

    @classmethod
    def from_dict(cls, data, what):
        """The cursor in ``data``; ``what`` names the file for messages (``cursor_file /x``, ``state_file /y``)."""
        if not isinstance(data, dict) or data.get("format") != CURSOR_FORMAT:
            raise FeedError("%s is not a tfe.audit audit trail cursor; point it at another path or move the file away"
                            % what)
        if data.get("version") not in (2, CURSOR_VERSION):
            raise FeedError("%s has cursor version %r; this collection reads versions 2 and %d. Move it away to "
                            "start again from since" % (what, data.get("version"), CURSOR_VERSION))
        try:
            return cls._from_v2(data, what) if data["version"] == 2 else cls._from_v3(data, what)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, FeedError) as exc:
            raise FeedError("%s is damaged (%s); move it away to start again from since" % (what, exc))

    @classmethod
    def _from_v3(cls, data, what):
        def time_or_none(key):
            value = data.get(key)
            return canonical_time(value, "%s %s" % (what, key)) if value is not None else None

        seen = set((canonical_time(moment, "%s seen" % what), str(event_id)) for moment, event_id in data["seen"])
        unreadable = dict((str(digest), canonical_time(when, "%s unreadable" % what))
                          for digest, when in data.get("unreadable") or [])
        return cls(time_or_none("horizon"), seen, time_or_none("newest"), time_or_none("read_at"), unreadable,
                   int(data.get("exported") or 0), *_dest_fields(data))

    @classmethod
    def _from_v2(cls, data, what):
        """Version 2 kept the newest time and the ids delivered at it."""
        newest = canonical_time(data["timestamp"], "%s timestamp" % what) if data.get("timestamp") else None
        seen = set((newest, str(event_id)) for event_id in data.get("ids") or []) if newest else set()
        return cls(newest, seen, newest, None, None, int(data.get("exported") or 0), *_dest_fields(data))

    def __eq__(self, other):
        return isinstance(other, Cursor) and self.to_dict() == other.to_dict()

    def to_token(self):
        """The position as one opaque text (URL-safe base64 of compressed JSON): the events module's
        ``next_position``, which a later run takes back as ``position``."""
        data = dict((key, value) for key, value in self.to_dict().items() if key in _TOKEN_FIELDS)
        packed = zlib.compress(json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"), 9)
        return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")

    @classmethod
    def from_token(cls, text, option="position"):
        """The position in a text :meth:`to_token` made; :class:`FeedError` naming ``option`` for anything else."""
        problem = "%s is not a position this module returned (next_position); for example %s: " \
                  "\"{{ previous_run.next_position }}\"" % (option, option)
        try:
            packed = base64.urlsafe_b64decode(str(text).strip() + "=" * (-len(str(text).strip()) % 4))
            inflater = zlib.decompressobj()
            raw = inflater.decompress(packed, _LIMIT)
            if inflater.unconsumed_tail:
                raise ValueError("too large")
            data = json.loads(raw.decode("utf-8"))
            data.update(format=CURSOR_FORMAT, version=CURSOR_VERSION)
            return cls._from_v3(data, option)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError, zlib.error, FeedError):
            raise FeedError(problem) from None


def _dest_fields(data):
    pending = data.get("pending")
    if pending is not None:
        pending = dict(pending, **{"from": int(pending["from"]), "to": int(pending["to"])})
    device, inode = data.get("dest_device"), data.get("dest_inode")
    return (data.get("dest"), int(data.get("dest_size") or 0), None if device is None else int(device),
            None if inode is None else int(inode), pending)


def open_owned(path, flags, option):
    """:func:`_files.open_regular`, with :class:`FeedError` naming ``option``; ``OSError`` only for ENOENT."""
    try:
        return open_regular(path, flags)
    except NotRegularFile as exc:
        raise FeedError("%s %s; point %s at a regular file of its own (the collection never follows a link there)"
                        % (option, exc, option))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        raise FeedError("cannot open %s %s: %s" % (option, path, exc.strerror or exc))


def load_cursor(path, option="cursor_file"):
    """The cursor stored at ``path``, or ``None`` when there is no such file; errors name ``option``."""
    try:
        fd = open_owned(path, os.O_RDONLY, option)
    except OSError:  # ENOENT only: the rest became FeedError
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(_LIMIT + 1)
    except OSError as exc:
        raise FeedError("cannot read %s %s: %s" % (option, path, exc.strerror or exc))
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise FeedError("%s %s is not a cursor (not JSON); point %s at another path or move the file away"
                        % (option, path, option))
    return Cursor.from_dict(data, "%s %s" % (option, path))


def save_cursor(path, cursor, option="cursor_file"):
    try:
        atomic_write(path, (json.dumps(cursor.to_dict(), indent=0, sort_keys=True) + "\n").encode("utf-8"))
    except OSError as exc:
        raise FeedError("cannot write %s %s: %s" % (option, path, exc.strerror or exc))


def check_not_ahead(cursor, now, what):
    """A position ahead of the controller's clock would skip every event until then: an error, not "nothing new"."""
    if cursor.newest and _time.parse_time(cursor.newest) > now + FUTURE_ALLOWANCE:
        raise FeedError("%s says the feed reached %s, which is later than now (%s) on this controller: it would skip "
                        "every event until then. If the controller's clock is wrong, fix it; otherwise move the file "
                        "away to start again from since." % (what, cursor.newest, _time.format_time(now)))
