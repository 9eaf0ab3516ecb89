#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfe_audit_trail_events
short_description: Read or export the audit trail events of an HCP Terraform organization
version_added: 0.1.0
description:
  - Reads the audit trail of the organization the O(token) belongs to (C(GET /api/v2/organization/audit-trail)),
    page by page, and either returns the events or appends them to a file as NDJSON (one JSON object per line)
    for a SIEM forwarder to tail.
  - Authenticate with the organization's audit trail token (for example the vault variable the role
    C(tfe.audit.audit_trail_token) maintains) or an organization token; user and team tokens are refused
    by HCP Terraform. There is no organization option, the token's organization is used.
  - With O(dest) and O(cursor_file), a scheduled run exports exactly the events that are new since the
    previous run, each once, even after a run was killed half-way.
  - HCP Terraform keeps audit trail events for 14 days; schedule exports more often than that.
author:
  - tfe.audit maintainers (@tfe-audit)
extends_documentation_fragment:
  - tfe.audit.connection
attributes:
  check_mode:
    support: full
    description:
      - Without O(dest) the module only reads, so it runs as usual.
      - With O(dest) nothing is written; only the pages needed to count the new events are fetched
        (usually one), and RV(count) and the changed status say what a real run would export.
  diff_mode:
    support: none
    description: Events are not diffed; RV(count) says how many were exported.
  action_group:
    description: Use C(group/tfe.audit.tfe) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - tfe.audit.tfe
options:
  since:
    description:
      - Read only events after this time, an RFC 3339 date-time with a time zone offset or V(Z), for example
        V(2030-12-31T23:59:59.000Z).
      - Not set means every event HCP Terraform still keeps.
      - With O(cursor_file), only used while the cursor holds no position yet; afterwards the cursor decides.
    type: str
  page_size:
    description:
      - Events per request, from V(1) to V(1000).
    type: int
    default: 1000
  max_events:
    description:
      - Stop after this many events in this run. Not set means no limit.
      - With O(cursor_file) the next run goes on where this one stopped.
      - Without O(dest) all events are held in memory and returned; set this to bound the result.
    type: int
  dest:
    description:
      - Append the events to this file as NDJSON, one JSON object per line, in the API's format, oldest first.
      - Written page by page (appended, then C(fsync)), so memory stays bounded by one page whatever the count.
        The events are then not returned.
      - Created (with the mode the umask gives) when missing; the directory must exist. Only this module should
        write to it. While a run writes, the file is locked (C(flock)) so two exports cannot interleave.
      - Log rotation (move and create, or copy and truncate) is fine between runs.
    type: path
  cursor_file:
    description:
      - Where the export position is kept between runs, a small JSON file (no secret in it), written atomically.
      - Without it every run appends every event after O(since) again.
      - Requires O(dest).
    type: path
notes:
  - B(Resume.) The API's C(since) is a time, and whether it is exclusive is not documented, so the cursor holds
    the newest exported timestamp B(and the ids exported at exactly that time). A run asks for events since one
    millisecond before the cursor and skips events older than the cursor and the ids it holds, so events that
    share the cursor's timestamp, including ones that arrive later, are exported once.
  - B(Crash safety.) For each page the lines are appended to O(dest) and flushed to disk (C(fsync)); only then is
    the cursor, with the size and identity of O(dest), replaced atomically (temporary file, C(fsync), rename).
    A run killed between the two leaves complete lines after the size the cursor records; the next run adopts
    them into the cursor (rolls forward) instead of fetching them again, and cuts off a trailing partial line.
    Lines a forwarder may already have shipped are never removed or written twice, so a killed and re-run
    export holds each event exactly once. If O(dest) was rotated or replaced, the whole new file is checked
    the same way (RV(recovered) counts adopted events).
  - Pages are walked by time (the next request starts at the newest event written), which stays correct while
    old events leave the 14-day retention window during a long export.
  - Events are expected oldest first within the audit trail, as HCP Terraform returns them.
    An event that arrives later with a timestamp older than the cursor is not exported.
  - Rate limits (HTTP 429) and gateway errors are retried by the shared client (see O(max_retries)). A run that
    still fails keeps the pages already written and their cursor; the next run continues from there.
