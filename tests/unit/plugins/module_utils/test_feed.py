# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_feed: the walk in every reading the API docs leave open, and what it does with broken or hostile pages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._feed import UNREADABLE, encode_line, follow, walk
from ansible_collections.tfe.audit.plugins.module_utils._spool import Spool
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.trail import (
    NOW,
    READINGS,
    T0,
    FakeTrail,
    collect,
    ev,
    format_time,
    in_time_order,
    parse_time,
    reading_id,
)


def test_an_event_is_one_line_of_json():
    event = ev(1)
    event["resource"]["meta"] = {"note": "two\nlines", "name": "caf\u00e9", "odd": "\ud800"}
    line = encode_line(event)
    assert b"\n" not in line and json.loads(line.decode("utf-8")) == event


@pytest.mark.parametrize("reading", READINGS, ids=reading_id)
@pytest.mark.parametrize("page_size", [1, 7, 1000])
def test_walk_exports_every_event_once_oldest_first(reading, page_size):
    events = [ev(i) for i in range(40)] + [ev(100 + i, T0 + timedelta(seconds=20)) for i in range(15)]
    got, seen = collect(FakeTrail(events, **reading), Cursor(), page_size)
    assert got == in_time_order(events)
    assert seen.order == ("unknown" if page_size == 1 else reading["order"] + "_first")
    assert seen.oldest == format_time(T0)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_walk_with_a_server_that_caps_the_page_size(order):
    trail = FakeTrail([ev(i) for i in range(95)], order=order, max_page_size=10)
    got, seen = collect(trail, Cursor(), page_size=1000)
    assert got == in_time_order(trail.events) and seen.pages >= 10


@pytest.mark.parametrize("reading", READINGS, ids=reading_id)
def test_walk_resumes_after_the_position_with_events_that_share_its_time(reading):
    trail = FakeTrail([ev(i) for i in range(5)], **reading)
    position = Cursor()
    collect(trail, position)
    boundary = parse_time(trail.events[-1]["timestamp"])
    trail.events += [ev(10, boundary), ev(11, boundary), ev(12, boundary + timedelta(milliseconds=1))]
    assert collect(trail, position, page_size=2)[0] == ["ev-00010", "ev-00011", "ev-00012"]


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("inserted", [3, 10, 25])
def test_new_events_arriving_while_paging_are_never_lost_or_repeated(order, inserted):
    """New events push a newest-first listing along between two requests; two runs deliver each event once."""
    newest = [T0 + timedelta(seconds=60)]

    def arrive(trail, call):
        if call in (2, 4):
            for dummy in range(inserted):
                newest[0] += timedelta(milliseconds=7)
                trail.events.append(ev(len(trail.events) + 1000, newest[0]))

    trail = FakeTrail([ev(i) for i in range(50)], order=order, before=arrive)
    position = Cursor()
    first = collect(trail, position, page_size=10)[0]
    trail.before = None
    assert first + collect(trail, position, page_size=10)[0] == in_time_order(trail.events)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_events_leaving_retention_while_paging_do_not_shift_others_past_the_reader(order):
    """The oldest events expire between requests (a first run near the 14-day edge)."""

    def retention(trail, call):
        if call > 1:
            trail.expire(3)

    trail = FakeTrail([ev(i) for i in range(60)], order=order, before=retention)
    got, dummy = collect(trail, Cursor(), page_size=10)
    assert len(got) == len(set(got)) and set(in_time_order(trail.events)) <= set(got)
    assert got == [i for i in in_time_order([ev(n) for n in range(60)]) if i in set(got)]


def test_a_listing_that_changes_its_mind_is_walked_again_by_number():
    """Page 1 looks oldest first, page 2 newest first: the walk restarts by page number, nothing is lost."""

    def flip(trail, call):
        trail.order = "oldest" if call == 1 else "newest"

    trail = FakeTrail([ev(i) for i in range(30)], before=flip)
    got, seen = collect(trail, Cursor(), page_size=10)
    assert got == in_time_order(trail.events) and seen.order == "unordered"
    assert (None, 1) in trail.calls[1:]  # started again from the run's own since


events_strategy = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2)), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.sampled_from(READINGS), st.integers(1, 9), st.integers(0, 40),
       st.one_of(st.none(), st.integers(1, 5)))
