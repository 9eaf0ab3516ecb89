#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfe_audit_trail_token
short_description: Create, rotate and delete the audit trail token of an HCP Terraform organization
version_added: 0.1.0
description:
  - Makes sure an HCP Terraform organization has (or does not have) an audit trail token, the credential
    a SIEM uses to read the organization's audit trail.
  - Idempotent, unlike the Terraform provider's C(tfe_audit_trail_token), which fails when a token already
    exists. An existing token is kept unless O(force_regenerate), a different O(expired_at),
    or O(rotate_before) says it must be replaced.
  - The secret can be read only once, from the run that generates it; it is returned in RV(token) and the
    task's output is then hidden (as with C(no_log)), so it never reaches the screen or a log while
    C(register) still receives it.
  - Refuses to act on Terraform Enterprise, where the same request would regenerate or revoke the
    organization's regular API token.
  - Runs pipelined (its action plugin turns pipelining on for the task, also under become), so its arguments, which
    may hold O(known_token) and O(token), are never written to a temp file. Where the module cannot run pipelined
    (a become method such as C(su), a connection without pipelining, C(ANSIBLE_KEEP_REMOTE_FILES)) and O(token) or
    O(known_token) is set, the task fails before any API call; give the API token through E(TFE_TOKEN) or run the
    task without become.
author:
  - tfe.audit maintainers (@tfe-audit)
attributes:
  check_mode:
    support: full
    description: Reads happen; nothing is created or deleted; the reported change is what a real run would make; no RV(token).
  diff_mode:
    support: full
    description: Shows the token's metadata (never the secret) before and after.
options:
  state:
    description:
      - V(present) makes sure a token exists (creating or regenerating it as the other options decide).
      - V(absent) deletes the token if there is one.
    type: str
    choices: [present, absent]
    default: present
  known_token:
    description:
      - The secret you keep for this token, for example in a vault. HCP Terraform shows a secret only once,
        so when you hold a stale one the only remedy is a new token.
      - When set, an existing token is kept only if this secret is that token, checked (with
        O(verify_known_token)) by reading one audit trail event with it; otherwise the token is regenerated
        and the new secret returned in RV(token).
      - An empty string says you hold no secret, so an existing token is regenerated.
      - Only with O(state=present). The role C(tfe.audit.audit_trail_token) is built on this.
    type: str
  verify_known_token:
    description:
      - Check O(known_token) against HCP Terraform with one request, C(GET /api/v2/organization/audit-trail).
        HTTP 200 means it is the live token, 401 that it is stale. Any other answer (404 for an organization
        without the audit-logging entitlement, 5xx after retries) fails the task, never regenerates.
      - When V(false), a non-empty O(known_token) is trusted without a request.
    type: bool
    default: true
seealso:
  - module: tfe.audit.tfe_audit_trail_token_info
  - name: Audit trail tokens API
    description: The HCP Terraform API this module calls.
    link: https://developer.hashicorp.com/terraform/cloud-docs/api-docs/audit-trails-tokens
extends_documentation_fragment:
  - tfe.audit.connection
  - tfe.audit.connection.organization
  - tfe.audit.connection.token
"""

EXAMPLES = r"""
- name: Make sure the organization has an audit trail token
  tfe.audit.tfe_audit_trail_token:
    organization: my-org
  register: audit_token

- name: Keep the new secret (only set when a token was generated in this run)
  ansible.builtin.set_fact:
    siem_token: "{{ audit_token.token }}"
  no_log: true
  when: audit_token.token is defined

- name: Rotate every 60 days with a 90-day lifetime (run daily)
  tfe.audit.tfe_audit_trail_token:
    organization: my-org
    lifetime: 90d
    rotate_before: 30d

- name: A token that expires at a fixed time
  tfe.audit.tfe_audit_trail_token:
    organization: my-org
    expired_at: "2030-12-31T23:59:59Z"

- name: Replace the token now (the old one stops working)
  tfe.audit.tfe_audit_trail_token:
    organization: my-org
    force_regenerate: true

- name: Remove the token
  tfe.audit.tfe_audit_trail_token:
    organization: my-org
    state: absent