seealso:
  - module: tfe.audit.tfe_audit_trail_token
  - name: Audit trails API
    description: The HCP Terraform API this module reads.
    link: https://developer.hashicorp.com/terraform/cloud-docs/api-docs/audit-trails
"""

EXAMPLES = r"""
- name: Export new audit trail events for a SIEM forwarder (schedule this, e.g. every 5 minutes)
  tfe.audit.tfe_audit_trail_events:
    token: "{{ vault_tfe_audit_trail_token }}"
    dest: /var/log/hcp-terraform/audit.ndjson
    cursor_file: /var/lib/hcp-terraform/audit.cursor.json
  register: export

- name: Report
  ansible.builtin.debug:
    msg: "{{ export.count }} new events in {{ export.pages }} requests, up to {{ export.next_since }}"

- name: Events since a fixed time, returned to the play
  tfe.audit.tfe_audit_trail_events:
    hostname: app.eu.terraform.io
    token: "{{ vault_tfe_audit_trail_token }}"
    since: "2030-01-01T00:00:00Z"
    max_events: 500
  register: recent

- name: Token creations among them
  ansible.builtin.debug:
    msg: "{{ recent.events | selectattr('resource.type', 'equalto', 'authentication_token') | list }}"

- name: What would be exported, without fetching more than needed or writing anything
  tfe.audit.tfe_audit_trail_events:
    token: "{{ vault_tfe_audit_trail_token }}"
    dest: /var/log/hcp-terraform/audit.ndjson
    cursor_file: /var/lib/hcp-terraform/audit.cursor.json
  check_mode: true
  register: pending
"""

RETURN = r"""
events:
  description:
    - The events, oldest first, as the API returns them.
    - Only without O(dest).
  returned: when O(dest) is not set
  type: list
  elements: dict
  sample:
    - id: ae66e491-db59-457c-8445-9c908ee726ae
      version: "0"
      type: Resource
      timestamp: "2030-06-30T17:52:46.000Z"
      auth:
        accessor_id: user-MaPuLxAXvtq2PWTH
        description: pveverka
        type: Client
        impersonator_id: null
        organization_id: org-AGLwRmx1snv34Yts
      request:
        id: 4df584d4-7e2a-01e6-6cc0-4adbefa020e6
      resource:
        id: at-sjt83qTw3GZatuPm
        type: authentication_token
        action: create
        meta: null
count:
  description:
    - How many events were returned, or appended to O(dest).
    - In check mode with O(dest), how many a real run would append (as counted by the API at that moment).
  returned: always
  type: int
  sample: 2500
pages:
  description: How many pages were requested from the API in this run.
  returned: always
  type: int
  sample: 3
