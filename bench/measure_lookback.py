# -*- coding: utf-8 -*-
"""Section lookback: what the lookback (the events of the last 30 minutes read again on every run, so that events
HCP Terraform lists late are delivered once) costs an export run that finds nothing new, against no lookback.

For each number of events in the last half hour (the window the default lookback reads again), an organization
gets that many recent events and 2,000 older ones, is exported once, and then exported again with nothing new,
several times, interleaved with the same run without a lookback (`lookback: 0`). Counted: the audit trail requests
of the idle run (exact), and the module process's wall and CPU time (bench/rsswrap.py).
"""

import datetime

from harness import interleaved, rss_rows, rss_wrapper, step
from playbooks import events_export

KINDS = ("30m", "0")
TRAIL = "/api/v2/organization/audit-trail"


def organization(emu, recent, kind):
    org = "lb-%d-%s" % (recent, kind)
    emu.add_organization(org, entitlement=True)
    token = emu.regenerate_audit_trail_token(org)["token"]
    now = datetime.datetime.now(datetime.timezone.utc)
    emu.seed_events(org, count=2000, start=(now - datetime.timedelta(hours=3)).isoformat())
    if recent:
        spread = 25 * 60.0 / recent  # within the last 25 minutes
        emu.seed_events(org, count=recent, step_seconds=spread, start=(now - datetime.timedelta(minutes=25)).isoformat())
    return token


def idle_run(ws, emu, recent, kind, token, rep):
    """Export once (the first time), then once more with nothing new: {requests, seconds, cpu} of the second."""
    dest, cursor = ws.path("lb-%d-%s.ndjson" % (recent, kind)), ws.path("lb-%d-%s.cursor.json" % (recent, kind))
    log = ws.path("rss-lb-%d-%s-%d.jsonl" % (recent, kind, rep))
    book = events_export(emu.url, token, dest, cursor, rss_wrapper(ws, log), lookback=kind)
    if rep == 0:
        ws.run_playbook(book)
    emu.clear_requests()
    ws.run_playbook(book)
    process = rss_rows(log)[-1]
    gets = [r for r in emu.requests if r["path"] == TRAIL]
    return {"requests": len(gets), "seconds": process["seconds"], "cpu": process["user"] + process["sys"]}


def measure(ws, emu, args):
    """{recent: {kind: [{requests, seconds, cpu}]}} for each number of events in the last half hour."""
    out = {}
    for recent in (int(count) for count in args.lookback_events.split(",")):
        step("lookback: an idle export with %d events in the last half hour" % recent)
        tokens = dict((kind, organization(emu, recent, kind)) for kind in KINDS)
        rows = dict((kind, []) for kind in KINDS)
        for rep, kinds in interleaved(KINDS, args.lookback_reps):
            for kind in kinds:
                rows[kind].append(idle_run(ws, emu, recent, kind, tokens[kind], rep))
        out[recent] = rows
    return out
