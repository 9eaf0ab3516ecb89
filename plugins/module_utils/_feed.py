# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit trail feed: every event after a position, each once, whatever order the API lists them in.

Private to the collection (leading underscore): free to change between releases. No HTTP here: pages come
from ``TfeClient.read_audit_trail`` (passed in as ``fetch``). Why the walk is correct in every reading of
what the API docs leave open, and what it checks in each answer: docs/feed.md.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
from datetime import timedelta

from ansible_collections.tfe.audit.plugins.module_utils import _time
from ansible_collections.tfe.audit.plugins.module_utils._cursor import FUTURE_ALLOWANCE, ONE_MS, RETENTION
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._spool import (
    TIME_WIDTH,
    UNREADABLE_PREFIX,
    spool_key,
    split_key,
    unreadable_key,
)

# One encoder for every line (json.dumps with options builds a new one per call); events are trees.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode
_ENCODE_ASCII = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_DIGEST_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True, check_circular=False).encode
UNREADABLE = "tfe_audit_unreadable"

# Listing orders, as reported in results.
NEWEST_FIRST, OLDEST_FIRST, UNORDERED, UNKNOWN = "newest_first", "oldest_first", "unordered", "unknown"

# Real audit events nest four levels. Python decodes thousands (3.12 and 3.13 more than 3.11), but the code that
# handles an event afterwards recurses (Ansible's own result handling too): deeper ones are delivered unreadable.
MAX_DEPTH = 512
# The server's own page counts bound a walk; this much more covers events that arrive while it pages.
PAGE_MARGIN = 10
# Pages identical to the one before (in a row) that mean the server ignores page[number] or since.
MAX_REPEATS = 2
# Spool bytes allowed per page the walk may read: far above 1000 real events (about 1 MiB).
SPOOL_BYTES_PER_PAGE = 64 << 20
# While a walk is delivered, the position forgets what is behind the lookback every so many events.
TRIM_EVERY = 4096
# The count check needs every event after the start to outlive the walk: a start this far inside the retention.
COUNT_CHECK_MARGIN = timedelta(days=1)


def encode_line(event):
    """One event as one NDJSON line (compact, the API's key order, UTF-8, no newline)."""
    try:
        return _ENCODE(event).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a hostile server: escape instead of failing
        return _ENCODE_ASCII(event).encode("ascii")


def _event_id(event):
    event_id = event.get("id")
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        return str(event_id)
    return event_id if isinstance(event_id, str) and event_id else None


def unreadable_event(raw, digest_source, reason):
    """``(key, line)`` of an event that cannot be read: delivered as it came, base64, marked as unreadable."""
    digest = hashlib.sha256(digest_source).hexdigest()
    wrapper = {UNREADABLE: {"reason": reason, "sha256": digest, "base64": base64.b64encode(raw).decode("ascii")}}
    return unreadable_key(digest), _ENCODE(wrapper).encode("ascii")


def _deeper_than(value, limit):
    """Whether JSON data nests more than ``limit`` levels (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def read_event(item):
    """``(key, line)`` of one item of a page: an event, or an event that cannot be read (no time or id).

    An item that the client could not even decode arrives as an object with ``raw`` bytes and a ``reason``.
    """
    raw = getattr(item, "raw", None)
    if isinstance(raw, bytes):
        return unreadable_event(raw, raw, str(getattr(item, "reason", "it cannot be decoded")))
    if not isinstance(item, dict):
        raise FeedError("the audit trail answered a page whose data holds a %s where an event belongs; nothing was "
                        "written. Is hostname an HCP Terraform host?" % type(item).__name__)
    line, event_id, timestamp = encode_line(item), _event_id(item), item.get("timestamp")
    if len(line) > 2 * MAX_DEPTH and _deeper_than(item, MAX_DEPTH):  # shorter lines cannot nest that deep
        return unreadable_event(line, line, "it is nested more than %d levels deep" % MAX_DEPTH)
    if event_id is None:
        return unreadable_event(line, _DIGEST_ENCODE(item).encode("utf-8"), "it has no string id")
    try:
        return spool_key(_time.canonical_time(timestamp), event_id), line
    except _time.TimeError:
        return unreadable_event(line, _DIGEST_ENCODE(item).encode("utf-8"),
                                "its timestamp is not an RFC 3339 date-time within the years 1 to 9999")


# -- one page -------------------------------------------------------------------------------------


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


class Page:
    """One answer of the audit trail, checked against the documented shape (docs/feed.md, "Each answer")."""

    def __init__(self, body, number, page_size):
        where = "page %d of the audit trail" % number
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise FeedError("%s came without a data list; nothing was written. Is hostname an HCP Terraform host?"
                            % where)
        pagination = body.get("pagination")
        if not isinstance(pagination, dict):
            raise FeedError("%s came without a pagination object, so the walk cannot tell whether more pages follow; "
                            "nothing was written" % where)
        self.data = body["data"]
        self.current, self.next = pagination.get("current_page"), pagination.get("next_page")
        self.total_pages, self.total_count = pagination.get("total_pages"), pagination.get("total_count")
        reported = pagination.get("page_size")
        self._check(where, number, max(page_size, len(self.data), reported if _integer(reported) else 0))

    def _check(self, where, number, size):
        """The page's own numbers must agree with each other: otherwise the walk could end early or skip."""
        problem = None
        if not all(_integer(value) and value >= 0 for value in (self.current, self.total_pages, self.total_count)):
            problem = "current_page, total_pages and total_count must be numbers"
        elif self.current != number:
            problem = "it says it is page %d" % self.current
        elif self.next is not None and (not _integer(self.next) or self.next != number + 1):
            problem = "its next_page is not page %d or null" % (number + 1)
        elif self.next is not None and number >= self.total_pages:
            problem = "it names a next page beyond its total_pages (%d)" % self.total_pages
        elif self.next is None and number < self.total_pages:
            problem = "it is the last page (next_page null) of %d pages" % self.total_pages
        elif self.total_count > self.total_pages * size:
            problem = "total_count %d does not fit in %d pages of %d" % (self.total_count, self.total_pages, size)
        if problem:
            raise FeedError("%s does not add up (%s); events could be skipped, so nothing was written and the "
                            "position did not move" % (where, problem))

    def items(self, position):
        """``(new, covered, keys)``: ``(key, line)`` of the items ``position`` does not cover, the keys of those it
        covers (delivered before), and every key in listing order (what the order of the listing is read from)."""
        new, covered, keys = [], [], []
        for item in self.data:
            key, line = read_event(item)
            moment, event_id = split_key(key)
            keys.append(key)
            if (position.covers(moment, event_id) if moment is not None else position.covers_unreadable(event_id)):
                covered.append(key)
            else:
                new.append((key, line))
        return new, covered, keys


