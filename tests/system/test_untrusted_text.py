# -*- coding: utf-8 -*-
"""Whether ansible-core renders a template that the server planted in the ``events`` that tfe_audit_trail_events
returns, once a playbook has registered them: on 2.18, 2.19 and 2.21, the registered result read by
``debug: var=``, a ``debug: msg=`` that uses it, ``set_fact`` and a ``template`` task.

The emulator answers the audit trail with a page holding every form of template (tests/shared/template_forms.py)
in values, keys and nested lists, each creating its own marker file when rendered. The module returns the event
as the server sent it; no marker may appear: ansible-core never renders a module's result (2.18 marks it unsafe,
2.19 and later leave it untrusted).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from checkout_fixtures import core_bin  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
from template_forms import planted_event, template_forms  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOK = """
- name: Use a registered events result every way a playbook can
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    control_variable: CONTROL_VARIABLE
    control_header: CONTROL_HEADER
  tasks:
    - name: The positive control, the playbook's own text (trusted), which renders
      ansible.builtin.debug:
        msg: "{{ control_variable }} {{ control_header }}"

    - name: Read the audit trail
      tfe.audit.tfe_audit_trail_events:
        hostname: "{{ tfe_hostname }}"
        token: "{{ tfe_token }}"
      register: trail

    - name: The registered result
      ansible.builtin.debug:
        var: trail

    - name: A message that uses it
      ansible.builtin.debug:
        msg: "CORE {{ ansible_version.full }} {{ trail.events[0].auth.description }} {{ trail.events[0].resource.id }}"

    - name: A fact from it
      ansible.builtin.set_fact:
        planted: "{{ trail.events[0] }}"
        description: "{{ trail.events[0].auth.description }}"

    - name: The facts
      ansible.builtin.debug:
        msg: "{{ planted }} {{ description }}"

    - name: A template that reads it
      ansible.builtin.template:
        src: events.j2
        dest: "{{ playbook_dir }}/events.txt"
        mode: "0600"

    - name: What the module returned, as data
      ansible.builtin.copy:
        content: "{{ trail.events | to_json }}"
        dest: "{{ playbook_dir }}/events.json"
        mode: "0600"
"""
TEMPLATE = "{{ trail.events }}\n{% for event in trail.events %}{{ event.auth.description }}\n{% endfor %}{{ planted }}\n"


@pytest.mark.parametrize("core", ["2.18", "2.19", "2.21"])
def test_a_template_in_a_registered_events_result_is_never_rendered(core, core_bin, emulator, collections_path,
                                                                    tmp_path):
    markers, workdir = tmp_path / "markers", tmp_path / "work"
    markers.mkdir()
    workdir.mkdir()
    forms = template_forms(lambda name: "touch %s/%s" % (markers, name))
    planted = planted_event(forms)
    token = emulator.regenerate_audit_trail_token("acme")["token"]
    page = {"data": [planted], "pagination": {"current_page": 1, "prev_page": None, "next_page": None,
                                              "total_pages": 1, "total_count": 1}}
    emulator.add_fault(method="GET", path="audit-trail", status=200, body=json.dumps(page))
    control = template_forms(lambda name: "touch %s/control-%s" % (markers, name))
    (workdir / "playbook.yml").write_text(PLAYBOOK.replace("CONTROL_VARIABLE", json.dumps(control["variable"]))
                                          .replace("CONTROL_HEADER", json.dumps(control["header_variable"])))
    (workdir / "events.j2").write_text(TEMPLATE)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "TFE_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
               ANSIBLE_NOCOLOR="1", HOME=str(tmp_path))
    run = subprocess.run([str(core_bin(core) / "ansible-playbook"), "-i", "localhost,", "-c", "local", "playbook.yml",
                          "-e", "tfe_hostname=%s" % emulator.url, "-e", "tfe_token=%s" % token],
                         cwd=str(workdir), env=env, capture_output=True, text=True, timeout=600, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "CORE %s." % core in output

    rendered = sorted(path.name for path in markers.iterdir() if not path.name.startswith("control-"))
    assert rendered == [], "ansible-core %s rendered a registered result" % core
    assert (markers / "control-variable").exists(), "the positive control did not render: the probe proves nothing"
    returned = json.loads((workdir / "events.json").read_text())
    assert returned == [planted], "the module returns the event as the server sent it"
    assert forms["header_variable"] in (workdir / "events.txt").read_text()
