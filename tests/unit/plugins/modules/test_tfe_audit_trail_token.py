# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tfe_audit_trail_token: the decision table, input validation and whole runs against the emulator."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from datetime import datetime, timedelta

import pytest

from ansible_collections.tfe.audit.plugins.module_utils._module import format_rfc3339
from ansible_collections.tfe.audit.plugins.module_utils._time import UTC
from ansible_collections.tfe.audit.plugins.modules import tfe_audit_trail_token as module
from ansible_collections.tfe.audit.plugins.modules.tfe_audit_trail_token import decide
from ansible_collections.tfe.audit.tests.unit.plugins.modules.module_runner import run_module

TOKEN = "admin-token-for-tests"
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def token_expiring(at):
    return {"id": "at-1", "expired_at": format_rfc3339(at) if at else None}


# -- decide(): one row per rule ------------------------------------------------------------------


@pytest.mark.parametrize("current, kwargs, expected", [
    (None, {}, "create"),
    (token_expiring(NOW + timedelta(days=400)), {}, "none"),
    (token_expiring(NOW + timedelta(days=400)), {"force_regenerate": True}, "regenerate"),
    (token_expiring(NOW + timedelta(days=400)), {"expired_at": NOW + timedelta(days=400)}, "none"),
    (token_expiring(NOW + timedelta(days=400)), {"expired_at": NOW + timedelta(days=400, seconds=1)}, "regenerate"),
    (token_expiring(None), {"expired_at": NOW + timedelta(days=1)}, "regenerate"),
    (token_expiring(NOW + timedelta(days=20)), {"rotate_before": timedelta(days=30)}, "regenerate"),
    (token_expiring(NOW + timedelta(days=40)), {"rotate_before": timedelta(days=30)}, "none"),
    (token_expiring(NOW - timedelta(days=1)), {"rotate_before": timedelta(days=30)}, "regenerate"),
    (token_expiring(NOW - timedelta(days=1)), {}, "none"),
    (token_expiring(None), {"rotate_before": timedelta(days=30)}, "none"),
])
def test_decide_present(current, kwargs, expected):
    args = dict(force_regenerate=False, expired_at=None, rotate_before=None)
    args.update(kwargs)
    operation, reason = decide(current, "present", now=NOW, **args)
    assert operation == expected and reason


@pytest.mark.parametrize("current, expected", [(token_expiring(NOW), "delete"), (None, "none")])
def test_decide_absent(current, expected):
    assert decide(current, "absent", True, NOW, timedelta(days=1), NOW)[0] == expected


def test_expiry_is_compared_to_the_second_whatever_the_offset():
    current = {"id": "at-1", "expired_at": "2030-01-01T10:00:00.000Z"}
    same_instant = module.parse_rfc3339("2030-01-01T12:00:00+02:00")
    assert decide(current, "present", False, same_instant, None, NOW)[0] == "none"


# -- whole runs against the emulator ---------------------------------------------------------------


def args_for(emulator, **kwargs):
    args = dict(hostname=emulator.url, token=TOKEN, organization="acme")
    args.update(kwargs)
    return args


def mutations(emulator):
    return [r for r in emulator.requests if r["method"] in ("POST", "DELETE")]


def test_check_mode_then_create_then_idempotent(emulator):
    result, failed = run_module(module.main, args_for(emulator), check_mode=True)
    assert not failed and result["changed"] and result["operation"] == "create"
    assert "token" not in result and mutations(emulator) == []

    result, failed = run_module(module.main, args_for(emulator))
    assert not failed and result["changed"] and result["operation"] == "create"
    live = emulator.audit_trail_token("acme")
    assert result["token"] == live["token"] and result["id"] == live["id"]

    emulator.clear_requests()
    result, failed = run_module(module.main, args_for(emulator))
    assert not failed and not result["changed"] and "token" not in result
    assert result["id"] == live["id"]
    # platform check + read: the whole cost of an idempotent run on a host that is not HCP Terraform's own
    assert [(r["method"], r["path"]) for r in emulator.requests] == [
        ("GET", "/api/v2/ping"), ("GET", "/api/v2/organizations/acme/authentication-token")]


