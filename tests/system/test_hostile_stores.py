# -*- coding: utf-8 -*-
"""The role's stores against a hostile server and planted files (a template planted as the token, planted links).

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
import os
import subprocess
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

SAME_PLAY_USE = "{{ vault_tfe_audit_trail_token | default('') | length }} {{ [vault_tfe_audit_trail_token | default('')] | join }}"


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
    """The role, then a later task of the same play that uses the variable the role set."""
    role_vars = dict(audit_trail_token_organization="acme", audit_trail_token_hostname=emulator.url, **role_vars)
    return yaml.safe_dump([{
        "name": "The role stores what the server answered", "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": [{"role": "tfe.audit.audit_trail_token", "vars": role_vars}],
        "post_tasks": [{"name": "Later tasks of the same play use the variable the role set",
                        "ansible.builtin.debug": {"msg": SAME_PLAY_USE}}]}], sort_keys=False)


def pwned(run):
    return (run.workdir / PWNED).exists()


# -- Ansible Vault store ------------------------------------------------------------------------------

def _assert_stored_unsafe(path, secret):
    assert decrypt(path)["vault_tfe_audit_trail_token"] == ("!unsafe", secret), "stored as !unsafe"


def test_ansible_vault_hostile_server_runs_nothing(emulator, play):
    answer_create_with(emulator)

    run = play(role_play(emulator))
    vault_file = run.workdir / VAULT_REL
    # The client may refuse the answer (then nothing is stored); if it does not, the store must hold it inert.
    stored = vault_file.exists() and "vault_tfe_audit_trail_token" in decrypt(vault_file)
    assert [r["method"] for r in emulator.requests].count("POST") == 1, "the hostile answer was served"
    if stored:
        assert run.rc == 0, run
        _assert_stored_unsafe(vault_file, HOSTILE)
    else:
        assert run.rc != 0 and "was not changed" in run.stdout, run
    reader = play(READER_ANSIBLE_VAULT.format(vault_file=vault_file, url=emulator.url), name="reader.yml") \
        if stored else None

    executed = pwned(run)
    record("hostile", "Ansible Vault store: create answered with a template as token",
           outcome="stored as !unsafe" if stored else "refused, nothing stored",
           code_execution=int(executed), truncated=0, token_off_host=0)
    assert not executed, "the role's own run rendered the server's string"
    if reader is not None:
        assert reader.rc == 0, reader
        assert '"msg": %d' % len(HOSTILE) in reader.stdout, "the variable holds the string as it is"
        assert any(r["path"].endswith("/audit-trail") for r in emulator.requests), "the events module ran"
        assert not pwned(reader), "a later play rendered the stored string"


def test_ansible_vault_store_on_its_own_writes_unsafe(emulator, play, stub_collections, ansible_bin, password_file):
    run = play(role_play(emulator), collections=stub_collections)
    assert run.rc == 0, run
    vault_file = run.workdir / VAULT_REL
    _assert_stored_unsafe(vault_file, HOSTILE)
    assert not pwned(run), "the same play rendered the variable the role set"

    later = play(READER_ANSIBLE_VAULT.format(vault_file=vault_file, url=emulator.url), name="reader.yml")
    assert later.rc == 0, later
    assert not pwned(later), "a later play rendered the stored string"

    # The action's own YAML round trip keeps the tag (the stub keeps the token: nothing to write) ...
    again = play(role_play(emulator, audit_trail_token_backup="false"), collections=stub_collections)
    assert again.rc == 0, again
    _assert_stored_unsafe(vault_file, HOSTILE)
    # ... and so do ansible-vault view and edit (an editor that adds a variable).
    view = subprocess.run([str(ansible_bin / "ansible-vault"), "view", "--vault-password-file", str(password_file),
                           str(vault_file)], capture_output=True, text=True, check=True)
    assert "vault_tfe_audit_trail_token: !unsafe" in view.stdout
    editor = run.workdir.parent / "editor.sh"
    editor.write_text("#!/bin/sh\necho 'added_by_hand: 1' >> \"$1\"\n")
    editor.chmod(0o700)
    subprocess.run([str(ansible_bin / "ansible-vault"), "edit", "--vault-password-file", str(password_file),
                    str(vault_file)], env=dict(os.environ, EDITOR=str(editor)), capture_output=True, check=True)
    assert decrypt(vault_file)["added_by_hand"] == 1
    _assert_stored_unsafe(vault_file, HOSTILE)
    after_edit = play(READER_ANSIBLE_VAULT.format(vault_file=vault_file, url=emulator.url), name="reader.yml")
    assert after_edit.rc == 0, after_edit

    executed = any(pwned(r) for r in (run, later, again, after_edit))
    record("hostile", "Ansible Vault store on its own: a template as token, read by later plays, "
           "after ansible-vault edit", outcome="inert (!unsafe)", code_execution=int(executed), truncated=0,
           token_off_host=0)
    assert not executed


def test_a_hostile_secret_stored_by_an_older_version_is_replaced_and_never_rendered(emulator, play):
    """A file written before the fix holds the string as a plain scalar: the next run must not render it,
    finds it stale (401) and stores a real token, as !unsafe."""
    vault = VaultLib([("default", VaultSecret(PASSWORD.encode()))])
    path = Path(play(role_play(emulator), "--syntax-check").workdir) / VAULT_REL
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(vault.encrypt(yaml.safe_dump({"vault_tfe_audit_trail_token": HOSTILE}),
                                   secret=VaultSecret(PASSWORD.encode())))
    emulator.regenerate_audit_trail_token("acme")

    run = play(role_play(emulator))

    assert run.rc == 0, run
    live = emulator.audit_trail_token("acme")["token"]
    _assert_stored_unsafe(path, live)
    record("hostile", "Ansible Vault store: a plain-scalar template left by an older version",
           outcome="replaced by a live token (!unsafe)", code_execution=int(pwned(run)), truncated=0,
           token_off_host=0)
    assert not pwned(run)


# -- HashiCorp Vault / OpenBao store ------------------------------------------------------------------

def _hashi_play(emulator, **role_vars):
    return role_play(emulator, audit_trail_token_store="hashi_vault", audit_trail_token_hashi_vault_path=KV_PATH,
                     **role_vars)


def _kv_token(openbao):
    try:
        return openbao.client().secrets.kv.v2.read_secret_version(
            path=KV_PATH, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]["token"]
    except Exception:  # pylint: disable=broad-except
        return None


@pytest.mark.parametrize("source", ["server", "store on its own"])
def test_hashi_vault_hostile_token_runs_nothing(emulator, play, openbao, stub_collections, source):
    env = openbao.env()
    if source == "server":
        answer_create_with(emulator)
        run = play(_hashi_play(emulator), env=env)
    else:
        run = play(_hashi_play(emulator), env=env, collections=stub_collections)
    stored = _kv_token(openbao)
    if source == "store on its own":
        assert run.rc == 0, run
    else:
        assert [r["method"] for r in emulator.requests].count("POST") == 1, "the hostile answer was served"
    assert stored in (None, HOSTILE)
    assert (run.rc == 0) == (stored == HOSTILE), run

    later = play(READER_HASHI_VAULT.format(path=KV_PATH, url=emulator.url), env=env, name="reader.yml") \
        if stored else None
    if later is not None:
        assert later.rc == 0, later
        assert HOSTILE in later.stdout, "the lookup returned the string as it is"
    # The role again with verify off: the stored string goes through set_fact and known_token untouched.
    trusted = play(_hashi_play(emulator, audit_trail_token_verify="false"), env=env,
                   collections=stub_collections if source != "server" else None) if stored else None

    executed = any(pwned(r) for r in (run, later, trusted) if r is not None)
    record("hostile", "HashiCorp Vault store (%s): a template as token, read back by the role and a lookup" % source,
           outcome="stored, inert" if stored else "refused, nothing stored", code_execution=int(executed),
           truncated=0, token_off_host=0)
    assert not executed
    if trusted is not None:
        assert trusted.rc == 0, trusted


# -- planted files ---------------------------------------------------------------------------------------

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


def test_keep_remote_files_is_refused(emulator, play, tmp_path):
    """ANSIBLE_KEEP_REMOTE_FILES keeps the module's arguments (the stored secret, the API token) on disk."""
    first = play(role_play(emulator))
    assert first.rc == 0, first
    emulator.clear_requests()
    stored = emulator.audit_trail_token("acme")["token"]

    run = play(role_play(emulator), env={"ANSIBLE_KEEP_REMOTE_FILES": "1"})

    assert run.rc != 0, run
    assert "ANSIBLE_KEEP_REMOTE_FILES" in run.stdout, run
    assert emulator.requests == [], "refused before any API call"
    on_disk = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()
               and stored.encode() in p.read_bytes()]
    assert on_disk == []


def test_keep_remote_files_is_refused_by_the_hashi_vault_store(emulator, play, openbao):
    run = play(_hashi_play(emulator), env=dict(openbao.env(), ANSIBLE_KEEP_REMOTE_FILES="1"))

    assert run.rc != 0, run
    assert "ANSIBLE_KEEP_REMOTE_FILES" in run.stdout, run
    assert emulator.requests == [], "refused before any API call"
    assert _kv_token(openbao) is None
