# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_spool: pages as sorted runs on disk, merged back each once in time order."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils import _spool
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError
from ansible_collections.tfe.audit.plugins.module_utils._spool import Spool, split_key, spool_key, unreadable_key
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.trail import T0, format_time

A = format_time(T0)
B = format_time(T0 + timedelta(seconds=1))


def test_keys_sort_as_times_then_ids_and_split_back():
    odd = 'quote " and \\ and caf\u00e9'
    keys = [spool_key(B, "a"), unreadable_key("00ff"), spool_key(A, odd), spool_key(A, "b")]
    assert sorted(keys) == [spool_key(A, "b"), spool_key(A, odd), spool_key(B, "a"), unreadable_key("00ff")]
    assert split_key(spool_key(A, odd)) == (A, odd) and split_key(unreadable_key("00ff")) == (None, "00ff")


def test_spool_merges_runs_oldest_first_and_drops_repeats():
    with Spool() as spool:
        spool.add([(spool_key(B, "b"), b"B"), (spool_key(A, "a"), b"A"), (spool_key(A, "a"), b"A")])
        spool.add([(spool_key(A, "a"), b"A"), (spool_key(A, "0"), b"0")])  # overlaps the first run
        spool.add([])
        spool.add([(unreadable_key("ff"), b"U")])
        spool.add([(spool_key(format_time(T0 + timedelta(seconds=2)), "c"), b"C")])
        assert [line for dummy, line in spool.merged()] == [b"0", b"A", b"B", b"C", b"U"]
        assert list(spool.merged()) == list(spool.merged())  # read again, same answer
        assert spool.distinct_count() == 5 and spool.records == 6


@pytest.fixture
def merged_groups(monkeypatch):
    """The size of each group of runs the spool merges, as it merges them."""
    sizes = []
    real_merge = Spool._merge

    def counted(self, group):
        sizes.append(len(group))
        return real_merge(self, group)

    monkeypatch.setattr(Spool, "_merge", counted)
    return sizes


def test_the_merge_reads_one_group_of_overlapping_runs_at_a_time(merged_groups):
    """1000 pages of a newest-first listing that never overlap: each run is read on its own, straight through."""
    with Spool() as spool:
        for page in range(1000):
            start = T0 + timedelta(seconds=1000 - page)
            spool.add([(spool_key(format_time(start + timedelta(milliseconds=i)), "%d-%d" % (page, i)), b"x")
                       for i in range(3)])
        spool.add([(spool_key(format_time(T0 + timedelta(seconds=500, milliseconds=1)), "dup"), b"y"),
                   (spool_key(format_time(T0 + timedelta(seconds=501)), "x"), b"z")])  # overlaps two runs
        assert sum(1 for dummy in spool.merged()) == 3002
        assert sorted(merged_groups)[-1] == 3 and len(merged_groups) == 999
        assert spool.distinct_count() == 3002


def test_a_spool_past_its_byte_bound_stops_the_walk():
    with Spool(max_bytes=100) as spool:
        spool.add([(spool_key(A, "a"), b"x" * 40)])
        with pytest.raises(FeedError, match="more than 0 MiB"):
            spool.add([(spool_key(B, "b"), b"x" * 40)])


def test_merge_buffers_share_a_budget(monkeypatch):
    monkeypatch.setattr(_spool, "MERGE_BUFFER", 8 << 10)
    with Spool() as spool:
        for page in range(50):  # every page overlaps every other: one group of 50
            spool.add([(spool_key(format_time(T0 + timedelta(milliseconds=i)), "%d-%d" % (page, i)), b"x" * 100)
                       for i in range(100)])
        assert spool.distinct_count() == 5000
        assert [split_key(key)[0] for key, dummy in spool.merged()] == sorted(
            format_time(T0 + timedelta(milliseconds=i)) for i in range(100) for dummy in range(50))


def test_pages_that_meet_at_one_event_are_read_one_at_a_time(merged_groups):
    """Keyset paging (oldest first) asks for a page's last event again: each page starts with the one before's
    last. Such pages are not one group of overlapping runs (which held a buffer for each of them at once)."""
    keys = [spool_key(format_time(T0 + timedelta(milliseconds=i)), "e%d" % i) for i in range(301)]
    with Spool() as spool:
        for page in range(100):
            spool.add([(key, b"x") for key in keys[page * 3:page * 3 + 4]])  # 4 keys, the first the last before
        assert [key for key, dummy in spool.merged()] == keys
        assert spool.distinct_count() == 301 and set(merged_groups) == {1}
