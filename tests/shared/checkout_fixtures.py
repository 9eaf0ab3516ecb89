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


def template_cores():
    """{minor: (exact ansible-core, python)} of the Makefile's TEMPLATE_CORES: the oldest and the newest core of the
    support matrix, which a test may run besides the one of its own venv."""
    cells = re.search(r"^TEMPLATE_CORES \?= (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    return {cell.split("@")[0].rsplit(".", 1)[0]: tuple(cell.split("@")) for cell in cells}


@pytest.fixture(scope="session")
def core_bin():
    """``core_bin("2.18")``: the bin directory of a venv with that ansible-core: the support matrix's venv
    (.venv-matrix/<minor>-py<python>, which make system and make eda make, as tests/ci/matrix.sh does), or, for the
    core of the running Python, its own venv. A missing or different venv fails the test: tests install nothing."""
    own = ".".join(__import__("ansible.release", fromlist=["__version__"]).__version__.split(".")[:2])

    def find(minor):
        if minor == own:
            return Path(sys.executable).parent
        core, python = template_cores()[minor]
        venv = ROOT / ".venv-matrix" / ("%s-py%s" % (minor, python))
        found = subprocess.run([str(venv / "bin" / "python"), "-c", "import ansible.release as r; print(r.__version__)"],
                               capture_output=True, text=True, check=False) if (venv / "bin" / "python").exists() else None
        if found is None or found.stdout.strip() != core:
            pytest.fail("%s does not hold ansible-core %s: make system (or make eda) makes it" % (venv, core))
        return venv / "bin"

    return find
