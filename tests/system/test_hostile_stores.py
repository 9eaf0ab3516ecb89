# -*- coding: utf-8 -*-
"""The role's stores against a hostile server and planted files (issue 12, items 1 and 8).

A server that answers the create with a "token" such as ``{{ lookup('pipe', 'id > pwned.txt') }}`` must
not get code run on the controller: neither by the run that stores it, nor by a later play that reads
the stored variable (``vars_files``, ``group_vars``, a HashiCorp Vault lookup) or passes it to
``tfe.audit.tfe_audit_trail_events``. Every store writes the secret so that Ansible never renders it.

Two ways in:

* the emulator answers the POST with the hostile document (the module's client may refuse it: then
  nothing may be stored either);
* "store on its own": the same role and action with a stub ``tfe.audit.tfe_audit_trail_token`` module
  that returns the hostile string as if the client had accepted it, so the stores are tested whatever
  the client checks.

Each case records a row of the reliability suite ``hostile``.
"""

import json
from pathlib import Path

import pytest
import yaml

from ansible.parsing.vault import VaultLib, VaultSecret

from conftest import ROOT
from reliability import record

PASSWORD = "hostile vault password"
VAULT_REL = Path("group_vars") / "all" / "tfe_audit_trail_token.vault.yml"
PWNED = "pwned.txt"
HOSTILE = "{{ lookup('pipe', 'id > %s') }}" % PWNED
KV_PATH = "tfe/acme-audit-trail"

ROLE_PLAY = """
- name: The role stores what the server answered
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  roles:
    - role: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_organization: acme
        audit_trail_token_hostname: {url}
{role_vars}
  post_tasks:
    - name: Later tasks of the same play use the variable the role set
      ansible.builtin.debug:
        msg: "{{{{ vault_tfe_audit_trail_token | default('') | length }}}} {{{{ [vault_tfe_audit_trail_token | default('')] | join }}}}"
"""

READER_ANSIBLE_VAULT = """
- name: A later play reads the vault file (group_vars beside the playbook, and vars_files)
  hosts: localhost
  gather_facts: false
  vars_files:
    - "{vault_file}"
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Use the variable as the role's README does
      ansible.builtin.debug:
        msg: "{{{{ vault_tfe_audit_trail_token | length }}}}"

    - name: A copy of it, used again
      ansible.builtin.set_fact:
        copy_of_token: "{{{{ vault_tfe_audit_trail_token }}}}"

    - name: The events module reads its token from the vault variable
      tfe.audit.tfe_audit_trail_events:
        hostname: {url}
        token: "{{{{ copy_of_token }}}}"
        max_events: 1
      ignore_errors: true
"""

READER_HASHI_VAULT = """
- name: A later play reads the KV entry with community.hashi_vault's lookup
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    stored: "{{{{ lookup('community.hashi_vault.vault_kv2_get', '{path}', engine_mount_point='secret') }}}}"
  tasks:
    - name: Use the stored secret
      ansible.builtin.debug:
        msg: "{{{{ stored.secret.token | length }}}} {{{{ stored.secret.token }}}}"

    - name: The events module reads its token from it
      tfe.audit.tfe_audit_trail_events:
        hostname: {url}
        token: "{{{{ stored.secret.token }}}}"
        max_events: 1
      ignore_errors: true
"""

# A stand-in for tfe.audit.tfe_audit_trail_token: answers like a server whose "token" passed every check
# of the client, so that what the stores do with it is tested on its own.
STUB_MODULE = '''#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule

SECRET = %r
OPTIONS = ("organization", "state", "force_regenerate", "expired_at", "lifetime", "rotate_before", "known_token",
           "verify_known_token", "hostname", "token", "validate_certs", "ca_path", "timeout", "max_retries",
           "allow_unverified_platform")


def main():
    spec = dict((name, dict(type="raw", no_log=name in ("token", "known_token"))) for name in OPTIONS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    meta = dict(id="at-hostile00000000", created_at="2026-01-01T00:00:00.000Z",
                expired_at="2030-01-01T00:00:00.000Z", last_used_at=None, organization=params["organization"])
    if (params["state"] or "present") == "absent":
        module.exit_json(changed=True, operation="delete", reason="stub", organization=meta["organization"])
    if params["known_token"] == SECRET:
        module.exit_json(changed=False, operation="none", reason="stub: known", **meta)
    module.exit_json(changed=True, operation="create", reason="stub", token=SECRET, **meta)


if __name__ == "__main__":
    main()
'''


