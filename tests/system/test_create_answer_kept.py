# -*- coding: utf-8 -*-
"""A create answer whose metadata cannot be taken as it is: the new secret is kept all the same.

Once HCP Terraform has answered the POST, the old token is revoked and the new secret exists nowhere else.
The emulator plants a create answer whose ``expired-at`` is a valid RFC 3339 time in year 10000 in UTC
(``9999-12-31T23:30:00.000-01:00``); its secret is that of a token made live beforehand, so a rerun can
verify it. The module returns it, each store of the role keeps it, and a rerun finds it live (no POST).
"""

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from ansible.parsing.vault import VaultLib, VaultSecret

from plays import localhost_play
from tfe_emulator import token_document
from vaults import write_password_file

PASSWORD = "create answer vault password"
OVERFLOW = "9999-12-31T23:30:00.000-01:00"
VAULT_REL = Path("group_vars") / "all" / "tfe_audit_trail_token.vault.yml"
KV_PATH = "tfe/acme-audit-trail"

MODULE_TASKS = """
    - name: Regenerate
      tfe.audit.tfe_audit_trail_token:
        force_regenerate: true
      register: created

    - name: Keep a hash of the secret register received
      ansible.builtin.copy:
        dest: "{{ playbook_dir }}/token.sha256"
        content: "{{ created.token | hash('sha256') }}"
        mode: "0600"

    - name: Run again with the secret held
      tfe.audit.tfe_audit_trail_token:
        known_token: "{{ created.token }}"
      register: again

    - name: The secret held is the live token
      ansible.builtin.assert:
        that:
          - again is not changed
          - again.operation == 'none'
"""


def module_play(url):
    return localhost_play("The module with a create answer from beyond year 9999", MODULE_TASKS, url=url,
                          organization="acme")


def role_play(url, **role_vars):
    role_vars = dict(audit_trail_token_organization="acme", audit_trail_token_hostname=url, **role_vars)
    return yaml.safe_dump([{"name": "The role with a create answer from beyond year 9999", "hosts": "localhost",
                            "gather_facts": False,
                            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                            "roles": [{"role": "tfe.audit.audit_trail_token", "vars": role_vars}]}], sort_keys=False)


@pytest.fixture
def play(run_playbook, admin_token, openbao, tmp_path, collections_path, test_collections):
    password_file = write_password_file(tmp_path, PASSWORD)

    def run(text):
        env = dict(openbao.env(), TFE_TOKEN=admin_token,
                   ANSIBLE_COLLECTIONS_PATH="%s:%s" % (collections_path, test_collections))
        return run_playbook(text, "--vault-password-file", str(password_file), env=env)

    return run


def plant_create_answer(emulator):
    """The next POST is answered with a live token's secret and an expiry beyond year 9999; the token the
    caller holds is revoked (as a real create would). Returns the secret."""
    live = emulator.regenerate_audit_trail_token("acme")["token"]
    emulator.add_fault(method="POST", path="authentication-token", status=201,
                       body=json.dumps(token_document(**{"expired-at": OVERFLOW, "token": live})))
    emulator.clear_requests()
    return live


def posts(emulator):
    return [r for r in emulator.requests if r["method"] == "POST"]


def assert_clean(run, *secrets):
    assert run.rc == 0, run
    assert "Traceback" not in run.stdout + run.stderr, run
    for secret in secrets:
        assert secret not in run.stdout + run.stderr


def test_the_module_returns_the_new_secret(emulator, play):
    emulator.regenerate_audit_trail_token("acme")
    live = plant_create_answer(emulator)

    run = play(module_play(emulator.url))

    assert_clean(run, live)
    assert len(posts(emulator)) == 1
    assert (run.workdir / "token.sha256").read_text() == hashlib.sha256(live.encode()).hexdigest()
    # The warning names the field it could not take, never its value.
    warning = " ".join(run.stderr.split())
    assert "expired_at" in warning and OVERFLOW not in run.stdout + run.stderr, run


def decrypt(path):
    class TagLoader(yaml.SafeLoader):
        pass

    TagLoader.add_multi_constructor("!", lambda loader, suffix, node: (node.tag, loader.construct_scalar(node)))
    return yaml.load(VaultLib([("default", VaultSecret(PASSWORD.encode()))]).decrypt(path.read_bytes()),
                     Loader=TagLoader)


def test_the_ansible_vault_store_keeps_the_new_secret(emulator, play):
    first = play(role_play(emulator.url))
    assert first.rc == 0, first
    vault_file = first.workdir / VAULT_REL
    live = plant_create_answer(emulator)

    run = play(role_play(emulator.url))

    assert_clean(run, live)
    assert len(posts(emulator)) == 1 and "changed=0" not in run.stdout
    assert decrypt(vault_file)["vault_tfe_audit_trail_token"] == ("!unsafe", live)
    assert sorted(p.name for p in vault_file.parent.iterdir() if p.name.endswith((".pending", ".tmp"))) == []
    written = vault_file.read_bytes()
    emulator.clear_requests()

    rerun = play(role_play(emulator.url))

    assert_clean(rerun, live)
    assert posts(emulator) == [] and "changed=0" in rerun.stdout, rerun
    assert vault_file.read_bytes() == written


def test_the_hashi_vault_store_keeps_the_new_secret(emulator, play, openbao):
    role_vars = dict(audit_trail_token_store="hashi_vault", audit_trail_token_hashi_vault_path=KV_PATH)
    first = play(role_play(emulator.url, **role_vars))
    assert first.rc == 0, first
    live = plant_create_answer(emulator)

    run = play(role_play(emulator.url, **role_vars))

    assert_clean(run, live)
    assert len(posts(emulator)) == 1 and "changed=0" not in run.stdout
    kv = openbao.client().secrets.kv.v2
    entry = kv.read_secret_version(path=KV_PATH, mount_point="secret", raise_on_deleted_version=True)["data"]
    assert entry["data"]["token"] == live and entry["metadata"]["version"] == 2
    emulator.clear_requests()

    rerun = play(role_play(emulator.url, **role_vars))

    assert_clean(rerun, live)
    assert posts(emulator) == [] and "changed=0" in rerun.stdout, rerun