- name: Connection options once, for every module of the collection
  module_defaults:
    group/tfe.audit.tfe:
      hostname: app.eu.terraform.io
      token: "{{ vault_tfe_api_token }}"
  block:
    - name: Ensure the token
      tfe.audit.tfe_audit_trail_token:
        organization: my-org
"""

RETURN = r"""
token:
  description:
    - The new secret. Only returned when a token was generated in this run (never in check mode).
    - The task's output is hidden whenever this is returned; keep it in a vault, not in a plain variable file.
  returned: when a token was generated
  type: str
  sample: ABCDEFGHIJKLMN.atlasv1.redacted
id:
  description: The token's id. V(null) in check mode when a token would be generated.
  returned: when O(state=present)
  type: str
  sample: at-sjt83qTw3GZatuPm
organization:
  description: The organization.
  returned: always
  type: str
  sample: my-org
created_at:
  description: When the token was created.
  returned: when O(state=present)
  type: str
  sample: "2026-01-05T10:11:12.075Z"
expired_at:
  description: When the token expires (V(null) if it never does, or in check mode when the server will choose).
  returned: when O(state=present)
  type: str
  sample: "2028-01-05T10:11:12.000Z"
last_used_at:
  description: When the token was last used, or V(null).
  returned: when O(state=present)
  type: str
  sample: "2026-02-01T08:00:00.000Z"
operation:
  description: What the run did (or, in check mode, would do).
  returned: always
  type: str
  choices: [create, regenerate, delete, none]
  sample: create
reason:
  description: Why, in words, for example C(the token expires within rotate_before (30d)).
  returned: always
  type: str
  sample: no audit trail token exists
"""

from datetime import timedelta

from ansible_collections.tfe.audit.plugins.module_utils._errors import OptionError, TfeError
from ansible_collections.tfe.audit.plugins.module_utils._module import (
    TfeModule,
    format_rfc3339,
    organization_argument_spec,
    parse_api_time,
    parse_duration,
    parse_rfc3339,
    token_argument_spec,
    validate_organization,
)
from ansible_collections.tfe.audit.plugins.module_utils._time import utcnow

METADATA = ("id", "created_at", "expired_at", "last_used_at")
# Both set the new token's expiry.
MUTUALLY_EXCLUSIVE = [("expired_at", "lifetime")]


def parse_options(params, now):
    """Validate the module's own options before any API call. Raises ``OptionError``."""
    options = dict((key, params[key]) for key in ("state", "force_regenerate", "known_token", "verify_known_token"))
    options.update(organization=validate_organization(params["organization"]), expired_at=None, lifetime=None,
                   rotate_before=None)
    if params["expired_at"] is not None:
        options["expired_at"] = parse_rfc3339(params["expired_at"])
        if options["expired_at"] <= now:
            raise OptionError("expired_at %r is not in the future; give a later RFC 3339 date-time, for example "
                              "expired_at: '%s'" % (params["expired_at"], format_rfc3339(now.replace(year=now.year + 1))))
    for option in ("lifetime", "rotate_before"):
        if params[option] is not None:
            options[option] = parse_duration(params[option], option)
    if options["lifetime"] is not None and options["lifetime"] > timedelta(days=365 * 100):
        raise OptionError("lifetime %r is longer than 100 years; for example lifetime: 90d" % params["lifetime"])
    return options


def decide(current, state, force_regenerate, expired_at, rotate_before, now, known_token_live=None):
    """What to do, and why: ``(operation, reason)`` with operation one of create/regenerate/delete/none.

    ``known_token_live`` is ``None`` when the caller holds no opinion (no ``known_token``), else whether
    the secret the caller holds is the live token. It is consulted last, so it is only checked
    (one request) when nothing else already asks for a new token.
    """
    if state == "absent":
        return ("delete", "state is absent and a token exists") if current else ("none", "no token exists")
    if current is None:
        return "create", "no audit trail token exists"
    if force_regenerate:
        return "regenerate", "force_regenerate is true"
    current_expiry = parse_api_time(current.get("expired_at"))
    if expired_at is not None and current_expiry != expired_at:
        return "regenerate", "expired_at differs from the token's expiry (%s)" % current.get("expired_at")
    if rotate_before is not None and current_expiry is not None and current_expiry - now <= rotate_before:
        if current_expiry <= now:
            return "regenerate", "the token expired at %s" % current.get("expired_at")
        return "regenerate", "the token expires at %s, within rotate_before" % current.get("expired_at")
    if known_token_live is False:
        return "regenerate", "the known_token is not the live token (none held, or stale)"
    return "none", "the token exists and nothing asks for a new one"


