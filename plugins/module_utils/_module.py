# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared argument spec, option resolution and the module wrapper of the tfe.audit modules.

Private to the collection (leading underscore): free to change between releases.
The options are documented once, in the ``tfe.audit.connection`` doc fragment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import re
from datetime import timedelta

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.tfe.audit.plugins.module_utils._time import TimeError, format_time, parse_time
from ansible_collections.tfe.audit.plugins.module_utils._client import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    REQUESTS_VERSION,
    RETRY_STATUSES,
    TfeClient,
    environment_proxy,
    requests_version_ok,
)

DEFAULT_HOSTNAME = "app.terraform.io"


def connection_argument_spec():
    """The connection options every module accepts (docs: ``tfe.audit.connection`` fragment)."""
    return dict(
        hostname=dict(type="str", default=DEFAULT_HOSTNAME, aliases=["tfe_address", "address"],
                      fallback=(env_fallback, ["TFE_HOSTNAME", "TFE_ADDRESS"])),
        token=dict(type="str", no_log=True, aliases=["tfe_token"], fallback=(env_fallback, ["TFE_TOKEN"])),
        validate_certs=dict(type="bool", aliases=["tfe_verify_tls"]),
        ca_path=dict(type="path", aliases=["tfe_ca_bundle"]),
        timeout=dict(type="float", default=30),
        max_retries=dict(type="int", default=5),
        allow_unverified_platform=dict(type="bool", default=False),
        allow_insecure_http=dict(type="bool", default=False),
    )


def organization_argument_spec():
    """Docs: the ``tfe.audit.connection.organization`` fragment."""
    return dict(organization=dict(type="str", fallback=(env_fallback, ["TFE_ORGANIZATION"])))


def token_argument_spec():
    """What decides the token's life, for every module that manages it (docs: ``state`` in each module,
    the rest in the ``tfe.audit.connection.token`` fragment)."""
    return dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        force_regenerate=dict(type="bool", default=False),
        expired_at=dict(type="str"),
        lifetime=dict(type="str"),
        rotate_before=dict(type="str"),
    )


class OptionError(Exception):
    """Bad input, found before any API call. The message names the option and shows a valid example."""


# -- values ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^(?:\d+[wdhms])+$")
_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# HCP Terraform's rule for organization names. Anything looser can address another path: requests
# removes dot segments, so organization ".." with state absent would DELETE /api/v2/authentication-token.
_ORGANIZATION = re.compile(r"[A-Za-z0-9_-]{1,255}")


def parse_rfc3339(value, option="expired_at"):
    """An RFC 3339 date-time with an offset (or ``Z``) into an aware UTC ``datetime``, to the second."""
    try:
        return parse_time(value).replace(microsecond=0)
    except TimeError as exc:
        raise OptionError("%s %s; for example %s: '2030-12-31T23:59:59Z'" % (option, exc, option))


def format_rfc3339(moment):
    """UTC, to the second, as HCP Terraform writes it: ``2030-12-31T23:59:59.000Z``."""
    return format_time(moment.replace(microsecond=0))


def parse_api_time(value):
    """A timestamp from the API (``2028-01-05T10:11:12.000Z``), or ``None``; never raises on junk."""
    if not value:
        return None
    try:
        return parse_rfc3339(value, option="API timestamp")
    except OptionError:
        return None


