# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The two jobs of ``tfe.audit.tfe_audit_trail_events``: read the audit trail into the result, or export it to a
file, each event once (docs/feed.md).

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.tfe.audit.plugins.module_utils._cursor import (
    Cursor,
    check_not_ahead,
    load_cursor,
    save_cursor,
)
from ansible_collections.tfe.audit.plugins.module_utils._dest import Dest, reconcile
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._feed import ahead_warning, follow, gap, silent_trail, walk
from ansible_collections.tfe.audit.plugins.module_utils._spool import Spool, split_key
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time, utcnow


def _report_gap(result, position, seen, warn, now, has_cursor, lookback=None):
    span = gap(position, seen.oldest, now, lookback)
    result["gap"] = span is not None
    if span:
        start, end = span
        result["gap_start"], result["gap_end"] = start, end
        where = "the previous export ended at %s" % start if has_cursor else "since is %s" % start
        warn("%s; HCP Terraform keeps 14 days of audit events; events between %s and %s may be lost: run the export "
             "more often than every 14 days." % (where, start, end))


class _Ahead:
    """Events dated later than the controller's clock allows: delivered, and one warning per run names them."""

    def __init__(self):
        self.count, self.first = 0, None

    def note(self, moment, event_id, ahead):
        if ahead:
            self.count += 1
            self.first = self.first or (moment, event_id)

    def warn(self, warn):
        if self.count:
            warn(ahead_warning(self.count, self.first))


def read_events(fetch, options, warn, now=None):
    """Without dest: the oldest events after the position (``position``, else ``since``), all or ``max_events``,
    oldest first, and every event that cannot be read; ``next_position`` goes on from there, late events included.

    A group of events sharing one timestamp is never split at ``max_events`` (the result then ends before it, unless
    it is the only group), so ``next_since`` continues without a gap or a repeat for events listed in time.
    """
    now = now or utcnow()
    max_events, lookback = options.get("max_events"), options.get("lookback")
    position = Cursor.from_token(options["position"]) if options.get("position") else Cursor.after(options["since"])
    with Spool() as spool:
        seen = walk(fetch, position, options["page_size"], spool, now, lookback)
        _warn_if_silent(position, seen, now, lookback, warn)
        limit = None if max_events is None else _group_limit(spool, position, now, max_events, lookback)
        delivered, ahead, lines = position.copy(), _Ahead(), []
        for moment, event_id, line, is_ahead in follow(spool, delivered, now, limit, lookback):
            ahead.note(moment, event_id, is_ahead)
            lines.append(line)
    ahead.warn(warn)
    delivered.finish_walk(format_time(seen.started), lookback)
    result = dict(events=[json.loads(line.decode("utf-8")) for line in lines], count=len(lines), pages=seen.pages,
                  next_since=delivered.newest or position.newest, next_position=delivered.to_token(),
                  listing_order=seen.order)
    _report_gap(result, position, seen, warn, now, bool(options.get("position")), lookback)
    return result


def _group_limit(spool, position, now, max_events, lookback):
    """How many of the oldest events to return for ``max_events``: fewer when the limit would split a group of events
    sharing one timestamp (the result ends before the group), more when that group is the first."""
    times = []
    for moment, dummy_id, dummy_line, dummy_ahead in follow(spool, position.copy(), now, None, lookback):
        if moment is None or (len(times) >= max_events and moment != times[-1]):
            break
        times.append(moment)
    if len(times) <= max_events:
        return len(times)
    first_of_group = times.index(times[max_events])
    return first_of_group or len(times)


def _warn_if_silent(position, seen, now, lookback, warn):
    message = silent_trail(position, seen, now, lookback)
    if message:
        warn(message)


def _lines(events, ahead):
    for moment, event_id, line, is_ahead in events:
        ahead.note(moment, event_id, is_ahead)
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

    ``options``: ``dest``, ``cursor_file`` (or None), ``since``, ``page_size``, ``max_events``, ``lookback``.
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
        self.ahead = _Ahead()

    def run(self, fetch):
        with Dest(self.dest, self.check_mode) as self.target:
            self._resume()
            has_position = not self.cursor.empty
            self.cursor.start_after(self.options.get("since"))
            self.result["next_since"] = self.cursor.newest
            lookback = self.options.get("lookback")
            with Spool(os.path.dirname(os.path.abspath(self.dest))) as spool:
                seen = walk(fetch, self.cursor, self.options["page_size"], spool, self.now, lookback)
                self.result.update(pages=seen.pages, listing_order=seen.order)
                _report_gap(self.result, self.cursor, seen, self.warn, self.now, has_position, lookback)
                _warn_if_silent(self.cursor, seen, self.now, lookback, self.warn)
                if self.check_mode:
                    self._count(spool, self.cursor.copy())
                else:
                    self._recover()
                    self._append(spool, seen)
        self.ahead.warn(self.warn)
        return self.result

    def _resume(self):
        """The cursor to continue from; fails before anything is fetched when dest or the cursor is not as left."""
        self.stored = load_cursor(self.cursor_file) if self.cursor_file else None
        dest_stat = self.target.stat()
        if self.stored is None:
            if self.cursor_file and dest_stat is not None and dest_stat.st_size:
                raise FeedError(
                    "dest %s already holds %d bytes, and cursor_file %s does not exist, so the export cannot tell "
                    "which events it holds: it would write them again. Move dest away to export everything again "
                    "into a new file, or restore cursor_file." % (self.dest, dest_stat.st_size, self.cursor_file))
            self.cursor = Cursor()
        else:
            check_not_ahead(self.stored, self.now, "cursor_file %s" % self.cursor_file)
            self.cursor, self.adopted, self.cut_to = reconcile(self.dest, dest_stat, self.target.fd, self.stored,
                                                               self.cursor_file, self.now)
        if self.cursor_file:
            self.result["recovered"] = self.adopted

    def _count(self, spool, scratch):
        """Check mode: what a real run would append, counted on the same merge."""
        events = follow(spool, scratch, self.now, self.options.get("max_events"), self.options.get("lookback"))
        count = sum(1 for dummy in _lines(events, self.ahead))
        self.result.update(count=count, changed=bool(count or self.adopted or self.cut_to is not None))
        if count:
            self.result["next_since"] = scratch.newest

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

    def _append(self, spool, seen):
        """Record the write, append the merge (fsync), then move the cursor past it."""
        before = self.cursor.exported
        first = next(spool.merged(), None)
        if first is not None:
            self.target.create()
            start = self.target.stat().st_size
            # The first event names the write, so that it can be found again in a rotated copy of dest.
            self._commit(pending={"from": start, "to": start + spool.line_bytes, "first": list(split_key(first[0]))})
            events = follow(spool, self.cursor, self.now, self.options.get("max_events"), self.options.get("lookback"))
            self.target.append(_chunks(_lines(events, self.ahead)))
        lookback = self.options.get("lookback")
        self.cursor.finish_walk(format_time(seen.started), lookback)
        if first is not None or self._moved(lookback):
            self._commit()
        count = self.cursor.exported - before
        self.result.update(count=count, changed=self.result["changed"] or bool(count))
        if count:
            self.result["next_since"] = self.cursor.newest

    def _moved(self, lookback):
        """Whether the cursor says more than the stored one; an idle run whose read time changes nothing (the next
        run would ask for the same events) leaves the file alone."""
        if self.stored is None:
            return False
        current, stored = self.cursor.to_dict(), self.stored.to_dict()
        current.pop("read_at"), stored.pop("read_at")
        return current != stored or self.cursor.start(lookback) != self.stored.start(lookback)