# -- the walk ------------------------------------------------------------------------------------


class Walk:
    """What one walk saw: pages, the oldest event time, the listing order, what the server said it holds."""

    def __init__(self, started):
        self.started = started    # the controller's clock when the walk began (the read time of the position)
        self.pages = 0
        self.oldest = None
        self.rising = self.falling = False
        self.first_total = self.page_limit = None
        self.listed = 0           # items listed, repeats included

    @property
    def order(self):
        if self.rising and self.falling:
            return UNORDERED
        return OLDEST_FIRST if self.rising else NEWEST_FIRST if self.falling else UNKNOWN

    def saw(self, keys):
        """Note one page's keys (listing order); returns whether its times rise, whether they fall, and the newest
        time on it (``None`` when no event on it has one)."""
        times = [key[:TIME_WIDTH] for key in keys if not key.startswith(UNREADABLE_PREFIX)]
        self.listed += len(keys)
        if not times:
            return False, False, None
        oldest = min(times).decode("ascii")
        self.oldest = oldest if self.oldest is None or oldest < self.oldest else self.oldest
        rising = any(later > earlier for earlier, later in zip(times, times[1:]))
        falling = any(later < earlier for earlier, later in zip(times, times[1:]))
        self.rising, self.falling = self.rising or rising, self.falling or falling
        return rising, falling, max(times).decode("ascii")


class _Walker:
    """One walk (see :func:`walk`)."""

    def __init__(self, fetch, position, page_size, spool, now, lookback):
        self.fetch, self.position, self.page_size, self.spool = fetch, position, page_size, spool
        self.first_since = position.request_since(lookback)
        self.seen = Walk(now)
        self.covered = set()   # distinct keys listed that the position covers
        self.last_page, self.repeats = None, 0

    def page(self, since, number):
        if self.seen.page_limit is not None and self.seen.pages >= self.seen.page_limit:
            raise FeedError("the audit trail did not end within %d pages, twice what its first page announced (plus "
                            "%d); nothing was written" % (self.seen.page_limit, PAGE_MARGIN))
        page = Page(self.fetch(since, number, self.page_size), number, self.page_size)
        self.seen.pages += 1
        if self.seen.first_total is None:
            self.seen.first_total = page.total_count
            self.seen.page_limit = 2 * max(1, page.total_pages) + PAGE_MARGIN
            self.spool.max_bytes = self.seen.page_limit * SPOOL_BYTES_PER_PAGE
        items, covered, keys = page.items(self.position)
        page.data = None  # nothing of a page stays alive while the next one is fetched
        self._repeated(keys, number)
        self.covered.update(covered)
        self.spool.add(items)
        return page, self.seen.saw(keys)

    def _repeated(self, keys, number):
        signature = sorted(keys)
        self.repeats = self.repeats + 1 if keys and signature == self.last_page else 0
        self.last_page = signature
        if self.repeats >= MAX_REPEATS:
            raise FeedError("the audit trail answered the same events for page %d as for the %d pages before it: the "
                            "server ignores page[number] or since, so the walk stopped and nothing was written"
                            % (number, MAX_REPEATS))

    def run(self):
        since, number, keyset = self.first_since, 1, None   # keyset: None until a page shows the order
        while True:
            page, (rising, falling, newest) = self.page(since, number)
            if falling and keyset:
                # The listing was taken for oldest first and this page says otherwise: walk again by number.
                since, number, keyset = self.first_since, 1, False
                continue
            if page.next is None:
                self.check_count()
                return self.seen
            keyset = False if falling else (True if rising and keyset is None else keyset)
            if keyset and newest is not None:
                following = _time.format_time(_time.parse_time(newest) - ONE_MS)
                if since is None or following > since:
                    since, number = following, 1
                    continue
            number += 1

    def check_count(self):
        """Fewer distinct events than the first page announced can only mean skipped pages, unless events left the
        retention while the walk read: checked when every event after the start outlives the walk."""
        if self.first_since is None:
            return
        edge = self.seen.started - RETENTION + COUNT_CHECK_MARGIN
        if _time.parse_time(self.first_since) < edge:
            return
        read = len(self.covered) + self.spool.distinct_count()
        if read < self.seen.first_total:
            raise FeedError("the audit trail announced %d events after %s on its first page, but its pages held %d: "
                            "events would be skipped, so nothing was written and the position did not move"
                            % (self.seen.first_total, self.first_since, read))


