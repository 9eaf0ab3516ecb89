# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest fixtures shared by the suites that run real Ansible programs against this checkout: tests/system
(ansible-playbook) and tests/eda (ansible-rulebook). A conftest.py imports them by name."""

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The cores a test may run besides the one of its own venv: the oldest and the newest of the support matrix.
OTHER_CORES = (("2.18", "3.11"), ("2.21", "3.12"))


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory):
    """An ansible_collections tree holding this checkout as tfe.audit (found by `ansible-galaxy collection list`)."""
    base = tmp_path_factory.mktemp("collections")
    namespace = base / "ansible_collections" / "tfe"
    namespace.mkdir(parents=True)
    (namespace / "audit").symlink_to(ROOT)
    return base


@pytest.fixture
def admin_token():
    """The API token of the emulator's admin user (an owners-team member)."""
    return "admin-" + secrets.token_urlsafe(24)


def matrix_core(minor, python):
    """The exact ansible-core release the Makefile's MATRIX names for ``minor`` on ``python``."""
    matrix = re.search(r"^MATRIX \?= (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    return next(cell.split("@")[0] for cell in matrix if cell.startswith(minor + ".") and cell.endswith("@" + python))


@pytest.fixture(scope="session")
def core_bin():
    """``core_bin("2.18")``: the bin directory of a venv with that ansible-core: the support matrix's venv
    (.venv-matrix/<minor>-py<python>, made or checked by tests/ci/venv.sh exactly as tests/ci/matrix.sh makes it,
    a no-op when it is up to date), or, for the core of the running Python, its own venv."""
    own = ".".join(__import__("ansible.release", fromlist=["__version__"]).__version__.split(".")[:2])

    def find(minor):
        if minor == own:
            return Path(sys.executable).parent
        python = dict(OTHER_CORES)[minor]
        venv = ROOT / ".venv-matrix" / ("%s-py%s" % (minor, python))
        subprocess.run([str(ROOT / "tests" / "ci" / "venv.sh"), str(venv), python,
                        "ansible-core==%s" % matrix_core(minor, python), str(ROOT / "tests" / "ci" / "requirements-matrix.txt")],
                       check=True, capture_output=True, timeout=900)
        return venv / "bin"

    return find
