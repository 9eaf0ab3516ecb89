# -*- coding: utf-8 -*-
"""Broken and hostile pages of the audit trail, through real ``ansible-playbook`` runs of the export.

One playbook per listing order walks every case: new events arrive, the emulator breaks one answer (its
``mangle``, ``echo_token`` and ``ignore_page_number`` faults), the export runs, the fault is cleared, and the export
runs again. A malformed answer must fail the run before anything is written or the cursor moves, or be read
through completely (a server that ignores page[number] still serves a walk by time); an odd event must be delivered,
once. At the end ``dest`` must hold every event the emulator keeps exactly once. Each case records a row for
docs/RELIABILITY.md ("broken pages").
"""

import base64
import json

import pytest

from reliability import record

ORG = "acme"
PAGE_SIZE = 10
NEW_EVENTS = 25  # three pages of PAGE_SIZE per case

# (case, fault (emulator add_fault arguments, on GET .../audit-trail), one odd event to add, how the run must end:
# "fails" cleanly, "delivers" every event, or "fails or reads through" completely)
CASES = [
    ("page 2 without pagination", dict(skip=1, mangle=[{"delete": "pagination"}]), None, "fails"),
    ("pagination that is not an object", dict(skip=1, mangle=[{"set": "pagination", "value": "1 of 3"}]), None,
     "fails"),
    ("next_page that skips a page", dict(mangle=[{"set": "pagination.next_page", "value": 3}]), None, "fails"),
    ("next_page null on page 2 of 3", dict(skip=1, mangle=[{"set": "pagination.next_page", "value": None}]), None,
     "fails"),
    ("total_count that does not fit the pages", dict(mangle=[{"set": "pagination.total_count", "value": 9999}]),
     None, "fails"),
    ("data that is not a list", dict(skip=1, mangle=[{"set": "data", "value": {"0": "event"}}]), None, "fails"),
    ("an event that is not an object", dict(skip=1, mangle=[{"set": "data.1", "value": 42}]), None, "fails"),
    ("an empty page 2 that names page 3", dict(skip=1, mangle=[{"set": "data", "value": []}]), None, "fails"),
    ("page 1 for every page, page number echoed", dict(count=None, ignore_page_number="echo"), None, "fails"),
    # Page 1 verbatim for every page serves an oldest-first walk by time (keyset) as a whole: read through, or fail.
    ("page 1 for every page, verbatim", dict(count=None, ignore_page_number="first"), None, "fails or reads through"),
    ("an error quoting the request's token", dict(echo_token=True, count=None), None, "fails"),
    ("an event dated 2099", None, {"timestamp": "2099-01-01T00:00:00.000Z"}, "delivers"),
    ("an event whose time is past year 9999 in UTC", None, {"timestamp": "9999-12-31T23:30:00.000-01:00"},
     "delivers"),
    ("an event without an id", None, {"id": None}, "delivers"),
    ("an event holding a template", None, {"auth": {"description": "{{ lookup('pipe', 'id') }}"}}, "delivers"),
]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    results: []
  tasks:
    - name: Every case
      ansible.builtin.include_tasks: case.yml
      loop: "{{ cases }}"
      loop_control:
        loop_var: case

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ results | to_json }}"
        dest: "{{ playbook_dir }}/results.json"
        mode: "0600"
"""

CASE = """
- name: New events - {{ case.name }}
  ansible.builtin.uri:
    url: "{{ emulator }}/_emulator/organizations/acme/events"
    method: POST
    body_format: json
    body: {"count": %(new)d, "step_seconds": 0.001}
    status_code: 201

- name: An odd event - {{ case.name }}
  ansible.builtin.uri:
    url: "{{ emulator }}/_emulator/organizations/acme/event"
    method: POST
    body_format: json
    body: "{{ case.event | b64decode }}"  # JSON text, never rendered: it may hold a template
    status_code: [200, 201]
  when: case.event is not none

- name: Break the answer - {{ case.name }}
  ansible.builtin.uri:
    url: "{{ emulator }}/_emulator/faults"
    method: POST
    body_format: json
    body: "{{ case.fault | combine({'method': 'GET', 'path': 'audit-trail'}) }}"
    status_code: 204
  when: case.fault is not none

- name: Export - {{ case.name }}
  tfe.audit.tfe_audit_trail_events: &export
    hostname: "{{ emulator }}"
    token: "{{ lookup('ansible.builtin.env', 'AUDIT_TOKEN') }}"
    dest: "{{ dest }}"
    cursor_file: "{{ cursor }}"
    page_size: %(page)d
  register: broken
  ignore_errors: true