def test_idempotent_present_on_app_terraform_io_is_one_request(emulator, monkeypatch):
    from ansible_collections.tfe.audit.plugins.module_utils import _module
    from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.test_client import ForwardingAdapter

    emulator.regenerate_audit_trail_token("acme")
    real_client = _module.Connection.client

    def forwarding_client(self, warn=None):
        client = real_client(self, warn)
        client.session.mount("https://app.terraform.io", ForwardingAdapter("https://app.terraform.io", emulator.url))
        return client

    monkeypatch.setattr(_module.Connection, "client", forwarding_client)
    emulator.clear_requests()
    result, failed = run_module(module.main, dict(token=TOKEN, organization="acme"))
    assert not failed and not result["changed"]
    assert len(emulator.requests) == 1


def test_diff_shows_metadata_never_the_secret(emulator):
    result, failed = run_module(module.main, args_for(emulator, expired_at="2031-06-01T00:00:00Z"))
    assert not failed
    assert result["diff"]["before"]["state"] == "absent"
    assert result["diff"]["after"]["expired_at"] == "2031-06-01T00:00:00.000Z"
    assert result["token"] not in json.dumps(result["diff"]) + result["reason"]


def test_different_expired_at_regenerates_and_old_secret_dies(emulator):
    first = run_module(module.main, args_for(emulator, expired_at="2031-06-01T00:00:00Z"))[0]
    same = run_module(module.main, args_for(emulator, expired_at="2031-06-01T02:00:00+02:00"))[0]
    assert not same["changed"]
    second = run_module(module.main, args_for(emulator, expired_at="2032-06-01T00:00:00Z"))[0]
    assert second["changed"] and second["operation"] == "regenerate"
    assert second["token"] != first["token"]
    assert emulator.audit_trail_token("acme")["token"] == second["token"]


def test_lifetime_sets_the_expiry_but_never_regenerates_by_itself(emulator):
    result = run_module(module.main, args_for(emulator, lifetime="90d"))[0]
    expiry = module.parse_api_time(result["expired_at"])
    assert abs((expiry - datetime.now(UTC)) - timedelta(days=90)) < timedelta(minutes=1)
    again = run_module(module.main, args_for(emulator, lifetime="30d"))[0]
    assert not again["changed"]


def test_rotate_before_regenerates_a_token_close_to_expiry(emulator):
    soon = format_rfc3339(datetime.now(UTC) + timedelta(days=10))
    emulator.regenerate_audit_trail_token("acme", expired_at=soon)
    check = run_module(module.main, args_for(emulator, rotate_before="30d", lifetime="90d"), check_mode=True)[0]
    assert check["changed"] and check["operation"] == "regenerate" and mutations(emulator) == []
    result = run_module(module.main, args_for(emulator, rotate_before="30d", lifetime="90d"))[0]
    assert result["changed"] and "rotate_before" in result["reason"]
    again = run_module(module.main, args_for(emulator, rotate_before="30d", lifetime="90d"))[0]
    assert not again["changed"]


def test_force_regenerate_always_changes(emulator):
    tokens = set()
    for dummy in range(2):
        result = run_module(module.main, args_for(emulator, force_regenerate=True))[0]
        assert result["changed"]
        tokens.add(result["token"])
    assert len(tokens) == 2


def test_absent_deletes_then_is_idempotent(emulator):
    emulator.regenerate_audit_trail_token("acme")
    check = run_module(module.main, args_for(emulator, state="absent"), check_mode=True)[0]
    assert check["changed"] and mutations(emulator) == []
    result = run_module(module.main, args_for(emulator, state="absent"))[0]
    assert result["changed"] and emulator.audit_trail_token("acme") is None
    assert "id" not in result
    again = run_module(module.main, args_for(emulator, state="absent"))[0]
    assert not again["changed"]


def test_terraform_enterprise_is_refused_with_no_mutation(emulator):
    emulator.set_platform("tfe")
    for state in ("present", "absent"):
        result, failed = run_module(module.main, args_for(emulator, state=state, force_regenerate=True))
        assert failed and "Terraform Enterprise" in result["msg"]
    assert mutations(emulator) == []
    assert emulator.organization_token("acme") is None or emulator.organization_token("acme")["token"]


@pytest.mark.parametrize("proxy, warned", [({"http_proxy": "http://127.0.0.1:9"}, True),
                                           ({"http_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1"}, False),
                                           ({}, False)])
def test_loopback_http_through_an_environment_proxy_is_warned_about(emulator, monkeypatch, proxy, warned):
    from ansible.module_utils import basic

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in proxy.items():
        monkeypatch.setenv(name, value)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: warnings.append(message))
    result, failed = run_module(module.main, args_for(emulator, max_retries=0, allow_insecure_http=True))
    proxy_warnings = [message for message in warnings if "proxy" in message]
    assert bool(proxy_warnings) is warned
    for message in proxy_warnings:
        assert emulator.url in message and "no_proxy" in message and "127.0.0.1:9" not in message
    assert failed is warned  # the closed proxy port: the request really went to the proxy


