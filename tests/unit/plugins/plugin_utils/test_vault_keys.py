# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils._vault_keys: the run's vault secrets, whole-file vaults read and encrypted."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.parsing.vault import VaultSecret

from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_keys import VaultKeys
from ansible_collections.tfe.audit.tests.unit.plugins.plugin_utils.store_helpers import PASSWORD


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
