# -*- coding: utf-8 -*-
"""HTTP requests per operation, counted in the emulator's request log (the requests section of `make bench`; also `make bench-smoke`).

One playbook runs every operation in turn against a non-HCP hostname (the emulator on loopback, so each
module run starts with the platform check GET /api/v2/ping). Between operations a marker request
(GET /_bench/mark/<operation> from a url lookup on the controller, answered 404 and logged) splits the
log; the counts are exact.
"""

from collections import OrderedDict

import harness

MARK = "/_bench/mark/"

# operation -> (what it is, target (max requests), expected exact count on a non-HCP host)
OPERATIONS = OrderedDict([
    ("create", ("`state: present`, no token yet", 3, 3)),
    ("idempotent_present", ("`state: present`, token exists (idempotent)", 2, 2)),
    ("regenerate", ("`force_regenerate: true`", 3, 3)),
    ("absent_when_present", ("`state: absent`, token exists", 3, 3)),
    ("absent_when_absent", ("`state: absent`, no token", 3, 2)),
    ("role_first_run", ("role, Ansible Vault store, first run (creates and stores)", 3, 3)),
    ("role_idempotent", ("role, Ansible Vault store, idempotent run", 3, 3)),
])

_MODULE_ARGS = {
    "create": "",
    "idempotent_present": "",
    "regenerate": "\n        force_regenerate: true",
    "absent_when_present": "\n        state: absent",
    "absent_when_absent": "\n        state: absent",
}


def playbook(url, vault_file):
    tasks = []
    for op in OPERATIONS:
        tasks.append("""
    - name: "mark {op}"
      ansible.builtin.debug:
        msg: "{{{{ lookup('ansible.builtin.url', '{url}{mark}{op}', errors='ignore') }}}}"
""".format(op=op, url=url, mark=MARK))
        if op in _MODULE_ARGS:
            tasks.append("""
    - name: "op {op}"
      tfe.audit.tfe_audit_trail_token:
        organization: rc-module{args}
""".format(op=op, args=_MODULE_ARGS[op]))
        else:
            tasks.append("""
    - name: "op {op}"
      ansible.builtin.include_role:
        name: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_organization: rc-role
        audit_trail_token_hostname: "{url}"
        audit_trail_token_vault_file: "{vault_file}"
""".format(op=op, url=url, vault_file=vault_file))
    tasks.append("""
    - name: "mark end"
      ansible.builtin.debug:
        msg: "{{{{ lookup('ansible.builtin.url', '{url}{mark}end', errors='ignore') }}}}"
""".format(url=url, mark=MARK))
    return """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/tfe.audit.tfe:
      hostname: "{url}"
  tasks:
{tasks}""".format(url=url, tasks="".join(tasks))


def split_log(log):
    """{operation: ["METHOD path status", ...]} from a request log holding the markers."""
    counts, current = OrderedDict(), None
    for entry in log:
        if entry["path"].startswith(MARK):
            current = entry["path"][len(MARK):]
            if current != "end":
                counts[current] = []
            continue
        if current is not None and current != "end":
            counts[current].append("%s %s %s" % (entry["method"], entry["path"], entry["status"]))
    return counts


def measure(workspace, admin_token=harness.ADMIN):
    """Run the operations once; returns {operation: [requests]} (the playbook run's Result too)."""
    with harness.emulator(admin_token) as emu:
        emu.add_organization("rc-module", entitlement=True)
        emu.add_organization("rc-role", entitlement=True)
        vault_file = workspace.path("request-counts", "rc-role.vault.yml")
        result = workspace.run_playbook(
            playbook(emu.url, vault_file), args=["--vault-password-file", str(workspace.password_file)],
            env={"TFE_TOKEN": admin_token})
        return split_log(emu.requests), result


def section(ws, dummy_emu, dummy_args):
    """The requests section of `make bench`: {operation: [requests]} (on an emulator of its own)."""
    harness.step("request counts")
    counts = measure(ws)[0]
    return {op: counts[op] for op in OPERATIONS}