def test_property_two_runs_deliver_each_event_exactly_once_in_time_order(shape, reading, page_size, split, cap):
    """Any trail, any reading, any page size: a run, new events, a second run: each event once, in order."""
    events = [ev(n, T0 + timedelta(milliseconds=ms)) for n, (ms, dummy) in enumerate(shape)]
    trail = FakeTrail(events[:split], max_page_size=cap, **reading)
    position = Cursor()
    first = collect(trail, position, page_size)[0]
    assert first == in_time_order(trail.events)
    newest = max([parse_time(e["timestamp"]) for e in trail.events] or [T0])
    trail.events += [ev(1000 + n, max(newest, T0 + timedelta(milliseconds=ms)) if late else
                     T0 + timedelta(milliseconds=ms + 13)) for n, (ms, late) in enumerate(shape[split:])]
    assert first + collect(trail, position, page_size)[0] == in_time_order(trail.events)


# -- late events ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reading", READINGS[::3], ids=reading_id)
def test_an_event_listed_up_to_the_lookback_late_is_delivered_once(reading):
    """Events become visible up to 50 s after their timestamps; runs every 10 s with a 1 minute lookback."""
    events = [ev(i, T0 + timedelta(seconds=i)) for i in range(200)]
    delay = dict((e["id"], timedelta(seconds=(i * 37) % 50)) for i, e in enumerate(events))
    clock = [T0]
    trail = FakeTrail(events, visible=lambda e: parse_time(e["timestamp"]) + delay[e["id"]] <= clock[0], **reading)
    position, delivered = Cursor(), []
    while clock[0] < T0 + timedelta(seconds=300):
        delivered += collect(trail, position, page_size=7, now=clock[0], lookback=timedelta(minutes=1))[0]
        clock[0] += timedelta(seconds=10)
    assert sorted(delivered) == sorted(e["id"] for e in events) and len(delivered) == len(set(delivered))
    without = Cursor()
    clock[0], missed = T0, []
    while clock[0] < T0 + timedelta(seconds=300):
        missed += collect(trail, without, page_size=7, now=clock[0])[0]
        clock[0] += timedelta(seconds=10)
    assert len(missed) < len(events)  # the reading matters: without a lookback, late events are lost


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 30)), max_size=40), st.sampled_from(READINGS),
       st.integers(1, 9), st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_property_events_listed_up_to_the_lookback_late_are_each_delivered_once(shape, reading, page_size, gaps):
    """Any trail, any listing reading, any page size, each event listed up to the lookback (30 s) after its time,
    runs at any moments: each event is delivered exactly once."""
    events = [ev(n, T0 + timedelta(seconds=second)) for n, (second, dummy) in enumerate(shape)]
    delay = dict((e["id"], timedelta(seconds=late)) for e, (dummy, late) in zip(events, shape))
    clock = [T0]
    trail = FakeTrail(events, visible=lambda e: parse_time(e["timestamp"]) + delay[e["id"]] <= clock[0], **reading)
    position, delivered = Cursor(), []
    for gap in gaps + [100]:  # the last run comes once every event is listed
        clock[0] += timedelta(seconds=gap)
        delivered += collect(trail, position, page_size, now=clock[0], lookback=timedelta(seconds=30))[0]
    assert sorted(delivered) == sorted(e["id"] for e in events) and len(delivered) == len(set(delivered))


# -- broken and hostile pages ----------------------------------------------------------------------------


def mangled(change, call=2, events=25):
    """A trail of ``events`` events whose answer number ``call`` is changed by ``change(body)``."""

    def mangle(body, number):
        if number == call:
            change(body)
        return body

    return FakeTrail([ev(i) for i in range(events)], mangle=mangle)


def drop(key):
    return lambda body: body.pop(key)


def set_pagination(**values):
    return lambda body: body["pagination"].update(values)


@pytest.mark.parametrize("change, match", [
    (drop("pagination"), "without a pagination object"),
    (lambda body: body.update(pagination=[1, 2]), "without a pagination object"),
    (drop("data"), "without a data list"),
    (lambda body: body.update(data={"id": "x"}), "without a data list"),
    (lambda body: body["data"].__setitem__(0, "an event?"), "holds a str where an event belongs"),
    (set_pagination(next_page=4), "next_page is not page 3"),
    (set_pagination(next_page="3"), "next_page is not page 3"),
    (set_pagination(next_page=None), "last page .* of 3 pages"),
    (set_pagination(current_page=1), "says it is page 1"),
    (set_pagination(total_pages=2), "next page beyond its total_pages"),
    (set_pagination(total_count=9999), "total_count 9999 does not fit"),
    (set_pagination(total_count=None), "must be numbers"),
    (set_pagination(current_page=True), "must be numbers"),
])
def test_an_answer_that_is_not_the_documented_shape_fails_before_anything_moves(change, match):
    trail = mangled(change)
    position = Cursor.after(format_time(T0 - timedelta(seconds=1)))
    before = position.to_dict()
    with Spool() as spool:
        with pytest.raises(FeedError, match=match) as caught:
            walk(trail, position, 10, spool, NOW)
    assert "nothing was written" in str(caught.value) and position.to_dict() == before


