# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The spool: one walk's new events on disk, each page a sorted run, read back merged (docs/feed.md).

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import heapq
import json
import os
import re
import tempfile

from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError

# A key is the event's canonical time (fixed width, so bytes sort as times) and then its id, JSON-quoted.
TIME_WIDTH = len("2030-12-31T23:59:59.123Z")
# An event that cannot be read has no time: its key is this prefix and the digest of its bytes, which sorts
# after every time, so unreadable events come last, each once.
UNREADABLE_PREFIX = b"~"
# An id that JSON quotes as it is: printable ASCII without a quote or a backslash.
_PLAIN_ID = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z")
# The merge reads every run of an overlapping group at once; its read buffers share this budget.
MERGE_BUFFER = 16 << 20
MIN_CHUNK, MAX_CHUNK = 4 << 10, 64 << 10


def spool_key(moment, event_id):
    """The key of an event: its canonical time, then its id JSON-quoted (plain ids skip the encoder)."""
    if _PLAIN_ID.match(event_id):
        return ("%s\"%s\"" % (moment, event_id)).encode("ascii")
    return moment.encode("ascii") + json.dumps(event_id).encode("ascii")


def unreadable_key(digest):
    return UNREADABLE_PREFIX + digest.encode("ascii")


def split_key(key):
    """``(canonical time, id)`` of a key; ``(None, digest)`` for an unreadable event."""
    if key.startswith(UNREADABLE_PREFIX):
        return None, key[len(UNREADABLE_PREFIX):].decode("ascii")
    quoted = key[TIME_WIDTH:]
    moment = key[:TIME_WIDTH].decode("ascii")
    if b"\\" not in quoted:
        return moment, quoted[1:-1].decode("ascii")
    return moment, json.loads(quoted.decode("ascii"))


def _records(fd, offset, size, chunk):
    """The ``(key, line)`` records of one run, read with ``pread`` ``chunk`` bytes at a time."""
    end, rest = offset + size, b""
    while offset < end:
        data = os.pread(fd, min(chunk, end - offset), offset)
        if not data:
            raise FeedError("the spool file ended early")
        offset += len(data)
        records = (rest + data).split(b"\n")
        rest = records.pop()
        for record in records:
            key, dummy, line = record.partition(b"\t")
            yield key, line


def _distinct(records):
    last = None
    for key, line in records:
        if key != last:
            yield key, line
            last = key


class Spool:
    """The new events of one walk, in an anonymous temp file (nothing is left behind by a killed run).

    :meth:`add` stores one page as a sorted run; :meth:`merged` yields every ``(key, line)`` once, in key order.
    """

    def __init__(self, directory=None, max_bytes=None):
        try:
            self._file = tempfile.TemporaryFile(prefix=".tfe-audit-spool.", dir=directory)
        except OSError as exc:
            where = directory or tempfile.gettempdir()
            raise FeedError("cannot create a spool file in %s: %s" % (where, exc.strerror or exc))
        self._fd = self._file.fileno()
        self._runs = []       # (first key, last key, offset, size, records)
        self.size = 0
        self.max_bytes = max_bytes
        self.records = 0      # records stored, repeats between runs included
        self.line_bytes = 0   # bytes of NDJSON the runs would make, repeats included (an upper bound)

    def add(self, items):
        """Store one run: ``(key, line)`` pairs, sorted (and repeats within it dropped) here."""
        items = list(_distinct(sorted(items)))
        if not items:
            return
        data = b"".join(key + b"\t" + line + b"\n" for key, line in items)
        if self.max_bytes is not None and self.size + len(data) > self.max_bytes:
            raise FeedError("the audit trail sent more than %d MiB of events in one walk, more than its own page "
                            "counts allow; nothing was written" % (self.max_bytes >> 20))
        try:
            os.pwrite(self._fd, data, self.size)
        except OSError as exc:
            raise FeedError("cannot write the spool file: %s" % (exc.strerror or exc))
        self._runs.append((items[0][0], items[-1][0], self.size, len(data), len(items)))
        self.size += len(data)
        self.records += len(items)
        self.line_bytes += sum(len(line) + 1 for dummy, line in items)

    def _groups(self):
        """The runs in key order, grouped so that runs of different groups share no key but the one where two
        meet (keyset paging asks for the last event of a page again: the next page starts with it)."""
        group, last = [], None
        for run in sorted(self._runs):
            if group and run[0] >= last:
                yield group
                group = []
            group.append(run)
            last = run[1] if len(group) == 1 else max(last, run[1])
        if group:
            yield group

    def _merge(self, group):
        chunk = max(MIN_CHUNK, min(MAX_CHUNK, MERGE_BUFFER // len(group)))
        runs = [_records(self._fd, offset, size, chunk) for dummy, dummy_last, offset, size, dummy_n in group]
        return runs[0] if len(runs) == 1 else _distinct(heapq.merge(*runs, key=lambda record: record[0]))

    def _meeting(self):
        """``(group, meets)`` of every group: ``meets`` when its first key is the last of the group before."""
        end = None
        for group in self._groups():
            yield group, group[0][0] == end
            end = max(run[1] for run in group)

    def merged(self):
        """Every ``(key, line)`` once, in key order. Only the runs of one overlapping group are read at a time
        (pages overlap only where the listing shifted while it was read); a run alone is read straight."""
        for group, meets in self._meeting():
            records = self._merge(group)
            if meets:
                next(records, None)  # given already, as the last of the group before
            yield from records

    def distinct_count(self):
        """How many different keys the runs hold, reading only the runs that overlap another."""
        count = 0
        for group, meets in self._meeting():
            count += (group[0][4] if len(group) == 1 else sum(1 for dummy in self._merge(group))) - meets
        return count

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
