# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The API client against the emulator on loopback: retries, errors, auth, TLS and the platform check."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

import pytest
from tfe_emulator import REAL_LOOKING_TOKEN, token_document  # tests/unit/conftest.py puts it on sys.path
from requests.adapters import HTTPAdapter

from ansible_collections.tfe.audit.plugins.module_utils import _client
from ansible_collections.tfe.audit.plugins.module_utils._client import (
    USER_AGENT,
    TfeClient,
    decode_jsonapi_errors,
)
from ansible_collections.tfe.audit.plugins.module_utils._errors import TfeError

TOKEN = "admin-token-for-tests"
TOKEN_PATH = "/api/v2/organizations/acme/authentication-token"


def make_client(emulator, **kwargs):
    kwargs.setdefault("hostname", "127.0.0.1")
    kwargs.setdefault("max_retries", 3)
    return TfeClient(emulator.url, kwargs.pop("token", TOKEN), **kwargs)


def api_requests(emulator, method=None):
    return [r for r in emulator.requests if method is None or r["method"] == method]


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    # Keep the exponential backoff's shape, at a tenth of the wait.
    monkeypatch.setattr(_client, "BACKOFF_BASE", 0.02)
    monkeypatch.setattr(_client, "BACKOFF_MAX", 0.2)


class ForwardingAdapter(HTTPAdapter):
    """Sends requests meant for an HCP Terraform hostname to the emulator, so a test can count them."""

    def __init__(self, origin, target):
        super(ForwardingAdapter, self).__init__()
        self.origin, self.target = origin, target

    def send(self, request, **kwargs):
        request.url = request.url.replace(self.origin, self.target, 1)
        return super(ForwardingAdapter, self).send(request, **kwargs)


def hcp_hostname_client(emulator, hostname="app.terraform.io"):
    client = TfeClient("https://" + hostname, TOKEN, hostname=hostname)
    client.session.mount("https://" + hostname, ForwardingAdapter("https://" + hostname, emulator.url))
    return client


# -- life cycle --------------------------------------------------------------------------------


def test_create_read_delete_round_trip(emulator):
    client = make_client(emulator)
    assert client.read_audit_trail_token("acme") is None
    created = client.create_audit_trail_token("acme", "2031-01-02T03:04:05.000Z")
    assert created["id"].startswith("at-")
    assert created["token"] == emulator.audit_trail_token("acme")["token"]
    assert created["expired_at"] == "2031-01-02T03:04:05.000Z"
    read = client.read_audit_trail_token("acme")
    assert read["id"] == created["id"] and "token" not in read
    assert client.delete_audit_trail_token("acme") is True
    assert client.delete_audit_trail_token("acme") is False
    assert emulator.audit_trail_token("acme") is None


def test_every_request_names_the_collection_and_mutations_carry_jsonapi_content_type(emulator):
    client = make_client(emulator)
    client.create_audit_trail_token("acme")
    client.delete_audit_trail_token("acme")
    logged = api_requests(emulator)
    assert {r["user_agent"] for r in logged} == {USER_AGENT}
    assert USER_AGENT == "tfe.audit/0.1.0"
    for r in logged:
        if r["method"] in ("POST", "DELETE"):
            assert r["content_type"].startswith("application/vnd.api+json")
            assert r["query"].get("token") == "audit-trails"


def test_user_agent_version_matches_galaxy_yml():
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
    with open(os.path.join(root, "galaxy.yml")) as handle:
        version = [line.split(":", 1)[1].strip() for line in handle if line.startswith("version:")][0]
    assert _client.COLLECTION_VERSION == version


def test_organization_name_is_path_escaped(emulator):
    emulator.add_organization("acme corp", entitlement=True)
    client = make_client(emulator)
    client.create_audit_trail_token("acme corp")
    assert emulator.audit_trail_token("acme corp") is not None
    assert emulator.audit_trail_token("acme") is None


# -- platform safety ---------------------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["app.terraform.io", "app.eu.terraform.io"])
def test_hcp_hostnames_need_no_platform_request(emulator, hostname):
    client = hcp_hostname_client(emulator, hostname)
    assert client.read_audit_trail_token("acme") is None
    assert [(r["method"], r["path"]) for r in api_requests(emulator)] == [("GET", TOKEN_PATH)]


