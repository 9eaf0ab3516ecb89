# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The event source's arguments: validated by ansible-core on the modules' connection spec plus its own options,
worded as a module's; documented once; bad ones stop the source at start, before any request."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from ansible_collections.tfe.audit.extensions.eda.plugins.event_source import audit_trail
from ansible_collections.tfe.audit.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor, save_cursor
from ansible_collections.tfe.audit.plugins.module_utils._time import format_time
from ansible_collections.tfe.audit.plugins.modules import tfe_audit_trail_token_info
from ansible_collections.tfe.audit.plugins.plugin_utils._source_options import ArgumentError, Options, argument_spec
from ansible_collections.tfe.audit.tests.unit.extensions.eda.plugins.event_source.source_runner import (
    ORG, args_for, run)
from ansible_collections.tfe.audit.tests.unit.plugins.modules.module_runner import run_module


def options(args, environ=None):
    return Options(args, audit_trail.argument_spec(), environ)


@pytest.mark.parametrize("bad, names", [
    ({"interval": 0}, ["interval", "interval: 60"]),
    ({"interval": "soon"}, ["interval", "interval: 60"]),
    ({"page_size": 5000}, ["page_size", "page_size: 1000"]),
    ({"page_size": 2.5}, ["page_size", "page_size: 1000"]),
    ({"since": "yesterday"}, ["since", "since: 2030-12-31"]),
    ({"hostname": "ftp://example.com"}, ["hostname", "app.terraform.io"]),
    ({"validate_certs": "maybe"}, ["validate_certs", "validate_certs: true"]),
    ({"ca_path": "/nonexistent/ca.pem"}, ["ca_path", "ca_path: "]),
    ({"state_file": "/nonexistent/dir/state.json"}, ["state_file", "does not exist"]),
    ({"token_file": "/nonexistent/token"}, ["token_file", "token_file: "]),
    ({"timeout": -1}, ["timeout", "timeout: 30"]),
    ({"feedback": "often"}, ["feedback", "feedback: true"]),
    ({"intervall": 5}, ["Unsupported parameters for (tfe.audit.audit_trail) event source: intervall", "interval"]),
], ids=lambda value: str(value)[:40])
def test_bad_arguments_fail_at_start_naming_the_argument(emulator, secret, bad, names):
    args = args_for(emulator, secret)
    args.update(bad)
    with pytest.raises(ArgumentError) as failure:
        run(audit_trail.main(asyncio.Queue(), args))
    for name in names:
        assert name in str(failure.value)
    assert secret not in str(failure.value)
    assert emulator.requests == []


@pytest.mark.parametrize("bad", [{"validate_certs": "maybe"}, {"max_retries": "many"}, {"timeout": [1]},
                                 {"timeout": "soon", "validate_certs": "sometimes"}, {"no_such_option": 1}],
                         ids=lambda value: str(value)[:30])
def test_a_bad_connection_argument_reads_as_in_a_module(emulator, secret, bad):
    result, failed = run_module(tfe_audit_trail_token_info.main, dict(hostname=emulator.url, token=secret,
                                                                      organization=ORG, **bad))
    assert failed
    with pytest.raises(ArgumentError) as failure:
        options(dict(hostname=emulator.url, token=secret, **bad))
    in_module = re.sub(r"\(\S+\) module", "(tfe.audit.audit_trail) event source", result["msg"])
    source = str(failure.value)
    if "Unsupported" in in_module:  # each lists its own options
        in_module, source = in_module.split(". Supported", maxsplit=1)[0], source.split(". Supported", maxsplit=1)[0]
    assert source.startswith(in_module)


