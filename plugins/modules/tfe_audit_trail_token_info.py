#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfe_audit_trail_token_info
short_description: Read the audit trail token metadata of an HCP Terraform organization
version_added: 0.1.0
description:
  - Tells whether an HCP Terraform organization has an audit trail token, and its id and dates.
  - The counterpart of the Terraform provider's import of C(tfe_audit_trail_token).
  - Never returns a secret (HCP Terraform shows it only once, when it is generated).
author:
  - tfe.audit maintainers (@tfe-audit)
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to compare.
notes:
  - Every run reads the organization's audit trail token, and HCP Terraform records a token read in the audit trail
    (an C(authentication_token) event with the action C(show)), so a scheduled run adds one event each time.
seealso:
  - module: tfe.audit.tfe_audit_trail_token
extends_documentation_fragment:
  - tfe.audit.connection
  - tfe.audit.connection.organization
"""

EXAMPLES = r"""
- name: Look at the audit trail token
  tfe.audit.tfe_audit_trail_token_info:
    organization: my-org
  register: audit_token

- name: Show when it expires
  ansible.builtin.debug:
    msg: "{{ audit_token.id }} expires at {{ audit_token.expired_at }}"
  when: audit_token.exists
"""

RETURN = r"""
exists:
  description: Whether the organization has an audit trail token.
  returned: always
  type: bool
  sample: true
organization:
  description: The organization.
  returned: always
  type: str
  sample: my-org
id:
  description: The token's id, or V(null) when there is none.
  returned: always
  type: str
  sample: at-sjt83qTw3GZatuPm
created_at:
  description: When the token was created, or V(null).
  returned: always
  type: str
  sample: "2026-01-05T10:11:12.075Z"
expired_at:
  description: When the token expires, or V(null) (no token, or one that never expires).
  returned: always
  type: str
  sample: "2028-01-05T10:11:12.000Z"
last_used_at:
  description: When the token was last used, or V(null).
  returned: always
  type: str
  sample: "2026-02-01T08:00:00.000Z"
"""

from ansible_collections.tfe.audit.plugins.module_utils._module import (
    TfeModule,
    organization_argument_spec,
    validate_organization,
)


def main():
    tfe = TfeModule(argument_spec=organization_argument_spec(), supports_check_mode=True)
    organization = tfe.option(validate_organization, tfe.params["organization"])
    tfe.doing("read the audit trail token", organization)
    tfe.run(describe, tfe.client, organization)


def describe(client, organization):
    """What the result says of the organization's audit trail token (``exists: false`` when there is none)."""
    token = client.read_audit_trail_token(organization) or {}
    return dict(changed=False, exists=bool(token), organization=organization, id=token.get("id"),
                created_at=token.get("created_at"), expired_at=token.get("expired_at"),
                last_used_at=token.get("last_used_at"))


if __name__ == "__main__":
    main()
