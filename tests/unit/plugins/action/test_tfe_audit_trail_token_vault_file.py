# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action tfe_audit_trail_token_vault_file: argument validation and orchestration, the module stubbed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.tfe.audit.plugins.action import tfe_audit_trail_token_vault_file as action_plugin
from ansible_collections.tfe.audit.plugins.plugin_utils._store_run import StoreRun
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import VaultFile
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_keys import VaultKeys
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import unsafe

PASSWORD = b"action unit test password"
VAR = "vault_tfe_audit_trail_token"


class FakeLoader:
    def __init__(self, secrets):
        self._vault = VaultLib(secrets)


def run(run_action, args, secrets=(("default", VaultSecret(PASSWORD)),), **kwargs):
    return run_action(action_plugin, "tfe.audit.tfe_audit_trail_token_vault_file", args,
                      loader=FakeLoader(list(secrets)), **kwargs)


def decrypt(path):
    return VaultLib([("default", VaultSecret(PASSWORD))]).decrypt(open(path, "rb").read()).decode()


def test_creates_stores_and_hides_the_result(run_action, tmp_path):
    path = str(tmp_path / "token.vault.yml")

    result, calls, connection = run(run_action, dict(vault_file=path, organization="acme", lifetime="90d"))

    assert not result.get("failed"), result
    assert result["token"] == "new-secret" and result["_ansible_no_log"] is True
    # Nothing stored yet: no secret in the module's arguments, so pipelining stays as configured (off).
    assert calls == [("tfe.audit.tfe_audit_trail_token",
                      dict(organization="acme", lifetime="90d", known_token="", verify_known_token=True), False)]
    assert not connection.get_option("pipelining")
    assert "%s: !unsafe 'new-secret'" % VAR in decrypt(path)


def test_the_stored_secret_is_handed_to_the_module(run_action, tmp_path):
    path = tmp_path / "token.vault.yml"
    keys = VaultKeys([("default", VaultSecret(PASSWORD))])
    path.write_bytes(keys.encrypt({VAR: unsafe("stored")}))

    result, calls, dummy = run(run_action, dict(vault_file=str(path), organization="acme", verify=False),
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
    (dict(expired_at="2031-01-01T00:00:00Z", lifetime="90d"), ["mutually exclusive", "expired_at", "lifetime"]),
])
def test_bad_arguments_fail_before_the_module(run_action, tmp_path, args, words):
    result, calls, dummy = run(run_action, dict(dict(vault_file=str(tmp_path / "v.yml"), organization="acme"), **args))

    assert result["failed"] and not result["changed"]
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == [] and os.listdir(str(tmp_path)) == []


def test_a_directory_as_vault_file_is_refused(run_action, tmp_path):
    result, calls, dummy = run(run_action, dict(vault_file=str(tmp_path), organization="acme"))
    assert result["failed"] and "is a directory" in result["msg"] and calls == []


def test_vault_file_is_required(run_action):
    result, calls, dummy = run(run_action, dict(organization="acme"))
    assert result["failed"] and "vault_file" in result["msg"] and calls == []


def test_no_vault_secret_fails_before_the_module(run_action, tmp_path):
    result, calls, dummy = run(run_action, dict(vault_file=str(tmp_path / "v.yml")), secrets=())
    assert result["failed"] and "--vault-password-file" in result["msg"] and calls == []


def test_keep_remote_files_is_refused(run_action, tmp_path, monkeypatch):
    monkeypatch.setattr(action_plugin.C, "DEFAULT_KEEP_REMOTE_FILES", True)

    result, calls, dummy = run(run_action, dict(vault_file=str(tmp_path / "v.yml"), organization="acme"))

    assert result["failed"] and "ANSIBLE_KEEP_REMOTE_FILES" in result["msg"]
    assert calls == [] and os.listdir(str(tmp_path)) == []


def stored_file(tmp_path, secret="stored"):
    path = tmp_path / "token.vault.yml"
    path.write_bytes(VaultKeys([("default", VaultSecret(PASSWORD))]).encrypt({VAR: unsafe(secret)}))
    return path


def test_the_module_runs_pipelined_under_become(run_action, tmp_path):
    path = stored_file(tmp_path)

    result, calls, dummy = run(run_action, dict(vault_file=str(path), organization="acme"), become="sudo",
                               module_result=dict(changed=False, operation="none", id="at-1"))

    assert not result.get("failed"), result
    assert [(args["known_token"], pipelined) for dummy, args, pipelined in calls] == [("stored", True)]


@pytest.mark.parametrize("stored, args", [(True, {}), (False, dict(token="api-token"))],
                         ids=["the stored secret", "the API token"])
def test_a_become_method_that_cannot_pipeline_is_refused_with_a_secret(run_action, tmp_path, stored, args):
    path = stored_file(tmp_path) if stored else tmp_path / "token.vault.yml"
    before = path.read_bytes() if stored else None

    result, calls, dummy = run(run_action, dict(dict(vault_file=str(path), organization="acme"), **args),
                               become="su")

    assert result["failed"] and calls == []
    assert "become method su cannot run modules pipelined" in result["msg"] and "the module did not run" in result["msg"]
    assert "stored" not in result["msg"].replace("the stored secret", "") and "api-token" not in result["msg"]
    assert (path.read_bytes() if stored else None) == before
    assert not [name for name in os.listdir(str(tmp_path)) if name.endswith((".tmp", ".pending"))]


def test_check_mode_writes_nothing(run_action, tmp_path):
    result, calls, dummy = run(run_action, dict(vault_file=str(tmp_path / "vars" / "v.yml"), organization="acme"),
                               module_result=dict(changed=True, operation="create", id=None), check_mode=True)

    assert result["changed"] and "token" not in result and len(calls) == 1
    assert os.listdir(str(tmp_path)) == []


def test_the_module_failure_is_reported_without_its_stdout(run_action, tmp_path):
    result, dummy, dummy2 = run(run_action, dict(vault_file=str(tmp_path / "v.yml"), organization="acme"),
                                module_result=dict(failed=True, msg="HTTP 404", module_stdout="secret?"))
    assert result["failed"] and result["msg"].startswith("HTTP 404 (") and "module_stdout" not in result


def test_the_action_is_orchestration_only():
    """The machinery lives in plugin_utils; the action stays small."""
    with open(action_plugin.__file__) as handle:
        assert len(handle.read().splitlines()) <= 150
    assert action_plugin.StoreRun is StoreRun and action_plugin.VaultFile is VaultFile
