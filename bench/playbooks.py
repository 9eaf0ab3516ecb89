# -*- coding: utf-8 -*-
"""The playbooks the benchmark runs, built as data and written as JSON (which YAML reads as it is).

As data, a playbook needs no brace escaping, and a value (a URL, a path) cannot break the YAML around it.
"""

import json

from harness import ADMIN

TOKEN_PATH = "/api/v2/organizations/%s/authentication-token?token=audit-trails"
TOKEN_MODULE = "tfe.audit.tfe_audit_trail_token"


def play(tasks=(), hosts="localhost", **more):
    """One play as playbook text."""
    return json.dumps([dict(hosts=hosts, gather_facts=False, tasks=list(tasks), **more)], indent=1)


def module_task(name, org, url, **options):
    """The token module, for an organization of the emulator (the API token comes from TFE_TOKEN)."""
    return {"name": name, TOKEN_MODULE: dict(organization=org, hostname=url, **options), "register": "result"}


def _uri(name, url, org, status, register, **more):
    task = {"name": name, "register": register, "ansible.builtin.uri": dict({
        "url": url + TOKEN_PATH % org,
        "headers": {"Authorization": "Bearer " + ADMIN, "Accept": "application/vnd.api+json"},
        "status_code": status}, **more)}
    return task


def uri_get_task(name, org, url, status=(200,)):
    """One `uri` GET of the organization's audit trail token."""
    return _uri(name, url, org, list(status), "current")


def uri_recipe(prefix, org, url):
    """What a user writes without the collection: GET, POST on 404, set_fact (3 tasks, 2 requests)."""
    post = _uri(prefix + "post", url, org, [200, 201], "created", method="POST",
                body='{"data": {"type": "authentication-token", "attributes": {}}}', body_format="raw")
    post["ansible.builtin.uri"]["headers"]["Content-Type"] = "application/vnd.api+json"
    post.update(when="current.status == 404", no_log=True)
    fact = {"name": prefix + "fact", "no_log": True, "ansible.builtin.set_fact": {
        "audit_token": "{{ created.json.data.attributes.token if created is not skipped else '' }}",
        "audit_token_id": "{{ created.json.data.id if created is not skipped else current.json.data.id }}"}}
    return [uri_get_task(prefix + "get", org, url, (200, 404)), post, fact]


def fleet_role(url, vault_dir):
    """The role for every inventory host (one organization each), one vault file per organization."""
    role = {"role": "tfe.audit.audit_trail_token",
            "audit_trail_token_organization": "{{ inventory_hostname }}",
            "audit_trail_token_hostname": url,
            "audit_trail_token_vault_file": "%s/{{ inventory_hostname }}.vault.yml" % vault_dir}
    return play(hosts="all", roles=[role])


def fleet_uri(url):
    """The create-path recipe, with the organization taken from the inventory host."""
    return play(uri_recipe("", "{{ inventory_hostname }}", url), hosts="all")


def events_export(url, token, dest, cursor, interpreter, lookback=None):
    """One export with dest and cursor_file, the module run by ``interpreter`` (bench/rsswrap.py's wrapper)."""
    args = {"hostname": url, "token": token, "dest": str(dest), "cursor_file": str(cursor)}
    if lookback is not None:
        args["lookback"] = lookback
    task = {"name": "export", "register": "exported", "no_log": True,
            "vars": {"ansible_python_interpreter": str(interpreter)}, "tfe.audit.tfe_audit_trail_events": args}
    return play([task])
