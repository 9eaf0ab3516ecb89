# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The API client against the emulator on loopback: the life cycle, errors, auth, TLS and the platform check
(retries: test_retries.py; what the server answers: test_answers.py)."""

import json
import os

import pytest
import yaml
from requests.adapters import HTTPAdapter

from ansible_collections.tfe.audit.plugins.module_utils import _client
from ansible_collections.tfe.audit.plugins.module_utils._client import USER_AGENT, TfeClient
from ansible_collections.tfe.audit.plugins.module_utils._errors import TfeError

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
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
        super().__init__()
        self.origin, self.target = origin, target

    def send(self, request, **kwargs):
        request.url = request.url.replace(self.origin, self.target, 1)
        return super().send(request, **kwargs)


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
    for r in logged:
        if r["method"] in ("POST", "DELETE"):
            assert r["content_type"].startswith("application/vnd.api+json")
            assert r["query"].get("token") == "audit-trails"


def test_the_user_agent_carries_galaxy_ymls_version():
    """The one copy of the version in the modules' code (galaxy.yml does not travel with a module): a release
    that bumps galaxy.yml alone fails here."""
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        version = yaml.safe_load(handle)["version"]
    assert USER_AGENT == "tfe.audit/" + version and _client.COLLECTION_VERSION == version


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


@pytest.mark.parametrize("secret", ["known-token\nX-Injected: 1", "known-token\r", "known-tökén-\u2028"])
def test_a_token_http_cannot_carry_fails_cleanly_without_quoting_it(emulator, secret):
    """http.client refuses such a header with an error quoting it; that error must not become the message."""
    with pytest.raises(TfeError) as info:
        make_client(emulator).audit_trail_token_is_live(secret)
    assert info.value.kind == "request" and "token" in str(info.value)
    assert "known" not in repr(vars(info.value)) + str(info.value)
    assert [r["path"] for r in api_requests(emulator)] == ["/api/v2/ping"]


@pytest.mark.parametrize("fault", [
    {"status": 500, "body": {"errors": [{"title": "x" * 260 + " Authorization: Bearer {token}"}]}},
    {"status": 400, "body": {"errors": [{"title": "rejected", "detail": "Bearer {token} " + "y" * 400}]}},
    {"status": 403, "body": {"errors": ["header {token}"]}},
    {"status": 302, "body": {}, "headers": {"Location": "https://elsewhere.example/?t={token}"}},
    {"status": 502, "body": "not json", "headers": {"Content-Type": "text/{token}"}},
], ids=["cut inside the token", "detail", "plain error", "Location", "Content-Type"])
def test_an_answer_quoting_the_token_is_never_quoted_with_any_part_of_it(emulator, fault):
    """A server (or a proxy) that echoes the Authorization header: the token is masked before the text is cut
    to its 300 characters, so not even its first characters are left (ansible's no_log masks only whole values)."""
    secret = "quoted-%s-token" % os.urandom(8).hex()
    body = fault["body"] if isinstance(fault["body"], str) else json.dumps(fault["body"]).replace("{token}", secret)
    headers = dict((name, value.replace("{token}", secret)) for name, value in fault.get("headers", {}).items())
    emulator.add_fault(method="GET", path="authentication-token", status=fault["status"], count=1,
                       headers=headers, body=body)
    with pytest.raises(TfeError) as info:
        make_client(emulator, token=secret, max_retries=0).read_audit_trail_token("acme")
    text = str(info.value) + repr(vars(info.value))
    assert "********" in text
    assert secret[:7] not in text, text


def test_non_json_body_from_a_proxy_is_a_clear_error(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=200, count=1,
                       headers={"Content-Type": "text/html"}, body="<html>login</html>")
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "not JSON" in str(info.value) and "text/html" in str(info.value)


# -- auth and TLS ------------------------------------------------------------------------------


@pytest.fixture
def netrc_for_the_emulator(tmp_path, monkeypatch):
    """A ~/.netrc (through NETRC) with a login and password for 127.0.0.1, where requests would pick it up."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))


@pytest.mark.usefixtures("netrc_for_the_emulator")
def test_netrc_cannot_replace_the_bearer_token(emulator):
    client = make_client(emulator)
    assert client.read_audit_trail_token("acme") is None  # a 401 would raise


@pytest.mark.usefixtures("netrc_for_the_emulator")
def test_unauthenticated_ping_sends_no_netrc_credentials(emulator):
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
    import re

    from ansible_collections.tfe.audit.plugins.doc_fragments.connection import ModuleDocFragment

    with open(os.path.join(ROOT, "requirements.txt")) as handle:
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