next_since:
  description:
    - The timestamp of the newest event read or exported (with O(cursor_file), the cursor's), else O(since).
    - V(null) when there is neither.
    - Passing it as O(since) to a later run without a cursor may miss events that share this timestamp;
      use O(cursor_file) for exact resumption.
  returned: always
  type: str
  sample: "2030-06-30T17:52:46.000Z"
recovered:
  description:
    - Events found in O(dest) that a killed run had written after its last cursor update, now adopted into the
      cursor (they are not fetched again).
  returned: when O(cursor_file) is set
  type: int
  sample: 0
"""

import os

from ansible_collections.tfe.audit.plugins.module_utils._client import TfeError
from ansible_collections.tfe.audit.plugins.module_utils._export import (
    Cursor,
    ExportError,
    NdjsonWriter,
    format_time,
    load_cursor,
    parse_time,
    recover,
    save_cursor,
    walk,
)
from ansible_collections.tfe.audit.plugins.module_utils._module import OptionError, TfeModule

MAX_PAGE_SIZE = 1000


def parse_options(params):
    """Validate the module's own options before any API call. Raises ``OptionError``."""
    options = dict(since=None, page_size=params["page_size"], max_events=params["max_events"],
                   dest=params["dest"], cursor_file=params["cursor_file"])
    if params["since"] is not None:
        try:
            options["since"] = format_time(parse_time(params["since"], "since"))
        except ExportError as exc:
            raise OptionError(str(exc).replace("for example ", "for example since: "))
    if options["page_size"] is None or not 1 <= options["page_size"] <= MAX_PAGE_SIZE:
        raise OptionError("page_size must be from 1 to %s, got %r; for example page_size: 1000"
                          % (MAX_PAGE_SIZE, options["page_size"]))
    if options["max_events"] is not None and options["max_events"] < 1:
        raise OptionError("max_events must be 1 or more (or not set for no limit), got %r; for example "
                          "max_events: 10000" % options["max_events"])
    for option in ("dest", "cursor_file"):
        path = options[option]
        if path is None:
            continue
        if not path or path.endswith(os.sep) or os.path.isdir(path):
            raise OptionError("%s %r must be a file path, not a directory; for example %s: %s"
                              % (option, path, option, "/var/log/hcp-terraform/audit.ndjson" if option == "dest"
                                 else "/var/lib/hcp-terraform/audit.cursor.json"))
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise OptionError("the directory of %s (%s) does not exist; create it first (ansible.builtin.file "
                              "with state: directory)" % (option, directory))
    if options["dest"] and options["cursor_file"] and \
            os.path.abspath(options["dest"]) == os.path.abspath(options["cursor_file"]):
        raise OptionError("dest and cursor_file must be different files")
    return options


def remaining(max_events, count):
    return None if max_events is None else max_events - count


def read_events(fetch, since, page_size, max_events):
    """Without dest: the events (a list), the number of pages and the newest timestamp read."""
    cursor = Cursor()
    events, pages = [], 0
    for page in walk(fetch, cursor, since, page_size):
        pages += 1
        for moment, event_id, event in page.new_events:
            if remaining(max_events, len(events)) == 0:
                break
            events.append(event)
            cursor.advance(moment, event_id)
        if remaining(max_events, len(events)) == 0:
            break
    return dict(events=events, count=len(events), pages=pages, next_since=cursor.next_since or since)


def count_new_events(fetch, cursor, since, page_size, max_events):
    """Check mode with dest: how many events a real run would append, fetching as few pages as possible.

    The API returns events oldest first, so once a page holds one event after the cursor, every
    event the cursor covers is behind it and ``total_count`` minus those is the exact count.
    """
    scratch = cursor.copy()
    pages = covered = 0
    count = 0
    newest = None
    for page in walk(fetch, scratch, since, page_size):
        pages += 1
        covered += page.covered
        if page.new_events:
            newest = page.new_events[-1][0]
            if page.last or page.total_count is None:
                count = len(page.new_events)
            else:
                covered += (page.number - 1) * page_size  # pages skipped by number were all covered
                count = max(len(page.new_events), page.total_count - covered)
            break
    if max_events is not None:
        count = min(count, max_events)
    return dict(count=count, pages=pages, newest=newest)


def write_batch(writer, cursor, batch):
    """Append one page's new events (appended and fsync-ed), then move the in-memory cursor past them."""
    writer.write_page(item[2] for item in batch)
    cursor.advance_batch(batch)


def export(fetch, writer_factory, options, check_mode, result):
    """With dest: append new events page by page, committing the cursor after each page.

    Fills ``result`` as it goes, so a caller that catches ``TfeError`` or ``ExportError`` can
    report what was written (and committed) before the failure; a re-run continues from there.
    """
    dest, cursor_file = options["dest"], options["cursor_file"]
    since, page_size, max_events = options["since"], options["page_size"], options["max_events"]
    result.update(changed=False, count=0, pages=0)
    stored = load_cursor(cursor_file) if cursor_file else None
    try:
        dest_stat = os.stat(dest)
    except OSError:
        dest_stat = None
    adopted, keep = 0, None
    if stored is None:
        # No position yet: start from since; what dest already holds is not ours to adopt.
        cursor = Cursor()
    else:
        cursor, adopted, keep = recover(dest, stored, dest_stat)
    if cursor_file:
        result["recovered"] = adopted
    result["next_since"] = cursor.next_since or since

    if check_mode:
        counted = count_new_events(fetch, cursor, since, page_size, max_events)
        result.update(count=counted["count"], pages=counted["pages"],
                      changed=bool(counted["count"] or adopted or keep is not None))
        if counted["newest"] is not None:
            result["next_since"] = format_time(counted["newest"])
        return result

    with writer_factory(dest) as writer:
        if keep is not None:
            writer.truncate(keep)  # a partial line a killed run left behind
            result["changed"] = True

        def commit():
            current = writer.stat()
            cursor.dest, cursor.dest_size = os.path.abspath(dest), current.st_size
            cursor.dest_device, cursor.dest_inode = current.st_dev, current.st_ino
            if cursor_file:
                save_cursor(cursor_file, cursor)

        if stored is not None and (adopted or keep is not None or cursor != stored):
            commit()  # adopted lines or a rotated dest: commit before any new line
            result["changed"] = result["changed"] or bool(adopted)
        committed = stored is not None

        for page in walk(fetch, cursor, since, page_size):
            result["pages"] += 1
            batch = page.new_events
            del page
            left = remaining(max_events, result["count"])
            if left is not None and len(batch) > left:
                batch = batch[:left]
            if batch:
                if not committed:
                    commit()  # the position before the first line this cursor ever sees
                    committed = True
                write_batch(writer, cursor, batch)
                commit()
                result.update(count=result["count"] + len(batch), changed=True, next_since=cursor.next_since)
            del batch
            if remaining(max_events, result["count"]) == 0:
                break
    return result


def main():
    tfe = TfeModule(
        argument_spec=dict(
            since=dict(type="str"),
            page_size=dict(type="int", default=1000),
            max_events=dict(type="int"),
            dest=dict(type="path"),
            cursor_file=dict(type="path"),
        ),
        required_by=dict(cursor_file="dest"),
        supports_check_mode=True,
    )
    options = tfe.option(parse_options, tfe.params)
    client = tfe.client

    def fetch(since, page, page_size):
        return client.read_audit_trail(since=since, page=page, page_size=page_size)

    result = {}
    try:
        if options["dest"] is None:
            result = read_events(fetch, options["since"], options["page_size"], options["max_events"])
            result["changed"] = False
        else:
            export(fetch, NdjsonWriter, options, tfe.check_mode, result)
    except ExportError as exc:
        tfe.module.fail_json(msg=str(exc), **result)
    except TfeError as exc:
        fail_api(tfe, exc, result)
    tfe.exit_json(**result)


def fail_api(tfe, exc, result):
    """API failures in words; ``result`` carries what was exported (and committed) before it."""
    action = "read the audit trail"
    error = dict(status=exc.status, kind=exc.kind, method=exc.method, path=exc.path, errors=exc.errors)
    if exc.status == 401:
        tfe.module.fail_json(
            msg="Cannot %s: HTTP 401 from %s. The token is invalid, expired or replaced, or it is not an audit "
                "trail token or an organization token (user and team tokens are refused). Pass the organization's "
                "current audit trail token in token." % (action, tfe.connection.base_url),
            error=error, **result)
    if exc.status == 404 and exc.method == "GET" and exc.kind == "http":
        tfe.module.fail_json(
            msg="Cannot %s (HTTP 404): the token's organization lacks the audit-logging entitlement "
                "(HCP Terraform Business tier), or the host has no audit trail API." % action,
            error=error, **result)
    tfe.fail_api(exc, action, **result)


if __name__ == "__main__":
    main()
