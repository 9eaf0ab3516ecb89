# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action tfe_audit_trail_token_vault_file: argument validation and orchestration, the module stubbed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task

from ansible_collections.tfe.audit.plugins.action import tfe_audit_trail_token_vault_file as action_plugin
from ansible_collections.tfe.audit.plugins.plugin_utils._store_run import StoreRun
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import VaultFile
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_keys import VaultKeys
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import unsafe

PASSWORD = b"action unit test password"
VAR = "vault_tfe_audit_trail_token"


class FakeConnection:
    has_pipelining = True
    become = None

    def __init__(self):
        self.options = {}

        class Shell:
            tmpdir = "/nonexistent"

        self._shell = Shell()

    def set_option(self, name, value):
        self.options[name] = value


class FakeLoader:
    def __init__(self, secrets):
        self._vault = VaultLib(secrets)


@pytest.fixture
def run_action(monkeypatch):
    """run_action(args, module_result=..., check_mode=False, secrets=...) -> (result, module calls, connection)."""

    def run(args, module_result=None, check_mode=False, secrets=(("default", VaultSecret(PASSWORD)),)):
        task = Task.load(dict(action=dict(module="tfe.audit.tfe_audit_trail_token_vault_file", args=args)))
        task.args = dict(args)
        play_context = PlayContext()
        play_context.check_mode = check_mode
        connection = FakeConnection()
        plugin = action_plugin.ActionModule(task, connection, play_context, FakeLoader(list(secrets)), None, None)
        plugin._load_name = "tfe.audit.tfe_audit_trail_token_vault_file"
        calls = []

        def execute_module(module_name=None, module_args=None, task_vars=None, **kwargs):
            calls.append((module_name, module_args))
            return dict(module_result or dict(changed=True, operation="create", id="at-1", token="new-secret"))

        monkeypatch.setattr(plugin, "_execute_module", execute_module)
        return plugin.run(task_vars={}), calls, connection

    return run


def decrypt(path):
    return VaultLib([("default", VaultSecret(PASSWORD))]).decrypt(open(path, "rb").read()).decode()


def test_creates_stores_and_hides_the_result(run_action, tmp_path):
    path = str(tmp_path / "token.vault.yml")

    result, calls, connection = run_action(dict(vault_file=path, organization="acme", lifetime="90d"))

    assert not result.get("failed"), result
    assert result["token"] == "new-secret" and result["_ansible_no_log"] is True
    assert calls == [("tfe.audit.tfe_audit_trail_token",
                      dict(organization="acme", lifetime="90d", known_token="", verify_known_token=True))]
    assert connection.options == {"pipelining": True}
    assert "%s: !unsafe 'new-secret'" % VAR in decrypt(path)


def test_the_stored_secret_is_handed_to_the_module(run_action, tmp_path):
    path = tmp_path / "token.vault.yml"
    keys = VaultKeys([("default", VaultSecret(PASSWORD))])
    path.write_bytes(keys.encrypt({VAR: unsafe("stored")}))

    result, calls, dummy = run_action(dict(vault_file=str(path), organization="acme", verify=False),
                                      module_result=dict(changed=False, operation="none", id="at-1"))

    assert calls[0][1]["known_token"] == "stored" and calls[0][1]["verify_known_token"] is False
    assert result["token"] == "stored" and not result["changed"] and not result["file_changed"]


@pytest.mark.parametrize("args, words", [
    (dict(backup="maybe"), ["backup"]),
    (dict(state="gone"), ["state", "present, absent"]),
    (dict(no_such_option=1), ["Unsupported parameters", "no_such_option"]),
    (dict(known_token="x"), ["known_token is set by this action"]),
    (dict(vault_var="not a name"), ["vault_var", "not a valid variable name"]),
    (dict(vault_id="a@b"), ["vault_id", "label"]),
    (dict(lock_timeout=-1), ["lock_timeout"]),
])
def test_bad_arguments_fail_before_the_module(run_action, tmp_path, args, words):
    result, calls, dummy = run_action(dict(dict(vault_file=str(tmp_path / "v.yml"), organization="acme"), **args))

    assert result["failed"] and not result["changed"]
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == [] and os.listdir(str(tmp_path)) == []


def test_a_directory_as_vault_file_is_refused(run_action, tmp_path):
    result, calls, dummy = run_action(dict(vault_file=str(tmp_path), organization="acme"))
    assert result["failed"] and "is a directory" in result["msg"] and calls == []


def test_vault_file_is_required(run_action):
    result, calls, dummy = run_action(dict(organization="acme"))
    assert result["failed"] and "vault_file" in result["msg"] and calls == []


def test_no_vault_secret_fails_before_the_module(run_action, tmp_path):
    result, calls, dummy = run_action(dict(vault_file=str(tmp_path / "v.yml")), secrets=())
    assert result["failed"] and "--vault-password-file" in result["msg"] and calls == []


def test_keep_remote_files_is_refused(run_action, tmp_path, monkeypatch):
    monkeypatch.setattr(action_plugin.C, "DEFAULT_KEEP_REMOTE_FILES", True)

    result, calls, dummy = run_action(dict(vault_file=str(tmp_path / "v.yml"), organization="acme"))

    assert result["failed"] and "ANSIBLE_KEEP_REMOTE_FILES" in result["msg"]
    assert calls == [] and os.listdir(str(tmp_path)) == []


def test_check_mode_writes_nothing(run_action, tmp_path):
    result, calls, dummy = run_action(dict(vault_file=str(tmp_path / "vars" / "v.yml"), organization="acme"),
                                      module_result=dict(changed=True, operation="create", id=None), check_mode=True)

    assert result["changed"] and "token" not in result and len(calls) == 1
    assert os.listdir(str(tmp_path)) == []


def test_the_module_failure_is_reported_without_its_stdout(run_action, tmp_path):
    result, dummy, dummy2 = run_action(dict(vault_file=str(tmp_path / "v.yml"), organization="acme"),
                                       module_result=dict(failed=True, msg="HTTP 404", module_stdout="secret?"))
    assert result["failed"] and result["msg"].startswith("HTTP 404 (") and "module_stdout" not in result


def test_the_action_is_orchestration_only():
    """The machinery lives in plugin_utils; the action stays small."""
    with open(action_plugin.__file__) as handle:
        assert len(handle.read().splitlines()) <= 150
    assert action_plugin.StoreRun is StoreRun and action_plugin.VaultFile is VaultFile
