# -*- coding: utf-8 -*-
"""Bad input fails before any API call, with a message naming the option.

One real ansible-playbook run holds every case as a task (ignore_errors); the emulator's request
log must stay empty (not even a platform check), and each failure message must name its option.
"""

import json

import yaml

from reliability import record

TOKEN_MODULE = "tfe.audit.tfe_audit_trail_token"
INFO_MODULE = "tfe.audit.tfe_audit_trail_token_info"
# For hostnames that an older release did not refuse: a proxy on a closed loopback port, so that such a
# release fails at loopback instead of resolving or reaching another host.
NOWHERE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}
# A proxy that would carry the emulator's loopback http:// URL, and the API token with it, in clear text.
CARRIED = {"HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}

# (module, arguments, option the message must name, extra environment)
CASES = [
    (TOKEN_MODULE, {"expired_at": "2030-01-01"}, "expired_at", None),
    (TOKEN_MODULE, {"expired_at": "2030-01-01T00:00:00"}, "expired_at", None),
    (TOKEN_MODULE, {"expired_at": "2001-01-01T00:00:00Z"}, "expired_at", None),
    (TOKEN_MODULE, {"expired_at": "next tuesday"}, "expired_at", None),
    (TOKEN_MODULE, {"expired_at": "10000-01-01T00:00:00Z"}, "expired_at", None),
    (TOKEN_MODULE, {"expired_at": "2030-02-30T00:00:00Z"}, "expired_at", None),
    (TOKEN_MODULE, {"expired_at": "2030-01-01T00:00:00+25:00"}, "expired_at", None),
    (TOKEN_MODULE, {"lifetime": "0d"}, "lifetime", None),
    (TOKEN_MODULE, {"lifetime": "-1d"}, "lifetime", None),
    (TOKEN_MODULE, {"lifetime": "abc"}, "lifetime", None),
    (TOKEN_MODULE, {"lifetime": "1000000w"}, "lifetime", None),
    (TOKEN_MODULE, {"rotate_before": "0d"}, "rotate_before", None),
    (TOKEN_MODULE, {"rotate_before": "-5h"}, "rotate_before", None),
    (TOKEN_MODULE, {"rotate_before": "30 days"}, "rotate_before", None),
    (TOKEN_MODULE, {"organization": ""}, "organization", None),
    (TOKEN_MODULE, {"organization": "acme/evil"}, "organization", None),
    (TOKEN_MODULE, {"organization": "acme corp"}, "organization", None),
    (TOKEN_MODULE, {"organization": "..", "state": "absent"}, "organization", None),
    (TOKEN_MODULE, {"organization": "."}, "organization", None),
    (TOKEN_MODULE, {"organization": "acme.corp"}, "organization", None),
    (TOKEN_MODULE, {"organization": "%2e%2e"}, "organization", None),
    (TOKEN_MODULE, {"organization": "a" * 256}, "organization", None),
    (INFO_MODULE, {"organization": ".."}, "organization", None),
    (TOKEN_MODULE, {"hostname": "https://app.terraform.io/api/v2"}, "hostname", None),
    (TOKEN_MODULE, {"hostname": "ftp://app.terraform.io"}, "hostname", None),
    (TOKEN_MODULE, {"hostname": "https://"}, "hostname", None),
    (TOKEN_MODULE, {"hostname": "user@app.terraform.io"}, "hostname", None),
    (TOKEN_MODULE, {"hostname": "app.terraform.io:99999"}, "hostname", None),
    (TOKEN_MODULE, {"hostname": "http://evil.example\\.app.terraform.io"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "https://evil.example%2f.app.terraform.io"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "app_terraform.io"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "app.terraform.io\u0000.evil.example"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "-tfe.example.com"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "0x7f.0.0.1"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "fe80::1:8443"}, "hostname", NOWHERE),
    (TOKEN_MODULE, {"hostname": "http://tfe.example.com"}, "allow_insecure_http", NOWHERE),
    (INFO_MODULE, {"hostname": "http://10.1.2.3:8080"}, "allow_insecure_http", NOWHERE),
    (TOKEN_MODULE, {"timeout": 0}, "timeout", None),
    (TOKEN_MODULE, {"timeout": -5}, "timeout", None),
    (TOKEN_MODULE, {"max_retries": -1}, "max_retries", None),
    (TOKEN_MODULE, {"expired_at": "2031-01-01T00:00:00Z", "lifetime": "90d"}, "expired_at", None),
    (TOKEN_MODULE, {"ca_path": "/nonexistent/ca.pem"}, "ca_path", None),
    (TOKEN_MODULE, {"state": "gone"}, "state", None),
    (TOKEN_MODULE, {"force_regenerate": "maybe"}, "force_regenerate", None),
    (TOKEN_MODULE, {}, "TFE_SSL_SKIP_VERIFY", {"TFE_SSL_SKIP_VERIFY": "perhaps"}),
    (TOKEN_MODULE, {"token": "not-only-the-token\nX-Injected: 1"}, "token option", None),
    (INFO_MODULE, {"token": "not only the token"}, "token option", None),
    (TOKEN_MODULE, {}, "allow_insecure_http", CARRIED),
    (INFO_MODULE, {}, "no_proxy", CARRIED),
    (INFO_MODULE, {"organization": "a b"}, "organization", None),
    (INFO_MODULE, {"hostname": "tfe.example.com/path"}, "hostname", None),
    (INFO_MODULE, {"timeout": 0}, "timeout", None),
]


def playbook(url):
    tasks = []
    for index, (module, args, option, environment) in enumerate(CASES):
        arguments = {"hostname": url, "organization": "acme"}
        arguments.update(args)
        task = {"name": "case %d: %s" % (index, option), module: arguments,
                "register": "case_%d" % index, "ignore_errors": True}
        if environment:
            task["environment"] = environment
        tasks.append(task)
    summary = "{{ {%s} | to_json }}" % ", ".join(
        "'%d': {'failed': case_%d.failed | default(false), 'msg': case_%d.msg | default('')}" % (i, i, i)
        for i in range(len(CASES)))
    tasks.append({"name": "Keep the outcomes", "ansible.builtin.copy": {
        "dest": "{{ playbook_dir }}/outcomes.json", "content": summary, "mode": "0600"}})
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                            "tasks": tasks}], sort_keys=False)


