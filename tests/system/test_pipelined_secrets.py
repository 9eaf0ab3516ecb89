# -*- coding: utf-8 -*-
"""No module argument that holds a secret is written to a temp file, on any path the role takes.

Unless a module runs pipelined, ansible-core writes it with its arguments (AnsiballZ) to a temp file and
keeps it for the whole module run; at -vvv each such write is a ``PUT ... AnsiballZ_<module>.py`` line. The
token modules get the stored secret (``known_token``) and the API token (``token``), community.hashi_vault's
modules the Vault token and the new secret. Pipelining is off by default (these runs say so explicitly), so
the collection must turn it on itself: for the module used directly and through both stores, with and
without become. ``become`` runs through a stand-in ``sudo`` (``ansible_become_exe``: same user, logs each
call), as this machine has none. Where the module cannot run pipelined (become method ``su``) and its
arguments hold a secret, the task is refused before any API call.
"""

import re

import pytest

PLAY = """
- name: Pipelined secrets
  hosts: localhost
  gather_facts: false
  become: {become}
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    ansible_become_exe: {sudo}
    ansible_become_method: {method}
    api_token: "{{{{ lookup('ansible.builtin.env', 'API_TOKEN') }}}}"
  module_defaults:
    group/tfe.audit.tfe:
      hostname: {url}
      token: "{{{{ api_token }}}}"
  tasks:
{tasks}
"""

MODULE_TASKS = """
    - name: A module ansible-core does not pipeline by default (the control)
      ansible.builtin.ping:

    - name: The module, creating a token (the API token from module_defaults)
      tfe.audit.tfe_audit_trail_token:
        organization: acme
      register: created

    - name: The module, verifying the secret held (known_token)
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        known_token: "{{ created.token }}"
"""

ROLE_TASKS = """
    - name: The role, {store} store ({run})
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      check_mode: {check_mode}
      vars:
        audit_trail_token_state: {state}
        audit_trail_token_organization: acme
        audit_trail_token_api_token: "{{{{ api_token }}}}"
        audit_trail_token_store: {store}
        audit_trail_token_hashi_vault_path: tfe/acme
        audit_trail_token_hashi_vault_token: "{{{{ lookup('ansible.builtin.env', 'BAO_TOKEN') }}}}"
        audit_trail_token_hashi_vault_url: "{{{{ lookup('ansible.builtin.env', 'BAO_ADDR') }}}}"
"""

FAKE_SUDO = """#!/bin/sh
# sudo as the same user: log the call, drop sudo's options, run the command.
echo sudo >> {log}
while [ $# -gt 0 ]; do
  case "$1" in
    -u|-p) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
exec "$@"
"""

PUT = re.compile(r"\bPUT \S+ TO \S+/(AnsiballZ_\w+\.py)")


@pytest.fixture
def fake_sudo(tmp_path):
    log = tmp_path / "sudo.log"
    script = tmp_path / "bin" / "sudo"
    script.parent.mkdir()
    script.write_text(FAKE_SUDO.format(log=log))
    script.chmod(0o755)
    return script, log


@pytest.fixture
def play(run_playbook, emulator, admin_token, openbao, fake_sudo, password_file, collections_path, test_collections):
    """play(tasks, become=False, method="sudo") -> (Run, the AnsiballZ files written, sudo calls)."""

    def run(tasks, become=False, method="sudo"):
        script, log = fake_sudo
        env = dict(API_TOKEN=admin_token, TFE_TOKEN="", BAO_TOKEN=openbao.token, BAO_ADDR=openbao.addr,
                   VAULT_TOKEN="", ANSIBLE_PIPELINING="False",
                   # These runs may be root already: become to the same user only happens when allowed.
                   ANSIBLE_BECOME_ALLOW_SAME_USER="True",
                   ANSIBLE_COLLECTIONS_PATH="%s:%s" % (collections_path, test_collections))
        text = PLAY.format(become=str(become).lower(), sudo=script, method=method, url=emulator.url, tasks=tasks)
        calls = len(log.read_text().splitlines()) if log.exists() else 0
        result = run_playbook(text, "-vvv", "--vault-password-file", str(password_file), env=env)
        sudo_calls = (len(log.read_text().splitlines()) if log.exists() else 0) - calls
        return result, PUT.findall(result.stdout), sudo_calls

    return run


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "vault-pass.txt"
    path.write_text("pipelined secrets vault password\n")
    return path


ROLE_RUNS = (("creates", "false", "present"), ("verifies the stored secret", "false", "present"),
             ("check mode", "true", "present"), ("absent", "false", "absent"))


def role_task(store, run="creates", check_mode="false", state="present"):
    return ROLE_TASKS.format(store=store, run=run, check_mode=check_mode, state=state)


def role_tasks(store):
    return "".join(role_task(store, *run) for run in ROLE_RUNS)


@pytest.mark.parametrize("become", [False, True], ids=["without become", "with become (sudo)"])
def test_no_secret_argument_is_written_to_a_temp_file(play, emulator, become):
    tasks = MODULE_TASKS + role_tasks("ansible_vault") + role_tasks("hashi_vault")

    run, written, sudo_calls = play(tasks, become=become)

    assert run.rc == 0, run
    assert len(emulator.issued_secrets) == 3, "the module and each store generated a token"
    assert written == ["AnsiballZ_ping.py"], "only the control task's module was written to disk: %s" % written
    assert emulator.audit_trail_token("acme") is None, "the last run deleted the token"
    # Each module ran: the token module 10 times (twice directly, 4 runs of each store), community.hashi_vault's too.
    assert run.stdout.count("Using module file") >= 15, run
    if become:
        assert sudo_calls >= 5, "the control and the token modules ran through sudo (%d calls)" % sudo_calls
    else:
        assert sudo_calls == 0


@pytest.mark.parametrize("tasks", [
    MODULE_TASKS.replace("ansible.builtin.ping:", "ansible.builtin.meta: noop"),
    role_task("ansible_vault"),
    role_task("hashi_vault"),
], ids=["the module", "the Ansible Vault store", "the HashiCorp Vault store"])
def test_a_become_method_that_cannot_pipeline_is_refused_before_any_api_call(play, emulator, openbao, tasks):
    run, written, sudo_calls = play(tasks, become=True, method="su")

    assert run.rc != 0, run
    assert "become method su cannot run modules pipelined" in run.stdout, run
    assert "become: false" in run.stdout
    assert written == [] and sudo_calls == 0
    assert [r for r in emulator.requests if r["method"] in ("POST", "DELETE")] == []
    assert emulator.issued_secrets == []
