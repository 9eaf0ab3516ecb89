# -*- coding: utf-8 -*-
"""The generated secret and the admin API token never reach output, logs or files.

The playbook's tasks do not set ``no_log``: the collection must protect users who forget it.
Each run generates new secrets; afterwards every secret the emulator ever issued in the run is
searched for in stdout, stderr, the log file and every file under the run's directories.
"""

import hashlib
from pathlib import Path

import pytest

from conftest import files_under
from reliability import record

HERE = Path(__file__).resolve().parent

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  module_defaults:
    group/tfe.audit.tfe:
      hostname: {url}
  tasks:
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
        dest: "{{{{ playbook_dir }}}}/token.sha256"
        content: "{{{{ created.token | hash('sha256') }}}}"
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

    - name: Final regenerate, kept live for the search
      tfe.audit.tfe_audit_trail_token:
        organization: acme
        force_regenerate: true
"""

CASES = [
    ("-v", False, "default"),
    ("-vv", True, "default"),
    ("-vvv", False, "default"),
    ("-vvvv", True, "default"),
    ("-vvvv", False, "default"),
    ("-vvvv", True, "yaml"),
    ("-vvvv", True, "json"),
    ("-v", False, "json"),
]


@pytest.mark.parametrize("verbosity, diff, callback", CASES)
def test_no_secret_in_any_output(emulator, admin_token, run_playbook, tmp_path, verbosity, diff, callback):
    issued = []
    original = emulator._new_token

    def recording_new_token(*args, **kwargs):
        token = original(*args, **kwargs)
        issued.append(token.secret)
        return token

    emulator._new_token = recording_new_token
    log_path = tmp_path / "ansible.log"
    env = {"ANSIBLE_LOG_PATH": str(log_path), "TFE_TOKEN": admin_token}
    if callback == "yaml":
        env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "yaml"
    if callback == "json":
        env.update(ANSIBLE_STDOUT_CALLBACK="json_dump", ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"))
    args = [verbosity] + (["--diff"] if diff else [])

    run = run_playbook(PLAYBOOK.format(url=emulator.url), *args, env=env)

    assert run.rc == 0, run
    assert len(issued) == 4, "create, regenerate, rotate and the final regenerate each issue a secret"
    live = emulator.audit_trail_token("acme")["token"]
    assert live == issued[-1]
    assert (run.workdir / "token.sha256").read_text() == hashlib.sha256(issued[0].encode()).hexdigest()
    assert log_path.stat().st_size > 0

    haystacks = {"stdout": run.stdout, "stderr": run.stderr}
    for path in files_under(tmp_path):
        haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    occurrences = sum(text.count(secret) for secret in issued + [admin_token] for text in haystacks.values())
    record("secret leaks", "module paths %s%s, %s callback" % (verbosity, " --diff" if diff else "", callback),
           occurrences=occurrences, secrets=len(issued) + 1, places=len(haystacks))
    for secret in issued + [admin_token]:
        leaks = [where for where, text in haystacks.items() if secret in text]
        assert leaks == [], "a secret appeared in %s" % leaks
    # The tasks that generated a secret were censored, not skipped.
    assert "hidden due to" in run.stdout or callback == "json"