def parse_duration(value, option):
    """``90d``, ``12h``, ``2w``, ``1d12h`` into a positive ``timedelta``."""
    text = str(value).strip().lower()
    if not _DURATION.match(text):
        raise OptionError("%s must be a duration such as 90d, 12h, 2w or 1d12h (units w, d, h, m, s), got %r; "
                          "for example %s: 90d" % (option, str(value), option))
    seconds = sum(int(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise OptionError("%s must be longer than zero, got %r; for example %s: 90d" % (option, str(value), option))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise OptionError("%s %r is too long; for example %s: 90d" % (option, str(value), option))


def validate_organization(value):
    if value is None or not str(value).strip():
        raise OptionError("organization is required: set organization (for example organization: my-org) "
                          "or the TFE_ORGANIZATION environment variable")
    if not _ORGANIZATION.fullmatch(value):
        raise OptionError("organization %r is not a valid organization name: HCP Terraform's names hold only "
                          "letters, digits, '-' and '_' (at most 255); for example organization: my-org" % value)
    return value


_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_HOSTNAME_EXAMPLE = "for example hostname: app.terraform.io, tfe.example.com:8443 or https://app.eu.terraform.io"


def _host_problem(host):
    """Why ``host`` (lower case, no brackets) is not a DNS name or an IPv4 address, or ``None``."""
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
            return None
        except ValueError:
            return "is not a valid IPv4 address"
    labels = host.split(".")
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return ("is not a valid host name (labels of letters, digits and inner hyphens, at most 63 characters "
                "each; no '_'; international names in their xn-- form)")
    if not labels[-1][0].isalpha():
        # The resolver would read "0x7f.0.0.1" (inet_aton) as 127.0.0.1, not as a name.
        return "ends in a label that does not start with a letter"
    return None


def parse_hostname(value):
    """``host``, ``host:port`` or ``http(s)://host[:port]`` into ``(base_url, host, credentials_host)``.

    Only a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional port 1-65535, gets
    through. Anything else may reach a different host than the one written: urllib3 ends the authority
    at a backslash, so ``http://evil.example\\.app.terraform.io`` would send the token to evil.example.
    """
    text = str(value or "").strip()
    if "://" in text:
        scheme, rest = text.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("https", "http"):
            raise OptionError("hostname %r has the scheme %r; use https:// (or http:// for local testing); %s"
                              % (text, scheme, _HOSTNAME_EXAMPLE))
    else:
        scheme, rest = "https", text
    rest = rest[:-1] if rest.endswith("/") else rest
    if not rest or any(char in "/?#@\\%" or ord(char) < 33 or ord(char) == 127 for char in rest):
        raise OptionError("hostname %r must be a host, host:port or a URL without a path, user info (@), '\\', "
                          "'%%', white space or control characters; %s" % (text, _HOSTNAME_EXAMPLE))
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        port = after[1:] if after.startswith(":") else None
        try:
            ipaddress.IPv6Address(host)
            problem = None if bracket and (not after or port is not None) else "is not a bracketed IPv6 address"
        except ValueError:
            problem = "is not a valid IPv6 address"
        host = host.lower()
    else:
        host, colon, port = rest.lower().partition(":")
        port = port if colon else None
        problem = _host_problem(host) if host else "has no host"
        if port is not None and ":" in port:
            problem = "holds an IPv6 address without brackets (write it as [::1]:8443)"
    if problem:
        raise OptionError("hostname %r %s; %s" % (text, problem, _HOSTNAME_EXAMPLE))
    if port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise OptionError("hostname %r has an invalid port (1 to 65535); %s" % (text, _HOSTNAME_EXAMPLE))
    bracketed = "[%s]" % host if ":" in host else host
    netloc = bracketed if port is None else "%s:%d" % (bracketed, int(port))
    default_port = 443 if scheme == "https" else 80
    credentials_host = bracketed if port is None or int(port) == default_port else netloc
    return "%s://%s" % (scheme, netloc), host, credentials_host


def is_loopback(host):
    # Not "*.localhost": a resolver without RFC 6761 support asks DNS for those names.
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- credentials, as Terraform finds them -----------------------------------------------------

_CLI_CREDENTIALS = re.compile(r'credentials\s+"([^"]+)"\s*\{[^}]*?\btoken\s*=\s*"([^"]*)"', re.S)


def terraform_token_env_name(host):
    """``TF_TOKEN_app_terraform_io``: Terraform CLI's variable for a host (dots as underscores,
    hyphens as double underscores)."""
    return "TF_TOKEN_" + host.replace("-", "__").replace(".", "_")


def terraform_token_env_host(name):
    """The host a ``TF_TOKEN_*`` variable stands for, decoded as Terraform does, or ``None``.

    ``__`` is ``-``, then ``_`` is ``.``; lower case. Encoding the host instead would be lossy:
    ``app_terraform.io`` and ``app.terraform.io`` both encode to ``TF_TOKEN_app_terraform_io``,
    which handed one host's token to the other. A decoded name never holds ``_`` or ``:``, so a
    host with a port (or an IPv6 address) has no variable. Terraform also accepts Unicode names
    here; this stays with ASCII (the ``xn--`` form).
    """
    if not name.startswith("TF_TOKEN_") or not all(ord(char) < 128 for char in name):
        return None
    return name[len("TF_TOKEN_"):].replace("__", "-").replace("_", ".").lower()


def find_terraform_token(credentials_host, environ=None, home=None):
    """The token Terraform would use for the host, or ``None``.

    ``TF_TOKEN_<host>``, then ``credentials`` blocks of the CLI config (``TF_CLI_CONFIG_FILE``,
    else ``~/.terraformrc``), then ``~/.terraform.d/credentials.tfrc.json``.
    """
    environ = os.environ if environ is None else environ
    home = os.path.expanduser("~") if home is None else home
    token = None
    for name, value in environ.items():
        if value and terraform_token_env_host(name) == credentials_host:
            token = value  # the last one wins, as in Terraform
    if token:
        return token
    cli_config = environ.get("TF_CLI_CONFIG_FILE") or os.path.join(home, ".terraformrc")
    try:
        with open(cli_config) as handle:
            for host, token in _CLI_CREDENTIALS.findall(handle.read()):
                if host.lower() == credentials_host and token:
                    return token
    except (IOError, OSError):
        pass
    try:
        with open(os.path.join(home, ".terraform.d", "credentials.tfrc.json")) as handle:
            credentials = json.load(handle).get("credentials") or {}
        for host, entry in credentials.items():
            if host.lower() == credentials_host and (entry or {}).get("token"):
                return entry["token"]
    except (IOError, OSError, ValueError, AttributeError):
        pass
    return None


class Connection:
    """Resolved and validated connection options."""

    def __init__(self, params, environ=None, home=None):
        environ = os.environ if environ is None else environ
        self.base_url, self.host, credentials_host = parse_hostname(params.get("hostname"))
        self.hostname = credentials_host
        self.plain_http = self.base_url.startswith("http://")
        self.plain_http_remote = self.plain_http and not is_loopback(self.host)
        if self.plain_http_remote and not params.get("allow_insecure_http"):
            raise OptionError(
                "hostname %s is http:// to a host that is not loopback: the API token would cross the network "
                "in clear text. Use https:// (for example hostname: https://%s), or, for a lab proxy only, set "
                "allow_insecure_http: true" % (self.base_url, self.base_url[len("http://"):]))

        # Terraform's credentials belong to the https host of that name; an http:// hostname (loopback
        # included: an environment proxy can carry it off the machine) must be given its token explicitly.
        self.token = params.get("token") or (
            None if self.plain_http else find_terraform_token(credentials_host, environ, home))
        if not self.token and self.plain_http:
            raise OptionError(
                "No API token for %s: set token (for example token: \"{{ lookup('ansible.builtin.env', "
                "'TFE_TOKEN') }}\") or the TFE_TOKEN environment variable. Terraform's credentials (TF_TOKEN_* "
                "variables, credentials blocks and files) are never used for an http:// hostname"
                % self.base_url)
        if not self.token:
            variable = "" if ":" in credentials_host else " or %s" % terraform_token_env_name(credentials_host)
            raise OptionError(
                "No API token for %s: set token (for example token: \"{{ lookup('ansible.builtin.env', "
                "'TFE_TOKEN') }}\"), the TFE_TOKEN%s environment variable, or a Terraform credentials "
                "block for %s" % (credentials_host, variable, credentials_host))

        validate_certs = params.get("validate_certs")
        if validate_certs is None:
            skip = environ.get("TFE_SSL_SKIP_VERIFY")
            try:
                validate_certs = not boolean(skip) if skip not in (None, "") else True
            except TypeError:
                raise OptionError("TFE_SSL_SKIP_VERIFY=%r is not a boolean; use true or false (or set "
                                  "validate_certs: true)" % skip)
        ca_path = params.get("ca_path")
        if ca_path and not os.path.isfile(ca_path):
            raise OptionError("ca_path %r is not a file; for example ca_path: /etc/pki/tls/certs/my-ca.pem" % ca_path)
        self.verify = ca_path if (validate_certs and ca_path) else bool(validate_certs)

        self.timeout = params.get("timeout")
        if self.timeout is None or self.timeout <= 0:
            raise OptionError("timeout must be a positive number of seconds, got %r; for example timeout: 30"
                              % self.timeout)
        self.max_retries = params.get("max_retries")
        if self.max_retries is None or self.max_retries < 0:
            raise OptionError("max_retries must be 0 or more, got %r; for example max_retries: 5" % self.max_retries)
        self.allow_unverified_platform = bool(params.get("allow_unverified_platform"))

    def client(self, warn=None):
        return TfeClient(
            self.base_url, self.token, verify=self.verify, timeout=self.timeout, max_retries=self.max_retries,
            hostname=self.host, allow_unverified_platform=self.allow_unverified_platform, warn=warn)


class TfeModule:
    """``AnsibleModule`` with the connection options merged in and one place that turns errors into ``fail_json``.

    Bad input fails in the constructor (before any API call); modules add their own checks
    through :meth:`option` and :meth:`fail_option`.
    """

    def __init__(self, argument_spec, **kwargs):
        spec = connection_argument_spec()
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
        if not requests_version_ok(REQUESTS_VERSION):
            self.module.fail_json(msg="requests %s is too old: the tfe.audit modules need requests >= 2.28 (older "
                                      "releases turn TLS verification off when CURL_CA_BUNDLE is empty, whatever "
                                      "validate_certs says). Upgrade it where the module runs: "
                                      "pip install 'requests>=2.28'" % REQUESTS_VERSION)
        try:
            self.connection = Connection(self.params)
        except OptionError as exc:
            self.fail_option(exc)
        # A token found in Terraform's credentials is as secret as the option; censor it the same way.
        self.module.no_log_values.add(self.connection.token)
        if self.connection.plain_http_remote:
            self.module.warn("hostname %s uses plain http to a host that is not loopback: the API token "
                             "travels unencrypted (allow_insecure_http is true). Use https://."
                             % self.connection.base_url)
        elif self.connection.plain_http and environment_proxy(self.connection.base_url):
            self.module.warn("hostname %s is plain http and a proxy from the environment (http_proxy, "
                             "HTTP_PROXY or all_proxy) would carry it: the API token would leave this machine "
                             "in clear text. Add the host to no_proxy, or unset the proxy for this task."
                             % self.connection.base_url)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self.connection.client(warn=self.module.warn)
        return self._client

    def option(self, parse, *args):
        """Run a validator/parser; on :class:`OptionError` fail before any API call."""
        try:
            return parse(*args)
        except OptionError as exc:
            self.fail_option(exc)

    def fail_option(self, exc):
        self.module.fail_json(msg=str(exc))

    def fail_api(self, exc, action, organization=None, hints=None, **result):
        """Turn a :class:`TfeError` into ``fail_json`` with words a person can act on.

        :param hints: ``{status: explanation}`` for what an HTTP status means to this module, where the
            general explanation below would mislead (a 401 of the audit trail is about its own token).
        """
        where = " for organization %r" % organization if organization else ""
        hint = (hints or {}).get(exc.status) if exc.kind == "http" else None
        if hint:
            msg = "Cannot %s%s: HTTP %s from %s. %s" % (action, where, exc.status, self.connection.base_url, hint)
        elif exc.status == 401:
            msg = ("Cannot %s%s: the API token is missing or invalid (HTTP 401 from %s). Check token / "
                   "TFE_TOKEN." % (action, where, self.connection.base_url))
        elif exc.status == 404 and exc.method == "POST":
            msg = ("Cannot %s%s (HTTP 404): the organization does not exist, the API token has no permission "
                   "to manage its audit trail token (an owners-team or organization token is needed), or the "
                   "organization lacks the audit-logging entitlement (HCP Terraform Business tier)."
                   % (action, where))
        elif exc.status in (415, 422, 400):
            msg = "Cannot %s%s: the API rejected the request (HTTP %s): %s" % (
                action, where, exc.status, exc.details or str(exc))
        elif exc.status == 429:
            msg = ("Cannot %s%s: still rate limited (HTTP 429) after %s retries; try again later or raise "
                   "max_retries." % (action, where, self.connection.max_retries))
        elif exc.status is not None and exc.status >= 500:
            retried = " after %s retries" % self.connection.max_retries if exc.status in RETRY_STATUSES else ""
            msg = "Cannot %s%s: HCP Terraform answered HTTP %s%s (%s). Try again later." % (
                action, where, exc.status, retried, exc.details or str(exc))
        else:
            msg = "Cannot %s%s: %s" % (action, where, exc)
        error = dict(status=exc.status, kind=exc.kind, method=exc.method, path=exc.path, errors=exc.errors)
        self.module.fail_json(msg=msg, error=error, **result)

    def warn(self, message):
        self.module.warn(message)

    def fail_json(self, msg, **result):
        self.module.fail_json(msg=msg, **result)

    def exit_json(self, **result):
        self.module.exit_json(**result)
