# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils._vault_file: the Ansible Vault store's machinery on its own (files in tmp_path, no API)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19: every string is a template unless it is unsafe
    def trust_as_template(value):
        return value

from ansible_collections.tfe.audit.plugins.plugin_utils import _vault_file
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_file import (
    FileLock,
    StoreError,
    StoreRun,
    TaggedScalar,
    VaultFile,
    VaultKeys,
    dump_mapping,
    load_mapping,
    secret_of,
    unsafe,
)

PASSWORD = b"unit test vault password"
VAR = "vault_tfe_audit_trail_token"
TEMPLATE = "{{ 6 * 7 }}"


@pytest.fixture
def keys():
    return VaultKeys([("default", VaultSecret(PASSWORD))])


@pytest.fixture
def vault_file(tmp_path):
    return VaultFile(str(tmp_path / "vars" / "token.vault.yml"))


def decrypted(keys, path):
    return load_mapping(keys.vault.decrypt(open(path, "rb").read()).decode(), path)


def listing(path):
    return sorted(os.listdir(path))


def created(secret="new-secret"):
    return dict(changed=True, operation="create", reason="no token", id="at-1", token=secret)


def kept():
    return dict(changed=False, operation="none", reason="live", id="at-1")


# -- YAML round trip -----------------------------------------------------------------------------------

def test_round_trip_keeps_other_variables_their_tags_and_order():
    text = "---\nb: 1\na: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3030\nc: !unsafe '{{ x }}'\n"
    mapping = load_mapping(text, "the file")

    assert list(mapping) == ["b", "a", "c"]
    assert mapping["a"] == TaggedScalar("!vault", "$ANSIBLE_VAULT;1.1;AES256\n3030\n")
    assert load_mapping(dump_mapping(mapping), "the file") == mapping


def rendered(text, tmp_path):
    """The variable as a play renders it after loading ``text`` as a vars file (vars_files, group_vars)."""
    path = tmp_path / "vars.yml"
    path.write_text(text)
    loader = DataLoader()
    try:
        variables = loader.load_from_file(str(path), trusted_as_template=True)
    except TypeError:  # ansible-core < 2.19
        variables = loader.load_from_file(str(path))
    return Templar(loader=loader, variables=variables).template(trust_as_template("{{ %s }}" % VAR))


def test_the_secret_is_dumped_unsafe_and_ansible_does_not_render_it(tmp_path):
    text = dump_mapping({VAR: unsafe(TEMPLATE)})

    assert "%s: !unsafe '%s'" % (VAR, TEMPLATE) in text
    assert rendered(text, tmp_path) == TEMPLATE


def test_a_plain_scalar_would_be_rendered(tmp_path):
    """The check above can fail: without the tag Ansible renders the stored string."""
    assert rendered(yaml.safe_dump({VAR: TEMPLATE}), tmp_path) in (42, "42")


@pytest.mark.parametrize("value, expected", [("s", ("s", False)), (unsafe("s"), ("s", True)), (None, (None, False))])
def test_secret_of_reads_plain_and_unsafe_strings(value, expected):
    assert secret_of({VAR: value}, VAR, "the file") == expected


@pytest.mark.parametrize("value", [42, TaggedScalar("!vault", "x"), ["s"]])
def test_secret_of_refuses_anything_else(value):
    with pytest.raises(StoreError, match="is not a plain string"):
        secret_of({VAR: value}, VAR, "the file")


@pytest.mark.parametrize("text, message", [("[1, 2]", "holds a list"), ("a: [", "does not hold valid YAML")])
def test_load_mapping_refuses_what_is_not_a_mapping(text, message):
    with pytest.raises(StoreError, match=message):
        load_mapping(text, "the file")


# -- vault secrets ----------------------------------------------------------------------------------------

def test_no_vault_secret_says_how_to_give_one():
    with pytest.raises(StoreError, match="--vault-password-file"):
        VaultKeys([("default", VaultSecret(b""))], target="/x.vault.yml")


def test_an_unknown_vault_id_names_the_ones_the_run_has():
    with pytest.raises(StoreError, match=r"vault id 'prod'.*\['dev'\]"):
        VaultKeys([("dev", VaultSecret(PASSWORD))], vault_id="prod")


def test_the_envelope_carries_the_vault_id(tmp_path):
    keys = VaultKeys([("prod", VaultSecret(PASSWORD))], vault_id="prod")
    assert keys.encrypt({"a": 1}).startswith(b"$ANSIBLE_VAULT;1.2;AES256;prod")


