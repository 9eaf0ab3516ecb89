# -*- coding: utf-8 -*-
"""A template planted by the server runs nothing where the rulebook runs, on the oldest, the middle and the newest
supported ansible-core (2.18, 2.19, 2.21).

The shipped rulebook tfe.audit.watch_organization, plus three rules of a user's: run_playbook of a playbook that reads
the event every way a playbook can (``debug: var=ansible_eda.event``, a ``debug: msg=`` that uses it, ``set_fact``,
``template``), run_module of ``ansible.builtin.debug`` with the event's fields in its arguments, and the same
playbook on a ``tfe_audit_source_error`` whose error text the server wrote. ansible-runner starts the
``ansible-playbook`` it finds first on PATH: the venv of the ansible-core under test is put there (2.19 is
ansible-rulebook's own, .venv-eda; 2.18 and 2.21 the support matrix's venvs, which make eda makes
(TEMPLATE_CORES) before the tests run).

The audit event holds every form of template (tests/shared/template_forms.py) in values, keys and nested lists;
each form would create its own marker file. None may appear.
"""

import base64
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from conftest import BIN, ROOT, assert_clean, plant, with_record_rule, write_token
from reliability import record
from template_forms import planted_event, template_forms

INTERVAL = 1
PROBE = """
- name: Read the event every way a playbook can
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    control_variable: CONTROL_VARIABLE
  tasks:
    - name: The positive control, the playbook's own text (trusted), which renders
      ansible.builtin.debug:
        msg: "{{ control_variable }}"
    - name: The whole event
      ansible.builtin.debug:
        var: ansible_eda.event
    - name: A message built from it
      ansible.builtin.debug:
        msg: "PROBE {{ ansible_version.full }} {{ ansible_eda.rule }}: {{ ansible_eda.event | to_json }}"
    - name: A fact from it
      ansible.builtin.set_fact:
        probe_fact: "{{ ansible_eda.event }}"
    - name: The fact
      ansible.builtin.debug:
        var: probe_fact
    - name: A file from a template that reads it
      ansible.builtin.template:
        src: probe.j2
        dest: "{{ probe_dir }}/{{ ansible_eda.rule | replace(' ', '-') }}-{{ ansible_version.full }}.txt"
        mode: "0600"
"""
PROBE_TEMPLATE = "{{ ansible_eda.event }}\n{{ ansible_eda.event | to_nice_json }}\n"


def user_rules(probe, probe_dir):
    run_probe = {"run_playbook": {"name": str(probe), "extra_vars": {"probe_dir": str(probe_dir)}}}
    planted = 'event.tfe_audit.auth.accessor_id == "user-planted"'
    return [
        {"name": "probe the planted event", "condition": planted, "action": run_probe},
        # ansible-rulebook writes the field into the module's arguments: Ansible reads them as a template.
        {"name": "a module with a planted field", "condition": planted, "action": {"run_module": {
            "name": "ansible.builtin.debug", "module_args": {"msg": "{{ event.tfe_audit.auth.description }}"}}}},
        {"name": "probe the source error", "condition": "event.tfe_audit_source_error is defined", "action": run_probe},
    ]


@pytest.mark.parametrize("core", ["2.18", "2.19", "2.21"])
def test_a_template_planted_by_the_server_runs_nothing_in_any_playbook(core, core_bin, emulator_factory, rulebook,
                                                                       tmp_path):
    path = core_bin(core)
    emu = emulator_factory("newest")
    markers = tmp_path / "markers"
    markers.mkdir()
    forms = template_forms(lambda name: "touch %s/%s" % (markers, name))
    plant(emu, planted_event(forms))
    # The first poll is answered 500 with error texts of the server's choosing.
    titles = [{"title": forms["variable"]}, {"title": forms["header_variable"]}, {"detail": forms["block"]}]
    emu.add_fault(method="GET", path="audit-trail", status=500, body=json.dumps({"errors": titles}))

    audit_dir, probe_dir = tmp_path / "tfe-audit", tmp_path / "probe"
    audit_dir.mkdir(mode=0o700)
    probe_dir.mkdir()
    write_token(audit_dir / "audit-trail-token", emu.regenerate_audit_trail_token("acme")["token"])
    control = template_forms(lambda name: "touch %s/control-%s" % (markers, name))["variable"]
    (tmp_path / "probe.yml").write_text(PROBE.replace("CONTROL_VARIABLE", json.dumps(control)))
    (tmp_path / "probe.j2").write_text(PROBE_TEMPLATE)
    rules = yaml.safe_load((ROOT / "extensions" / "eda" / "rulebooks" / "watch_organization.yml").read_text())
    rules[0]["rules"].extend(user_rules(tmp_path / "probe.yml", probe_dir))
    report = tmp_path / "alerts.ndjson"
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    book = rulebook(with_record_rule(rules), name="templates",
                    env={"TFE_HOSTNAME": emu.url, "PATH": "%s:%s:%s" % (path, BIN, os.environ["PATH"])},
                    variables={"tfe_audit_dir": str(audit_dir), "tfe_automation_accessor_id": "user-none",
                               "tfe_audit_report_file": str(report), "tfe_audit_interval": INTERVAL,
                               "tfe_audit_since": since}).start()
    book.wait_for(lambda records: len(list(probe_dir.iterdir())) >= 2 and "TASK [Module wrapper]" in book.text
                  and report.exists() and len(report.read_text().splitlines()) >= 2, 150, "every playbook's work")
    # ansible-rulebook runs the actions of one ruleset one after another, the record rule's last.
    book.wait_for(lambda records: any(event.get("tfe_audit", {}).get("id") == "planted-1" for dummy, event in records)
                  and book.text.count("PLAY RECAP") >= 5, 60, "every playbook to end")
    book.stop()
    text = book.text
    assert_clean(text)

    ran = sorted(path.name for path in markers.iterdir() if not path.name.startswith("control-"))
    assert (markers / "control-variable").exists(), "the positive control did not render: the probe proves nothing"
    record("hostile", "event source: %d template forms planted in an audit event and in error texts; playbooks and "
           "modules started by rules, run by ansible-core %s" % (len(forms), book_core(text)),
           outcome="ran nothing" if not ran else "RAN %s" % ", ".join(ran), code_execution=int(bool(ran)), truncated=0,
           token_off_host=0)
    assert ran == [], "a planted template ran"
    assert text.count("PROBE %s" % book_core(text)) >= 2 and book_core(text).startswith(core)
    assert "failed=0" in text and "failed=1" not in text
    planted = [event for event in book.events() if event["tfe_audit"]["id"] == "planted-1"]
    assert len(planted) == 1
    assert json.loads(base64.b64decode(planted[0]["tfe_audit_original"]))["auth"]["description"] == \
        forms["header_variable"]
    reported = [json.loads(line) for line in report.read_text().splitlines()]
    assert [event["auth"]["description"] for event in reported if event["id"] == "planted-1"] == \
        ["# jinja2:" + forms["header_variable"][len("#jinja2:"):]]


def book_core(text):
    """The ansible-core version the probe playbook ran with (its first PROBE line)."""
    return text.split("PROBE ", 1)[1].split(" ", 1)[0] if "PROBE " in text else ""
