# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Keeps the audit trail token's secret in an Ansible Vault encrypted vars file on the controller.

One task does the whole store step under one lock, so that read -> API -> write cannot interleave
with another run: validate the task's arguments (with the module documentation stub's argument
spec), find the vault secret, then one :class:`StoreRun` locks ``<dir>/.<name>.lock``, reads the
file, reserves the space for what it may write, runs ``tfe.audit.tfe_audit_trail_token`` with
``known_token`` = the stored secret, and writes the new secret. The machinery lives in
``plugins/plugin_utils/`` (``_store_run.py`` and the modules it uses); this plugin is orchestration.

Every failure that can be found without the API is found before the first API call. The plaintext
never touches the disk: it is encrypted in memory, and the module runs pipelined (also under become) whenever
its arguments hold the stored secret or the API token, so these are not written to a temp file either; where it cannot
run pipelined and they hold a secret, the task is refused (``_pipelining.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.tfe.audit.plugins.module_utils._module import TOKEN_MUTUALLY_EXCLUSIVE
from ansible_collections.tfe.audit.plugins.modules.tfe_audit_trail_token_vault_file import OWN_OPTIONS, argument_spec
from ansible_collections.tfe.audit.plugins.plugin_utils._hidden_result import hide_secret
from ansible_collections.tfe.audit.plugins.plugin_utils._pipelining import run_pipelined
from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError
from ansible_collections.tfe.audit.plugins.plugin_utils._store_run import StoreRun
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import VaultFile
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_keys import VaultKeys
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import plain

MODULE = "tfe.audit.tfe_audit_trail_token"
DEFAULT_VAULT_VAR = OWN_OPTIONS["vault_var"]["default"]
# Options of the module that this action sets itself.
RESERVED = ("known_token", "verify_known_token")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXAMPLE_FILE = "for example vault_file: group_vars/all/tfe_audit_trail_token.vault.yml"


class ActionModule(ActionBase):

    _supports_check_mode = True
    # The module's result (with the secret) would be read back by async_status, past this plugin.
    _supports_async = False
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        try:
            result.update(self._store(task_vars or {}))
        except (StoreError, AnsibleActionFail) as exc:
            result.update(failed=True, changed=False, msg=to_native(getattr(exc, "message", None) or exc))
        return hide_secret(self._task, result)

    def _store(self, task_vars):
        options, module_args = self._options()
        keys = VaultKeys.of_run(self._loader, options["vault_id"], options["vault_password_file"],
                                target=options["vault_file"])
        with StoreRun(VaultFile(options["vault_file"]), keys, options["vault_var"], module_args.get("state", "present"),
                      options["backup"], bool(self._play_context.check_mode)) as run:
            run.open(options["lock_timeout"])
            module_args = run.module_args(module_args, options["verify"])
            run_pipelined(self, MODULE, module_args)
            return run.finish(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars))

    def _options(self):
        """``(own options, the module's arguments)``; raises before anything is read or changed."""
        if C.DEFAULT_KEEP_REMOTE_FILES:
            # The module's arguments (the stored secret, the API token) would stay on disk in clear text.
            raise StoreError("refusing to run with ANSIBLE_KEEP_REMOTE_FILES (keep_remote_files in ansible.cfg) "
                             "enabled: it keeps the module's arguments, which hold the stored secret and the API "
                             "token, on disk in clear text. Unset it for this run; nothing was changed")
        for key in RESERVED:
            if key in self._task.args:
                raise StoreError("%s is set by this action itself (from the vault file); remove it from the task"
                                 % key)
        # Types and choices of every option; the module checks the values of its own (dates, durations, ...).
        validation, dummy = self.validate_argument_spec(argument_spec=argument_spec(),
                                                        mutually_exclusive=TOKEN_MUTUALLY_EXCLUSIVE)
        options = dict((key, plain(validation.validated_parameters[key])) for key in OWN_OPTIONS)
        module_args = dict((key, value) for key, value in self._task.args.items() if key not in OWN_OPTIONS)
        _check(options)
        return options, module_args


def _check(options):
    """The checks an argument spec cannot state, each with an example of a valid value."""
    vault_file = options["vault_file"]
    if vault_file and os.path.isdir(vault_file):
        raise StoreError("vault_file %r is a directory; give the path of a vars file, %s" % (vault_file, _EXAMPLE_FILE))
    if not vault_file or vault_file.endswith(os.sep):
        raise StoreError("vault_file must be a file path, got %r; %s" % (vault_file, _EXAMPLE_FILE))
    if not _VAR_NAME.match(options["vault_var"] or ""):
        raise StoreError("vault_var %r is not a valid variable name (letters, digits and _, not starting with a "
                         "digit); for example vault_var: %s" % (options["vault_var"], DEFAULT_VAULT_VAR))
    if options["vault_id"] is not None and not re.match(r"^[^@;\s]+$", options["vault_id"]):
        raise StoreError("vault_id %r is not a valid vault id label (no '@', ';' or white space); for example "
                         "vault_id: prod" % options["vault_id"])
    if options["lock_timeout"] < 0:
        raise StoreError("lock_timeout must be 0 or more seconds, got %s; for example lock_timeout: 300"
                         % options["lock_timeout"])