def hostile_document(secret=HOSTILE):
    return {"data": {"id": "at-hostile00000000", "type": "authentication-tokens",
                     "attributes": {"created-at": "2026-01-01T00:00:00.000Z", "last-used-at": None,
                                    "description": None, "token": secret,
                                    "expired-at": "2030-01-01T00:00:00.000Z"},
                     "relationships": {"created-by": {"data": {"id": "user-x", "type": "users"}}}}}


def answer_create_with(emulator, secret=HOSTILE):
    emulator.add_fault(method="POST", path="authentication-token", status=201,
                       body=json.dumps(hostile_document(secret)))


class _TagLoader(yaml.SafeLoader):
    pass


_TagLoader.add_multi_constructor("!", lambda loader, suffix, node: (node.tag, loader.construct_scalar(node)))


def decrypt(path):
    vault = VaultLib([("default", VaultSecret(PASSWORD.encode()))])
    return yaml.load(vault.decrypt(Path(path).read_bytes()), Loader=_TagLoader)


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "vault-pass.txt"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def stub_collections(tmp_path):
    """A collections path whose tfe.audit is this checkout, except tfe_audit_trail_token (the stub)."""
    base = tmp_path / "stub-collections"
    coll = base / "ansible_collections" / "tfe" / "audit"
    coll.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name not in ("plugins", ".git") and not entry.name.startswith((".venv", "build")):
            (coll / entry.name).symlink_to(entry)
    (coll / "plugins").mkdir()
    for entry in (ROOT / "plugins").iterdir():
        if entry.name != "modules":
            (coll / "plugins" / entry.name).symlink_to(entry)
    (coll / "plugins" / "modules").mkdir()
    for entry in (ROOT / "plugins" / "modules").iterdir():
        if entry.name != "tfe_audit_trail_token.py":
            (coll / "plugins" / "modules" / entry.name).symlink_to(entry)
    (coll / "plugins" / "modules" / "tfe_audit_trail_token.py").write_text(STUB_MODULE % HOSTILE)
    return base


@pytest.fixture
def play(run_playbook, emulator, admin_token, password_file, collections_path, test_collections):
    """Run a playbook text with the vault password: play(text, env=..., collections=...)."""

    def run(text, *args, env=None, collections=None, name="playbook.yml"):
        full_env = {"TFE_TOKEN": admin_token,
                    "ANSIBLE_COLLECTIONS_PATH": "%s:%s" % (collections or collections_path, test_collections)}
        full_env.update(env or {})
        return run_playbook(text, "--vault-password-file", str(password_file), *args, env=full_env, name=name)

    return run


def role_play(emulator, **role_vars):
    lines = "".join("        %s: %s\n" % (key, value) for key, value in role_vars.items())
    return ROLE_PLAY.format(url=emulator.url, role_vars=lines.rstrip("\n"))


def pwned(run):
    return (run.workdir / PWNED).exists()


# -- planted files (item 8) -------------------------------------------------------------------------------

def test_planted_lock_symlink_is_refused(emulator, play, tmp_path):
    first = play(role_play(emulator))
    assert first.rc == 0, first
    vault_file = first.workdir / VAULT_REL
    lock = vault_file.parent / (".%s.lock" % vault_file.name)
    victim = tmp_path / "victim" / "created-through-the-lock"
    victim.parent.mkdir()
    lock.unlink()
    lock.symlink_to(victim)
    before = vault_file.read_bytes()
    emulator.clear_requests()

    outcomes = {}
    for mode, args in (("run", ()), ("check mode", ("--check",))):
        run = play(role_play(emulator), *args)
        outcomes[mode] = run
        assert run.rc != 0, (mode, run)
        assert "symbolic link" in run.stdout and str(lock) in run.stdout, (mode, run)

    created = victim.exists()
    record("hostile", "Ansible Vault store: a symlink planted at the lock path",
           outcome="refused, naming the lock file", code_execution=0, truncated=int(created), token_off_host=0)
    assert not created, "the run created a file through the planted link"
    assert lock.is_symlink()
    assert emulator.requests == [], "failed before any API call"
    assert vault_file.read_bytes() == before


def test_check_mode_does_not_create_the_lock_file(emulator, play):
    first = play(role_play(emulator))
    assert first.rc == 0, first
    vault_file = first.workdir / VAULT_REL
    lock = vault_file.parent / (".%s.lock" % vault_file.name)
    lock.unlink()
    listing = sorted(p.name for p in vault_file.parent.iterdir())
    emulator.regenerate_audit_trail_token("acme")

    run = play(role_play(emulator), "--check")

    assert run.rc == 0, run
    assert sorted(p.name for p in vault_file.parent.iterdir()) == listing, "check mode created nothing"
