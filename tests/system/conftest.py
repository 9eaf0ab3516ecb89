# -*- coding: utf-8 -*-
"""Fixtures for end-to-end tests: the emulator on loopback and real ansible-playbook runs against it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests" / "shared"))

from tfe_emulator import Emulator  # noqa: E402
from checkout_fixtures import admin_token, collections_path  # noqa: E402,F401  pylint: disable=unused-import

BIN = Path(sys.executable).parent


@pytest.fixture
def emulator(admin_token):
    with Emulator(platform="hcp", api_tokens=(admin_token,)) as emu:
        emu.add_organization("acme", entitlement=True)
        emu.add_organization("small", entitlement=False)
        yield emu


class Run:
    def __init__(self, proc, workdir):
        self.rc, self.stdout, self.stderr, self.workdir = proc.returncode, proc.stdout, proc.stderr, workdir

    def __repr__(self):
        return "<ansible-playbook rc=%s>\n%s\n%s" % (self.rc, self.stdout[-3000:], self.stderr[-3000:])


@pytest.fixture
def run_playbook(collections_path, tmp_path):
    """Run a playbook (text) in its own directory with its own temp dirs; returns a Run."""

    def run(playbook, *args, env=None, name="playbook.yml"):
        workdir = tmp_path / "work"
        workdir.mkdir(exist_ok=True)
        (workdir / name).write_text(playbook)
        full_env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "TFE_"))}
        full_env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections_path),
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
            ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="1",
            ANSIBLE_RETRY_FILES_SAVE_PATH=str(workdir),
            HOME=str(tmp_path / "home"),
        )
        full_env.update(env or {})
        (tmp_path / "home").mkdir(exist_ok=True)
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", name] + list(args),
            cwd=str(workdir), env=full_env, capture_output=True, text=True, timeout=600, check=False)
        return Run(proc, workdir)

    return run


def files_under(*roots):
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


@pytest.fixture
def ansible_bin():
    return BIN


def which(name):
    return shutil.which(name, path=str(BIN))


@pytest.fixture(scope="session")
def test_collections(tmp_path_factory):
    """A collections path holding community.hashi_vault (and ansible.posix).

    ``make system`` installs them once and passes the path in TFE_AUDIT_TEST_COLLECTIONS; without it
    they are installed here with tests/ci/install-test-collections.sh (about 2 s).
    """
    given = os.environ.get("TFE_AUDIT_TEST_COLLECTIONS")
    if given:
        path = Path(given)
    else:
        path = tmp_path_factory.mktemp("test-collections")
        subprocess.run([str(ROOT / "tests" / "ci" / "install-test-collections.sh"), str(path)],
                       env=dict(os.environ, PYTHON=sys.executable), check=True, capture_output=True, timeout=300)
    if not (path / "ansible_collections" / "community" / "hashi_vault").is_dir():
        pytest.fail("community.hashi_vault is not in %s (tests/ci/install-test-collections.sh)" % path)
    return path


@pytest.fixture
def openbao():
    """A real OpenBao dev server (KV v2 at secret/) on 127.0.0.1, stopped and removed afterwards."""
    from openbao import OpenBao  # pylint: disable=import-outside-toplevel

    with OpenBao() as bao:
        yield bao
