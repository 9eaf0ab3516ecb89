# -*- coding: utf-8 -*-
"""Hostile server and planted inputs: what a server that is not HCP Terraform, or a planted hostname or
environment variable, can make a real ansible-playbook run do.

The emulator (loopback) answers with hostile values through its fault injection. Hosts that are not the
emulator are reached through ``CaptureProxy``, an HTTP proxy on loopback (``http_proxy``) that answers like
HCP Terraform and records whether the API token reached it. Nothing leaves loopback.

Each case records a row into the ``hostile`` suite of docs/RELIABILITY.md:
  code_execution  a planted template ran on the controller (a ``pwned`` file appeared);
  truncated       a file the run must keep (the role's vault file) lost its content;
  token_off_host  the API token reached a host other than the https host it belongs to.
All three must be 0.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ansible.parsing.vault import VaultLib, VaultSecret

from reliability import record
from tfe_emulator import REAL_LOOKING_TOKEN, token_document

SUITE = "hostile"
PLANT = "{{ lookup('pipe', 'id > pwned-%d.txt') }}"
REAL_LOOKING = REAL_LOOKING_TOKEN


def pwned_files(root):
    return sorted(str(path) for path in Path(root).rglob("pwned*"))


# -- a server that plants values in its answers ---------------------------------------------------------
#
# (case, method the emulator answers with the planted document, module, document). The GET cases come
# first: the emulator hands out faults in order, and every module run reads (GET) before it creates.
ANSWERS = [
    ("read answers a template as the token id", "GET", "tfe.audit.tfe_audit_trail_token",
     token_document(id=PLANT % 0)),
    ("read answers a template as expired-at", "GET", "tfe.audit.tfe_audit_trail_token_info",
     token_document(**{"expired-at": "2030-01-01T00:00:00.000Z\n" + PLANT % 1})),
    ("create answers a template as the token", "POST", "tfe.audit.tfe_audit_trail_token",
     token_document(token=PLANT % 2)),
    ("create answers a template in a token's shape", "POST", "tfe.audit.tfe_audit_trail_token",
     token_document(token="ABCDEFGHIJKLMN.atlasv1.%s" % (PLANT % 3).replace(" ", ""))),
    ("create answers a token with a newline and a template", "POST", "tfe.audit.tfe_audit_trail_token",
     token_document(token=REAL_LOOKING + "\n" + PLANT % 4)),
    ("create answers an empty token", "POST", "tfe.audit.tfe_audit_trail_token", token_document(token="")),
    ("create answers a number as the token", "POST", "tfe.audit.tfe_audit_trail_token",
     token_document(token=123456789012345678)),
    ("create answers a list as the token", "POST", "tfe.audit.tfe_audit_trail_token",
     token_document(token=[REAL_LOOKING])),
    ("create answers a 1 MB token", "POST", "tfe.audit.tfe_audit_trail_token", token_document(token="A" * 1000000)),
]
KEPT = ("token", "id", "created_at", "expired_at", "last_used_at")


def answers_playbook(url):
    """Play 1 runs each case and stores what the module returned in a vars file, as a playbook keeping the
    token would; play 2 is the later play that reads the stored values back (and so renders them)."""
    tasks = []
    for index, (case, method, module, document) in enumerate(ANSWERS):
        tasks += [
            {"name": "case %d: %s" % (index, case), module: {"hostname": url, "organization": "acme"},
             "register": "case_%d" % index, "ignore_errors": True},
            {"name": "case %d: store what it returned" % index, "no_log": True, "when": "case_%d is succeeded" % index,
             "ansible.builtin.copy": {
                 "dest": "{{ playbook_dir }}/stored-%d.yml" % index, "mode": "0600",
                 "content": "{{ {'stored_%d': case_%d | dict2items | selectattr('key', 'in', %r) | items2dict} "
                            "| to_nice_yaml }}" % (index, index, list(KEPT))}},
        ]
    summary = "{{ {%s} | to_json }}" % ", ".join(
        "'%d': {'failed': case_%d.failed | default(false), 'msg': case_%d.msg | default('')}" % (i, i, i)
        for i in range(len(ANSWERS)))
    tasks.append({"name": "Keep the outcomes", "ansible.builtin.copy": {
        "dest": "{{ playbook_dir }}/outcomes.json", "content": summary, "mode": "0600"}})
    later = []
    for index in range(len(ANSWERS)):
        later += [
            {"name": "A later play reads stored-%d.yml" % index,
             "ansible.builtin.include_vars": "{{ playbook_dir }}/stored-%d.yml" % index,
             "when": "(playbook_dir ~ '/stored-%d.yml') is file" % index},
            {"name": "and uses what it holds", "ansible.builtin.debug": {"msg": "{{ stored_%d | to_json | length }}" % index},
             "when": "stored_%d is defined" % index},
        ]
    play = {"hosts": "localhost", "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}}
    return yaml.safe_dump([dict(play, name="Manage the token", tasks=tasks),
                           dict(play, name="A later play", tasks=later)], sort_keys=False)


def test_planted_answers_fail_cleanly_and_never_run(emulator, admin_token, run_playbook, tmp_path):
    for case, method, module, document in ANSWERS:
        emulator.add_fault(method=method, path="authentication-token", status=201 if method == "POST" else 200,
                           body=json.dumps(document), headers={"Content-Type": "application/vnd.api+json"})
    run = run_playbook(answers_playbook(emulator.url), env={"TFE_TOKEN": admin_token})
    assert run.rc == 0, run
    assert "Traceback" not in run.stdout + run.stderr
    outcomes = json.loads((run.workdir / "outcomes.json").read_text())
    pwned = pwned_files(tmp_path)
    failures = []
    for index, (case, method, module, document) in enumerate(ANSWERS):
        outcome = outcomes[str(index)]
        executed = any("pwned-%d.txt" % index in path for path in pwned)
        record(SUITE, case, outcome="clean failure" if outcome["failed"] else "accepted",
               code_execution=int(executed), truncated=0, token_off_host=0, message=outcome["msg"][:300])
        attributes = document["data"]["attributes"]
        planted = [value for value in [document["data"]["id"]] + list(attributes.values())
                   if isinstance(value, str) and ("lookup" in value or len(value) > 1000)]
        if not outcome["failed"] or executed or "refusing" not in outcome["msg"]:
            failures.append((case, outcome))
        for value in planted:
            if value in outcome["msg"] or value in run.stdout + run.stderr:
                failures.append((case, "the planted value was echoed"))
    assert failures == []
    assert pwned == []
    assert emulator.audit_trail_token("acme") is None


def test_planted_token_never_reaches_the_roles_vault_file(emulator, admin_token, run_playbook, tmp_path):
    """The role keeps the secret in an Ansible Vault vars file that later plays read as a variable."""
    password = tmp_path / "vault-pass"
    password.write_text("vault password\n")
    vault = VaultLib([("default", VaultSecret(b"vault password"))])
    vault_file = tmp_path / "work" / "group_vars" / "all" / "tfe_audit_trail_token.vault.yml"
    vault_file.parent.mkdir(parents=True)
    vault_file.write_bytes(vault.encrypt("other_var: kept\n"))
    before = vault_file.read_bytes()
    emulator.add_fault(method="POST", path="authentication-token", status=201,
                       body=json.dumps(token_document(token=PLANT % 9)),
                       headers={"Content-Type": "application/vnd.api+json"})
    role = yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": [{"role": "tfe.audit.audit_trail_token", "audit_trail_token_organization": "acme",
                   "audit_trail_token_hostname": emulator.url}]}])
    run = run_playbook(role, "--vault-password-file", str(password), env={"TFE_TOKEN": admin_token})
    later = yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{"name": "A later play uses the stored token",
                   "ansible.builtin.debug": {"msg": "{{ vault_tfe_audit_trail_token | default('') | length }}"}}]}])
    later_run = run_playbook(later, "--vault-password-file", str(password), name="later.yml")

    kept = yaml.safe_load(vault.decrypt(vault_file.read_bytes())) or {}
    executed = bool(pwned_files(tmp_path))
    message = [line.strip() for line in run.stdout.splitlines() if "refusing" in line]
    record(SUITE, "create answers a template as the token (role, vault file store)",
           outcome="clean failure" if run.rc != 0 else "accepted", code_execution=int(executed),
           truncated=int(kept.get("other_var") != "kept"), token_off_host=0, message=(message or [""])[0][:300])
    assert "Traceback" not in run.stdout + run.stderr
    assert run.rc != 0 and "refusing" in run.stdout, run
    assert "lookup" not in run.stdout + run.stderr
    assert later_run.rc == 0, later_run
    assert not executed
    assert vault_file.read_bytes() == before


# -- answers Python cannot decode whole, and metadata it cannot use ------------------------------------------

DEEP = "[" * 20000 + "]" * 20000  # deeper than the JSON decoder of any Python from 3.11 to 3.13 goes
PAGE = '{"data": [{"id": "ev-1", "timestamp": "2030-01-01T00:00:00.000Z"}, {"id": "ev-2", "deep": %s}], ' \
       '"pagination": {"current_page": 1, "prev_page": null, "next_page": null, "total_pages": 1, "total_count": 2}}' \
    % DEEP


def outcome_playbook(tasks):
    keep = {"name": "Keep the outcomes", "ansible.builtin.copy": {
        "dest": "{{ playbook_dir }}/outcomes.json", "mode": "0600", "content": "{{ {%s} | to_json }}" % ", ".join(
            "'%s': {'failed': %s.failed | default(false), 'msg': %s.msg | default(''), "
            "'expired_at': %s.expired_at | default('unset'), 'token_kept': %s.token | default('') == %r}"
            % (task["register"], task["register"], task["register"], task["register"], task["register"],
               REAL_LOOKING) for task in tasks)}}
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                            "tasks": [dict(task, ignore_errors=True) for task in tasks] + [keep]}], sort_keys=False)


def test_answers_nested_too_deeply_never_end_in_a_traceback(emulator, admin_token, run_playbook):
    for method, path, body in (("GET", "authentication-token", '{"data": %s}' % DEEP),
                               ("POST", "authentication-token", '{"data": {"attributes": {"token": %s}}}' % DEEP),
                               ("GET", "audit-trail", PAGE)):
        emulator.add_fault(method=method, path=path, status=201 if method == "POST" else 200, body=body,
                           headers={"Content-Type": "application/json"})
    trail_token = emulator.create_organization_token("acme")["token"]
    tasks = [
        {"name": "read", "tfe.audit.tfe_audit_trail_token_info": {"hostname": emulator.url, "organization": "acme"},
         "register": "read"},
        {"name": "create", "tfe.audit.tfe_audit_trail_token": {"hostname": emulator.url, "organization": "acme"},
         "register": "create"},
        {"name": "events", "tfe.audit.tfe_audit_trail_events": {"hostname": emulator.url, "token": trail_token},
         "register": "events"},
        {"name": "save the events", "register": "saved", "ansible.builtin.copy": {
            "dest": "{{ playbook_dir }}/events.json", "mode": "0600",
            "content": "{{ events.events | default([]) | to_json }}"}},
    ]
    run = run_playbook(outcome_playbook(tasks), env={"TFE_TOKEN": admin_token})
    assert run.rc == 0, run
    assert "Traceback" not in run.stdout + run.stderr and "recursion" not in (run.stdout + run.stderr).lower()
    outcomes = json.loads((run.workdir / "outcomes.json").read_text())
    for case, outcome in sorted(outcomes.items()):
        record(SUITE, "%s answer nested 20000 deep" % case, outcome="clean failure" if outcome["failed"] else "accepted",
               code_execution=0, truncated=0, token_off_host=0, message=outcome["msg"][:300])
    for case in ("read", "create"):
        assert outcomes[case]["failed"] and "nested too deeply" in outcomes[case]["msg"], outcomes[case]
        assert emulator.url in outcomes[case]["msg"]
    # The page's other event is read, the deep one delivered as it came (the feed marks it unreadable).
    assert not outcomes["events"]["failed"], outcomes["events"]
    events = json.loads((run.workdir / "events.json").read_text())
    assert [event.get("id") for event in events if "id" in event] == ["ev-1"]
    unreadable = [event["tfe_audit_unreadable"] for event in events if "tfe_audit_unreadable" in event]
    assert len(unreadable) == 1 and "nested" in unreadable[0]["reason"] and len(events) == 2


def test_a_created_token_is_kept_when_its_expiry_is_beyond_year_9999(emulator, admin_token, run_playbook):
    """The old token stopped working when the server created this one: failing would lose both."""
    emulator.add_fault(method="POST", path="authentication-token", status=201,
                       body=json.dumps(token_document(**{"expired-at": "9999-12-31T23:30:00.000-01:00"})),
                       headers={"Content-Type": "application/vnd.api+json"})
    tasks = [{"name": "create", "tfe.audit.tfe_audit_trail_token": {"hostname": emulator.url, "organization": "acme"},
              "register": "create"}]
    run = run_playbook(outcome_playbook(tasks), env={"TFE_TOKEN": admin_token})
    assert run.rc == 0 and "Traceback" not in run.stdout + run.stderr, run
    outcome = json.loads((run.workdir / "outcomes.json").read_text())["create"]
    assert not outcome["failed"] and outcome["token_kept"] and outcome["expired_at"] is None, outcome
    assert REAL_LOOKING not in run.stdout + run.stderr


# -- hosts that are not the https host: a capture proxy stands in for all of them -----------------------

class CaptureProxy:
    """An HTTP proxy on loopback that plays HCP Terraform for whatever host it is asked for.

    It answers ping like HCP Terraform (so a client that would leak goes on to send the token) and
    everything else with 404, and records each request: the host asked for and whether it carried
    the API token.
    """

    def __init__(self, token):
        self.token, self.seen = token, []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                proxy.seen.append({"method": self.command, "url": self.path, "host": self.headers.get("Host"),
                                   "token": proxy.token in (self.headers.get("Authorization") or "")})
                if self.path.endswith("/api/v2/ping"):
                    self.send_response(204)
                    self.send_header("TFP-AppName", "HCP Terraform")
                    self.end_headers()
                    return
                body = json.dumps({"errors": [{"status": "404", "title": "not found"}]}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/vnd.api+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def environment(self):
        return {"http_proxy": self.url, "HTTP_PROXY": self.url, "no_proxy": "", "NO_PROXY": ""}


# (case, module options, environment besides the proxy's, words the failure must hold)
OFF_HOST = [
    ("http:// to a host that is not loopback", {"hostname": "http://tfe.example.com"},
     {"TFE_TOKEN": True}, ["hostname", "allow_insecure_http: true", "https://"]),
    ("http:// opt-in with only Terraform's credentials for the host",
     {"hostname": "http://tfe.example.com", "allow_insecure_http": True},
     {"TF_TOKEN_tfe_example_com": True, "credentials": "tfe.example.com"}, ["TFE_TOKEN", "never used for an http://"]),
    ("backslash in hostname (the authority ends at the backslash)",
     {"hostname": "http://evil.example\\.app.terraform.io"}, {"TFE_TOKEN": True}, ["hostname", "'\\'"]),
    ("underscore hostname picks up app.terraform.io's TF_TOKEN",
     {"hostname": "http://app_terraform.io"}, {"TF_TOKEN_app_terraform_io": True}, ["hostname", "no '_'"]),
    ("loopback http:// carried by a proxy from the environment", {"hostname": "http://127.0.0.1:9"},
     {"TFE_TOKEN": True}, ["hostname", "allow_insecure_http: true", "no_proxy"]),
]


@pytest.mark.parametrize("case, options, environment, words", OFF_HOST, ids=[c[0] for c in OFF_HOST])
def test_the_token_never_leaves_for_another_host(admin_token, run_playbook, tmp_path, case, options, environment,
                                                 words):
    env = {}
    for name, value in environment.items():
        if name == "credentials":
            path = tmp_path / "home" / ".terraform.d" / "credentials.tfrc.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"credentials": {value: {"token": admin_token}}}))
        else:
            env[name] = admin_token
    task = {"name": case, "tfe.audit.tfe_audit_trail_token": dict(options, organization="acme", max_retries=0),
            "register": "outcome", "ignore_errors": True}
    keep = {"name": "Keep the outcome", "ansible.builtin.copy": {
        "dest": "{{ playbook_dir }}/outcome.json", "mode": "0600",
        "content": "{{ {'failed': outcome.failed | default(false), 'msg': outcome.msg | default('')} | to_json }}"}}
    playbook = yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                                "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                                "tasks": [task, keep]}], sort_keys=False)
    with CaptureProxy(admin_token) as proxy:
        run = run_playbook(playbook, env=dict(env, **proxy.environment()))
    outcome = json.loads((run.workdir / "outcome.json").read_text())
    off_host = [request for request in proxy.seen if request["token"]]
    record(SUITE, case, outcome="clean failure" if outcome["failed"] else "accepted", code_execution=0,
           truncated=0, token_off_host=int(bool(off_host)), message=outcome["msg"][:300])
    assert "Traceback" not in run.stdout + run.stderr
    assert off_host == []
    assert proxy.seen == [], "a request left before the input was refused"
    assert outcome["failed"]
    for word in words:
        assert word in outcome["msg"], (word, outcome["msg"])
    assert admin_token not in run.stdout + run.stderr


@pytest.mark.parametrize("opt_in", [False, True])
def test_the_role_hands_allow_insecure_http_to_the_module(admin_token, run_playbook, tmp_path, opt_in):
    """Without the role variable an http:// host that is not loopback is refused before any request; with it,
    the module goes there (the capture proxy stands in for the host and answers 404 to the token read)."""
    password = tmp_path / "vault-pass"
    password.write_text("a vault password\n")
    role_vars = {"audit_trail_token_organization": "acme", "audit_trail_token_hostname": "http://tfe.example.com"}
    if opt_in:
        role_vars["audit_trail_token_allow_insecure_http"] = True
    play = {"hosts": "localhost", "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "roles": [dict(role_vars, role="tfe.audit.audit_trail_token")]}
    with CaptureProxy(admin_token) as proxy:
        run = run_playbook(yaml.safe_dump([play], sort_keys=False), "--vault-password-file", str(password),
                           env=dict(proxy.environment(), TFE_TOKEN=admin_token))
    assert run.rc != 0 and "Traceback" not in run.stdout + run.stderr  # the proxy has no token to give
    if opt_in:
        assert [request["host"] for request in proxy.seen][:1] == ["tfe.example.com"]
    else:
        assert proxy.seen == [] and "allow_insecure_http" in run.stdout
    assert admin_token not in run.stdout + run.stderr
