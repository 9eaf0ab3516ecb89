# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TfeModule: the one edge where errors become fail_json, what a failure says; the shared value parsers.
(The connection options themselves: test_connection.py.)"""

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError, OptionError
from ansible_collections.tfe.audit.plugins.module_utils._module import (
    TOKEN_MUTUALLY_EXCLUSIVE,
    TfeModule,
    format_rfc3339,
    organization_argument_spec,
    parse_duration,
    parse_rfc3339,
    token_argument_spec,
    validate_organization,
)
from ansible_collections.tfe.audit.plugins.module_utils._time import UTC
from ansible_collections.tfe.audit.plugins.modules import tfe_audit_trail_token
from ansible_collections.tfe.audit.tests.unit.conftest import EMULATOR_TOKEN
from ansible_collections.tfe.audit.tests.unit.plugins.modules.module_runner import run_module

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


def module_running(work):
    """A module's main() that hands its work to TfeModule.run, with no try of its own."""
    def main():
        tfe = TfeModule(argument_spec=organization_argument_spec(), supports_check_mode=True)
        tfe.run(work, tfe)
    return main


def connection_args(emulator, **args):
    return dict(dict(hostname=emulator.url, token=EMULATOR_TOKEN, organization="acme", max_retries=0), **args)


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: seen.append(message))
    return seen


# -- the edge: any TfeAuditError becomes fail_json, in words fit for it --------------------------------------


def test_what_the_work_returns_is_the_result(emulator):
    result, failed = run_module(module_running(lambda tfe: dict(changed=False, seen=tfe.params["organization"])),
                                connection_args(emulator))
    assert not failed and result == dict(changed=False, seen="acme")


@pytest.mark.parametrize("error", [OptionError("organization 'a b' is not valid; for example organization: my-org"),
                                   FeedError("dest /x is not a regular file")])
def test_an_option_or_feed_error_fails_with_its_message_and_the_result_so_far(emulator, error):
    def work(tfe):
        tfe.result.update(events=3)
        raise error

    result, failed = run_module(module_running(work), connection_args(emulator))
    assert failed and result == dict(msg=error.message, events=3)
    assert emulator.requests == []


def test_an_api_error_says_what_the_module_was_doing(emulator):
    def work(tfe):
        tfe.doing("read the audit trail token", "acme")
        return tfe.client.read_audit_trail_token("acme")

    result, failed = run_module(module_running(work), connection_args(emulator, token="wrong-token"))
    assert failed and result["msg"].startswith("Cannot read the audit trail token for organization 'acme': the API "
                                               "token is missing or invalid (HTTP 401 from %s)" % emulator.url)
    assert result["error"] == dict(status=401, kind="http", method="GET", errors=["unauthorized"],
                                   path="/organizations/acme/authentication-token")


def test_hints_explain_a_status_for_this_module(emulator):
    emulator.add_fault(method="GET", path="audit-trail", status=404)

    def work(tfe):
        tfe.doing("read the audit trail", hints={404: "The organization lacks the entitlement."})
        return tfe.client.read_audit_trail()

    result, failed = run_module(module_running(work), connection_args(emulator))
    assert failed and result["msg"] == ("Cannot read the audit trail: HTTP 404 from %s. The organization lacks the "
                                        "entitlement." % emulator.url)


def test_an_error_that_is_not_the_collections_is_not_hidden(emulator):
    def work(tfe):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_module(module_running(work), connection_args(emulator))


def test_a_create_404_names_the_token_kind_beside_the_entitlement(emulator):
    emulator.add_organization("small", entitlement=False)
    result, failed = run_module(tfe_audit_trail_token.main, connection_args(emulator, organization="small"))
    assert failed
    for cause in ("does not exist", "no permission", "a user token of someone outside the owners team",
                  "a team token other than the owners team's", "the organization token", "audit-logging entitlement"):
        assert cause in result["msg"]


