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
    previous run, each once and oldest first, whichever order HCP Terraform lists them in, even after a run
    was killed half-way.
  - HCP Terraform keeps audit trail events for 14 days; schedule exports more often than that. When the
    previous export (or O(since)) is older than 14 days, the module warns that events may be lost and
    returns RV(gap).
author:
  - tfe.audit maintainers (@tfe-audit)
attributes:
  check_mode:
    support: full
    description:
      - Without O(dest) the module only reads, so it runs as usual.
      - With O(dest) nothing is written or created; the module reads the same pages a real run reads, and
        RV(count) and the changed status say exactly what a real run would append at that moment. Like a real run,
        it sorts the pages in a temporary file that has no name, in the directory of O(dest), so it needs to be
        allowed to write there.
      - A O(dest) or O(cursor_file) that a real run would refuse fails check mode the same way.
  diff_mode:
    support: none
    description: Events are not diffed; RV(count) says how many were exported.
options:
  since:
    description:
      - Read only events strictly after this time, an RFC 3339 date-time with a time zone offset or V(Z), for
        example V(2030-12-31T23:59:59.000Z).
      - Not set means every event HCP Terraform still keeps.
      - With O(cursor_file), only used while the cursor holds no position yet; afterwards the cursor decides.
      - Mutually exclusive with O(position).
    type: str
  position:
    description:
      - Without O(dest), go on from where an earlier run stopped, given its RV(next_position) as it is.
        Every event listed after that run, late ones within O(lookback) included, is returned once.
      - Mutually exclusive with O(since) and O(dest) (an export keeps its position in O(cursor_file)).
    type: str
  page_size:
    description:
      - Events per request, from V(1) to V(1000). A server that answers with smaller pages is fine.
    type: int
    default: 1000
  max_events:
    description:
      - Return or export at most this many events in this run, the oldest ones. Not set means no limit.
      - With O(cursor_file) the next run goes on where this one stopped.
      - Without O(dest), events that share one timestamp are never split at the limit (the result stops before
        them, or holds all of them when they alone exceed the limit), so RV(next_position) passed as O(position)
        continues without a gap or a repeat.
      - Every page after the position is still read, because the oldest events may be on the last page.
      - Events that cannot be read (see RV(events)) come on top of the limit, with the run that lists them, because
        they have no time at which a later run could take them up.
    type: int
  dest:
    description:
      - Append the events to this file as NDJSON, one JSON object per line, in the API's format, oldest first.
      - The events are then not returned. Memory stays at about one page whatever the count; the pages are
        spooled in an anonymous temporary file in the directory of O(dest) until the whole trail is read.
      - Created 0600 when missing; the directory must exist. It must be a regular file, not a symbolic link.
        Only this module should write to it. While a run works, the file is locked (C(flock)) so two exports
        cannot interleave.
      - Log rotation (move and create, or copy and truncate) is fine between runs. Content in O(dest) that the
        cursor does not account for (another program's lines, another file moved there) stops the export
        before it writes anything, with a message naming both files. Nothing but a partial last line that this
        module wrote itself is ever cut.
    type: path
  cursor_file:
    description:
      - Where the export position is kept between runs, a small JSON file (no secret in it), written atomically,
        created 0600. It must not be a symbolic link.
      - Without it every run appends every event after O(since) again.
      - With it, a O(dest) that already has content but no cursor yet is refused (the events would be written
        twice); a cursor later than the controller's clock (by more than 5 minutes) is an error too.
      - Requires O(dest).
    type: path
notes:
  - B(Any listing order.) No HashiCorp document says in which order the audit trail is listed, and public
    collectors read it as newest first. The module does not depend on it. A run asks for the events after
    its position with one O(since) and walks the pages by number until the last one. New events that push the
    pages along while it reads only repeat events, which are dropped; once a page shows the listing is oldest
    first, the walk asks by time instead, so events leaving the 14-day window cannot shift events past it.
    Each page's events are sorted and spooled, then merged, so each event is appended once, oldest first.
    RV(listing_order) says what the server did.
  - B(Resume.) The cursor (or RV(next_position)) holds the ids of the events delivered in the last O(lookback),
    and the newest delivered time. A run asks for events since one millisecond before the start of that window,
    and skips the ids it holds, so events that share a delivered timestamp, and events listed late, are delivered
    once, whatever the server does with C(since). An idle run asks for one page.
  - B(Crash safety.) Nothing is written before the whole trail has been read, so a run that fails or is killed
    while reading leaves O(dest) and the cursor as they were. Before appending, the cursor records the byte
    range it is about to write; the lines are appended and flushed to disk (C(fsync)); only then does the cursor
    move past them (temporary file, C(fsync), rename). A run killed in between leaves complete lines in the
    recorded range; the next run adopts them (RV(recovered)) instead of fetching them again, and cuts off a
    trailing partial line. Lines a forwarder may already have shipped are never removed or written twice.
  - B(Broken answers.) A page that is not of the documented shape (no C(pagination), a C(next_page) that skips,
    counts that contradict the pages, the same page again and again, fewer events than the first page announced)
    fails the run before anything is written or the cursor moves. A walk reads at most twice the pages the first
    page announced, plus 10.
  - B(Odd events.) An event that cannot be read (no id, a timestamp that is not a date-time HCP Terraform writes,
    JSON nested too deeply) is delivered once, as it came, as an object whose only key C(tfe_audit_unreadable)
    holds C(reason), C(sha256) and C(base64) (its bytes, base64-encoded). An event dated more than 5 minutes ahead
    of the controller's clock is delivered once with a warning, and the cursor does not move to its time, so later
    events are not skipped.
  - B(A trail that says nothing.) HCP Terraform's documents say user and team tokens cannot read the audit trail,
    not how they are refused. A 401 or 404 fails with words that name the token kind; an empty answer where
    events were delivered before (or no event at all in 14 days) is reported with a warning that names the
    token kind and an audit trail turned off (events sent to HCP audit log streaming).
  - B(Rotation after a crash.) When O(dest) was rotated after a run was killed while appending, the next run looks
    for the rotated file in the same directory (moved, or copied and truncated) and takes what reached it into
    account; if it cannot be found, the run stops before writing and says what to do.
  - An event listed later than O(lookback) after its own time is not delivered (the API can only be asked for
    events after a time). Without O(cursor_file) or O(position) nothing is remembered between runs.
  - Rate limits (HTTP 429) and gateway errors are retried by the shared client (see O(max_retries)). A run that
    still fails has written nothing; the next run starts from the same position.
seealso:
  - module: tfe.audit.tfe_audit_trail_token
  - name: Audit trails API
    description: The HCP Terraform API this module reads.
    link: https://developer.hashicorp.com/terraform/cloud-docs/api-docs/audit-trails
extends_documentation_fragment:
  - tfe.audit.connection
  - tfe.audit.connection.lookback
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

- name: The events after those, each once (including events HCP Terraform lists late)
  tfe.audit.tfe_audit_trail_events:
    hostname: app.eu.terraform.io
    token: "{{ vault_tfe_audit_trail_token }}"
    position: "{{ recent.next_position }}"
    max_events: 500
  register: more

- name: Token creations among them
  ansible.builtin.debug:
    msg: "{{ recent.events | selectattr('resource.type', 'equalto', 'authentication_token') | list }}"

- name: What the next export would append, without writing anything
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
    - An event that cannot be read comes last, as an object whose only key C(tfe_audit_unreadable) holds C(reason),
      C(sha256) and C(base64) (its bytes as they came, base64-encoded).
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
    - In check mode with O(dest), how many a real run would append.
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
    - The timestamp of the newest event returned or exported (with O(cursor_file), the cursor's), else O(since).
      Events dated more than 5 minutes ahead of the controller's clock do not count.
    - V(null) when there is neither.
    - Passing it as O(since) to the next run loses events that HCP Terraform lists late, and ones that share its
      millisecond and arrive later. Pass RV(next_position) as O(position) instead (with O(dest), O(cursor_file)).
  returned: always
  type: str
  sample: "2030-06-30T17:52:46.000Z"
next_position:
  description:
    - Where this run stopped, as one opaque text (the delivered ids of the last O(lookback), no secret). Pass it as
      O(position) to the next run to get every later event once, late ones included.
  returned: when O(dest) is not set
  type: str
  sample: eJyrVkrOz0tLTS4pLUpVslIyNDAw0TcwAKKi1OLUvMTkxJzUvMQilVoAXxsMXA
recovered:
  description:
    - Events found in O(dest) that a killed run had appended after its last cursor update, now adopted into the
      cursor (they are not fetched again).
  returned: when O(cursor_file) is set
  type: int
  sample: 0
gap:
  description:
    - Whether events may have been lost before this run because the position (the previous export, else
      O(since)) is older than the 14 days HCP Terraform keeps. A warning says the same in words.
    - Never true for a first run without O(since).
  returned: success
  type: bool
  sample: false
gap_start:
  description: Where the position ended, the start of the time in which events may be lost.
  returned: when RV(gap) is true
  type: str
  sample: "2030-06-01T00:00:00.000Z"
gap_end:
  description:
    - The oldest event HCP Terraform still returned after the position (else the oldest time it keeps), the
      end of the time in which events may be lost.
  returned: when RV(gap) is true
  type: str
  sample: "2030-06-16T08:12:40.120Z"
listing_order:
  description:
    - The order the server listed events in during this run, as seen on its pages. The result does not depend on
      it; it is reported for diagnosis.
    - V(unknown) when no page held two events with different times.
  returned: success
  type: str
  choices: [newest_first, oldest_first, unordered, unknown]
  sample: newest_first
"""

import os

from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor, canonical_time
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError, OptionError
from ansible_collections.tfe.audit.plugins.module_utils._export import export, read_events
from ansible_collections.tfe.audit.plugins.module_utils._module import DEFAULT_LOOKBACK, TfeModule, parse_lookback

MAX_PAGE_SIZE = 1000


def parse_options(params):
    """Validate the module's own options before any API call. Raises ``OptionError``."""
    options = dict(since=None, page_size=params["page_size"], max_events=params["max_events"],
                   dest=params["dest"], cursor_file=params["cursor_file"], position=params["position"],
                   lookback=parse_lookback(params["lookback"]))
    if params["since"] is not None:
        try:
            options["since"] = canonical_time(params["since"], "since")
        except FeedError as exc:
            raise OptionError(str(exc).replace("for example ", "for example since: "))
    if options["position"] is not None:
        try:
            Cursor.from_token(options["position"])
        except FeedError as exc:
            raise OptionError(str(exc))
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


def main():
    tfe = TfeModule(
        argument_spec=dict(
            since=dict(type="str"),
            page_size=dict(type="int", default=1000),
            max_events=dict(type="int"),
            dest=dict(type="path"),
            cursor_file=dict(type="path"),
            position=dict(type="str", no_log=False),
            lookback=dict(type="str", default=DEFAULT_LOOKBACK),
        ),
        required_by=dict(cursor_file="dest"),
        mutually_exclusive=[("since", "position"), ("dest", "position")],
        supports_check_mode=True,
    )
    options = tfe.option(parse_options, tfe.params)
    tfe.doing("read the audit trail", hints=API_HINTS)
    tfe.run(read_or_export, tfe, options)


def read_or_export(tfe, options):
    """The events into the result, or appended to dest; ``tfe.result`` holds what was done if it fails."""
    client = tfe.client

    def fetch(since, page, page_size):
        return client.read_audit_trail(since=since, page=page, page_size=page_size)

    if options["dest"] is None:
        return dict(read_events(fetch, options, tfe.warn), changed=False)
    return export(fetch, options, tfe.check_mode, tfe.warn, tfe.result)


# What a 401 or 404 of the audit trail means: its own token, its kind, and its organization.
API_HINTS = {
    401: "The token is invalid, expired, replaced, or longer-lived than the organization's token lifetime policy "
         "now allows, or it is not an audit trail token or an organization token (user and team tokens are "
         "refused). Pass the organization's current audit trail token in token.",
    404: "The token may be a user or team token (HCP Terraform may answer those with 404), the token's organization "
         "may lack the audit-logging entitlement (HCP Terraform Business tier) or have its audit trail turned off "
         "(its events going to HCP audit log streaming), or the host has no audit trail API. Pass the "
         "organization's audit trail token or an organization token.",
}


if __name__ == "__main__":
    main()
