# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the tests of the Ansible Vault store's machinery share: the vault password, results and reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.tfe.audit.plugins.plugin_utils._store_run import StoreRun
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import load_mapping

PASSWORD = b"unit test vault password"
VAR = "vault_tfe_audit_trail_token"


def decrypted(keys, path):
    with open(path, "rb") as handle:
        return load_mapping(keys.vault.decrypt(handle.read()).decode(), path)


def listing(path):
    return sorted(os.listdir(path))


def created(secret="new-secret"):
    return dict(changed=True, operation="create", reason="no token", id="at-1", token=secret)


def kept():
    return dict(changed=False, operation="none", reason="live", id="at-1")


def run_once(vault_file, keys, module_result, check_mode=False, state="present", backup=True):
    """``(the module's arguments, the action's result)`` of one store step with the module's result given."""
    with StoreRun(vault_file, keys, VAR, state=state, backup=backup, check_mode=check_mode) as run:
        run.open(lock_timeout=1)
        args = run.module_args({"organization": "acme"}, verify=True)
        return args, run.finish(module_result)