def test_the_token_options_exclusions_are_declared_in_the_spec():
    validator = ArgumentSpecValidator(token_argument_spec(), mutually_exclusive=TOKEN_MUTUALLY_EXCLUSIVE)
    outcome = validator.validate(dict(expired_at="2031-01-01T00:00:00Z", lifetime="90d"))
    assert "mutually exclusive: expired_at|lifetime" in " ".join(outcome.error_messages)


# -- bad input the connection finds, in a module: before any request ------------------------------------------


@pytest.fixture
def proxy_to_nowhere(monkeypatch, closed_port):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:%d" % closed_port)


def test_a_module_refuses_loopback_http_an_environment_proxy_would_carry(emulator, proxy_to_nowhere, warnings):
    result, failed = run_module(tfe_audit_trail_token.main, connection_args(emulator))
    assert failed and "allow_insecure_http: true" in result["msg"] and "no_proxy" in result["msg"]
    assert "error" not in result and emulator.requests == []


def test_with_allow_insecure_http_a_module_goes_through_the_proxy_and_warns(emulator, proxy_to_nowhere, warnings):
    result, failed = run_module(tfe_audit_trail_token.main, connection_args(emulator, allow_insecure_http=True))
    assert [message for message in warnings if "proxy" in message and "allow_insecure_http is true" in message]
    # The request went to the proxy (where nothing listens), not to the emulator.
    assert failed and result["error"]["kind"] == "network" and emulator.requests == []


@pytest.mark.parametrize("token", [EMULATOR_TOKEN + "\n", EMULATOR_TOKEN + "\nX-Injected: 1", "tökén"])
def test_a_module_refuses_a_token_http_cannot_carry_before_any_request(emulator, token):
    result, failed = run_module(tfe_audit_trail_token.main, connection_args(emulator, token=token))
    assert failed and "token option" in result["msg"]
    assert token.split("\n")[0] not in json.dumps(result, ensure_ascii=False)
    assert emulator.requests == []


# -- values -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["my-org", "acme_corp", "A1", "a" * 255])
def test_valid_organization_names(name):
    assert validate_organization(name) == name


@pytest.mark.parametrize("name", [".", "..", "a.b", "acme/..", "..%2f", "%2e%2e", "acme corp", "ácme", "a" * 256,
                                  "acme\n", "acme\\x", "{{ lookup('pipe', 'id') }}", "acme?token=x", "acme#"])
def test_organization_names_outside_hcp_terraforms_rule_are_refused(name):
    with pytest.raises(OptionError) as info:
        validate_organization(name)
    assert str(info.value).startswith("organization ") and "for example organization: my-org" in str(info.value)


# -- parsers: examples and properties -----------------------------------------------------------


def test_rfc3339_normalises_to_utc():
    assert format_rfc3339(parse_rfc3339("2030-06-01T02:30:00+02:30")) == "2030-06-01T00:00:00.000Z"
    assert format_rfc3339(parse_rfc3339("2030-06-01t00:00:00.999z")) == "2030-06-01T00:00:00.000Z"


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)))
def test_rfc3339_round_trips_to_the_second(moment):
    assert parse_rfc3339(format_rfc3339(moment)) == moment.replace(microsecond=0)


@given(st.text(max_size=40))
def test_rfc3339_parser_raises_only_option_error(text):
    try:
        result = parse_rfc3339(text)
    except OptionError as exc:
        assert "expired_at" in str(exc)
    else:
        assert result.tzinfo is not None


@given(st.integers(min_value=1, max_value=10 ** 6), st.sampled_from("wdhms"))
def test_duration_units(number, unit):
    seconds = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
    assert parse_duration("%d%s" % (number, unit), "lifetime") == timedelta(seconds=number * seconds)


@given(st.text(max_size=30))
def test_duration_parser_raises_only_option_error(text):
    try:
        assert parse_duration(text, "rotate_before") > timedelta(0)
    except OptionError as exc:
        assert "rotate_before" in str(exc)
