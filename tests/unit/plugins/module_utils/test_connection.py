# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options: hostname forms, the plain-http policy and proxies, TLS settings, where the token comes from."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.tfe.audit.plugins.module_utils._client import environment_proxy
from ansible_collections.tfe.audit.plugins.module_utils._connection import (
    Connection,
    Endpoint,
    check_token,
    parse_hostname,
)
from ansible_collections.tfe.audit.plugins.module_utils._connection import find_terraform_token as find_with_source
from ansible_collections.tfe.audit.plugins.module_utils._errors import OptionError


def find_terraform_token(*args):
    return find_with_source(*args)[0]


def connection(environ=None, home="/nonexistent", **params):
    base = dict(hostname="app.terraform.io", token=None, validate_certs=None, ca_path=None, timeout=30,
                max_retries=5, allow_unverified_platform=False, allow_insecure_http=False)
    base.update(params)
    return Connection(base, environ=environ or {}, home=home)


@pytest.mark.parametrize("value, base_url, credentials_host", [
    ("app.terraform.io", "https://app.terraform.io", "app.terraform.io"),
    ("App.Terraform.IO", "https://app.terraform.io", "app.terraform.io"),
    ("https://app.eu.terraform.io/", "https://app.eu.terraform.io", "app.eu.terraform.io"),
    ("tfe.example.com:8443", "https://tfe.example.com:8443", "tfe.example.com:8443"),
    ("https://tfe.example.com:443", "https://tfe.example.com:443", "tfe.example.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "127.0.0.1:8080"),
    ("[::1]:8443", "https://[::1]:8443", "[::1]:8443"),
    ("https://[2001:DB8::1]", "https://[2001:db8::1]", "[2001:db8::1]"),
    ("http://localhost:80", "http://localhost:80", "localhost"),
    ("my-tfe.example.com", "https://my-tfe.example.com", "my-tfe.example.com"),
    ("xn--caf-dma.example", "https://xn--caf-dma.example", "xn--caf-dma.example"),
    ("a" * 63 + ".example", "https://" + "a" * 63 + ".example", "a" * 63 + ".example"),
    ("tfe.example.com:1", "https://tfe.example.com:1", "tfe.example.com:1"),
    ("tfe.example.com:65535", "https://tfe.example.com:65535", "tfe.example.com:65535"),
])
def test_hostname_forms(value, base_url, credentials_host):
    parsed = parse_hostname(value)
    assert parsed[0] == base_url and parsed[2] == credentials_host


@pytest.mark.parametrize("value", ["", "ftp://host", "host/path", "https://host/api/v2", "host:notaport",
                                   "user@host", "https://", "host?x=1"])
def test_bad_hostnames_name_the_option_and_show_an_example(value):
    with pytest.raises(OptionError) as info:
        parse_hostname(value)
    assert "hostname" in str(info.value) and "for example" in str(info.value)


# Each would reach another host than the one written, or is not a host at all: refused before any request.
@pytest.mark.parametrize("value", [
    "http://evil.example\\.app.terraform.io",   # urllib3 ends the authority at the backslash: evil.example
    "https://evil.example\\@app.terraform.io",
    "evil.example%2f.app.terraform.io",
    "app.terraform.io%00",
    "[fe80::1%25eth0]:443",
    "app.terraform.io\r\nX-Injected: 1",
    "app.terraform.io\x00.evil.example",
    "app.terraform\x7f.io",
    "user:password@app.terraform.io",
    "app_terraform.io",
    "-app.terraform.io",
    "app-.terraform.io",
    "app..terraform.io",
    "app.terraform.io.",
    "a" * 64 + ".example",
    ".".join(["abcdefghi"] * 26),            # 259 characters
    "appterraform.ïo",
    "0x7f.0.0.1",
    "2130706433",
    "127.1",
    "127.0.0.01",
    "256.0.0.1",
    "::1",
    "fe80::1:8443",
    "[::1",
    "[::1]x",
    "[not-ipv6]:443",
    "tfe.example.com:0",
    "tfe.example.com:65536",
    "tfe.example.com:+443",
    "tfe.example.com:443:443",
    "tfe.example.com:",
    ":8443",
])
def test_hostnames_that_are_not_a_host_are_refused_with_an_example(value):
    with pytest.raises(OptionError) as info:
        parse_hostname(value)
    assert "hostname" in str(info.value) and "for example hostname: app.terraform.io" in str(info.value)


def test_a_backslash_hostname_never_reaches_the_http_stack():
    from urllib3.util import parse_url

    value = "http://evil.example\\.app.terraform.io"
    assert parse_url(value + "/api/v2/ping").host == "evil.example"  # why it must be refused
    with pytest.raises(OptionError) as info:
        connection(token="t", hostname=value)
    assert "'\\'" in str(info.value)


@given(st.text(max_size=30))
def test_hostname_parser_raises_only_option_error_and_returns_a_plain_host(text):
    try:
        base_url, host, credentials_host = parse_hostname(text)
    except OptionError as exc:
        assert "hostname" in str(exc)
    else:
        from urllib3.util import parse_url

        assert parse_url(base_url + "/api/v2").host.strip("[]") == host
        assert all(char.isalnum() or char in ".-:[]" for char in credentials_host)


def test_token_option_wins():
    env = {"TF_TOKEN_app_terraform_io": "from-env"}
    assert connection(environ=env, token="from-option").token == "from-option"


def test_tf_token_host_variable():
    assert connection(environ={"TF_TOKEN_app_terraform_io": "from-env"}).token == "from-env"
    env = {"TF_TOKEN_my__tfe_example_com": "hyphen"}
    assert connection(environ=env, hostname="my-tfe.example.com").token == "hyphen"


def test_tf_token_variables_are_decoded_as_terraform_does():
    env = {"TF_TOKEN_app_terraform_io": "app", "TF_TOKEN_xn____caf__dma_example": "idn",
           "TF_TOKEN_TFE_EXAMPLE_COM": "upper"}
    assert find_terraform_token("app.terraform.io", env) == "app"
    assert find_terraform_token("xn--caf-dma.example", env) == "idn"
    assert find_terraform_token("tfe.example.com", env) == "upper"


@pytest.mark.parametrize("host, name", [
    # the lossy old lookup handed app.terraform.io's token to each of these hosts
    ("app_terraform.io", "TF_TOKEN_app_terraform_io"),
    ("app.terraform_io", "TF_TOKEN_app_terraform_io"),
    ("app_terraform_io", "TF_TOKEN_app_terraform_io"),
    ("my_tfe.example.com", "TF_TOKEN_my__tfe_example_com"),
    # no variable names a host with a port, or an IPv6 address
    ("tfe.example.com:8443", "TF_TOKEN_tfe_example_com"),
    ("[::1]", "TF_TOKEN___1"),
])
def test_a_tf_token_variable_is_never_used_for_another_host(host, name):
    assert find_terraform_token(host, {name: "not-for-this-host"}) is None


def test_tf_token_the_last_matching_variable_wins_and_non_ascii_names_are_ignored():
    env = {"TF_TOKEN_app_terraform_io": "first", "TF_TOKEN_APP_TERRAFORM_IO": "last", "TF_TOKEN_app_terraform_ïo": "x"}
    assert find_terraform_token("app.terraform.io", env) == "last"
    assert find_terraform_token("app.terraform.ïo", env) is None


def test_an_underscore_hostname_is_refused_before_any_token_lookup():
    with pytest.raises(OptionError) as info:
        connection(environ={"TF_TOKEN_app_terraform_io": "app"}, hostname="app_terraform.io")
    assert "hostname" in str(info.value) and "'_'" in str(info.value)


def test_cli_config_block_then_credentials_json(tmp_path):
    (tmp_path / ".terraform.d").mkdir()
    (tmp_path / ".terraform.d" / "credentials.tfrc.json").write_text(json.dumps(
        {"credentials": {"app.terraform.io": {"token": "from-json"}, "tfe.example.com:8443": {"token": "port"}}}))
    assert connection(home=str(tmp_path)).token == "from-json"
    assert connection(home=str(tmp_path), hostname="tfe.example.com:8443").token == "port"
    (tmp_path / ".terraformrc").write_text('plugin_cache_dir = "x"\ncredentials "app.terraform.io" {\n'
                                           '  token = "from-cli-config"\n}\n')
    assert connection(home=str(tmp_path)).token == "from-cli-config"
    other = tmp_path / "other.tfrc"
    other.write_text('credentials "app.terraform.io" { token = "from-tf-cli-config-file" }')
    assert connection(home=str(tmp_path), environ={"TF_CLI_CONFIG_FILE": str(other)}).token == \
        "from-tf-cli-config-file"


def test_no_token_anywhere_says_where_to_put_one():
    with pytest.raises(OptionError) as info:
        connection()
    for place in ("token", "TFE_TOKEN", "TF_TOKEN_app_terraform_io", "credentials"):
        assert place in str(info.value)


def test_corrupt_credentials_file_is_ignored(tmp_path):
    (tmp_path / ".terraform.d").mkdir()
    (tmp_path / ".terraform.d" / "credentials.tfrc.json").write_text("{not json")
    assert find_terraform_token("app.terraform.io", {}, str(tmp_path)) is None


@pytest.mark.parametrize("skip, verify", [(None, True), ("true", False), ("1", False), ("false", True)])
def test_tfe_ssl_skip_verify(skip, verify):
    env = {} if skip is None else {"TFE_SSL_SKIP_VERIFY": skip}
    assert connection(environ=env, token="t").verify is verify


def test_bad_tfe_ssl_skip_verify_is_an_error():
    with pytest.raises(OptionError) as info:
        connection(environ={"TFE_SSL_SKIP_VERIFY": "perhaps"}, token="t")
    assert "TFE_SSL_SKIP_VERIFY" in str(info.value)


def test_validate_certs_option_beats_environment():
    assert connection(environ={"TFE_SSL_SKIP_VERIFY": "true"}, token="t", validate_certs=True).verify is True


def test_ca_path_becomes_verify(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert connection(token="t", ca_path=str(ca)).verify == str(ca)
    assert connection(token="t", ca_path=str(ca), validate_certs=False).verify is False


@pytest.mark.parametrize("hostname", ["http://127.0.0.1:1", "http://127.0.0.2", "http://localhost:1", "http://[::1]:1"])
def test_plain_http_to_loopback_is_accepted(hostname):
    assert not connection(token="t", hostname=hostname).plain_http_remote


@pytest.mark.parametrize("hostname", ["http://tfe.example.com", "http://10.0.0.1:8080", "http://[2001:db8::1]",
                                      "http://tfe.localhost", "http://127.0.0.1.nip.io"])
def test_plain_http_off_loopback_is_refused_unless_allowed(hostname):
    with pytest.raises(OptionError) as info:
        connection(token="t", hostname=hostname)
    message = str(info.value)
    assert message.startswith("hostname ") and "allow_insecure_http: true" in message
    assert "for example hostname: https://" in message
    allowed = connection(token="t", hostname=hostname, allow_insecure_http=True)
    assert allowed.plain_http_remote and allowed.token == "t"


@pytest.mark.parametrize("hostname, environ, credentials", [
    ("http://tfe.example.com", {"TF_TOKEN_tfe_example_com": "tf"}, None),
    ("http://localhost", {"TF_TOKEN_localhost": "tf"}, None),
    ("http://localhost:8080", {}, {"localhost:8080": {"token": "tf"}}),
    ("http://127.0.0.1:8080", {}, {"127.0.0.1:8080": {"token": "tf"}}),
])
def test_terraform_credentials_are_never_used_for_http(tmp_path, hostname, environ, credentials):
    if credentials:
        (tmp_path / ".terraform.d").mkdir()
        (tmp_path / ".terraform.d" / "credentials.tfrc.json").write_text(json.dumps({"credentials": credentials}))
    with pytest.raises(OptionError) as info:
        connection(environ=environ, home=str(tmp_path), hostname=hostname, allow_insecure_http=True)
    message = str(info.value)
    assert "TFE_TOKEN" in message and "never used for an http:// hostname" in message and "tf" not in message.split()
    assert connection(environ=dict(environ), home=str(tmp_path), hostname=hostname, allow_insecure_http=True,
                      token="explicit").token == "explicit"


def test_terraform_credentials_still_serve_https_loopback(tmp_path):
    (tmp_path / ".terraform.d").mkdir()
    (tmp_path / ".terraform.d" / "credentials.tfrc.json").write_text(json.dumps(
        {"credentials": {"localhost:8443": {"token": "tf"}}}))
    assert connection(home=str(tmp_path), hostname="https://localhost:8443").token == "tf"


def test_no_token_for_a_host_with_a_port_suggests_no_tf_token_variable():
    with pytest.raises(OptionError) as info:
        connection(hostname="tfe.example.com:8443")
    assert "TF_TOKEN" not in str(info.value) and "credentials block for tfe.example.com:8443" in str(info.value)


# -- proxies from the environment ------------------------------------------------------------------

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


@pytest.mark.parametrize("environ, carried", [
    ({}, False),
    ({"http_proxy": "http://user:secret@proxy.example:3128"}, True),
    ({"HTTP_PROXY": "http://proxy.example:3128"}, True),
    ({"all_proxy": "http://proxy.example:3128"}, True),
    ({"https_proxy": "http://proxy.example:3128"}, False),
    ({"http_proxy": "http://proxy.example:3128", "no_proxy": "127.0.0.1"}, False),
    ({"http_proxy": "http://proxy.example:3128", "NO_PROXY": "localhost,127.0.0.1"}, False),
    ({"http_proxy": "http://proxy.example:3128", "no_proxy": "*"}, False),
])
def test_environment_proxy_says_whether_a_proxy_would_carry_the_request(monkeypatch, environ, carried):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy("http://127.0.0.1:8080") is carried


# -- loopback http:// through a proxy from the environment ----------------------------------------------


@pytest.fixture
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "all_proxy"])
def test_loopback_http_carried_by_an_environment_proxy_is_refused(no_proxies, variable):
    no_proxies.setenv(variable, "http://user:proxy-secret@127.0.0.1:9")
    with pytest.raises(OptionError) as info:
        connection(token="t", hostname="http://127.0.0.1:8080")
    message = str(info.value)
    assert message.startswith("hostname http://127.0.0.1:8080 ") and "allow_insecure_http: true" in message
    assert "no_proxy: '127.0.0.1'" in message and "proxy-secret" not in message and "127.0.0.1:9" not in message


