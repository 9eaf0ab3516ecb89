# -*- coding: utf-8 -*-
"""The generated secrets, the admin API token and the vault password never reach output, logs or files.

One playbook walks every module and role path (create, idempotent, regenerate, rotate, check mode,
absent, failures, and the events export that uses the stored secret). Its tasks do not set
``no_log``: the collection must protect users who forget it. Afterwards every secret the emulator
issued during the run is searched for in stdout, stderr, the log file and every file under the
run's directories (playbook directory, vault files, exports, a jsonfile fact cache, Ansible's temp
directories).

CI runs a spread of verbosity x --diff x stdout callback; TFE_AUDIT_RELIABILITY_FULL=1 runs all 24.
"""

import hashlib
import itertools
import os
import secrets
from pathlib import Path

import pytest

from conftest import files_under
from reliability import record

MODULE_TASKS = """
    - name: Create (check mode)
      tfe.audit.tfe_audit_trail_token:
        organization: acme
      check_mode: true

    - name: Create
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        lifetime: 30d
      register: created

    - name: Register received the secret
      ansible.builtin.copy:
        dest: "{{ playbook_dir }}/token.sha256"
        content: "{{ created.token | hash('sha256') }}"
        mode: "0600"

    - name: Idempotent
      tfe.audit.tfe_audit_trail_token:
        organization: acme

    - name: Regenerate
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        force_regenerate: true

    - name: Rotate
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        lifetime: 90d
        rotate_before: 3000d

    - name: Info
      tfe.audit.tfe_audit_trail_token_info:
        organization: acme

    - name: Failure path (no entitlement)
      tfe.audit.tfe_audit_trail_token:
        organization: small
      ignore_errors: true

    - name: Failure path (invalid input)
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        expired_at: not-a-date
      ignore_errors: true

    - name: Absent (check mode)
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        state: absent
      check_mode: true

    - name: Absent
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        state: absent
"""

ROLE_TASKS = """
    - name: Role, first run (creates and stores)
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token

    - name: Role, idempotent run
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token

    - name: Role, check mode with a forced regeneration
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_force_regenerate: true
      check_mode: true

    - name: Role, forced regeneration
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_force_regenerate: true

    - name: Role, rotation
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_lifetime: 90d
        audit_trail_token_rotate_before: 3000d

    - name: Events, returned
      tfe.audit.tfe_audit_trail_events:
        token: "{{ vault_tfe_audit_trail_token }}"
        max_events: 3

    - name: Export directory
      ansible.builtin.file:
        path: "{{ playbook_dir }}/export"
        state: directory
        mode: "0700"

    - name: Events, exported with a cursor
      tfe.audit.tfe_audit_trail_events:
        token: "{{ vault_tfe_audit_trail_token }}"
        dest: "{{ playbook_dir }}/export/audit.ndjson"
        cursor_file: "{{ playbook_dir }}/export/cursor.json"

    - name: Events, with a stale token (failure path)
      tfe.audit.tfe_audit_trail_events:
        token: "{{ stale_token }}"
      ignore_errors: true

    - name: Role, absent
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_state: absent

    - name: Role, failure path (no entitlement)
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_organization: small
        audit_trail_token_vault_file: "{{ playbook_dir }}/vaults/small.vault.yml"
      ignore_errors: true

    - name: Role, final run (a live token is stored at the end)
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token

    - name: A cacheable fact of our own, so the fact cache is written (and searched) in every case
      ansible.builtin.set_fact:
        leak_test_marker: cached
        cacheable: true
"""

PLAYBOOK = """
- name: Module paths
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  module_defaults:
    group/tfe.audit.tfe:
      hostname: {url}
  tasks:
{module_tasks}

- name: Role and events paths
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    audit_trail_token_organization: roleorg
    audit_trail_token_vault_file: "{{{{ playbook_dir }}}}/vaults/roleorg.vault.yml"
    stale_token: "{stale_token}"
  module_defaults:
    group/tfe.audit.tfe:
      hostname: {url}
  tasks:
{role_tasks}
"""

