# -*- coding: utf-8 -*-
"""Fleet chart for docs/PERFORMANCE.md: total time and time per organization vs N (run with .venv-bench).

usage: chart.py FLEET_RESULTS_JSON OUT_PNG   (bench/results/fleet.json: {"run": {"machine": ...}, "data": [rows]})
"""

import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

STYLE = {("role", "first"): ("tab:blue", "-", "o"), ("role", "idempotent"): ("tab:blue", "--", "s"),
         ("uri", "first"): ("tab:orange", "-", "o"), ("uri", "idempotent"): ("tab:orange", "--", "s")}
LABEL = {"role": "role tfe.audit.audit_trail_token (Ansible Vault store)", "uri": "uri recipe (GET, POST on 404, set_fact)"}


def main():
    record = json.loads(open(sys.argv[1]).read())
    fleet, machine = record["data"], record["run"]["machine"]
    sizes = sorted({r["n"] for r in fleet})
    fig, (total, per_org) = plt.subplots(1, 2, figsize=(12, 4.8))
    for (kind, phase), (color, line, marker) in STYLE.items():
        ys = [statistics.median([r["seconds"] for r in fleet if r["n"] == n and r["kind"] == kind
                                 and r["phase"] == phase]) for n in sizes]
        label = "%s, %s run" % (LABEL[kind], phase)
        total.plot(sizes, ys, color=color, linestyle=line, marker=marker, label=label)
        per_org.plot(sizes, [y / n for y, n in zip(ys, sizes)], color=color, linestyle=line, marker=marker, label=label)
    forks = record["run"]["knobs"]["forks"]
    total.set(xlabel="organizations (inventory hosts, forks %s)" % forks, ylabel="ansible-playbook wall time (s)",
              title="Fleet: total time")
    per_org.set(xlabel="organizations", ylabel="seconds per organization", title="Fleet: time per organization")
    for axis in (total, per_org):
        axis.grid(True, alpha=0.3)
        axis.set_xticks(sizes)
        axis.set_ylim(bottom=0)
    total.legend(fontsize=7, loc="upper left")
    fig.suptitle("tfe.audit fleet benchmark, %s, %s cores, ansible-core %s, %s"
                 % (machine["cpu"], machine["cores"], machine["ansible-core"], machine["date"]), fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