@pytest.mark.parametrize("organization", ["..", "."])
def test_dot_segment_organizations_never_reach_another_path(emulator, organization):
    emulator.regenerate_audit_trail_token("acme")
    result, failed = run_module(module.main, args_for(emulator, organization=organization, state="absent"))
    assert failed and result["msg"].startswith("organization ")
    # requests removes dot segments: ".." would have been DELETE /api/v2/authentication-token
    assert emulator.requests == []


def test_a_requests_older_than_2_28_is_refused_before_any_request(emulator, monkeypatch):
    from ansible_collections.tfe.audit.plugins.module_utils import _module

    monkeypatch.setattr(_module, "REQUESTS_VERSION", "2.27.1")
    result, failed = run_module(module.main, args_for(emulator))
    assert failed and "requests 2.27.1 is too old" in result["msg"] and "requests>=2.28" in result["msg"]
    assert emulator.requests == []


def test_invalid_token_message(emulator):
    result, failed = run_module(module.main, args_for(emulator, token="wrong-token-value"))
    assert failed and "missing or invalid" in result["msg"] and "wrong-token-value" not in json.dumps(result)


def test_create_without_entitlement_names_all_three_causes(emulator):
    emulator.add_organization("small", entitlement=False)
    result, failed = run_module(module.main, args_for(emulator, organization="small"))
    assert failed
    for cause in ("does not exist", "no permission", "audit-logging entitlement"):
        assert cause in result["msg"]


