# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The event source's use of the collection's feed (``module_utils/_export.py``), all in this file: a walk from a
position run in a thread (:func:`read_new`), the events it found in the order to emit them (:meth:`Position.emit`),
and the position the state file records, moved by what the rule engine has taken (:meth:`Position.record`).

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import annotations

import asyncio
import threading

from ansible_collections.tfe.audit.plugins.module_utils import _export, _time
from ansible_collections.tfe.audit.plugins.plugin_utils._source_options import ArgumentError, Problem

FeedError = _export.ExportError


class Stopped(Exception):
    """The source was cancelled while its walk thread was still paging."""


def now_text():
    """Now, as the API writes times (``2030-12-31T23:59:59.123Z``)."""
    return _time.format_time(_time.utcnow())


async def read_new(read_page, start, page_size, stop):
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
            spool = _export.Spool()
            result = (_export.walk(fetch, start, page_size, spool), spool)
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


def gap(start, walk):
    """``(start, end)`` of the events that may be lost because ``start`` is older than the retention, or ``None``."""
    return _export.gap(start, walk.oldest, _time.utcnow())


class Position:
    """Where the source stands. ``emitted``: past every event put on the queue (the next poll starts there).
    ``recorded``: past every event the rule engine has taken (what ``state_file`` holds). Between the two, only
    the key of each event put and not yet taken, so recording costs the same for every event, however many share
    a millisecond."""

    def __init__(self, state_file, since):
        self.state_file = state_file
        self.recorded, from_state = self._load(state_file, since)
        self.emitted = self.recorded.copy()
        # A start position from since (above all "now") is written at once, so a restart does not take a new "now".
        self._saved = self.recorded.to_dict() if from_state or self.recorded.timestamp is None else None

    @staticmethod
    def _load(path, since):
        """``(cursor, from_state)``: the position to continue from, and whether it came from state_file."""
        stored = None
        if path:
            try:
                stored = _export.load_cursor(path)
            except FeedError as exc:
                raise ArgumentError(str(exc).replace("cursor_file", "state_file")) from None
        if stored is not None:
            if stored.dest:
                raise ArgumentError("state_file %s is the cursor_file of the export into %s; give the event source a "
                                    "state file of its own, for example state_file: "
                                    "/var/lib/tfe-audit/audit-trail-source.json" % (path, stored.dest))
            # A state ahead of this controller's clock would skip every event until then.
            if stored.timestamp and _time.parse_time(stored.timestamp) > _time.utcnow() + _export.FUTURE_ALLOWANCE:
                raise ArgumentError("state_file %s says the source reached %s, which is later than now (%s) on this "
                                    "controller: it would skip every event until then. Fix the clock, or move the "
                                    "state file away to start again from since." % (path, stored.timestamp, now_text()))
            if stored.timestamp:
                return stored, True
        return _export.Cursor.after(now_text() if since == "now" else since), False

    @property
    def timestamp(self):
        return self.recorded.timestamp

    def start(self):
        """Where the next walk starts: after every event emitted."""
        return self.emitted.copy()

    def emit(self, spool):
        """``(key, line)`` of each event the walk found, oldest first, once; ``emitted`` moves past each as it is
        yielded. ``key`` is what :meth:`record` takes once the engine has the event."""
        for moment, event_id, line in _export.follow(spool, self.emitted):
            yield (moment, event_id), line

    def record(self, keys):
        """Move ``recorded`` past the events the engine has taken (``None`` stands for an event about the source)."""
        for key in keys:
            if key is not None:
                self.recorded.advance(*key)

    @property
    def unsaved(self):
        return self.state_file is not None and self.recorded.to_dict() != self._saved

    def save(self):
        """Write the state when it changed; a :class:`Problem` instead of raising."""
        if not self.unsaved:
            return None
        current = self.recorded.to_dict()
        try:
            _export.save_cursor(self.state_file, self.recorded)
        except FeedError as exc:
            return Problem(str(exc).replace("cursor_file", "state_file"), "state_file")
        self._saved = current
        return None
