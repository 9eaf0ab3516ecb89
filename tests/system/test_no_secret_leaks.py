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
from plays import localhost_play
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

# The role for an organization without the audit-logging entitlement: it fails, with a message that must say
# why, and the play goes on.
ROLE_FAILURE_TASK = """
    - name: Role, failure path (no entitlement)
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_organization: small
        audit_trail_token_vault_file: "{{ playbook_dir }}/vaults/small.vault.yml"
      ignore_errors: true
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
""" + ROLE_FAILURE_TASK + """
    - name: Role, final run (a live token is stored at the end)
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token

    - name: A cacheable fact of our own, so the fact cache is written (and searched) in every case
      ansible.builtin.set_fact:
        leak_test_marker: cached
        cacheable: true
"""


def every_path_playbook(url):
    role_vars = {"audit_trail_token_organization": "roleorg",
                 "audit_trail_token_vault_file": "{{ playbook_dir }}/vaults/roleorg.vault.yml",
                 "stale_token": "{{ lookup('ansible.builtin.env', 'STALE_TOKEN') }}"}
    return (localhost_play("Module paths", MODULE_TASKS, url=url) + "\n"
            + localhost_play("Role and events paths", ROLE_TASKS, url=url, play_vars=role_vars))


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
    env["STALE_TOKEN"] = stale_token

    run = run_playbook(every_path_playbook(emulator.url), *args, env=env)

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
    tasks = """
    - tfe.audit.tfe_audit_trail_token:
        hostname: %s
        organization: acme
      register: created
    - ansible.builtin.debug:
        msg: "{{ created.token }}"
""" % emulator.url
    playbook = localhost_play("A task prints the secret on purpose", tasks)
    run = run_playbook(playbook, env={"TFE_TOKEN": admin_token})
    assert run.rc == 0, run
    assert emulator.audit_trail_token("acme")["token"] in run.stdout
    assert not Path(tmp_path / "ansible.log").exists()


# ansible-runner's job events carry every task's arguments as event_data.task_args when
# ANSIBLE_DISPLAY_ARGS_TO_STDOUT is on (awx_display: task.args unless the task is no_log), taken from the
# result's task, after templating, module_defaults merged in. This callback records them the same way.
TASK_ARGS_CALLBACK = '''
import json
import os

from ansible import constants as C
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "task_args_events"
    CALLBACK_NEEDS_ENABLED = True

    def _event(self, event, task):
        if not C.DISPLAY_ARGS_TO_STDOUT:
            return
        if task.no_log:
            task_args = "the output has been hidden due to the fact that 'no_log: true' was specified"
        else:
            task_args = ", ".join("%s=%s" % item for item in task.args.items())
        with open(os.environ["TASK_ARGS_EVENTS"], "a") as handle:
            handle.write(json.dumps(dict(event=event, task=task.get_name(), task_args=task_args)) + "\\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._event("playbook_on_task_start", task)

    def v2_runner_on_ok(self, result):
        self._event("runner_on_ok", result._task)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._event("runner_on_failed", result._task)
'''

DISPLAY_ARGS_TASKS = """
    - name: Ansible Vault store, token from module_defaults
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token

    - name: Ansible Vault store, token from the role variable, regenerating
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_api_token: "{{ lookup('ansible.builtin.env', 'API_TOKEN') }}"
        audit_trail_token_force_regenerate: true

    - name: HashiCorp Vault store, token from the role variable
      ansible.builtin.import_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_api_token: "{{ lookup('ansible.builtin.env', 'API_TOKEN') }}"
        audit_trail_token_store: hashi_vault
        audit_trail_token_hashi_vault_path: tfe/acme
""" + ROLE_FAILURE_TASK


def display_args_playbook(url):
    role_vars = {"audit_trail_token_organization": "acme",
                 "audit_trail_token_vault_file": "{{ playbook_dir }}/vaults/acme.vault.yml"}
    return localhost_play("The role with the API token in module_defaults and in its variable", DISPLAY_ARGS_TASKS,
                          url=url, play_vars=role_vars, token="{{ lookup('ansible.builtin.env', 'API_TOKEN') }}")


@pytest.mark.parametrize("lazy_banner", [False, True], ids=["banner at task start", "banner with the result"])
def test_display_args_to_stdout_keeps_the_api_token_out(emulator, admin_token, run_playbook, openbao, test_collections,
                                                        collections_path, tmp_path, lazy_banner):
    callbacks = tmp_path / "callbacks"
    callbacks.mkdir()
    (callbacks / "task_args_events.py").write_text(TASK_ARGS_CALLBACK)
    events = tmp_path / "job_events.jsonl"
    password_file = tmp_path / "vault-pass"
    password_file.write_text("vault-" + secrets.token_urlsafe(24))
    env = dict(openbao.env(), API_TOKEN=admin_token, TFE_TOKEN="", ANSIBLE_DISPLAY_ARGS_TO_STDOUT="True",
               ANSIBLE_CALLBACK_PLUGINS=str(callbacks), ANSIBLE_CALLBACKS_ENABLED="task_args_events",
               TASK_ARGS_EVENTS=str(events),
               ANSIBLE_COLLECTIONS_PATH="%s:%s" % (collections_path, test_collections))
    if lazy_banner:  # the default callback then prints each banner with the first result, from the result's task
        env.update(ANSIBLE_DISPLAY_OK_HOSTS="false", ANSIBLE_DISPLAY_SKIPPED_HOSTS="false")

    run = run_playbook(display_args_playbook(emulator.url), "--vault-password-file", str(password_file), env=env)

    assert run.rc == 0, run
    assert len(emulator.issued_secrets) >= 3, "the role generated tokens with both stores"
    assert "audit-logging entitlement" in run.stdout, "the failure's message is shown"
    recorded = events.read_text()
    assert "runner_on_ok" in recorded and "validate_args_context=" in recorded, "task arguments were recorded"
    haystacks = {"stdout": run.stdout, "stderr": run.stderr, "job events": recorded}
    everything = [admin_token, openbao.token] + emulator.issued_secrets
    occurrences = sum(text.count(secret) for secret in everything for text in haystacks.values())
    record("secret leaks", "ANSIBLE_DISPLAY_ARGS_TO_STDOUT, %s" % ("lazy banner" if lazy_banner else "banner"),
           occurrences=occurrences, secrets=len(everything), places=len(haystacks))
    for number, secret in enumerate(everything):
        leaks = [where for where, text in haystacks.items() if secret in text]
        assert leaks == [], "secret %d (0: the API token, 1: the Vault token) appeared in %s" % (number, leaks)