VERBOSITIES = ("-v", "-vv", "-vvv", "-vvvv")
CALLBACKS = ("default", "yaml", "json")
CI_CASES = [("-v", False, "default"), ("-vv", True, "yaml"), ("-vvv", False, "json"),
            ("-vvvv", True, "default"), ("-vvvv", True, "json"), ("-vvvv", False, "yaml")]
CASES = list(itertools.product(VERBOSITIES, (False, True), CALLBACKS)) \
    if os.environ.get("TFE_AUDIT_RELIABILITY_FULL") else CI_CASES


@pytest.mark.parametrize("verbosity, diff, callback", CASES)
def test_no_secret_in_any_output(emulator, admin_token, run_playbook, test_collections, collections_path, tmp_path,
                                 verbosity, diff, callback):
    emulator.add_organization("roleorg", entitlement=True)
    stale_token = emulator.regenerate_audit_trail_token("roleorg")["token"]
    emulator.seed_events("roleorg", count=50)
    issued = emulator.issued_secrets
    assert issued == [stale_token]
    vault_password = "vault-" + secrets.token_urlsafe(24)
    password_file = tmp_path / "vault-pass"
    password_file.write_text(vault_password)
    log_path = tmp_path / "ansible.log"
    fact_cache = tmp_path / "fact-cache"  # AWX and AAP job templates can persist facts like this
    env = {"ANSIBLE_LOG_PATH": str(log_path), "TFE_TOKEN": admin_token,
           "ANSIBLE_COLLECTIONS_PATH": "%s:%s" % (collections_path, test_collections),
           "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(fact_cache)}
    if callback == "yaml":
        env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "yaml"
    if callback == "json":
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    args = [verbosity, "--vault-password-file", str(password_file)] + (["--diff"] if diff else [])
    playbook = PLAYBOOK.format(url=emulator.url, stale_token="{{ lookup('ansible.builtin.env', 'STALE_TOKEN') }}",
                               module_tasks=MODULE_TASKS, role_tasks=ROLE_TASKS)
    env["STALE_TOKEN"] = stale_token

    run = run_playbook(playbook, *args, env=env)

    assert run.rc == 0, run
    assert len(issued) >= 8, "every path that generates a secret ran"
    assert emulator.audit_trail_token("roleorg")["token"] == issued[-1]
    module_secret = [s for s in issued[1:] if hashlib.sha256(s.encode()).hexdigest()
                     == (run.workdir / "token.sha256").read_text()]
    assert module_secret, "register received the generated secret"
    assert (run.workdir / "export" / "audit.ndjson").stat().st_size > 0
    assert log_path.stat().st_size > 0
    assert "leak_test_marker" in "".join(path.read_text() for path in fact_cache.iterdir()), "facts were cached"

    haystacks = {"stdout": run.stdout, "stderr": run.stderr}
    for path in files_under(tmp_path):
        if path != password_file:  # the one place the vault password belongs
            haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    everything = issued + [admin_token, vault_password]
    occurrences = sum(text.count(secret) for secret in everything for text in haystacks.values())
    record("secret leaks", "%s%s, %s callback" % (verbosity, " --diff" if diff else "", callback),
           occurrences=occurrences, secrets=len(everything), places=len(haystacks))
    for secret in everything:
        leaks = [where for where, text in haystacks.items() if secret in text]
        assert leaks == [], "a secret appeared in %s" % leaks
    # The tasks that generated a secret were censored, not skipped.
    assert "hidden due to" in run.stdout or "censored" in run.stdout


def test_the_search_finds_a_secret_that_is_printed(emulator, admin_token, run_playbook, tmp_path):
    """The leak search itself works: a task that prints the secret on purpose is caught."""
    playbook = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - tfe.audit.tfe_audit_trail_token:
        hostname: %s
        organization: acme
      register: created
    - ansible.builtin.debug:
        msg: "{{ created.token }}"
""" % emulator.url
    run = run_playbook(playbook, env={"TFE_TOKEN": admin_token})
    assert run.rc == 0, run
    assert emulator.audit_trail_token("acme")["token"] in run.stdout
    assert not Path(tmp_path / "ansible.log").exists()
