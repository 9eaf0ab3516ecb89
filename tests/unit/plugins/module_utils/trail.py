# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit trail API in memory, in each reading its docs leave open, for the feed's unit tests (no network)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from datetime import datetime, timedelta

from ansible_collections.tfe.audit.plugins.module_utils import _time
from ansible_collections.tfe.audit.plugins.module_utils._feed import follow, walk
from ansible_collections.tfe.audit.plugins.module_utils._spool import Spool

UTC = _time.UTC
T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
format_time, parse_time, canonical_time = _time.format_time, _time.parse_time, _time.canonical_time


def ev(i, moment=None):
    moment = moment or T0 + timedelta(seconds=i)
    return {"id": "ev-%05d" % i, "version": "0", "type": "Resource", "timestamp": format_time(moment),
            "resource": {"id": "ws-%d" % i, "type": "workspace", "action": "create", "meta": None}}


class FakeTrail:
    """The audit trail API in one reading of what its docs leave open.

    ``order``: ``newest`` or ``oldest`` first; ``ties``: events sharing a millisecond listed in ``insertion`` order
    (reversed with the listing) or by ``id``; ``inclusive``: ``since`` includes its own time; ``max_page_size``: the
    server's cap; ``visible``: a predicate, the events listed now (late visibility); ``before(trail, call)``: changes
    the trail before a request is answered (new events, retention); ``mangle(body, call)``: a broken answer.
    """

    def __init__(self, events=(), order="newest", ties="insertion", inclusive=False, max_page_size=None,
                 before=None, mangle=None, visible=None):
        self.events = list(events)
        self.order, self.ties, self.inclusive = order, ties, inclusive
        self.max_page_size, self.before, self.mangle, self.visible = max_page_size, before, mangle, visible
        self.calls = []

    def listing(self):
        rank = dict((e["id"], n) for n, e in enumerate(self.events))
        tie = (lambda e: rank[e["id"]]) if self.ties == "insertion" else (lambda e: e["id"])
        shown = [e for e in self.events if self.visible is None or self.visible(e)]
        ascending = sorted(shown, key=lambda e: (parse_time(e["timestamp"]), tie(e)))
        if self.order == "oldest":
            return ascending
        if self.ties == "insertion":
            return ascending[::-1]
        return sorted(ascending, key=lambda e: (-parse_time(e["timestamp"]).timestamp(), e["id"]))

    def expire(self, count):
        for event in sorted(self.events, key=lambda e: parse_time(e["timestamp"]))[:count]:
            self.events.remove(event)

    def __call__(self, since, page, page_size):
        self.calls.append((since, page))
        if self.before:
            self.before(self, len(self.calls))
        size = min(page_size, self.max_page_size or page_size)
        moment = parse_time(since) if since else None
        selected = [e for e in self.listing() if moment is None or parse_time(e["timestamp"]) > moment
                    or (self.inclusive and parse_time(e["timestamp"]) == moment)]
        pages = max(1, -(-len(selected) // size))
        body = {"data": selected[(page - 1) * size:page * size],
                "pagination": {"current_page": page, "prev_page": page - 1 or None,
                               "next_page": page + 1 if page < pages else None, "total_pages": pages,
                               "total_count": len(selected), "page_size": size}}
        return self.mangle(body, len(self.calls)) if self.mangle else body


READINGS = [dict(order=order, ties=ties, inclusive=inclusive)
            for order in ("newest", "oldest") for ties in ("insertion", "id") for inclusive in (False, True)]


def reading_id(reading):
    return "-".join(str(value) for value in reading.values())


def collect(trail, position, page_size=1000, now=NOW, lookback=None):
    """One walk and the delivery of what it found: the ids in delivery order, and the walk. ``position`` moves."""
    with Spool() as spool:
        seen = walk(trail, position, page_size, spool, now, lookback)
        ids = [event_id for dummy, event_id, dummy_line, dummy_ahead in follow(spool, position, now)]
        position.finish_walk(format_time(now), lookback)
        return ids, seen


def in_time_order(events):
    return [e["id"] for e in sorted(events, key=lambda e: (canonical_time(e["timestamp"]), json.dumps(e["id"])))]
