# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils._store_run: one store step from the read to the write (files in tmp_path, the module's result given)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

from ansible_collections.tfe.audit.plugins.plugin_utils._store_run import StoreRun
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import VaultFile
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import TaggedScalar, unsafe
from ansible_collections.tfe.audit.tests.unit.plugins.plugin_utils.store_helpers import (
    VAR,
    created,
    decrypted,
    kept,
    listing,
    run_once,
)


def test_first_run_stores_the_new_secret_unsafe(vault_file, keys):
    args, result = run_once(vault_file, keys, created())

    assert args == {"organization": "acme", "known_token": "", "verify_known_token": True}
    assert result["changed"] and result["file_changed"] and result["token"] == "new-secret"
    assert decrypted(keys, vault_file.path) == {VAR: unsafe("new-secret")}
    assert stat.S_IMODE(os.stat(vault_file.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(vault_file.directory).st_mode) == 0o700
    assert listing(vault_file.directory) == sorted([vault_file.name, ".token.vault.yml.lock"])


def test_other_variables_survive_and_the_previous_file_is_the_backup(vault_file, keys):
    os.makedirs(vault_file.directory)
    previous = keys.encrypt({"other": TaggedScalar("!vault", "cipher"), VAR: unsafe("old")})
    open(vault_file.path, "wb").write(previous)

    args, result = run_once(vault_file, keys, created())

    assert args["known_token"] == "old"
    assert decrypted(keys, vault_file.path) == {"other": TaggedScalar("!vault", "cipher"), VAR: unsafe("new-secret")}
    assert open(vault_file.backup_path, "rb").read() == previous
    assert result["file_changed"]


def test_a_failed_write_after_the_api_keeps_the_new_secret_pending(vault_file, keys, monkeypatch):
    os.makedirs(vault_file.directory)
    previous = keys.encrypt({VAR: unsafe("old")})
    open(vault_file.path, "wb").write(previous)
    real_replace = os.replace

    def no_space_for_the_file(src, dst):
        if dst == vault_file.path:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", no_space_for_the_file)
    dummy, result = run_once(vault_file, keys, created())

    assert result["failed"] and result["changed"]
    assert vault_file.pending_path in result["msg"] and "new-secret" not in result["msg"]
    assert open(vault_file.path, "rb").read() == previous
    assert decrypted(keys, vault_file.pending_path) == {VAR: unsafe("new-secret")}
    assert stat.S_IMODE(os.stat(vault_file.pending_path).st_mode) == 0o600
    assert not [name for name in listing(vault_file.directory) if name.endswith(".tmp")], "temp file removed"

    monkeypatch.setattr(os, "replace", real_replace)
    args, result = run_once(vault_file, keys, kept())

    assert args["known_token"] == "new-secret", "the pending secret is verified first"
    assert result["changed"] and result["token"] == "new-secret"
    assert decrypted(keys, vault_file.path) == {VAR: unsafe("new-secret")}
    assert not os.path.exists(vault_file.pending_path)


def test_a_pending_secret_already_in_the_file_is_just_removed(vault_file, keys):
    os.makedirs(vault_file.directory)
    stored = keys.encrypt({VAR: unsafe("s")})
    open(vault_file.path, "wb").write(stored)
    open(vault_file.pending_path, "wb").write(keys.encrypt({VAR: unsafe("s")}))

    dummy, result = run_once(vault_file, keys, kept())

    assert not result["changed"] and not result["file_changed"]
    assert open(vault_file.path, "rb").read() == stored
    assert not os.path.exists(vault_file.pending_path)


def test_a_secret_stored_untagged_by_an_older_version_is_rewritten_unsafe(vault_file, keys):
    os.makedirs(vault_file.directory)
    open(vault_file.path, "wb").write(keys.encrypt({VAR: "s"}))

    dummy, result = run_once(vault_file, keys, kept())

    assert result["changed"] and result["file_changed"]
    assert decrypted(keys, vault_file.path) == {VAR: unsafe("s")}


def test_check_mode_creates_and_writes_nothing(vault_file, keys, tmp_path):
    dummy, result = run_once(vault_file, keys, dict(changed=True, operation="create", id=None), check_mode=True)
    assert result["changed"] and not result["file_changed"] and "token" not in result
    assert listing(tmp_path) == []

    os.makedirs(vault_file.directory)
    stored = keys.encrypt({VAR: "s"})
    open(vault_file.path, "wb").write(stored)
    dummy, result = run_once(vault_file, keys, created(), check_mode=True)
    assert open(vault_file.path, "rb").read() == stored
    assert listing(vault_file.directory) == [vault_file.name]


def test_absent_removes_the_variable_only(vault_file, keys):
    os.makedirs(vault_file.directory)
    open(vault_file.path, "wb").write(keys.encrypt({"other": 1, VAR: unsafe("s")}))

    args, result = run_once(vault_file, keys, dict(changed=True, operation="delete"), state="absent")

    assert "known_token" not in args
    assert result["changed"] and "token" not in result
    assert decrypted(keys, vault_file.path) == {"other": 1}


def test_a_module_failure_writes_nothing_and_leaves_no_temp_file(vault_file, keys):
    dummy, result = run_once(vault_file, keys, dict(failed=True, msg="HTTP 404", module_stdout="token?"))

    assert result["failed"] and not result["changed"]
    assert result["msg"] == "HTTP 404 (%s was not changed)" % vault_file.path
    assert "module_stdout" not in result
    assert listing(vault_file.directory) == [".token.vault.yml.lock"]


def test_a_sibling_files_temp_files_survive_and_its_write_still_works(tmp_path, keys):
    """Another vault file whose name begins with this one's name and a dot, written by a run at the same time."""
    ours = VaultFile(str(tmp_path / "token.vault.yml"))
    sibling = VaultFile(str(tmp_path / "token.vault.yml.prod"))
    with StoreRun(sibling, keys, VAR) as sibling_run:
        sibling_run.open(lock_timeout=1)  # its space is reserved; it waits for the API
        reserved = [name for name in listing(tmp_path) if name.endswith(".tmp")]
        assert len(reserved) == 2

        run_once(ours, keys, created())

        assert [name for name in reserved if name in listing(tmp_path)] == reserved
        result = sibling_run.finish(created("sibling-secret"))

    assert not result.get("failed"), result
    assert decrypted(keys, sibling.path) == {VAR: unsafe("sibling-secret")}
    assert not os.path.exists(sibling.pending_path)
