# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils._vault_files: the lock, the reserved temp files and their clean-up (files in tmp_path)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

import pytest

from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import FileLock, VaultFile
from ansible_collections.tfe.audit.tests.unit.plugins.plugin_utils.store_helpers import listing


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
