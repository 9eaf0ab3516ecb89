# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the event source's unit tests (helpers: source_runner.py)."""

from __future__ import annotations

import pytest

from ansible_collections.tfe.audit.tests.unit.extensions.eda.plugins.event_source.source_runner import ORG, make_fast


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    make_fast(monkeypatch)


@pytest.fixture
def secret(emulator):
    """The organization's audit trail token: what the source reads the trail with."""
    return emulator.regenerate_audit_trail_token(ORG)["token"]