def test_allow_insecure_http_lets_a_proxy_carry_loopback_http_with_a_warning(no_proxies):
    no_proxies.setenv("http_proxy", "http://127.0.0.1:9")
    allowed = connection(token="t", hostname="http://localhost:8080", allow_insecure_http=True)
    assert len(allowed.warnings) == 1 and "proxy" in allowed.warnings[0] and "no_proxy" in allowed.warnings[0]
    assert "127.0.0.1:9" not in allowed.warnings[0]


@pytest.mark.parametrize("environ, hostname", [
    ({"http_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1"}, "http://127.0.0.1:8080"),
    ({"http_proxy": "http://127.0.0.1:9", "NO_PROXY": "localhost"}, "http://localhost:8080"),
    ({"https_proxy": "http://127.0.0.1:9"}, "http://127.0.0.1:8080"),
    ({"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}, "https://127.0.0.1:8443"),
    ({}, "http://[::1]:8080"),
])
def test_loopback_http_no_proxy_carries_is_accepted_without_a_warning(no_proxies, environ, hostname):
    for name, value in environ.items():
        no_proxies.setenv(name, value)
    assert connection(token="t", hostname=hostname).warnings == []


def test_http_off_loopback_allowed_warns_once_proxy_or_not(no_proxies):
    no_proxies.setenv("http_proxy", "http://127.0.0.1:9")
    warnings = connection(token="t", hostname="http://tfe.example.com", allow_insecure_http=True).warnings
    assert len(warnings) == 1 and "unencrypted" in warnings[0]


# -- the endpoint alone, and a token checked on its own ---------------------------------------------------


def test_an_endpoint_resolves_without_any_token_and_takes_the_defaults(tmp_path):
    (tmp_path / ".terraform.d").mkdir()
    (tmp_path / ".terraform.d" / "credentials.tfrc.json").write_text("{not json")
    endpoint = Endpoint({"hostname": "tfe.example.com:8443"}, environ={})
    assert (endpoint.base_url, endpoint.host, endpoint.hostname) == (
        "https://tfe.example.com:8443", "tfe.example.com", "tfe.example.com:8443")
    assert (endpoint.verify, endpoint.timeout, endpoint.max_retries, endpoint.allow_unverified_platform) == (
        True, 30, 5, False)
    assert not hasattr(endpoint, "token") and endpoint.warnings == []


def test_an_endpoint_applies_the_same_rules_as_the_modules():
    with pytest.raises(OptionError, match="allow_insecure_http"):
        Endpoint({"hostname": "http://tfe.example.com"}, environ={})
    with pytest.raises(OptionError, match="TFE_SSL_SKIP_VERIFY"):
        Endpoint({"hostname": "app.terraform.io"}, environ={"TFE_SSL_SKIP_VERIFY": "perhaps"})
    with pytest.raises(OptionError, match="timeout"):
        Endpoint({"hostname": "app.terraform.io", "timeout": 0}, environ={})


def test_an_endpoint_gives_a_client_for_a_token_found_elsewhere():
    endpoint = Endpoint({"hostname": "https://tfe.example.com", "max_retries": 2, "validate_certs": False}, environ={})
    client = endpoint.client_for("found-elsewhere", max_wait=7)
    assert (client.base_url, client.hostname, client.verify) == ("https://tfe.example.com", "tfe.example.com", False)
    retry = client.session.get_adapter("https://tfe.example.com").max_retries
    assert (retry.total, retry.max_wait) == (2, 7)


@pytest.mark.parametrize("token", ["abc\ndef", "abc\r", " abc", "abc def", "abc\tdef", "tökén", "abc\x00", ""])
def test_check_token_refuses_what_http_cannot_carry_without_quoting_it(token):
    with pytest.raises(OptionError) as info:
        check_token(token, "token_file /var/lib/tfe-audit/token")
    message = str(info.value)
    assert "token_file /var/lib/tfe-audit/token" in message
    assert (token.strip() or "\x00") not in message


def test_check_token_returns_a_good_token():
    assert check_token("ABCDEFGHIJKLMN.atlasv1.s3cr3t-_~", "token") == "ABCDEFGHIJKLMN.atlasv1.s3cr3t-_~"


@pytest.mark.parametrize("params, environ, source", [
    ({"token": "leaked-value\n"}, {}, "the token option (or TFE_TOKEN)"),
    ({}, {"TF_TOKEN_app_terraform_io": "leaked value"}, "the environment variable TF_TOKEN_app_terraform_io"),
])
def test_a_token_with_white_space_is_refused_naming_where_it_came_from(params, environ, source):
    with pytest.raises(OptionError) as info:
        connection(environ=environ, **params)
    assert source in str(info.value) and "leaked" not in str(info.value)
