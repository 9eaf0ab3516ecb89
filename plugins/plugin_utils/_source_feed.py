# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The event source's use of the collection's feed (``module_utils/_feed.py``, ``_cursor.py``, ``_spool.py``; docs/feed.md),
all in this file: a walk from a position run in a thread (:func:`read_new`), the events it found in the order to
emit them (:meth:`Position.emit`), and the position the state file records, moved by what the rule engine has
taken (:meth:`Position.record`).

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from ansible_collections.tfe.audit.plugins.module_utils import _cursor, _feed, _spool, _time
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.plugin_utils._source_options import ArgumentError, Problem


class Stopped(Exception):
    """The source was cancelled while its walk thread was still paging."""


def now_text():
    """Now, as the API writes times (``2030-12-31T23:59:59.123Z``)."""
    return _time.format_time(_time.utcnow())


async def read_new(read_page, start, page_size, stop, lookback=None):
    """Every event after ``start``, read by the export walk in a daemon thread: ``(walk, spool)``, the caller
    closes the spool. ``read_page(since, page, page_size)`` is one request; ``stop`` (a ``threading.Event``)
    ends the walk before its next request.

    A daemon thread rather than the default executor: asyncio.run joins executor threads at shutdown, so stopping
    the rulebook would wait for a request in flight (retries included).
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def fetch(since, page, size):
        if stop.is_set():
            raise Stopped()
        return read_page(since=since, page=page, page_size=size)

    def deliver(result, error):
        if future.cancelled():
            if result is not None:
                result[1].close()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work():
        spool, result, error = None, None, None
        try:
            spool = _spool.Spool()
            result = (_feed.walk(fetch, start, page_size, spool, _time.utcnow(), lookback), spool)
        except BaseException as exc:  # pylint: disable=broad-except  # handed to the loop
            error = exc
            if spool is not None:
                spool.close()
        try:
            loop.call_soon_threadsafe(deliver, result, error)
        except RuntimeError:  # the loop is closed: nobody will read the spool
            if result is not None:
                result[1].close()

    threading.Thread(target=work, name="tfe-audit-walk", daemon=True).start()
    return await future


def gap(start, walk, lookback=None):
    """``(start, end)`` of the events that may be lost because ``start`` is older than the retention, or ``None``."""
    return _feed.gap(start, walk.oldest, _time.utcnow(), lookback)


def silence(start, walk, lookback=None):
    """Why a walk that listed nothing at all is suspicious (a user or team token, a trail turned off), or ``None``."""
    return _feed.silent_trail(start, walk, _time.utcnow(), lookback)


class Position:
    """Where the source stands. ``emitted``: past every event put on the queue (the next poll starts there).
    ``recorded``: past every event the rule engine has taken (what ``state_file`` holds). Between the two, only
    the key of each event put and not yet taken, and where each walk ended, so recording costs the same for every
    event, however many share a millisecond."""

    def __init__(self, state_file, since, lookback=None):
        self.state_file, self.lookback = state_file, lookback
        self.recorded, from_state = self._load(state_file, since)
        self.emitted = self.recorded.copy()
        # (events delivered when a walk ended, when it began): recorded finishes that walk once it has them all.
        self._walk_ends = collections.deque()
        self._reading_at = None  # when the walk being emitted began
        self._trimmed = 0  # how many events recorded at the last trim
        self.ahead = []  # (time, id) of the events of the last walk dated ahead of the controller's clock
        # A start position from since (above all "now") is written at once, so a restart does not take a new "now".
        self._saved = self.recorded.to_dict() if from_state or self.recorded.empty else None

    @staticmethod
    def _load(path, since):
        """``(cursor, from_state)``: the position to continue from, and whether it came from state_file."""
        try:
            stored = _cursor.load_cursor(path, "state_file") if path else None
            if stored is not None and stored.dest:
                raise ArgumentError("state_file %s is the cursor_file of the export into %s; give the event source a "
                                    "state file of its own, for example state_file: "
                                    "/var/lib/tfe-audit/audit-trail-source.json" % (path, stored.dest))
            if stored is not None:
                _cursor.check_not_ahead(stored, _time.utcnow(), "state_file %s" % path)
        except FeedError as exc:
            raise ArgumentError(str(exc)) from None
        if stored is not None and not stored.empty:
            return stored, True
        return _cursor.Cursor.after(now_text() if since == "now" else since), False

    @property
    def timestamp(self):
        return self.recorded.newest

    def start(self):
        """Where the next walk starts: after every event emitted."""
        return self.emitted.copy()

    def emit(self, spool, walk):
        """``(key, line)`` of each event ``walk`` found, oldest first (events that cannot be read last), once;
        ``emitted`` moves past each as it is yielded. ``key`` (``(time, id)``, or ``(None, digest)`` for an event
        that cannot be read) is what :meth:`record` takes once the engine has the event."""
        self._reading_at = read_at = _time.format_time(walk.started)
        self.ahead = []
        events = _feed.follow(spool, self.emitted, walk.started, lookback=self.lookback)
        for moment, event_id, line, ahead in events:
            if ahead:
                self.ahead.append((moment, event_id))
            yield (moment, event_id), line
        self.emitted.finish_walk(read_at, self.lookback)
        self._walk_ends.append((self.emitted.exported, read_at))

    def record(self, keys):
        """Move ``recorded`` past the events the engine has taken (``None`` stands for an event about the source)."""
        now = _time.utcnow()
        ahead_from, stamp = _time.format_time(now + _cursor.FUTURE_ALLOWANCE), _time.format_time(now)
        for key in keys:
            if key is None:
                continue
            if key[0] is None:
                self.recorded.deliver_unreadable(key[1], stamp)
            else:
                self.recorded.deliver(key[0], key[1], ahead_from)
        while self._walk_ends and self.recorded.exported >= self._walk_ends[0][0]:
            self.recorded.finish_walk(self._walk_ends.popleft()[1], self.lookback)
        if self._reading_at and self.recorded.exported >= self._trimmed + _feed.TRIM_EVERY:
            self._trimmed = self.recorded.exported  # a long backlog: memory stays at the window, in linear time
            self.recorded.trim(self._reading_at, self.lookback)

    @property
    def unsaved(self):
        return self.state_file is not None and self.recorded.to_dict() != self._saved

    def save(self):
        """Write the state when it changed; a :class:`Problem` instead of raising."""
        if not self.unsaved:
            return None
        current = self.recorded.to_dict()
        try:
            _cursor.save_cursor(self.state_file, self.recorded, "state_file")
        except FeedError as exc:
            return Problem(str(exc), "state_file")
        self._saved = current
        return None
