# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one error of the Ansible Vault store's machinery (``tfe.audit.tfe_audit_trail_token_vault_file``).

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_native


class StoreError(Exception):
    """A failure of the store step, with a message for the user (never a secret)."""


def os_error(exc):
    """What an ``OSError`` says, without Python's ``[Errno N]`` prefix."""
    return to_native(exc.strerror or exc)