def walk(fetch, position, page_size, spool, now, lookback=None):
    """Read every event after ``position`` (reaching back ``lookback`` for late ones) into ``spool``.

    ``fetch(since, page, page_size)`` returns the decoded body of one request. Returns a :class:`Walk`.
    Raises :class:`FeedError` for an answer that is not of the documented shape, before anything moves.
    """
    return _Walker(fetch, position, page_size, spool, now, lookback).run()


def gap(position, oldest, now, lookback=None):
    """``(start, end)`` of the events that may be lost because the position is older than the retention, or
    ``None``. A position that is not set (a first run) is never a gap."""
    start = position.start(lookback)
    if start is not None and position.newest:
        start = min(start, position.newest)  # a since position starts 1 ms after it: name since itself
    if start is None or _time.parse_time(start) >= now - RETENTION:
        return None
    return start, oldest or _time.format_time(now - RETENTION)


def silent_trail(position, seen, now, lookback=None):
    """Why a walk that listed no event at all is suspicious, in words; ``None`` when nothing was expected.

    HCP Terraform's docs say user and team tokens cannot read the audit trail, not how they are refused: an empty
    answer is one reading, as is an organization whose audit trail is turned off. A walk asks again for the events
    at its start, so a position that delivered events there (still kept) expects to see them listed again.
    """
    if seen.listed:
        return None
    start = position.start(lookback)
    if start is None:
        what = "no audit event at all for the 14 days it keeps"
    else:
        kept = _time.format_time(now - RETENTION)
        expected = sum(1 for moment, dummy in position.seen if moment >= start and moment > kept)
        if not expected:
            return None
        what = "no audit event at all, not even the %d already delivered at or after %s" % (expected, start)
    return ("HCP Terraform listed %s. The token may be a user or team token, which HCP Terraform may answer with an "
            "empty list instead of refusing it: use the organization's audit trail token or an organization token. "
            "Or the organization's audit trail is turned off (its events go to HCP audit log streaming)%s."
            % (what, " or it had no activity" if start is None else ""))


def ahead_warning(count, first):
    """The warning for ``count`` events dated later than the controller's clock allows, ``first`` (time, id)."""
    return ("%d audit event(s) are dated more than %d minutes ahead of this controller's clock (the first: %s at %s); "
            "they were delivered, and the position did not move to their time, so events still to come are not "
            "skipped. Check the clocks of the controller and of HCP Terraform."
            % (count, FUTURE_ALLOWANCE.total_seconds() // 60, first[1], first[0]))


def follow(spool, position, now, limit=None, lookback=None):
    """The spool's events in key order, each once, as ``(time or None, id or digest, line, ahead)``, recording each
    in ``position`` as it is taken; at most ``limit`` events with a time, and every event that cannot be read (they
    come last): such an event has no time at which a later run could take it up, so the run that lists it
    delivers it. ``ahead``: dated later than the controller's clock allows. ``now`` is when the walk began; the
    position forgets on the way what is behind the lookback."""
    ahead_from = _time.format_time(now + FUTURE_ALLOWANCE)
    stamp = _time.format_time(now)
    count = 0
    for key, line in spool.merged():
        moment, event_id = split_key(key)
        if limit is not None and count >= limit and moment is not None:
            continue
        if moment is None:
            position.deliver_unreadable(event_id, stamp)
            ahead = False
        else:
            ahead = position.deliver(moment, event_id, ahead_from)
        count += 1
        if not count % TRIM_EVERY:
            position.trim(stamp, lookback)
        yield moment, event_id, line, ahead
