# -*- coding: utf-8 -*-
"""The rulebook tfe.audit.audit_trail_token as shipped: a token regenerated outside Ansible gives exactly one
tfe_audit_token_stale event, the rule runs the playbook tfe.audit.rotate_audit_trail_token (the role, then the token
file), and the feed goes on with no loss. At -vv, no token ever appears in ansible-rulebook's output."""

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import BIN, ORDERS, ROOT, assert_clean, key, trail, with_record_rule
from reliability import record

INTERVAL = 2


def control(book, name):
    return [event[name] for dummy, event in book.records() if name in event]


@pytest.fixture
def vault_password_file(tmp_path):
    path = tmp_path / "vault-pass.txt"
    path.write_text("eda test vault password\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("order", ORDERS)
def test_a_regenerated_token_is_rotated_by_the_shipped_rulebook_and_the_feed_goes_on(
        order, emulator_factory, rulebook, admin_token, collections_path, vault_password_file, tmp_path):
    emu = emulator_factory(order)
    audit_dir = tmp_path / "tfe-audit"
    env = {"TFE_TOKEN": admin_token, "TFE_HOSTNAME": emu.url, "ANSIBLE_VAULT_PASSWORD_FILE": str(vault_password_file)}

    # The first token and token file, as the rulebook's header says: the playbook run by hand.
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "tfe.audit.rotate_audit_trail_token", "-e", "tfe_organization=acme",
         "-e", "tfe_audit_dir=%s" % audit_dir],
        env=dict({k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "TFE_"))},
                 PATH="%s:%s" % (BIN, os.environ["PATH"]), ANSIBLE_COLLECTIONS_PATH=str(collections_path),
                 HOME=str(home), ANSIBLE_NOCOLOR="1", **env),
        capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    token_file = audit_dir / "audit-trail-token"
    assert token_file.read_text().strip() == emu.audit_trail_token("acme")["token"]
    assert os.stat(token_file).st_mode & 0o777 == 0o600

    emu.seed_events("acme", count=10, step_seconds=0.01)
    # A server (or a proxy) that quotes the request's Authorization header back in an error: the rulebook prints
    # the error event, with the token masked.
    quoted = "rejected header Authorization: Bearer %s" % token_file.read_text().strip()
    emu.add_fault(method="GET", path="audit-trail", status=500, body=json.dumps({"errors": [{"title": quoted}]}))
    shipped = (ROOT / "extensions" / "eda" / "rulebooks" / "audit_trail_token.yml").read_text()
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    book = rulebook(with_record_rule(shipped), verbosity=2, env=env, name="audit_trail_token",
                    variables={"tfe_organization": "acme", "tfe_audit_dir": str(audit_dir),
                               "tfe_audit_interval": INTERVAL, "tfe_audit_since": since})
    book.start()
    book.wait_count(len(trail(emu)), 60)

    # Someone regenerates the token outside Ansible; events keep happening while the source's token is stale.
    emu.regenerate_audit_trail_token("acme")
    emu.seed_events("acme", count=3, step_seconds=0.001)
    book.wait_for(lambda records: control(book, "tfe_audit_token_stale"), 30, "tfe_audit_token_stale")
    # The rule's playbook replaces the token (one more authentication_token event) and rewrites token_file.
    book.wait_for(lambda records: len(book.events()) == len(trail(emu)) and len(trail(emu)) >= 16, 120,
                  "the events after the rotation")
    time.sleep(2 * INTERVAL + 0.5)  # a second stale event or a repeat would have arrived by now

    stale = control(book, "tfe_audit_token_stale")
    assert len(stale) == 1
    assert stale[0]["token_source"] == "token_file" and stale[0]["token_file"] == str(token_file)
    assert [key(event) for event in book.events()] == trail(emu), "an event was lost or repeated"
    live = emu.audit_trail_token("acme")["token"]
    assert token_file.read_text().strip() == live
    creators = [event["tfe_audit"]["auth"]["description"] for event in book.events()
                if event["tfe_audit"]["resource"]["type"] == "authentication_token"
                and event["tfe_audit"]["resource"]["action"] == "create"]  # not the module's reads (show)
    assert creators[-2:] == ["someone-else", "admin"], creators  # replaced outside, then by the rule's playbook
    text = book.text
    assert "PLAY RECAP" in text and "failed=0" in text
    assert "rejected header Authorization: Bearer ********" in text
    book.stop()
    assert_clean(book.text)
    secrets = emu.issued_secrets + [admin_token]
    record("secret leaks", "event source at -vv, a token regenerated and rotated by the shipped rulebook (%s first)"
           % order, secrets=len(secrets), places="ansible-rulebook output", occurrences=sum(text.count(s) for s in secrets))
    for secret in secrets:
        assert secret not in text, "a token appeared in ansible-rulebook's output at -vv"
    assert not any(secret in (tmp_path / name).read_text() for secret in emu.issued_secrets
                   for name in ("tfe-audit/audit-trail-source.json",)), "a token in the state file"