def test_read_refuses_plaintext_and_a_wrong_password(tmp_path, keys):
    plain_file = tmp_path / "plain.yml"
    plain_file.write_text("a: 1\n")
    with pytest.raises(StoreError, match="not an Ansible Vault encrypted file"):
        keys.read(str(plain_file), "the vault file")
    other = tmp_path / "other.yml"
    other.write_bytes(VaultKeys([("default", VaultSecret(b"other"))]).encrypt({"a": 1}))
    with pytest.raises(StoreError, match="cannot decrypt"):
        keys.read(str(other), "the vault file")
    assert keys.read(str(tmp_path / "missing.yml"), "the vault file") == (None, {})


# -- the lock ---------------------------------------------------------------------------------------------

def test_a_symlink_at_the_lock_path_is_refused_and_not_followed(tmp_path):
    target = tmp_path / "victim"
    lock_path = tmp_path / ".token.vault.yml.lock"
    lock_path.symlink_to(target)

    for create in (True, False):
        with pytest.raises(StoreError, match="symbolic link") as caught:
            FileLock(str(lock_path), 1).acquire(create=create)
        assert str(lock_path) in str(caught.value)
    assert not target.exists()


def test_check_mode_does_not_create_the_lock(tmp_path):
    lock_path = tmp_path / ".token.vault.yml.lock"
    assert FileLock(str(lock_path), 1).acquire(create=False) is False
    assert not lock_path.exists()


def test_a_fifo_at_the_lock_path_is_refused(tmp_path):
    lock_path = tmp_path / ".token.vault.yml.lock"
    os.mkfifo(str(lock_path))
    with pytest.raises(StoreError, match="not a regular file"):
        FileLock(str(lock_path), 1).acquire()


def test_a_held_lock_times_out(tmp_path):
    lock_path = str(tmp_path / ".token.vault.yml.lock")
    holder = FileLock(lock_path, 1)
    assert holder.acquire()
    try:
        with pytest.raises(StoreError, match="another run holds the lock"):
            FileLock(lock_path, 0.1).acquire()
    finally:
        holder.release()
    assert stat.S_IMODE(os.stat(lock_path).st_mode) == 0o600


# -- reserved space and atomic writes ---------------------------------------------------------------------

def test_no_room_fails_before_anything_and_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(fd, offset, size):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    vault_file = VaultFile(str(tmp_path / "token.vault.yml"))
    with pytest.raises(StoreError, match="No space left on device.*nothing was changed"):
        vault_file.reserve(dict(file=100, pending=100))
    assert listing(tmp_path) == []


def test_without_fallocate_the_space_is_claimed_with_zeros(tmp_path, monkeypatch):
    def unsupported(fd, offset, size):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    reserved = VaultFile(str(tmp_path / "token.vault.yml")).reserve(dict(file=4096))["file"]
    assert os.path.getsize(reserved.path) == 4096

    reserved.commit(b"ciphertext", str(tmp_path / "token.vault.yml"))

    assert (tmp_path / "token.vault.yml").read_bytes() == b"ciphertext"
    assert stat.S_IMODE((tmp_path / "token.vault.yml").stat().st_mode) == 0o600
    assert listing(tmp_path) == ["token.vault.yml"]


def test_only_this_files_own_temp_files_are_removed_as_leftovers(tmp_path):
    vault_file = VaultFile(str(tmp_path / "token.vault.yml"))
    leftover = vault_file.reserve(dict(file=16))["file"]
    os.close(leftover.fd)  # a killed run: its temp file stays
    others = [".token.vault.yml.prod.abcd1234.tmp", ".token.vault.yml.bak.tmp", "token.vault.yml.abcd1234.tmp",
              ".token.vault.yml.abcd1234.tmp.x"]
    for name in others:
        (tmp_path / name).write_bytes(b"x")

    vault_file.remove_leftovers()

    assert listing(tmp_path) == sorted(others)


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


# -- one run ----------------------------------------------------------------------------------------------

def run_once(vault_file, keys, module_result, check_mode=False, state="present", backup=True):
    with StoreRun(vault_file, keys, VAR, state=state, backup=backup, check_mode=check_mode) as run:
        run.open(lock_timeout=1)
        args = run.module_args({"organization": "acme"}, verify=True)
        return args, run.finish(module_result)


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

    monkeypatch.setattr(_vault_file.os, "replace", no_space_for_the_file)
    dummy, result = run_once(vault_file, keys, created())

    assert result["failed"] and result["changed"]
    assert vault_file.pending_path in result["msg"] and "new-secret" not in result["msg"]
    assert open(vault_file.path, "rb").read() == previous
    assert decrypted(keys, vault_file.pending_path) == {VAR: unsafe("new-secret")}
    assert stat.S_IMODE(os.stat(vault_file.pending_path).st_mode) == 0o600
    assert not [name for name in listing(vault_file.directory) if name.endswith(".tmp")], "temp file removed"

    monkeypatch.setattr(_vault_file.os, "replace", real_replace)
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