def _metadata(token):
    return dict((key, (token or {}).get(key)) for key in METADATA)


def _call(tfe, step, organization, method, *args):
    """One API call; a failure ends the run with a message that names the step and the organization."""
    try:
        return method(*args)
    except TfeError as exc:
        tfe.fail_api(exc, step, organization)


def _decide(tfe, current, options, now):
    """``decide()``, then the known_token check (one request) when nothing else asks for a new token."""
    decision = (current, options["state"], options["force_regenerate"], options["expired_at"],
                options["rotate_before"], now)
    operation, reason = decide(*decision)
    known = options["known_token"]
    if operation != "none" or options["state"] != "present" or known is None:
        return operation, reason
    live = bool(known) and (not options["verify_known_token"] or _call(
        tfe, "check the known_token against the audit trail", options["organization"],
        tfe.client.audit_trail_token_is_live, known))
    return decide(*decision, known_token_live=live)


def _act(tfe, operation, reason, current, options, now):
    """``(operation, reason, the token after the run)``; a created token holds its new secret in ``token``."""
    organization = options["organization"]
    if operation in ("create", "regenerate"):
        expiry = options["expired_at"] or (now + options["lifetime"] if options["lifetime"] else None)
        expiry = format_rfc3339(expiry) if expiry else None
        if tfe.check_mode:
            return operation, reason, dict(expired_at=expiry)
        return operation, reason, _call(tfe, "%s the audit trail token" % operation, organization,
                                        tfe.client.create_audit_trail_token, organization, expiry)
    if operation == "delete" and not tfe.check_mode and not _call(
            tfe, "delete the audit trail token", organization, tfe.client.delete_audit_trail_token, organization):
        return "none", "the token was already gone", None
    return operation, reason, None if operation == "delete" else current


def _report(tfe, operation, reason, current, after, options, now):
    """The module's result. After a create nothing here may fail: the new secret exists only in ``after``."""
    organization, state = options["organization"], options["state"]
    result = dict(changed=operation != "none", operation=operation, reason=reason, organization=organization)
    if after and after.get("token"):
        result["token"] = after["token"]
    # What the client could not take from the answer (metadata of a shape it refuses): the secret is kept anyway.
    for warning in (after or {}).get("warnings") or ():
        tfe.warn(str(warning))
    if state == "present":
        result.update(_metadata(after))
        expiry = parse_api_time(result["expired_at"])
        if operation == "none" and expiry is not None and expiry <= now:
            tfe.warn("The audit trail token of %s expired at %s; set rotate_before (for example 30d) or "
                     "force_regenerate to replace it." % (organization, result["expired_at"]))
    result["diff"] = dict(
        before=dict(organization=organization, state="present" if current else "absent", **_metadata(current)),
        after=dict(organization=organization, state=state, **_metadata(after)))
    return result


def main():
    tfe = TfeModule(
        argument_spec=dict(
            organization_argument_spec(),
            known_token=dict(type="str", no_log=True),
            verify_known_token=dict(type="bool", default=True),
            **token_argument_spec()
        ),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    now = utcnow()
    options = tfe.option(parse_options, tfe.params, now)
    current = _call(tfe, "read the audit trail token", options["organization"],
                    tfe.client.read_audit_trail_token, options["organization"])
    operation, reason = _decide(tfe, current, options, now)
    operation, reason, after = _act(tfe, operation, reason, current, options, now)
    tfe.exit_json(**_report(tfe, operation, reason, current, after, options, now))


if __name__ == "__main__":
    main()