def test_an_empty_page_that_names_a_next_page_is_followed():
    """Page 2 of 3 comes back empty but names page 3 (and the server counts 15 events): the walk reads on."""

    def change(body):
        body["pagination"]["total_count"] = 15
        if body["pagination"]["current_page"] == 2:
            body["data"] = []

    trail = FakeTrail([ev(i) for i in range(25)], mangle=lambda body, call: change(body) or body)
    got, seen = collect(trail, Cursor.after(format_time(T0 - timedelta(seconds=1))), 10)
    assert [page for dummy, page in trail.calls] == [1, 2, 3] and seen.pages == 3
    assert got == in_time_order(trail.events[:5] + trail.events[15:])


def test_pages_that_hold_fewer_events_than_the_first_announced_fail_the_walk():
    """Page 2 comes back empty and still names page 3: the walk reads on, counts 15 of the 25 announced, and fails."""
    trail = mangled(lambda body: body.update(data=[]), call=2)
    position = Cursor.after(format_time(T0 - timedelta(seconds=1)))
    with Spool() as spool:
        with pytest.raises(FeedError, match="announced 25 events after .* but its pages held 15"):
            walk(trail, position, 10, spool, NOW)
    assert [page for dummy, page in trail.calls] == [1, 2, 3]
    # A first run (or a position near the 14-day edge) cannot tell a skip from events leaving the retention.
    assert collect(mangled(lambda body: body.update(data=[]), call=2), Cursor(), 10)[0] != []


def test_a_server_that_repeats_a_page_forever_is_stopped_after_three_pages():
    def stuck(since, page, size):  # ignores page[number], echoes it, always has more
        return {"data": [ev(1), ev(0)], "pagination": {"current_page": page, "next_page": page + 1,
                                                       "total_pages": 10 ** 9, "total_count": 2 * 10 ** 9}}

    calls = []
    with Spool() as spool:
        with pytest.raises(FeedError, match="same events for page 3 as for the 2 pages before"):
            walk(lambda *args: calls.append(args) or stuck(*args), Cursor(), 2, spool, NOW)
        assert len(calls) == 3 and spool.records == 4  # the third copy is not even spooled


def test_a_walk_is_bounded_by_what_the_first_page_announced():
    counter = [0]

    def endless(since, page, size):  # new events on every page, total_pages growing: never ends by itself
        counter[0] += 1
        data = [ev(10 * counter[0] + i) for i in range(size)]
        return {"data": data, "pagination": {"current_page": page, "next_page": page + 1,
                                             "total_pages": 3 + page, "total_count": size * (3 + page)}}

    with Spool() as spool:
        with pytest.raises(FeedError, match="did not end within 18 pages"):
            walk(endless, Cursor(), 2, spool, NOW)
    assert counter[0] == 18