def test_token_and_token_file_together_are_refused(emulator, secret, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(secret)
    with pytest.raises(ArgumentError, match=r"mutually exclusive: token\|token_file") as failure:
        options(args_for(emulator, secret, token_file=str(token_file)))
    assert secret not in str(failure.value)


def test_an_empty_token_file_fails_at_start(emulator, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("\n")
    with pytest.raises(ArgumentError, match="token_file .* must hold only the token .*empty"):
        options(args_for(emulator, token_file=str(token_file)))


def test_a_token_file_of_several_words_fails_without_showing_them(emulator, secret, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("%s\n%s-old\n" % (secret, secret))
    with pytest.raises(ArgumentError, match="several words") as failure:
        options(args_for(emulator, token_file=str(token_file)))
    assert secret not in str(failure.value)


def test_without_a_token_the_message_says_where_to_put_one(emulator):
    with pytest.raises(ArgumentError, match="TFE_AUDIT_TRAIL_TOKEN or TFE_TOKEN"):
        options(args_for(emulator), environ={})


def test_the_audit_trail_token_variable_comes_before_tfe_token(emulator):
    found = options(args_for(emulator), environ={"TFE_TOKEN": "owner", "TFE_AUDIT_TRAIL_TOKEN": "trail"})
    assert found.tokens.read() == ("trail", "TFE_AUDIT_TRAIL_TOKEN")
    assert options(args_for(emulator), environ={"TFE_TOKEN": "owner"}).tokens.read() == ("owner", "TFE_TOKEN")


def test_string_arguments_from_rulebook_variables_are_accepted(emulator, secret):
    found = options(args_for(emulator, secret, interval="2.5", page_size="50", validate_certs="false"))
    assert (found.interval, found.page_size, found.connection.verify) == (2.5, 50, False)


def test_the_hostname_comes_from_the_environment_as_for_the_modules(emulator, secret, monkeypatch):
    monkeypatch.setenv("TFE_HOSTNAME", emulator.url)
    assert options({"token": secret}).connection.base_url == emulator.url


def test_an_export_cursor_is_refused_as_state_file(emulator, secret, tmp_path):
    state = tmp_path / "cursor.json"
    then = "2030-01-01T00:00:00.000Z"
    save_cursor(str(state), Cursor(then, [(then, "x")], then, dest="/var/log/audit.ndjson"))
    with pytest.raises(ArgumentError, match="cursor_file of the export into /var/log/audit.ndjson"):
        run(audit_trail.main(asyncio.Queue(), args_for(emulator, secret, state_file=str(state))))


def test_a_damaged_state_file_is_named(emulator, secret, tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(ArgumentError, match=r"state_file .*state.json is not a cursor \(not JSON\)"):
        run(audit_trail.main(asyncio.Queue(), args_for(emulator, secret, state_file=str(state))))


def test_a_state_from_the_future_is_refused(emulator, secret, tmp_path):
    state = tmp_path / "state.json"
    ahead = format_time(datetime.now(timezone.utc) + timedelta(days=1))
    save_cursor(str(state), Cursor(ahead, [(ahead, "x")], ahead))
    with pytest.raises(ArgumentError, match="later than now"):
        run(audit_trail.main(asyncio.Queue(), args_for(emulator, secret, state_file=str(state))))


def test_plain_http_to_a_host_that_is_not_loopback_is_refused_unless_allowed(emulator, secret):
    with pytest.raises(ArgumentError, match="clear text.*allow_insecure_http: true"):
        options(args_for(emulator, secret, hostname="http://tfe.example.com"))
    allowed = options(args_for(emulator, secret, hostname="http://tfe.example.com", allow_insecure_http=True))
    assert allowed.connection.base_url == "http://tfe.example.com"
    assert options(args_for(emulator, secret)).connection.base_url == emulator.url  # loopback: allowed


def test_the_documentation_is_the_argument_spec():
    """Own options in DOCUMENTATION, the connection options in the modules' fragment: together, the spec."""
    documentation = yaml.safe_load(audit_trail.DOCUMENTATION)
    assert documentation["extends_documentation_fragment"] == ["tfe.audit.connection", "tfe.audit.connection.lookback"]
    fragment = dict(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"],
                    **yaml.safe_load(ModuleDocFragment.LOOKBACK)["options"])
    documented = dict(fragment, **documentation["options"])
    spec = argument_spec(audit_trail.argument_spec())
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
        assert sorted(documented[name].get("aliases", [])) == sorted(option.get("aliases", [])), name
    examples = yaml.safe_load(audit_trail.EXAMPLES)
    assert set(examples[0]["sources"][0]["tfe.audit.audit_trail"]) <= set(spec)
