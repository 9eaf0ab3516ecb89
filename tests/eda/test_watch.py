# -*- coding: utf-8 -*-
"""The rulebook tfe.audit.watch_organization as shipped: it reports a destroyed workspace and an audit trail token
created by someone other than the automation (run_playbook tfe.audit.report_audit_event), and prints team changes;
nothing else: not a token read (``show``), which every run of the token module or the info module records.

(A template planted in an event runs nothing through it, or any playbook: test_templates.py.)"""

import json
from datetime import datetime, timedelta, timezone

import requests

from conftest import ROOT, assert_clean, plant, trail, with_record_rule, write_token
from template_forms import now_text

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
    # Someone else reads the token (HCP Terraform's documented "show" action of authentication_token).
    token_id = emu.audit_trail_token("acme")["id"]
    plant(emu, {"id": "show-1", "version": "0", "type": "Resource", "timestamp": now_text(),
                "auth": {"accessor_id": "user-reader", "description": "reader", "type": "Client",
                         "impersonator_id": None, "organization_id": "org-acme"},
                "request": {"id": "request-show-1"},
                "resource": {"id": token_id, "type": "authentication_token", "action": "show", "meta": None}})
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
    chosen = {("workspace", "destroy"), ("authentication_token", "create")}
    expected = [event for event in events.values()
                if (event["resource"]["type"], event["resource"]["action"]) in chosen
                and (event["resource"]["type"] == "workspace" or event["auth"]["description"] != "admin")]
    assert len(expected) == 2
    assert "show-1" in events and "show-1" not in [event["id"] for event in reported]
    assert sorted(event["id"] for event in reported) == sorted(event["id"] for event in expected)
    assert all(event["resource"]["type"] != "authentication_token" or event["auth"]["accessor_id"] != emu.user_id(admin_token)
               for event in reported)
    teams = [event for event in events.values() if event["resource"]["type"] == "team"]
    assert len(teams) == 3
    for event in teams:
        assert "team %s at %s" % (event["resource"]["id"], event["timestamp"]) in book.text
    assert "failed=0" in book.text