def test_other_hosts_ask_ping_once_per_client(emulator):
    client = make_client(emulator)
    client.read_audit_trail_token("acme")
    client.read_audit_trail_token("acme")
    paths = [r["path"] for r in api_requests(emulator)]
    assert paths == ["/api/v2/ping", TOKEN_PATH, TOKEN_PATH]


def test_terraform_enterprise_is_refused_before_any_token_request(emulator):
    emulator.set_platform("tfe")
    client = make_client(emulator)
    for call in (lambda: client.read_audit_trail_token("acme"),
                 lambda: client.create_audit_trail_token("acme"),
                 lambda: client.delete_audit_trail_token("acme")):
        with pytest.raises(TfeError) as info:
            call()
        assert info.value.kind == "platform"
        assert "Terraform Enterprise" in str(info.value)
        assert "regular API token" in str(info.value)
    assert {r["path"] for r in api_requests(emulator)} == {"/api/v2/ping"}


def test_terraform_enterprise_is_refused_even_with_allow_unverified_platform(emulator):
    emulator.set_platform("tfe")
    client = make_client(emulator, allow_unverified_platform=True)
    with pytest.raises(TfeError):
        client.create_audit_trail_token("acme")
    assert api_requests(emulator, "POST") == []


def test_unknown_platform_fails_unless_allowed(emulator):
    emulator.add_fault(method="GET", path="/api/v2/ping$", status=404, count=2)
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "Cannot establish" in str(info.value) and "allow_unverified_platform" in str(info.value)
    warnings = []
    client = make_client(emulator, allow_unverified_platform=True, warn=warnings.append)
    assert client.read_audit_trail_token("acme") is None
    assert client.platform == "unverified" and "allow_unverified_platform" in warnings[0]


# -- errors ------------------------------------------------------------------------------------


def test_invalid_token_gives_401_without_echoing_it(emulator):
    secret = "not-a-valid-token-0123456789"
    with pytest.raises(TfeError) as info:
        make_client(emulator, token=secret).read_audit_trail_token("acme")
    assert info.value.status == 401
    assert info.value.method == "GET" and info.value.path.endswith("/authentication-token")
    assert secret not in repr(info.value.__dict__)


def test_create_without_entitlement_is_404(emulator):
    emulator.add_organization("small", entitlement=False)
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("small")
    assert info.value.status == 404 and info.value.method == "POST"


def test_past_expiry_is_422_with_the_servers_detail(emulator):
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("acme", "2001-01-01T00:00:00.000Z")
    assert info.value.status == 422
    assert info.value.errors and info.value.details in str(info.value)


def test_non_json_body_from_a_proxy_is_a_clear_error(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=200, count=1,
                       headers={"Content-Type": "text/html"}, body="<html>login</html>")
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "not JSON" in str(info.value) and "text/html" in str(info.value)


@pytest.mark.parametrize("body, expected", [
    ({"errors": [{"status": "404", "title": "not found"}]}, ["not found"]),
    ({"errors": [{"status": 429, "title": "Too many requests", "detail": "slow down"}]},
     ["Too many requests: slow down"]),
    ({"errors": ["plain message"]}, ["plain message"]),
    ({"errors": "not a list"}, []),
    ({"data": {}}, []),
    (None, []),
    ([1, 2], []),
])
def test_decode_jsonapi_errors(body, expected):
    assert decode_jsonapi_errors(body) == expected


# -- retries -----------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_and_waited_for(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=1,
                       headers={"Retry-After": "1", "X-RateLimit-Reset": "0.05"})
    client = make_client(emulator)
    client.ensure_hcp_terraform()
    started = time.monotonic()
    assert client.read_audit_trail_token("acme") is None
    assert time.monotonic() - started >= 1.0  # Retry-After wins over the reset header
    assert [r["status"] for r in api_requests(emulator, "GET")][-2:] == [429, 404]


def test_429_with_only_rate_limit_reset_waits_that_long(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=2,
                       headers={"X-RateLimit-Reset": "0.3"})
    client = make_client(emulator)
    client.ensure_hcp_terraform()
    started = time.monotonic()
    assert client.read_audit_trail_token("acme") is None
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 2.0


def test_429_does_not_use_up_max_retries(emulator, monkeypatch):
    """A fleet sharing one rate limit can be told "later" many times in a row: only the wait cap ends it."""
    monkeypatch.setattr(_client, "MIN_RATE_LIMIT_WAIT", 0.01)
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=6,
                       headers={"X-RateLimit-Reset": "0.02"})
    client = make_client(emulator, max_retries=2)
    assert client.read_audit_trail_token("acme") is None
    assert [r["status"] for r in api_requests(emulator, "GET")][1:] == [429] * 6 + [404]


