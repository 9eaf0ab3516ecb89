# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action tfe_audit_trail_token: the module runs pipelined, or not at all with a secret in its arguments."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib

import pytest

from ansible_collections.tfe.audit.plugins.action import tfe_audit_trail_token as action_plugin
from ansible_collections.tfe.audit.plugins.plugin_utils import _pipelining

NAME = "tfe.audit.tfe_audit_trail_token"


def run(run_action, args, **kwargs):
    return run_action(action_plugin, NAME, dict(dict(organization="acme"), **args), **kwargs)


@pytest.mark.parametrize("become", [None, "sudo"])
def test_the_module_runs_pipelined_also_under_become(run_action, become):
    """Pipelining is off by default: the action turns it on for its task, where the become method allows it."""
    result, calls, connection = run(run_action, dict(known_token="stored", token="api-token"), become=become)

    assert connection.get_option("pipelining") is True
    assert [(args["known_token"], pipelined) for dummy, args, pipelined in calls] == [("stored", True)]
    assert result["token"] == "new-secret" and result["_ansible_no_log"] is True


@pytest.mark.parametrize("args, secrets", [(dict(known_token="stored"), "known_token"),
                                           (dict(token="api-token"), "token"),
                                           (dict(tfe_token="api-token", known_token="s"), "known_token, tfe_token")])
def test_a_secret_in_the_arguments_is_refused_where_the_module_cannot_run_pipelined(run_action, args, secrets):
    result, calls, dummy = run(run_action, args, become="su")

    assert result["failed"] and not result["changed"] and calls == []
    for words in ("refusing to run %s" % NAME, "(%s)" % secrets, "become method su cannot run modules pipelined",
                  "become: false", "the module did not run"):
        assert words in result["msg"]
    assert "stored" not in result["msg"] and "api-token" not in result["msg"]


@pytest.mark.parametrize("become", [None, "su"])
def test_without_a_secret_in_the_arguments_it_runs_as_configured(run_action, become):
    """The API token from TFE_TOKEN is read where the module runs; an empty known_token says none is held. Nothing
    secret would be written, so pipelining is left as configured (off by default: it costs time on a local
    connection)."""
    result, calls, connection = run(run_action, dict(known_token=""), become=become)

    assert not result.get("failed") and [pipelined for dummy, dummy2, pipelined in calls] == [False]
    assert not connection.get_option("pipelining")


def test_keep_remote_files_refuses_a_secret_and_says_so(run_action, monkeypatch):
    monkeypatch.setattr(_pipelining.C, "DEFAULT_KEEP_REMOTE_FILES", True)

    result, calls, dummy = run(run_action, dict(token="api-token"))

    assert result["failed"] and calls == [] and "ANSIBLE_KEEP_REMOTE_FILES" in result["msg"]


def test_a_connection_that_cannot_pipeline_is_named(run_action, monkeypatch):
    from ansible.plugins.connection.local import Connection

    monkeypatch.setattr(Connection, "has_pipelining", False)

    result, calls, dummy = run(run_action, dict(known_token="stored"))

    assert result["failed"] and calls == [] and "connection local cannot run modules pipelined" in result["msg"]


def test_a_result_without_a_secret_is_shown(run_action):
    result, dummy, dummy2 = run(run_action, {}, module_result=dict(changed=False, operation="none", id="at-1"))

    assert "_ansible_no_log" not in result and result["operation"] == "none"


@pytest.mark.parametrize("name", ["tfe_audit_trail_events", "tfe_audit_trail_token_info"])
def test_the_reading_modules_run_pipelined_or_refuse_their_token(run_action, name):
    """Their token (the audit trail token, the API token) is as secret as the token module's arguments."""
    plugin = importlib.import_module("ansible_collections.tfe.audit.plugins.action.%s" % name)
    fqcn = "tfe.audit.%s" % name
    reading = dict(count=3, events=[])
    result, calls, connection = run_action(plugin, fqcn, dict(token="audit-trail-secret"), module_result=reading)
    assert connection.get_option("pipelining") is True and [(n, p) for n, dummy, p in calls] == [(fqcn, True)]
    assert result["count"] == 3 and "_ansible_no_log" not in result  # nothing secret in a reading's result
    refused, calls, dummy = run_action(plugin, fqcn, dict(token="audit-trail-secret"), become="su")
    assert refused["failed"] and calls == [] and "refusing to run %s" % fqcn in refused["msg"]
    assert "audit-trail-secret" not in refused["msg"]
    from_env, calls, dummy = run_action(plugin, fqcn, dict(), module_result=reading, become="su")
    assert not from_env.get("failed") and [p for dummy, dummy2, p in calls] == [False]  # TFE_TOKEN: no secret arg


def test_an_async_export_with_its_token_in_the_arguments_is_refused(run_action):
    """async never pipelines: the module and its arguments would be written to disk for the whole job."""
    plugin = importlib.import_module("ansible_collections.tfe.audit.plugins.action.tfe_audit_trail_events")
    result, calls, dummy = run_action(plugin, "tfe.audit.tfe_audit_trail_events", dict(token="s"), async_val=600)
    assert result["failed"] and calls == [] and "runs asynchronously" in result["msg"]
