# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""``tfe.audit.audit_trail``: an Event-Driven Ansible event source for the HCP Terraform audit trail.

This file is the source's documentation, its own options and ``main``; the work is done in
``plugins/plugin_utils/_source*.py`` (docs/eda.md says what it guarantees, and why).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any


def _collections_root(path: str) -> str:
    """The directory holding ``ansible_collections/`` for this file
    (``<root>/ansible_collections/tfe/audit/extensions/eda/plugins/event_source/audit_trail.py``)."""
    return os.path.abspath(os.path.join(os.path.dirname(path), *([os.pardir] * 7)))


# ansible-rulebook runs a source with runpy.run_path and does not put the collections path on sys.path: the
# collection's own code is found from this file's location when it is not importable already.
try:
    from ansible_collections.tfe.audit.plugins.plugin_utils import _source, _source_options
except ImportError:  # pragma: no cover - exercised by the real-engine tests (tests/eda)
    sys.path.insert(0, _collections_root(__file__))
    from ansible_collections.tfe.audit.plugins.plugin_utils import _source, _source_options

DOCUMENTATION = r"""
---
short_description: Receive the audit trail events of an HCP Terraform organization
description:
  - An ansible-rulebook event source that polls the audit trail of the organization the token belongs to
    (C(GET /api/v2/organization/audit-trail)) and puts each new audit event on the queue as one event, oldest
    first, under the key C(tfe_audit).
  - Values from the server are never templates. Every Jinja opening delimiter in a string or key of the event is
    broken (V({{) becomes V({ {)) and so is a V(#jinja2:) header at the start of a string, because a playbook
    started by C(run_playbook) or C(run_module) receives the event as extra vars, which Ansible renders; the exact
    event then comes as well, base64-encoded JSON, under C(tfe_audit_original).
  - With O(state_file), each audit event is put on the queue once across restarts of the rulebook, except that a
    process killed in the middle of a backlog repeats about a second's worth of it (none lost). With
    O(feedback=true) (and C(ansible-rulebook --persistence-id)), an event is recorded once the rule engine
    acknowledged it.
  - The source never stops by itself. It reports its own condition as events C(tfe_audit_source_error),
    C(tfe_audit_source_recovered), C(tfe_audit_token_stale) (HTTP 401, one per token), C(tfe_audit_gap) and
    C(tfe_audit_source_warning) (kind C(silent_trail) when the trail listed nothing where events were delivered
    before, because of a user or team token or an audit trail turned off, once until events come again; kind
    C(ahead) when events dated more than 5 minutes ahead of the controller's clock were emitted).
  - No event and no log line of the source holds a token it knows (masked as V(********)). A literal O(token)
    is printed by C(ansible-rulebook -vv) itself with the source's arguments, so the source warns at start.
  - The connection options (O(hostname), O(validate_certs), O(ca_path), O(timeout), O(max_retries),
    O(allow_unverified_platform), O(allow_insecure_http)) are the modules' own, validated the same way.
version_added: 0.1.0
author:
  - tfe.audit maintainers (@tfe-audit)
extends_documentation_fragment:
  - tfe.audit.connection
  - tfe.audit.connection.lookback
options:
  token:
    description:
      - The organization's audit trail token, or an organization token. User and team tokens are refused by
        HCP Terraform.
      - Default from E(TFE_AUDIT_TRAIL_TOKEN), then E(TFE_TOKEN) (never Terraform's credentials). Mutually
        exclusive with O(token_file).
      - C(ansible-rulebook -vv) prints it with the source's arguments; prefer O(token_file) or the environment.
    type: str
    aliases: [tfe_token]
  token_file:
    description:
      - A file holding only the token (surrounding white space is ignored). It is read again before each poll,
        so a token written there by the playbook C(tfe.audit.rotate_audit_trail_token) reaches a running
        source without a restart.
    type: path
  interval:
    description:
      - Seconds between the starts of two polls. An idle poll costs one request.
    type: float
    default: 60
  since:
    description:
      - Without a position in O(state_file), start after this time, an RFC 3339 date-time such as
        V(2030-12-31T23:59:59.000Z), or V(now) for only the events that happen from now on.
      - Not set means every event HCP Terraform still keeps (14 days).
    type: str
  page_size:
    description:
      - Events per request, from V(1) to V(1000).
    type: int
    default: 1000
  state_file:
    description:
      - Where the source records which events the rule engine has taken (the collection's cursor format, written
        atomically, never through a symbolic link; a new file gets mode C(0600), an existing one keeps its mode).
        A restart continues after the last of them.
      - Its directory must exist. Give each source its own file; an export's O(cursor_file) is refused.
    type: path
  feedback:
    description:
      - Ask ansible-rulebook to acknowledge each event once its rule engine has received it, and record an event
        in O(state_file) only then. ansible-rulebook accepts this only with C(--persistence-id).
      - Without it, the source infers what the engine has taken from the depth of its queue.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: React to the HCP Terraform audit trail
  hosts: localhost
  sources:
    - name: audit_trail
      tfe.audit.audit_trail:
        token_file: /var/lib/tfe-audit/audit-trail-token
        state_file: /var/lib/tfe-audit/audit-trail-source.json
        interval: 60
        since: now
        feedback: true  # run ansible-rulebook with --persistence-id
  rules:
    - name: A workspace was destroyed
      condition: event.tfe_audit.resource.type == "workspace" and event.tfe_audit.resource.action == "destroy"
      action:
        debug:
          msg: "{{ event.tfe_audit.auth.description }} destroyed {{ event.tfe_audit.resource.id }}"
"""


def argument_spec() -> dict[str, dict[str, Any]]:
    """The source's own options; the connection options come from the modules' spec."""
    return dict(
        token_file=dict(type="path"),
        interval=dict(type="float", default=60),
        since=dict(type="str"),
        page_size=dict(type="int", default=_source_options.MAX_PAGE_SIZE),
        state_file=dict(type="path"),
        feedback=dict(type="bool", default=False),
        lookback=dict(type="str", default=_source_options.DEFAULT_LOOKBACK),
    )


async def main(queue: asyncio.Queue[Any], args: dict[str, Any]) -> None:
    """Entry point for ansible-rulebook: validate the arguments, then poll until cancelled."""
    options = _source_options.Options(args, argument_spec())
    await _source.AuditTrailSource(options, queue).run()
