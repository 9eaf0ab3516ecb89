# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The vault secrets of a run, and whole-file vaults read and encrypted with them.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.parsing.vault import VaultLib, get_file_vault_secret, is_encrypted, match_encrypt_secret

from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError, os_error
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import dump_mapping, load_mapping

_HOW_TO_GIVE_A_SECRET = (
    "give ansible-playbook a vault secret (--vault-password-file FILE, --vault-id LABEL@FILE, "
    "--ask-vault-pass or the ANSIBLE_VAULT_PASSWORD_FILE environment variable), or set vault_password_file "
    "(the role variable audit_trail_token_vault_password_file)")


def _vault_error(exc):
    text = to_native(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class VaultKeys:
    """The vault secrets of a run: all of them to decrypt, one (and its label) to encrypt."""

    def __init__(self, secrets, vault_id=None, target="the vault file"):
        secrets = [(label, secret) for label, secret in secrets if secret is not None and secret.bytes]
        if not secrets:
            raise StoreError("no vault secret to encrypt %s with: %s" % (target, _HOW_TO_GIVE_A_SECRET))
        try:
            label, self.encrypt_secret = match_encrypt_secret(secrets, vault_id)
        except AnsibleError:
            raise StoreError("no vault secret with the vault id %r; this run has %s: give it with --vault-id %s@FILE "
                             "(or vault_password_file), or set vault_id to one of them"
                             % (vault_id, sorted(set(label for label, dummy in secrets)), vault_id))
        self.label = vault_id or (label if label and label != "default" else None)
        self.vault = VaultLib(secrets)

    @classmethod
    def of_run(cls, loader, vault_id=None, password_file=None, target="the vault file"):
        """The run's own secrets (``--vault-id`` ...), or the one in ``password_file``."""
        if not password_file:
            return cls(list(getattr(getattr(loader, "_vault", None), "secrets", None) or []), vault_id, target)
        try:
            secret = get_file_vault_secret(filename=password_file, vault_id=vault_id, loader=loader)
            secret.load()
        except AnsibleError as exc:
            raise StoreError("cannot read the vault password from vault_password_file %s: %s"
                             % (password_file, _vault_error(exc)))
        return cls([(vault_id or "default", secret)], vault_id, target)

    def encrypt(self, mapping):
        return self.vault.encrypt(dump_mapping(mapping), secret=self.encrypt_secret, vault_id=self.label)

    def read(self, path, what):
        """``(encrypted bytes or None, mapping)`` of a whole-file vault; ``(None, {})`` when it is missing."""
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None, {}
            raise StoreError("cannot read %s %s: %s" % (what, path, os_error(exc)))
        if not data.strip():
            return data, {}
        if not is_encrypted(data):
            raise StoreError("%s is not an Ansible Vault encrypted file (it must be encrypted as a whole, as "
                             "'ansible-vault encrypt' does); refusing to touch it: encrypt it, or choose another "
                             "vault_file" % path)
        try:
            plaintext = self.vault.decrypt(data)
        except AnsibleError as exc:
            raise StoreError("cannot decrypt %s %s with the vault secrets of this run (%s): wrong "
                             "vault password or vault id? The file was not changed." % (what, path, _vault_error(exc)))
        return data, load_mapping(to_text(plaintext, errors="surrogate_or_strict"), "%s %s" % (what, path))