def test_bad_input_fails_before_any_request_naming_the_option(emulator, admin_token, run_playbook):
    run = run_playbook(playbook(emulator.url), env={"TFE_TOKEN": admin_token})
    assert run.rc == 0, run
    assert "Traceback" not in run.stdout + run.stderr and "not-only-the-token" not in run.stdout + run.stderr
    outcomes = json.loads((run.workdir / "outcomes.json").read_text())

    for index, (module, args, option, environment) in enumerate(CASES):
        outcome = outcomes[str(index)]
        value = json.dumps(args) if args else json.dumps(environment)
        record("bad input", "%s %s" % (module.split(".")[-1], value), option=option,
               failed=outcome["failed"], message=outcome["msg"])
        assert outcome["failed"], (module, args)
        assert option in outcome["msg"], (module, args, outcome["msg"])
        assert "not-only-the-token" not in outcome["msg"] and "not only the token" not in outcome["msg"]
    assert len(CASES) >= 30
    assert emulator.requests == [], "bad input reached the API"


# (role variables, words the message must hold) - the role checks its variables against
# meta/argument_specs.yml, its store step checks the vault file, all before any API call.
ROLE_CASES = [
    ({"audit_trail_token_vault_file": "{{ playbook_dir }}/a-directory"}, ["vault_file", "a-directory"]),
    ({"audit_trail_token_vault_var": "not a name"}, ["vault_var"]),
    ({"audit_trail_token_store": "keepass"}, ["audit_trail_token_store"]),
    ({"audit_trail_token_state": "gone"}, ["audit_trail_token_state"]),
    ({"audit_trail_token_lifetime": "0d"}, ["lifetime"]),
    ({"audit_trail_token_organization": "a/b"}, ["organization"]),
    ({"audit_trail_token_vault_password_file": "{{ playbook_dir }}/wrong-pass"}, ["wrong vault password", "decrypt"]),
]


def role_playbook(url):
    tasks = [{"name": "Directory where a vault file is expected",
              "ansible.builtin.file": {"path": "{{ playbook_dir }}/a-directory", "state": "directory", "mode": "0700"}}]
    for index, (role_vars, words) in enumerate(ROLE_CASES):
        variables = {"audit_trail_token_organization": "acme", "audit_trail_token_hostname": url,
                     "audit_trail_token_vault_file": "{{ playbook_dir }}/existing.vault.yml"}
        variables.update(role_vars)
        tasks.append({"name": "role case %d: %s" % (index, words[0]), "block": [
            {"name": "Run the role", "ansible.builtin.include_role": {"name": "tfe.audit.audit_trail_token"},
             "vars": variables}],
            "rescue": [{"name": "Keep the failure", "ansible.builtin.set_fact": {
                "role_case_%d" % index: "{{ ansible_failed_result.msg | default('') }}"}}]})
    summary = "{{ {%s} | to_json }}" % ", ".join(
        "'%d': role_case_%d | default('NOT FAILED')" % (i, i) for i in range(len(ROLE_CASES)))
    tasks.append({"name": "Keep the outcomes", "ansible.builtin.copy": {
        "dest": "{{ playbook_dir }}/role-outcomes.json", "content": summary, "mode": "0600"}})
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                            "tasks": tasks}], sort_keys=False)


def test_role_bad_input_fails_before_any_mutation(emulator, admin_token, run_playbook, tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret  # pylint: disable=import-outside-toplevel

    workdir = tmp_path / "work"
    workdir.mkdir()
    (tmp_path / "vault-pass").write_text("right password")
    (workdir / "wrong-pass").write_text("wrong password")
    vault = VaultLib([("default", VaultSecret(b"right password"))])
    existing = vault.encrypt("other_var: kept\n")
    (workdir / "existing.vault.yml").write_bytes(existing)

    run = run_playbook(role_playbook(emulator.url), "--vault-password-file", str(tmp_path / "vault-pass"),
                       env={"TFE_TOKEN": admin_token})
    assert run.rc == 0, run
    assert "Traceback" not in run.stdout + run.stderr
    outcomes = json.loads((run.workdir / "role-outcomes.json").read_text())
    for index, (role_vars, words) in enumerate(ROLE_CASES):
        message = outcomes[str(index)]
        record("bad input", "role %s" % json.dumps(role_vars), option=words[0], failed=message != "NOT FAILED",
               message=message)
        assert message != "NOT FAILED", role_vars
        for word in words:
            assert word in message, (role_vars, message)
    assert [r for r in emulator.requests if r["method"] in ("POST", "DELETE")] == []
    assert (workdir / "existing.vault.yml").read_bytes() == existing
