# -*- coding: utf-8 -*-
"""The rulebook tfe.audit.watch_organization as shipped: it reports a destroyed workspace and an audit trail token
created by someone other than the automation (run_playbook tfe.audit.report_audit_event), and prints team changes;
nothing else."""

import base64
import json
from datetime import datetime, timedelta, timezone

import requests

from conftest import ROOT, assert_clean, trail, with_record_rule, write_token

INTERVAL = 2


def test_the_watch_rulebook_reacts_to_the_chosen_events_only(emulator_factory, rulebook, admin_token, tmp_path):
    emu = emulator_factory("newest")
    # The automation creates the audit trail token (accessor: the admin user) ...
    created = requests.post(emu.url + "/api/v2/organizations/acme/authentication-token", params={"token": "audit-trails"},
                            headers={"Authorization": "Bearer " + admin_token,
                                     "Content-Type": "application/vnd.api+json"}, timeout=10)
    assert created.status_code == 201
    # ... then someone else replaces it: the source reads the new one.
    audit_dir = tmp_path / "tfe-audit"
    audit_dir.mkdir(mode=0o700)
    write_token(audit_dir / "audit-trail-token", emu.regenerate_audit_trail_token("acme")["token"])
    emu.seed_events("acme", count=12, step_seconds=0.01)  # workspace destroy at 8; team changes at 3, 7, 11
    report = tmp_path / "alerts.ndjson"
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    shipped = (ROOT / "extensions" / "eda" / "rulebooks" / "watch_organization.yml").read_text()
    book = rulebook(with_record_rule(shipped), name="watch_organization", env={"TFE_HOSTNAME": emu.url},
                    variables={"tfe_audit_dir": str(audit_dir), "tfe_automation_accessor_id": emu.user_id(admin_token),
                               "tfe_audit_report_file": str(report), "tfe_audit_interval": INTERVAL,
                               "tfe_audit_since": since})
    book.start()
    book.wait_count(len(trail(emu)), 60)
    book.wait_for(lambda records: report.exists() and len(report.read_text().splitlines()) >= 2, 60, "two reports")
    book.wait_for(lambda records: book.text.count("PLAY RECAP") >= 2, 30, "both playbooks to end")
    book.stop()
    assert_clean(book.text)

    reported = [json.loads(line) for line in report.read_text().splitlines()]
    events = {event["tfe_audit"]["id"]: event["tfe_audit"] for event in book.events()}
    expected = [event for event in events.values()
                if (event["resource"]["type"], event["resource"]["action"]) == ("workspace", "destroy")
                or (event["resource"]["type"] == "authentication_token" and event["auth"]["description"] != "admin")]
    assert len(expected) == 2
    assert sorted(event["id"] for event in reported) == sorted(event["id"] for event in expected)
    assert all(event["resource"]["type"] != "authentication_token" or event["auth"]["accessor_id"] != emu.user_id(admin_token)
               for event in reported)
    teams = [event for event in events.values() if event["resource"]["type"] == "team"]
    assert len(teams) == 3
    for event in teams:
        assert "team %s at %s" % (event["resource"]["id"], event["timestamp"]) in book.text
    assert "failed=0" in book.text


def test_a_planted_template_in_an_audit_event_runs_nothing(emulator_factory, rulebook, admin_token, tmp_path):
    """Audit events come from the server: a field holding a template must not run when the shipped rulebook hands
    the event to its playbook (run_playbook passes it as extra vars)."""
    from tfe_emulator import User, _now  # pylint: disable=import-outside-toplevel

    emu = emulator_factory("newest")
    audit_dir = tmp_path / "tfe-audit"
    audit_dir.mkdir(mode=0o700)
    write_token(audit_dir / "audit-trail-token", emu.regenerate_audit_trail_token("acme")["token"])
    pwned = tmp_path / "pwned"
    plant = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % pwned
    with emu._lock:  # pylint: disable=protected-access
        emu._append_event(emu._orgs["acme"], User("user-planted", plant), "workspace",  # pylint: disable=protected-access
                          "ws-" + plant, "destroy", _now())
    report = tmp_path / "alerts.ndjson"
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    shipped = (ROOT / "extensions" / "eda" / "rulebooks" / "watch_organization.yml").read_text()
    book = rulebook(with_record_rule(shipped), name="watch_planted", env={"TFE_HOSTNAME": emu.url},
                    variables={"tfe_audit_dir": str(audit_dir), "tfe_automation_accessor_id": emu.user_id(admin_token),
                               "tfe_audit_report_file": str(report), "tfe_audit_interval": INTERVAL,
                               "tfe_audit_since": since})
    book.start()
    book.wait_count(len(trail(emu)), 60)
    book.wait_for(lambda records: report.exists() and len(report.read_text().splitlines()) >= 2, 60, "two reports")
    book.wait_for(lambda records: book.text.count("PLAY RECAP") >= 2, 30, "both playbooks to end")
    book.stop()
    assert not pwned.exists(), "a template planted in an audit event ran"
    reported = [json.loads(line) for line in report.read_text().splitlines()]
    planted = [event for event in reported if event["auth"]["accessor_id"] == "user-planted"]
    assert len(planted) == 1 and planted[0]["auth"]["description"] == plant.replace("{{", "{ {")
    original = [event["tfe_audit_original"] for event in book.events(name="tfe_audit_original")]
    assert len(original) == 1 and json.loads(base64.b64decode(original[0]))["auth"]["description"] == plant
