# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pytest setup for the unit tests.

* Puts ``<collection root>/tests/emulator`` on ``sys.path`` so tests can ``import tfe_emulator``.
* Provides the ``emulator`` fixture: a started HCP Terraform emulator (function scope) that accepts
  the API token ``EMULATOR_TOKEN`` and knows the entitled organization ``acme``.
* Provides ``closed_port``: a loopback port that nothing listens on.
"""

from __future__ import annotations

import os
import socket
import sys

import pytest

EMULATOR_TOKEN = 'admin-token-for-tests'
EMULATOR_ORG = 'acme'

# tests/unit/conftest.py -> collection root is two directories up.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMULATOR_DIR = os.path.join(COLLECTION_ROOT, 'tests', 'emulator')

if EMULATOR_DIR not in sys.path:
    sys.path.insert(0, EMULATOR_DIR)


@pytest.fixture
def emulator():
    """Yield a running ``tfe_emulator.Emulator`` (platform hcp, org ``acme`` entitled); stopped afterwards."""
    import tfe_emulator  # pylint: disable=import-outside-toplevel

    emu = tfe_emulator.Emulator(platform='hcp', api_tokens=(EMULATOR_TOKEN,))
    emu.add_organization(EMULATOR_ORG, entitlement=True)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on: bound for a moment to get one, then released."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