def test_persistent_429_stops_at_the_wait_cap(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=1000,
                       headers={"X-RateLimit-Reset": "0.3"})
    client = make_client(emulator, max_retries=1, max_wait=1.5)
    client.ensure_hcp_terraform()
    started = time.monotonic()
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.status == 429 and "HTTP 429" in str(info.value)
    assert time.monotonic() - started < 3.0
    attempts = len(api_requests(emulator, "GET")) - 1
    assert 3 <= attempts <= 5  # waits of 0.30-0.33 s: four fit in 1.5 s, whatever max_retries says


def test_429_waits_at_least_the_floor(emulator):
    """X-RateLimit-Reset: 0 must not turn into a tight loop against the rate limit."""
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=2,
                       headers={"X-RateLimit-Reset": "0"})
    client = make_client(emulator)
    client.ensure_hcp_terraform()
    started = time.monotonic()
    assert client.read_audit_trail_token("acme") is None
    assert time.monotonic() - started >= 2 * _client.MIN_RATE_LIMIT_WAIT


def test_max_retries_zero_does_not_retry_429(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=1,
                       headers={"X-RateLimit-Reset": "0.01"})
    client = make_client(emulator, max_retries=0)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.status == 429
    assert [r["status"] for r in api_requests(emulator, "GET")][1:] == [429]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_then_succeed(emulator, status):
    emulator.add_fault(method="POST", path="authentication-token", status=status, count=2)
    created = make_client(emulator).create_audit_trail_token("acme")
    assert created["token"] == emulator.audit_trail_token("acme")["token"]
    assert [r["status"] for r in api_requests(emulator, "POST")] == [status, status, 201]


def test_persistent_503_stops_after_max_retries(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=503, count=100)
    with pytest.raises(TfeError) as info:
        make_client(emulator, max_retries=2).read_audit_trail_token("acme")
    assert info.value.status == 503
    assert len(api_requests(emulator, "GET")) == 1 + 3  # ping, then 1 try + 2 retries


def test_500_is_not_retried(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=500, count=5)
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert info.value.status == 500
    assert len([r for r in api_requests(emulator, "GET") if r["path"] == TOKEN_PATH]) == 1


def test_total_wait_cap_stops_retrying_early(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=10,
                       headers={"Retry-After": "5"})
    client = make_client(emulator, max_retries=10, max_wait=2)
    client.ensure_hcp_terraform()
    started = time.monotonic()
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.status == 429
    assert time.monotonic() - started < 1.0  # the first wait alone would pass the cap


def test_dropped_connection_is_retried(emulator):
    emulator.add_fault(method="DELETE", path="authentication-token", drop=True, count=1)
    client = make_client(emulator)
    client.create_audit_trail_token("acme")
    assert client.delete_audit_trail_token("acme") is True
    assert [r["status"] for r in api_requests(emulator, "DELETE")] == ["dropped", 204]


def test_slow_answer_times_out_with_a_clear_error(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=None, delay=1.0, count=10)
    client = make_client(emulator, timeout=0.2, max_retries=1)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "timeout" and "timeout" in str(info.value)


def test_connection_refused_is_a_network_error(emulator):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = TfeClient("http://127.0.0.1:%s" % port, TOKEN, hostname="127.0.0.1", max_retries=1)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "network"
    assert "Cannot reach" in str(info.value) and "refused" in str(info.value).lower()


def test_unknown_host_is_a_network_error(monkeypatch):
    import socket

    def nxdomain(host, *args, **kwargs):
        # Answer like a resolver with no such name, without asking one (tests stay on loopback).
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    client = TfeClient("https://tfe.invalid", TOKEN, hostname="tfe.invalid", max_retries=0)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "network" and "tfe.invalid" in str(info.value)
    assert "Name or service not known" in str(info.value)


# -- auth and TLS ------------------------------------------------------------------------------