def test_events_that_cannot_be_read_are_delivered_once_as_they_came():
    odd = [{"id": "no-time", "x": 1}, {"timestamp": "2030-01-02T03:04:06.000Z", "secret": "s"},
           {"id": "bad", "timestamp": "9999-12-31T23:30:00.000-01:00"}, {"id": "junk", "timestamp": "{{ x }}"}]

    class Raw:
        raw, reason = b'{"id": [[[[[[[[', "it is nested too deeply"

    listing = [ev(i) for i in range(5)] + odd + [Raw()]

    def trail(since, page, size):  # lists everything, whatever since says
        pages = -(-len(listing) // size)
        return {"data": listing[(page - 1) * size:page * size],
                "pagination": {"current_page": page, "next_page": page + 1 if page < pages else None,
                               "total_pages": pages, "total_count": len(listing)}}

    position = Cursor()
    with Spool() as spool:
        walk(trail, position, 3, spool, NOW)
        got = [(moment, line) for moment, dummy, line, dummy_ahead in follow(spool, position, NOW)]
    assert [json.loads(line)["id"] for moment, line in got[:5]] == in_time_order(listing[:5])
    wrappers = [json.loads(line)[UNREADABLE] for moment, line in got[5:]]
    assert [moment for moment, line in got[5:]] == [None] * 5
    raw = sorted(base64.b64decode(w["base64"]) for w in wrappers)
    assert raw == sorted([encode_line(item) for item in odd] + [Raw.raw])
    assert all(w["reason"] and "{{" not in w["reason"] for w in wrappers)
    position.finish_walk(format_time(NOW), None)
    listing.insert(0, ev(9))
    assert collect(trail, position, 3)[0] == ["ev-00009"]  # the unreadable ones are not delivered twice


def test_an_event_dated_far_ahead_is_delivered_once_and_does_not_move_the_position():
    trail = FakeTrail([ev(i) for i in range(3)] + [ev(99, parse_time("2099-01-01T00:00:00.000Z"))])
    position = Cursor()
    with Spool() as spool:
        walk(trail, position, 1000, spool, NOW)
        got = [(event_id, ahead) for dummy, event_id, dummy_line, ahead in follow(spool, position, NOW)]
    position.finish_walk(format_time(NOW), None)
    assert got == [("ev-00000", False), ("ev-00001", False), ("ev-00002", False), ("ev-00099", True)]
    assert position.newest == format_time(T0 + timedelta(seconds=2))
    trail.events += [ev(3), ev(4)]
    assert collect(trail, position)[0] == ["ev-00003", "ev-00004"]  # events still to come are not skipped


def test_the_position_forgets_on_the_way_what_is_behind_the_lookback():
    """Memory stays at the lookback's window (plus one trim's worth), whatever the backlog: 20,000 events, a minute."""
    trail = FakeTrail([ev(i) for i in range(20000)], order="oldest")
    position, sizes = Cursor(), []
    now = T0 + timedelta(seconds=20000)
    delivered = []
    with Spool() as spool:
        walk(trail, position, 1000, spool, now, timedelta(minutes=1))
        for moment, event_id, dummy_line, dummy_ahead in follow(spool, position, now, lookback=timedelta(minutes=1)):
            sizes.append(len(position.seen))
            delivered.append((moment, event_id))
            if len(delivered) == 10000:  # saved half-way (the event source's state): all it delivered is covered
                half = Cursor.from_dict(position.to_dict(), "state_file")
                assert all(half.covers(*key) for key in delivered)
                assert not any(half.covers(e["timestamp"], e["id"]) for e in trail.events[10000:])
    assert len(sizes) == 20000 and max(sizes) <= 4096 + 60
    position.finish_walk(format_time(now), timedelta(minutes=1))
    assert len(position.seen) == 60  # the last minute, one event a second


def test_a_page_of_delivered_and_new_events_is_read_in_its_own_order():
    """With a lookback a page holds events delivered before and new ones: the order is read from the listing as it
    is, so an oldest-first listing is not taken for one that changed its mind (which walks everything again)."""
    trail = FakeTrail([ev(i) for i in range(30)], order="oldest")
    position = Cursor()
    collect(trail, position, 10, now=T0 + timedelta(seconds=31), lookback=timedelta(minutes=1))
    trail.events += [ev(i) for i in range(30, 45)]
    trail.calls = []
    got, seen = collect(trail, position, 10, now=T0 + timedelta(seconds=46), lookback=timedelta(minutes=1))
    assert got == ["ev-%05d" % i for i in range(30, 45)] and seen.order == "oldest_first"
    assert all(page == 1 for dummy, page in trail.calls)  # by time all along: never walked again by number


@pytest.mark.parametrize("depth, readable", [(4, True), (512, True), (513, False), (900, False)])
def test_an_event_nested_deeper_than_any_handling_allows_is_delivered_unreadable(depth, readable):
    """Python 3.12 and 3.13 decode JSON nested thousands deep, but what handles an event afterwards recurses: an
    event deeper than 512 levels comes as it came, unreadable, whatever the Python."""
    event = ev(1)
    nested = event["resource"]
    for dummy in range(depth - 2):  # the event and its resource are two levels
        nested["meta"] = {}
        nested = nested["meta"]
    got = [json.loads(line) for dummy, dummy_id, line, dummy_ahead in
           follow_all(FakeTrail([event]), Cursor())]
    assert ("tfe_audit_unreadable" not in got[0]) == readable
    if not readable:
        assert "512 levels" in got[0]["tfe_audit_unreadable"]["reason"]


def follow_all(trail, position):
    with Spool() as spool:
        walk(trail, position, 1000, spool, NOW)
        return list(follow(spool, position, NOW))
