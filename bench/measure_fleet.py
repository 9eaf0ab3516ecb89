# -*- coding: utf-8 -*-
"""Section fleet: N organizations as N inventory hosts, the role against the `uri` recipe, first and idempotent run."""

import json
import sys

from harness import ADMIN, interleaved, step
from playbooks import fleet_role, fleet_uri


def inventory(ws, name, orgs):
    path = ws.path("work", name + ".yml")
    path.write_text(json.dumps({"all": {
        "hosts": {org: {} for org in orgs},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
    return path


def one_fleet(ws, emu, kind, n, rep, forks):
    """Both runs (first, idempotent) of one kind at one size: [row]."""
    name = "%s-%d-%d" % (kind, n, rep)
    orgs = ["f-%s-%d" % (name, i) for i in range(n)]
    for org in orgs:
        emu.add_organization(org, entitlement=True)
    vault_dir = ws.path("vaults-" + name)
    vault_dir.mkdir()
    book = fleet_role(emu.url, vault_dir) if kind == "role" else fleet_uri(emu.url)
    args = ["-f", str(forks), "--vault-password-file", str(ws.password_file)]
    hosts = str(inventory(ws, name, orgs))
    rows = []
    for phase in ("first", "idempotent"):
        result = ws.run_playbook(book, args=args, env={"TFE_TOKEN": ADMIN}, inventory=hosts)
        rows.append(dict(kind=kind, n=n, rep=rep, phase=phase, seconds=result.wall))
        print("[bench]   %s %s N=%d: %.1f s" % (kind, phase, n, result.wall), flush=True)
    missing = [org for org in orgs if not emu.audit_trail_token(org)]
    assert not missing, "fleet left organizations without a token: %s" % missing[:5]
    if kind == "role":
        assert len(list(vault_dir.glob("*.vault.yml"))) == n, "not every vault file was written"
    return rows


def measure(ws, emu, args):
    """[{kind, n, rep, phase, seconds}]: wall time of each whole ansible-playbook run."""
    rows = []
    for n in (int(size) for size in args.fleet.split(",")):
        reps = args.fleet_reps if n <= 50 else args.fleet_reps_large
        for rep, kinds in interleaved(("role", "uri"), reps):
            step("fleet N=%d rep %d" % (n, rep + 1))
            for kind in kinds:
                rows += one_fleet(ws, emu, kind, n, rep, args.forks)
    return rows