def test_netrc_cannot_replace_the_bearer_token(emulator, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password wrong-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = make_client(emulator)
    assert client.read_audit_trail_token("acme") is None  # a 401 would raise


def test_unauthenticated_ping_sends_no_netrc_credentials(emulator, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = make_client(emulator)
    sent = []
    client.session.hooks["response"].append(lambda response, **kwargs: sent.append(response.request.headers))
    client.ensure_hcp_terraform()
    assert "Authorization" not in sent[0]


def test_bearer_auth_repr_hides_the_token():
    assert "secret-value" not in repr(_client.BearerAuth("secret-value"))


@pytest.fixture
def tls_emulator():
    from tfe_emulator import Emulator

    with Emulator(platform="hcp", tls=True, api_tokens=(TOKEN,)) as emu:
        emu.add_organization("acme", entitlement=True)
        yield emu


def test_ca_path_is_honoured_even_when_requests_ca_bundle_is_set(tls_emulator, monkeypatch):
    import certifi

    # Point requests' environment at a bundle that does not hold the emulator's CA:
    # a Session.verify would be overridden by it; a per-request verify is not.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    client = TfeClient(tls_emulator.url, TOKEN, hostname="127.0.0.1", verify=tls_emulator.ca_path)
    assert client.read_audit_trail_token("acme") is None


def test_untrusted_certificate_is_a_tls_error(tls_emulator, monkeypatch):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    client = TfeClient(tls_emulator.url, TOKEN, hostname="127.0.0.1", max_retries=0)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "tls" and "ca_path" in str(info.value)


def test_validate_certs_false_skips_verification(tls_emulator):
    client = TfeClient(tls_emulator.url, TOKEN, hostname="127.0.0.1", verify=False)
    assert client.read_audit_trail_token("acme") is None


def test_redirects_are_not_followed(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=302, count=1,
                       headers={"Location": "https://elsewhere.invalid/"}, body="")
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert info.value.status == 302 and "elsewhere.invalid" in str(info.value)


# -- a hostile server: what it answers is never trusted, never echoed --------------------------------

REAL_LOOKING = REAL_LOOKING_TOKEN


def answer(emulator, method, document, status=None):
    status = status or (201 if method == "POST" else 200)
    body = document if isinstance(document, str) else json.dumps(document)
    emulator.add_fault(method=method, path="authentication-token", status=status, body=body,
                       headers={"Content-Type": "application/vnd.api+json"})


def assert_refused_without_echo(info, emulator, value):
    message = str(info.value)
    assert emulator.url in message and "refusing" in message
    echoed = json.dumps(value) if not isinstance(value, str) else value
    for text in (message, repr(vars(info.value))):
        if len(echoed) > 4:  # "", null, 42: nothing to search for
            assert echoed not in text
        assert "lookup" not in text and "pwned" not in text


HOSTILE_TOKENS = [
    ("a Jinja2 template", "{{ lookup('pipe', 'id > pwned.txt') }}"),
    ("a template in a token's shape", "ABCDEFGHIJKLMN.atlasv1.{{lookup('pipe','id')}}"),
    ("a newline inside", "ABCDEFGHIJKLMN.atlasv1.abc\nlookup-pwned"),
    ("a trailing newline", REAL_LOOKING + "\n"),
    ("a space", "ABCDEFGHIJKLMN.atlasv1. lookup-pwned"),
    ("empty", ""),
    ("too short", "ABC.atlasv1.x"),
    ("too long", "A" * 513),
    ("huge", "A" * 1000000),
    ("a number", 12345678901234567890),
    ("a list", [REAL_LOOKING]),
    ("an object", {"value": REAL_LOOKING}),
    ("null", None),
    ("non-ASCII letters", "ÀBCDEFGHIJKLMN.atlasv1.secret"),
]


@pytest.mark.parametrize("value", [case[1] for case in HOSTILE_TOKENS], ids=[case[0] for case in HOSTILE_TOKENS])
def test_create_refuses_a_token_that_does_not_look_like_one(emulator, value):
    answer(emulator, "POST", token_document(token=value))
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("acme")
    assert_refused_without_echo(info, emulator, value)
    assert "token" in str(info.value) and info.value.kind == "response"


def test_create_refuses_a_document_without_a_token(emulator):
    document = token_document()
    del document["data"]["attributes"]["token"]
    answer(emulator, "POST", document)
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("acme")
    assert "null" in str(info.value)


@pytest.mark.parametrize("length", [16, 512])
def test_create_accepts_tokens_of_the_allowed_lengths(emulator, length):
    token = ("ABCDEFGHIJKLMN.atlasv1." + "x" * 600)[:length]
    answer(emulator, "POST", token_document(token=token))
    assert make_client(emulator).create_audit_trail_token("acme")["token"] == token


HOSTILE_METADATA = [
    ("id", "{{ lookup('pipe', 'id > pwned.txt') }}"),
    ("id", "at-1\nlookup"),
    ("id", 42),
    ("id", "at-" + "x" * 200),
    ("created-at", "{{ now() }}"),
    ("expired-at", "2030-01-01T00:00:00.000Z\n{{ lookup('pipe', 'id') }}"),
    ("expired-at", ["2030-01-01T00:00:00.000Z"]),
    ("last-used-at", "yesterday, lookup"),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("field, value", HOSTILE_METADATA)
def test_metadata_of_the_wrong_shape_is_refused(emulator, method, field, value):
    answer(emulator, method, token_document(**{field: value}))
    client = make_client(emulator)
    with pytest.raises(TfeError) as info:
        if method == "GET":
            client.read_audit_trail_token("acme")
        else:
            client.create_audit_trail_token("acme")
    assert_refused_without_echo(info, emulator, value)
    assert field.replace("-", "_") in str(info.value)


@pytest.mark.parametrize("body", [{"data": "at-1"}, {"data": {"id": "at-1", "attributes": []}}, [], "a string", 7])
def test_a_body_that_is_not_a_token_document_is_a_clean_error(emulator, body):
    answer(emulator, "GET", body if body != "a string" else json.dumps(body))
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "not an authentication-token document" in str(info.value)


def test_a_token_on_read_is_dropped_not_returned(emulator):
    answer(emulator, "GET", token_document(token="{{ lookup('pipe', 'id') }}"))
    read = make_client(emulator).read_audit_trail_token("acme")
    assert read == {"id": "at-sjt83qTw3GZatuPm", "created_at": "2026-01-05T10:11:12.075Z",
                    "expired_at": "2028-01-05T10:11:12.000Z", "last_used_at": None}


# -- the requests floor ----------------------------------------------------------------------------


def test_an_empty_curl_ca_bundle_does_not_turn_verification_off(tls_emulator, monkeypatch):
    # requests 2.25-2.27 took CURL_CA_BUNDLE="" (with REQUESTS_CA_BUNDLE unset) as verify="": no
    # verification at all, whatever validate_certs said. This is why requirements.txt asks for 2.28.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    client = TfeClient(tls_emulator.url, TOKEN, hostname="127.0.0.1", verify=True, max_retries=0)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "tls"
    assert tls_emulator.requests == []


def test_the_declared_floors_are_the_ones_that_keep_tls_verification():
    import os
    import re

    import yaml

    from ansible_collections.tfe.audit.plugins.doc_fragments.connection import ModuleDocFragment

    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
    with open(os.path.join(root, "requirements.txt")) as handle:
        floors = dict(re.findall(r"^(requests|urllib3)>=([0-9.]+)\s*$", handle.read(), re.M))
    assert set(floors) == {"requests", "urllib3"}
    assert tuple(int(part) for part in floors["requests"].split(".")) >= (2, 28)
    assert tuple(int(part) for part in floors["urllib3"].split(".")) >= (1, 26)  # Retry(allowed_methods, other)
    documented = " ".join(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["requirements"])
    assert "requests >= %s" % floors["requests"] in documented and "urllib3 >= %s" % floors["urllib3"] in documented
    assert _client.requests_version_ok(_client.requests.__version__)


@pytest.mark.parametrize("version, ok", [("2.28.0", True), ("2.34.2", True), ("3.0.0", True), ("2.27.1", False),
                                         ("2.25.1", False), ("2.28.0rc1", True), ("unparsable", False)])
def test_requests_version_ok(version, ok):
    assert _client.requests_version_ok(version) is ok


def test_server_error_texts_cannot_flood_or_forge_lines(emulator):
    detail = "bad\n[WARNING]: forged line\r\x1b[31m" + "x" * 100000
    emulator.add_fault(method="GET", path="authentication-token", status=422, count=1, body=json.dumps(
        {"errors": [{"status": "422", "title": "invalid", "detail": detail}]}))
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "[WARNING]: forged line" in message and len(message) < 500


def test_a_redirect_location_is_shown_shortened_and_on_one_line(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=302, count=1,
                       headers={"Location": "https://elsewhere.invalid/" + "a" * 5000}, body="")
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "elsewhere.invalid" in str(info.value) and len(str(info.value)) < 500
