#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfe_audit_trail_token_vault_file
short_description: Keep an HCP Terraform audit trail token's secret in an Ansible Vault file on the controller
version_added: 0.1.0
description:
  - Makes sure the organization has a live audit trail token and that a variable (O(vault_var)) in an
    Ansible Vault encrypted vars file on the controller (O(vault_file)) holds its secret.
  - Reads the file, runs M(tfe.audit.tfe_audit_trail_token) with O(tfe.audit.tfe_audit_trail_token#module:known_token)
    set to the stored secret (so a stale, missing or expiring secret leads to a new token) and writes the new secret
    when one was generated. The other variables of the file are kept as they are.
  - The whole step holds an exclusive lock (C(flock) on C(.<file name>.lock) beside the file), so concurrent runs for
    the same file are serialised from the read to the write. The lock file is never created in check mode, and a
    symbolic link in its place fails the task instead of being followed.
  - Everything that can fail without the API (options, vault secret, wrong vault password, a file that is not
    an encrypted YAML mapping, a directory that cannot be written, too little free space for the new file, its
    backup and the pending secret) fails before the first API call, with the file untouched.
  - The secret is written as C(!unsafe), so that a play that reads the variable later never renders it as a
    template, whatever the server answered.
  - The file is written atomically (a 0600 temp file in the same directory, C(fsync), rename, C(fsync) of the
    directory), encrypted with C(AES256) and a random salt, with mode C(0600). The previous file is kept, still
    encrypted, as C(<file>.bak) when O(backup=true). The plaintext secret is never written to disk.
  - A newly generated secret is first kept, encrypted the same way, in C(.<file name>.pending) beside the file. If
    the file cannot be written (or the run is killed before it is), the next run verifies the kept secret against
    HCP Terraform, like a stored one, and stores it.
  - Refuses to run when C(ANSIBLE_KEEP_REMOTE_FILES) is enabled, which would keep the module's arguments (the stored
    secret, the API token) on disk in clear text.
  - Runs the module pipelined (also under become), so its arguments are never written to a temp file; where it
    cannot run pipelined (a become method such as C(su)) and they hold a secret (a stored one, or O(token)), the task
    fails before any API call.
  - The task's output is hidden (as with C(no_log)) whenever the result holds the secret, while C(register)
    receives it.
  - This is an action plugin that runs on the controller; the module's own part runs where the task runs
    (run it in a play on V(localhost), or delegate it to V(localhost)). The role C(tfe.audit.audit_trail_token) is built on it.
author:
  - tfe.audit maintainers (@tfe-audit)
attributes:
  check_mode:
    support: full
    description: The API is only read and nothing is written; C(changed) is what a real run would report.
  diff_mode:
    support: full
    description: Shows the token's metadata (never the secret) before and after.
