# -*- coding: utf-8 -*-
"""Faults: what a real ansible-playbook run does when HCP Terraform (the emulator) misbehaves.

Each case creates a token through tfe.audit.tfe_audit_trail_token while the emulator injects one
fault. The outcome must be success after retries, or a clean failure whose message names the
cause; never a traceback; the total time bounded. Attempts come from the emulator's request log.
"""

import json
import socket
import time

import pytest

from conftest import Emulator
from plays import localhost_play
from reliability import Stopwatch, record, write_fake_resolver

TOKEN_PATH = "/api/v2/organizations/acme/authentication-token"

TASKS = """
    - name: Create the token while the server misbehaves
      tfe.audit.tfe_audit_trail_token:
        hostname: {hostname}
        organization: acme
{extra}
      register: outcome
      ignore_errors: true

    - name: Keep the outcome for the test (never the secret)
      ansible.builtin.copy:
        dest: "{{{{ playbook_dir }}}}/outcome.json"
        content: "{{{{ {{'failed': outcome.failed | default(false), 'msg': outcome.msg | default(''),
                      'changed': outcome.changed | default(false)}} | to_json }}}}"
        mode: "0600"
"""

# case, fault (add_fault kwargs), module options, success expected, words in the message, attempts
CASES = [
    ("429 with Retry-After", dict(method="POST", status=429, count=2, headers={"Retry-After": "1"}),
     {}, True, None, 3),
    ("429 with only X-RateLimit-Reset", dict(method="POST", status=429, count=2, headers={"X-RateLimit-Reset": "0.4"}),
     {}, True, None, 3),
    ("500 for the first 2 requests", dict(method="POST", status=500, count=2), {}, False, ["HTTP 500 ("], 1),
    ("502 for the first 2 requests", dict(method="POST", status=502, count=2), {}, True, None, 3),
    ("503 for the first 2 requests", dict(method="POST", status=503, count=2), {}, True, None, 3),
    ("504 for the first 2 requests", dict(method="POST", status=504, count=2), {}, True, None, 3),
    ("persistent 503", dict(method="POST", status=503, count=100), {"max_retries": 3}, False,
     ["HTTP 503", "after 3 retries"], 4),
    ("dropped connection", dict(method="POST", drop=True, count=1), {}, True, None, 2),
    ("answer slower than timeout", dict(method="GET", path="authentication-token", status=None, delay=3, count=10),
     {"timeout": 1, "max_retries": 1}, False, ["timed out", "timeout"], 2),
    ("HTML page from a proxy", dict(method="GET", path="authentication-token", status=200, count=1,
                                    headers={"Content-Type": "text/html"}, body="<html>Sign in</html>"),
     {}, False, ["not JSON", "text/html"], 1),
    ("answer larger than 64 MiB", dict(method="GET", path="authentication-token", status=200, count=1,
                                       body=" " * (64 << 20) + "{}"), {}, False, ["larger than 67108864 bytes"], 1),
    ("415 answer", dict(method="POST", status=415, count=1, body=json.dumps(
        {"errors": [{"status": "415", "title": "unsupported media type", "detail": "Content-Type is required"}]})),
     {}, False, ["HTTP 415", "Content-Type is required"], 1),
    ("422 answer", dict(method="POST", status=422, count=1, body=json.dumps(
        {"errors": [{"status": "422", "title": "invalid attribute", "detail": "Expired at is invalid"}]})),
     {}, False, ["HTTP 422", "Expired at is invalid"], 1),
]


def playbook_for(hostname, options):
    """The playbook that creates the token on ``hostname`` with the module ``options`` (a dict)."""
    extra = "\n".join("        %s: %s" % (key, json.dumps(value)) for key, value in options.items())
    return localhost_play("Create the token while the server misbehaves", TASKS.format(hostname=hostname, extra=extra))


def outcome_of(run):
    assert "Traceback" not in run.stdout + run.stderr, run
    assert run.rc == 0, run
    return json.loads((run.workdir / "outcome.json").read_text())


@pytest.mark.parametrize("case, fault, options, success, words, attempts", CASES, ids=[c[0] for c in CASES])
def test_fault(emulator, admin_token, run_playbook, case, fault, options, success, words, attempts):
    fault.setdefault("path", "authentication-token")
    emulator.add_fault(**fault)
    playbook = playbook_for(emulator.url, options)
    with Stopwatch() as watch:
        run = run_playbook(playbook, "-vvv", env={"TFE_TOKEN": admin_token})
    outcome = outcome_of(run)
    # A request the client gave up on is logged once the emulator's delay is over: let it finish.
    time.sleep(fault.get("delay", 0))
    faulted = [r for r in emulator.requests if r["path"] == TOKEN_PATH and r["method"] == fault["method"]]
    record("faults", case, outcome="success" if not outcome["failed"] else "clean failure",
           attempts=len(faulted), seconds=watch.seconds, message=outcome["msg"])

    assert outcome["failed"] is (not success), outcome
    assert len(faulted) == attempts
    for word in words or ():
        assert word in outcome["msg"]
    if success:
        assert emulator.audit_trail_token("acme") is not None
    assert watch.seconds < 60


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


NETWORK_CASES = [
    ("connection refused", lambda: "http://127.0.0.1:%d" % free_port(), {"max_retries": 1}, ["Cannot reach", "refused"]),
    ("unknown host", lambda: "https://tfe.invalid", {"max_retries": 1}, ["Cannot reach", "Name or service not known"]),
]


@pytest.mark.parametrize("case, hostname, options, words", NETWORK_CASES, ids=[c[0] for c in NETWORK_CASES])
def test_network_failure(admin_token, run_playbook, tmp_path, case, hostname, options, words):
    resolver = write_fake_resolver(tmp_path / "resolver")
    playbook = playbook_for(hostname(), options)
    with Stopwatch() as watch:
        run = run_playbook(playbook, "-vvv", env={"TFE_TOKEN": admin_token, "PYTHONPATH": str(resolver)})
    outcome = outcome_of(run)
    record("faults", case, outcome="clean failure" if outcome["failed"] else "success", attempts=None,
           seconds=watch.seconds, message=outcome["msg"])
    assert outcome["failed"]
    for word in words:
        assert word in outcome["msg"]
    assert watch.seconds < 60


@pytest.mark.parametrize("case, names, with_ca", [
    ("untrusted TLS certificate", ("127.0.0.1",), False),
    ("mismatched TLS certificate", ("other.example",), True),
])
def test_tls_failure(admin_token, run_playbook, case, names, with_ca):
    with Emulator(platform="hcp", tls=True, tls_names=names, api_tokens=(admin_token,)) as emu:
        emu.add_organization("acme", entitlement=True)
        options = {"max_retries": 1}
        if with_ca:
            options["ca_path"] = emu.ca_path
        playbook = playbook_for(emu.url, options)
        with Stopwatch() as watch:
            run = run_playbook(playbook, "-vvv", env={"TFE_TOKEN": admin_token})
        outcome = outcome_of(run)
        record("faults", case, outcome="clean failure" if outcome["failed"] else "success",
               attempts=len(emu.requests), seconds=watch.seconds, message=outcome["msg"])
        assert outcome["failed"]
        assert "TLS error" in outcome["msg"] and "ca_path" in outcome["msg"]
        assert [r for r in emu.requests if r["method"] == "POST"] == []
