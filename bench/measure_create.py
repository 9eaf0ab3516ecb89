# -*- coding: utf-8 -*-
"""Section create: one tfe_audit_trail_token create against the `uri` recipe (GET, POST on 404, set_fact)."""

from harness import ADMIN, interleaved, median, step
from playbooks import module_task, play, uri_recipe


def tasks_for(kind, org, prefix, url):
    return [module_task(prefix + "module", org, url)] if kind == "module" else uri_recipe(prefix, org, url)


def measure(ws, emu, args):
    step("create path")
    n = args.create_n
    per_rep = {"module": [], "uri": [], "module_cpu": [], "uri_cpu": []}
    for rep, kinds in interleaved(("module", "uri"), args.reps):
        for kind in kinds:
            orgs = ["c-%s-%d-%d" % (kind, rep, i) for i in range(n)]
            tasks = []
            for i, org in enumerate(orgs):
                emu.add_organization(org, entitlement=True)
                tasks += tasks_for(kind, org, "c-%d-" % i, emu.url)
            result = ws.run_playbook(play(tasks), env={"TFE_TOKEN": ADMIN})
            per_rep[kind].append(median(sum(result.spans("c-%d-" % i)) for i in range(1, n)))  # op 0 warms up
            per_rep[kind + "_cpu"].append(result.cpu / n)
            assert all(emu.audit_trail_token(org) for org in orgs), "no token created"
    return per_rep