options:
  vault_file:
    description:
      - The vars file on the controller that holds the secret, encrypted as a whole with Ansible Vault,
        for example C(group_vars/all/tfe_audit_trail_token.vault.yml) beside the playbook.
      - Created (mode C(0600), missing directories C(0700)) when it does not exist. An existing file must be a whole-file
        Ansible Vault envelope holding a YAML mapping.
    type: path
    required: true
  vault_var:
    description:
      - The variable in O(vault_file) that holds the secret.
      - This action sets no variable or fact; the live secret is returned in RV(token). The role
        C(tfe.audit.audit_trail_token) publishes it for later tasks under this name.
    type: str
    default: vault_tfe_audit_trail_token
  vault_id:
    description:
      - The vault id label to encrypt with; the run (or O(vault_password_file)) must have a secret with this label.
      - If not set, the first vault secret of the run is used.
    type: str
  vault_password_file:
    description:
      - A vault password file (or executable script) to use instead of the vault secrets given to C(ansible-playbook).
      - If not set, the run's own vault secrets are used (C(--vault-password-file), C(--vault-id),
        E(ANSIBLE_VAULT_PASSWORD_FILE), C(--ask-vault-pass)).
    type: path
  backup:
    description:
      - Keep the previous file, still encrypted, as C(<vault_file>.bak) (one backup, mode C(0600)) before replacing it.
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds to wait for another run to release the lock on O(vault_file).
    type: float
    default: 300
  verify:
    description:
      - Confirm that the stored secret is the live token by reading one audit trail event with it (one request).
        See O(tfe.audit.tfe_audit_trail_token#module:verify_known_token).
      - When V(false), a stored secret is trusted without a request.
    type: bool
    default: true
  state:
    description:
      - V(present) makes sure a token exists and O(vault_var) holds its secret.
      - V(absent) deletes the token in HCP Terraform and removes O(vault_var) from O(vault_file) (the file and its
        other variables are kept).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Runs only as an action on the controller; calling the module file directly fails.
  - The lock file C(.<file name>.lock) stays beside the file (removing it could let two runs hold different locks).
  - The task's arguments include the API token when it comes from C(module_defaults) or O(token); with
    C(ANSIBLE_DISPLAY_ARGS_TO_STDOUT) Ansible prints them unless the task is C(no_log) (the role's task is).
seealso:
  - name: Ansible Vault
    description: Encrypting content with Ansible Vault.
    link: https://docs.ansible.com/ansible/latest/vault_guide/index.html
  - module: tfe.audit.tfe_audit_trail_token
extends_documentation_fragment:
  - tfe.audit.connection
  - tfe.audit.connection.organization
  - tfe.audit.connection.token
"""

EXAMPLES = r"""
- name: Keep the audit trail token's secret in group_vars/all, encrypted with the run's vault secret
  tfe.audit.tfe_audit_trail_token_vault_file:
    organization: my-org
    vault_file: "{{ playbook_dir }}/group_vars/all/tfe_audit_trail_token.vault.yml"
    vault_var: vault_tfe_audit_trail_token
    lifetime: 90d
    rotate_before: 30d

- name: Encrypt with the vault id prod (ansible-playbook --vault-id prod@prod.pass ...)
  tfe.audit.tfe_audit_trail_token_vault_file:
    organization: my-org
    vault_file: /etc/ansible/secrets/siem.vault.yml
    vault_id: prod

- name: Remove the token and the variable
  tfe.audit.tfe_audit_trail_token_vault_file:
    organization: my-org
    vault_file: "{{ playbook_dir }}/group_vars/all/tfe_audit_trail_token.vault.yml"
    state: absent
"""

RETURN = r"""
operation:
  description: What the run did (or, in check mode, would do) in HCP Terraform.
  returned: when the API was reached
  type: str
  choices: [create, regenerate, delete, none]
  sample: regenerate
reason:
  description: Why, in words.
  returned: when the API was reached
  type: str
  sample: the known_token is not the live token (none held, or stale)
id:
  description: The token's id. V(null) in check mode when a token would be generated.
  returned: when O(state=present) and the API was reached
  type: str
  sample: at-sjt83qTw3GZatuPm
created_at:
  description: When the token was created.
  returned: when O(state=present) and the API was reached
  type: str
  sample: "2026-01-05T10:11:12.075Z"
expired_at:
  description: When the token expires, or V(null).
  returned: when O(state=present) and the API was reached
  type: str
  sample: "2028-01-05T10:11:12.000Z"
vault_file:
  description: The absolute path of the vault file.
  returned: when the options are valid
  type: str
  sample: /home/me/playbooks/group_vars/all/tfe_audit_trail_token.vault.yml
vault_var:
  description: The variable that holds the secret.
  returned: when the options are valid
  type: str
  sample: vault_tfe_audit_trail_token
file_changed:
  description: Whether the vault file was (in check mode, would be) rewritten.
  returned: success
  type: bool
  sample: true
token:
  description:
    - The live secret (the new one, or the stored one when it was kept), for C(register). The task's output is
      hidden whenever it is set.
    - Not returned as a fact, because a fact cache would write it to disk unencrypted; the role publishes it as
      the variable named by O(vault_var) with a non-cacheable C(ansible.builtin.set_fact).
  returned: when O(state=present) and the secret is known (not in check mode when a new token would be generated)
  type: str
  sample: ABCDEFGHIJKLMN.atlasv1.redacted
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tfe.audit.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.tfe.audit.plugins.module_utils._module import organization_argument_spec, token_argument_spec


# The one argument spec of tfe.audit.tfe_audit_trail_token_vault_file: this stub's (for the sanity tests'
# check against DOCUMENTATION) and the action plugin's, which validates a task's arguments with it.
OWN_OPTIONS = dict(
    vault_file=dict(type="path", required=True),
    vault_var=dict(type="str", default="vault_tfe_audit_trail_token"),
    vault_id=dict(type="str"),
    vault_password_file=dict(type="path", no_log=False),
    backup=dict(type="bool", default=True),
    lock_timeout=dict(type="float", default=300),
    verify=dict(type="bool", default=True),
)
MUTUALLY_EXCLUSIVE = [("expired_at", "lifetime")]


def argument_spec():
    """The action's own options (OWN_OPTIONS), then those it hands to tfe.audit.tfe_audit_trail_token."""
    spec = dict(connection_argument_spec())
    spec.update(organization_argument_spec())
    spec.update(OWN_OPTIONS)
    spec.update(token_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    module.fail_json(msg="tfe.audit.tfe_audit_trail_token_vault_file runs only as an action on the controller "
                         "(its action plugin); it cannot be run as a module on its own")


if __name__ == "__main__":
    main()
