# -*- coding: utf-8 -*-
"""Section events: the NDJSON export of tfe_audit_trail_events against a plain `requests` loop (floor_export.py),
time and peak RSS of each process, in both listing orders the API may use."""

import hashlib
import json
import subprocess
from pathlib import Path

from harness import BENCH, interleaved, rss_rows, rss_wrapper, step
from playbooks import events_export

ORDERS = ("newest", "oldest")


def sorted_digest(path):
    """SHA-256 of the file's lines in sorted order: the same events, whatever order they were written in."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for line in sorted(handle):
            digest.update(line)
    return digest.hexdigest()


class Export:
    """One organization's seeded trail, exported by the module or the floor; run() checks and measures one export."""

    def __init__(self, ws, emu, order, count):
        self.ws, self.emu, self.order, self.count = ws, emu, order, count
        org = "ev-%s-%d" % (order, count)
        emu.add_organization(org, entitlement=True)
        self.secret = emu.regenerate_audit_trail_token(org)["token"]
        emu.seed_events(org, count=count, step_seconds=1.0)
        self.total = len(emu._orgs[org].events)  # pylint: disable=protected-access  # + the token's own event
        self.log = ws.path("rss-%s-%d.jsonl" % (order, count))
        self.wrapper = rss_wrapper(ws, self.log)
        self.digests = set()

    def run(self, kind, rep):
        dest = self.ws.path("events-%s-%s-%d-%d.ndjson" % (self.order, kind, self.count, rep))
        if kind == "module":
            cursor = self.ws.path("cursor-%s-%d-%d.json" % (self.order, self.count, rep))
            self.ws.run_playbook(events_export(self.emu.url, self.secret, dest, cursor, self.wrapper))
            times = [json.loads(line)["timestamp"] for line in open(dest, "rb")]
            assert times == sorted(times), "the module did not write in time order"
        else:
            subprocess.run([str(self.wrapper), str(BENCH / "floor_export.py"), self.emu.url, self.secret, str(dest)],
                           check=True, capture_output=True, timeout=3600)
        row = rss_rows(self.log)[-1]
        row["argv"] = [Path(row["argv"][0]).name]  # no temp paths or tokens in the results
        lines = sum(1 for dummy in open(dest, "rb"))
        assert lines == self.total, "%s wrote %d events, expected %d" % (kind, lines, self.total)
        self.digests.add(sorted_digest(dest))
        dest.unlink()
        return row


def measure(ws, emu, args):
    """{order: {count: {kind: [rows]}}} for both listing orders (the API's documents do not say which it uses)."""
    out = {}
    for order in ORDERS:
        emu.set_listing(order=order)
        out[order] = {}
        for count in (int(c) for c in args.events.split(",")):
            step("events export %d, %s first" % (count, order))
            export = Export(ws, emu, order, count)
            rows = {"module": [], "floor": []}
            for rep, kinds in interleaved(("module", "floor"), args.events_reps):
                for kind in kinds:
                    rows[kind].append(export.run(kind, rep))
            assert len(export.digests) == 1, "the module and the floor did not write the same events"
            out[order][count] = rows
    emu.set_listing(order="newest")
    return out