@pytest.mark.parametrize("kwargs, option", [
    ({"expired_at": "2030-01-01"}, "expired_at"),
    ({"expired_at": "2030-01-01T00:00:00"}, "expired_at"),
    ({"expired_at": "2001-01-01T00:00:00Z"}, "expired_at"),
    ({"expired_at": "garbage"}, "expired_at"),
    ({"expired_at": "10000-01-01T00:00:00Z"}, "expired_at"),
    ({"lifetime": "0d"}, "lifetime"),
    ({"lifetime": "-1d"}, "lifetime"),
    ({"lifetime": "abc"}, "lifetime"),
    ({"lifetime": "9999999w"}, "lifetime"),
    ({"rotate_before": "soon"}, "rotate_before"),
    ({"organization": ""}, "organization"),
    ({"organization": "a/b"}, "organization"),
    ({"organization": "a b"}, "organization"),
    ({"hostname": "https://example.com/api"}, "hostname"),
    ({"hostname": "ftp://example.com"}, "hostname"),
    ({"timeout": 0}, "timeout"),
    ({"max_retries": -1}, "max_retries"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path"),
    ({"expired_at": "2031-01-01T00:00:00Z", "lifetime": "90d"}, "expired_at"),
])
def test_bad_input_fails_before_any_request(emulator, kwargs, option):
    args = args_for(emulator)
    args.update(kwargs)
    result, failed = run_module(module.main, args)
    assert failed and option in result["msg"]
    assert emulator.requests == []


def test_missing_organization_everywhere(emulator, monkeypatch):
    monkeypatch.delenv("TFE_ORGANIZATION", raising=False)
    result, failed = run_module(module.main, dict(hostname=emulator.url, token=TOKEN))
    assert failed and "organization is required" in result["msg"] and "TFE_ORGANIZATION" in result["msg"]


def test_environment_supplies_the_connection(emulator, monkeypatch):
    monkeypatch.setenv("TFE_HOSTNAME", emulator.url)
    monkeypatch.setenv("TFE_TOKEN", TOKEN)
    monkeypatch.setenv("TFE_ORGANIZATION", "acme")
    result, failed = run_module(module.main, {})
    assert not failed and result["operation"] == "create"


# -- the info module ----------------------------------------------------------------------------


def test_info_module_reports_metadata_and_never_a_secret(emulator):
    from ansible_collections.tfe.audit.plugins.modules import tfe_audit_trail_token_info as info

    result, failed = run_module(info.main, args_for(emulator), check_mode=True)
    assert not failed and result["exists"] is False and result["id"] is None and not result["changed"]
    live = emulator.regenerate_audit_trail_token("acme")
    result, failed = run_module(info.main, args_for(emulator))
    assert result["exists"] and result["id"] == live["id"] and result["expired_at"] == live["expired_at"]
    assert live["token"] not in json.dumps(result)
    assert mutations(emulator) == []


# -- known_token: the secret the caller holds ---------------------------------------------------


def test_known_live_token_is_kept_with_three_requests(emulator):
    live = emulator.regenerate_audit_trail_token("acme")
    emulator.clear_requests()
    result, failed = run_module(module.main, args_for(emulator, known_token=live["token"]))
    assert not failed and not result["changed"], result
    assert [r["path"] for r in emulator.requests] == [
        "/api/v2/ping", "/api/v2/organizations/acme/authentication-token", "/api/v2/organization/audit-trail"]


def test_stale_known_token_is_replaced(emulator):
    stale = emulator.regenerate_audit_trail_token("acme")["token"]
    emulator.regenerate_audit_trail_token("acme")  # someone regenerated it outside Ansible
    check = run_module(module.main, args_for(emulator, known_token=stale), check_mode=True)[0]
    assert check["changed"] and check["operation"] == "regenerate" and mutations(emulator) == []
    result = run_module(module.main, args_for(emulator, known_token=stale))[0]
    assert result["changed"] and "known_token" in result["reason"]
    assert result["token"] == emulator.audit_trail_token("acme")["token"]
    assert stale not in json.dumps({k: v for k, v in result.items() if k != "token"})


def test_empty_known_token_regenerates_without_checking(emulator):
    emulator.regenerate_audit_trail_token("acme")
    emulator.clear_requests()
    result = run_module(module.main, args_for(emulator, known_token=""))[0]
    assert result["changed"] and result["operation"] == "regenerate"
    assert not [r for r in emulator.requests if r["path"] == "/api/v2/organization/audit-trail"]


def test_unverified_known_token_is_trusted(emulator):
    emulator.regenerate_audit_trail_token("acme")
    emulator.clear_requests()
    result = run_module(module.main, args_for(emulator, known_token="whatever", verify_known_token=False))[0]
    assert not result["changed"] and len(emulator.requests) == 2


def test_known_token_check_that_is_not_401_fails_and_never_regenerates(emulator):
    live = emulator.regenerate_audit_trail_token("acme")
    emulator.add_fault(method="GET", path="audit-trail$", status=503, count=100)
    result, failed = run_module(module.main, args_for(emulator, known_token=live["token"], max_retries=1))
    assert failed and "503" in result["msg"] and "known_token" in result["msg"]
    assert mutations(emulator) == [] and emulator.audit_trail_token("acme")["token"] == live["token"]
    assert live["token"] not in json.dumps(result)


# -- a create answer whose metadata the client cannot take: the new secret is never lost ----------------

OVERFLOW = "9999-12-31T23:30:00.000-01:00"  # a valid RFC 3339 time, in year 10000 in UTC


@pytest.mark.parametrize("attribute", ["expired-at", "created-at", "last-used-at"])
def test_a_create_answer_with_a_time_beyond_year_9999_keeps_the_new_secret(emulator, attribute):
    from tfe_emulator import token_document

    old = emulator.regenerate_audit_trail_token("acme")
    planted = emulator.regenerate_audit_trail_token("acme")  # the answer's secret is a live token: old is revoked
    emulator.add_fault(method="POST", path="authentication-token", status=201,
                       body=json.dumps(token_document(**{attribute: OVERFLOW, "token": planted["token"]})))

    result, failed = run_module(module.main, args_for(emulator, known_token=old["token"]))

    assert not failed, result
    assert result["changed"] and result["operation"] == "regenerate" and result["token"] == planted["token"]
    assert [r["method"] for r in emulator.requests].count("POST") == 1


def test_the_clients_warnings_are_emitted_and_the_secret_returned(emulator, monkeypatch):
    """The client returns the metadata it could not take as None, with warnings that name it."""
    from ansible.module_utils import basic
    from ansible_collections.tfe.audit.plugins.module_utils._client import TfeClient

    answer = dict(id="at-1", created_at=None, expired_at=None, last_used_at=None, token="a-new-secret-0123456789",
                  warnings=["the answer's expired-at is not a time between the years 1 and 9999"])
    monkeypatch.setattr(TfeClient, "create_audit_trail_token", lambda self, organization, expired_at=None: answer)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: warnings.append(message))

    result, failed = run_module(module.main, args_for(emulator, lifetime="90d"))

    assert not failed and result["token"] == answer["token"] and result["operation"] == "create"
    assert result["expired_at"] is None and result["diff"]["after"]["expired_at"] is None
    assert warnings == answer["warnings"]
    assert "warnings" not in result["diff"]["after"] and answer["token"] not in json.dumps(result["diff"])
