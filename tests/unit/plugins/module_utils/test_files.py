# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_files: never through a planted link, atomically, durably (the export and the vault store share it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

import pytest

from ansible_collections.tfe.audit.plugins.module_utils import _files
from ansible_collections.tfe.audit.plugins.module_utils._files import (
    NotRegularFile,
    TempFile,
    atomic_write,
    fsync_dir,
    open_regular,
)


def test_open_regular_refuses_links_and_fifos_and_says_which(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(NotRegularFile, match="link is a symbolic link"):
        open_regular(str(tmp_path / "link"), os.O_RDWR | os.O_CREAT)
    os.mkfifo(str(tmp_path / "fifo"))
    for flags in (os.O_RDONLY, os.O_WRONLY):
        with pytest.raises(NotRegularFile, match="fifo is not a regular file"):
            open_regular(str(tmp_path / "fifo"), flags)  # and it did not block
    with pytest.raises(OSError) as missing:
        open_regular(str(tmp_path / "missing"), os.O_RDONLY)
    assert missing.value.errno == errno.ENOENT and victim.read_bytes() == b"keep"


def test_atomic_write_is_0600_whatever_the_umask_keeps_a_chosen_mode_and_replaces_a_link(tmp_path):
    path = tmp_path / "state.json"
    old = os.umask(0)
    try:
        atomic_write(str(path), b"one")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"one"
    path.chmod(0o640)
    atomic_write(str(path), b"two")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"two"
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    path.unlink()
    path.symlink_to(victim)
    atomic_write(str(path), b"three")
    assert not path.is_symlink() and victim.read_bytes() == b"keep"
    assert sorted(os.listdir(str(tmp_path))) == ["state.json", "victim"]  # no temp file left


def test_temp_file_reserves_then_commits_exactly_the_data(tmp_path):
    temp = TempFile(str(tmp_path), ".x.")
    temp.reserve(4096)
    assert os.path.getsize(temp.path) == 4096
    temp.commit(b"short", str(tmp_path / "x"))
    assert (tmp_path / "x").read_bytes() == b"short" and os.listdir(str(tmp_path)) == ["x"]


def test_a_failed_commit_leaves_no_temp_file(tmp_path, monkeypatch):
    temp = TempFile(str(tmp_path), ".x.")

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "replace", no_space)
    with pytest.raises(OSError):
        temp.commit(b"data", str(tmp_path / "x"))
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("code, raised", [(errno.EINVAL, False), (errno.EIO, True)])
def test_fsync_dir_raises_unless_the_file_system_cannot_sync_directories(tmp_path, monkeypatch, code, raised):
    real = os.fsync

    def failing(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(_files.os, "fsync", failing)
    if raised:
        with pytest.raises(OSError):
            fsync_dir(str(tmp_path))
    else:
        fsync_dir(str(tmp_path))
