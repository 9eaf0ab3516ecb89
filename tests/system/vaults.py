# -*- coding: utf-8 -*-
"""Ansible Vault pieces the system tests share."""


def write_password_file(directory, password):
    """The vault password file a user keeps: ``directory/vault-pass.txt``, the password and a newline, mode 0600."""
    path = directory / "vault-pass.txt"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path