- name: Mend the server - {{ case.name }}
  ansible.builtin.uri:
    url: "{{ emulator }}/_emulator/faults"
    method: DELETE
    status_code: 204

- name: Export again - {{ case.name }}
  tfe.audit.tfe_audit_trail_events: *export
  register: again

- name: Remember - {{ case.name }}
  ansible.builtin.set_fact:
    results: "{{ results + [{'name': case.name, 'broken': broken, 'again': again}] }}"
""" % {"new": NEW_EVENTS, "page": PAGE_SIZE}


def dest_lines(path):
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def kept_events(emulator):
    return [event for dummy, dummy_id, event in emulator._orgs[ORG].events]  # pylint: disable=protected-access


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_broken_pages_fail_cleanly_and_odd_events_are_delivered_once(emulator, run_playbook, tmp_path, order):
    emulator.set_listing(order=order)
    emulator.set_rate_limit(0)  # a 429 would take the fault meant for a page (rate limits are tested elsewhere)
    secret = emulator.regenerate_audit_trail_token(ORG)["token"]
    emulator.seed_events(ORG, 5)
    dest, cursor = tmp_path / "audit.ndjson", tmp_path / "audit.cursor.json"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "case.yml").write_text(CASE)
    cases = [dict(name=name, fault=fault, event=event and base64.b64encode(json.dumps(event).encode()).decode())
             for name, fault, event, dummy in CASES]
    (tmp_path / "cases.json").write_text(json.dumps(dict(cases=cases, emulator=emulator.url, dest=str(dest),
                                                         cursor=str(cursor))))
    dest.write_bytes(b"")
    run = run_playbook(PLAYBOOK, "-e", "@%s" % (tmp_path / "cases.json"), env={"AUDIT_TOKEN": secret})
    assert run.rc == 0, run
    assert emulator.fault_errors == [], "a fault did not apply: the case tested something else"
    results = dict((row["name"], row) for row in json.loads((run.workdir / "results.json").read_text()))
    lines = dest_lines(dest)
    delivered = [line for line in lines if "id" in line]
    unreadable = [line["tfe_audit_unreadable"] for line in lines if "tfe_audit_unreadable" in line]
    ids = [line["id"] for line in delivered]
    readable = [event for event in kept_events(emulator) if isinstance(event.get("id"), str)
                and not event["timestamp"].startswith("9999")]
    missing = set(event["id"] for event in readable) - set(ids)
    duplicated = len(ids) - len(set(ids)) + len(unreadable) - len(set(u["sha256"] for u in unreadable))
    for name, dummy_fault, dummy_event, ends in CASES:
        broken, again = results[name]["broken"], results[name]["again"]
        outcome = ("clean failure" if broken.get("failed") else "complete export") if not again.get("failed") \
            else "RERUN FAILED"
        record("broken pages", name, order=order + " first", outcome=outcome, lost=len(missing), duplicated=duplicated,
               rerun_exact=int(not again.get("failed")), message=broken.get("msg", ""))
        if ends == "delivers":
            assert not broken.get("failed") and again["count"] == 0, (name, broken.get("msg"))
        elif broken.get("failed") or ends == "fails":
            assert broken.get("failed"), (name, "must fail cleanly, but the run said it exported", broken.get("count"))
            assert "Traceback" not in broken["msg"] and secret not in json.dumps(broken), name
            assert broken.get("count", 0) == 0, name
            # Nothing was written and the cursor did not move: the rerun writes every new event (a line the failed
            # run had written would now be there twice, which the check of dest below would find).
            assert again["count"] >= NEW_EVENTS, name
        else:  # followed instead (a server that ignores page[number] serves a walk by time well): nothing left over
            assert again["count"] == 0 and broken["count"] >= NEW_EVENTS, (name, broken.get("msg"))
    assert not missing and duplicated == 0
    assert secret not in run.stdout + run.stderr
    raw = sorted(base64.b64decode(item["base64"]) for item in unreadable)
    assert len(raw) == 2 and all(b'"9999-12-31T23:30:00.000-01:00"' in item or b'"id":null' in item for item in raw)
    planted = [line for line in delivered if line["auth"]["description"].startswith("{{")]
    assert len(planted) == 1 and planted[0]["auth"]["description"] == "{{ lookup('pipe', 'id') }}"  # bytes as sent
    ahead = [line for line in delivered if line["timestamp"].startswith("2099")]
    assert len(ahead) == 1 and "ahead of this controller's clock" in " ".join(run.stderr.split())
