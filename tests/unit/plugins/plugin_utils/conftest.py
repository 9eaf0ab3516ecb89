# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the store machinery's tests: the run's vault keys and a vault file in tmp_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.parsing.vault import VaultSecret

from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import VaultFile
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_keys import VaultKeys
from ansible_collections.tfe.audit.tests.unit.plugins.plugin_utils.store_helpers import PASSWORD


@pytest.fixture
def keys():
    return VaultKeys([("default", VaultSecret(PASSWORD))])


@pytest.fixture
def vault_file(tmp_path):
    return VaultFile(str(tmp_path / "vars" / "token.vault.yml"))
