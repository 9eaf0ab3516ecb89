# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where the API is and which token to send it: the connection options, resolved and checked.

Private to the collection (leading underscore): free to change between releases.
The options are documented once, in the ``tfe.audit.connection`` doc fragment.

* :class:`Endpoint`: the host (parsed and validated), TLS, timeout, retries and the plain-http policy,
  for whoever finds its token another way (the event source).
* :func:`discover_token`: the token as Terraform finds it (``token``, ``TF_TOKEN_*``, CLI credentials).
* :class:`Connection`: both, as every module resolves them.
"""

import ipaddress
import json
import os
import re

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.tfe.audit.plugins.module_utils._client import TfeClient, environment_proxy
from ansible_collections.tfe.audit.plugins.module_utils._errors import OptionError

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


# -- the host -------------------------------------------------------------------------------------

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


def _split_scheme(text):
    if "://" not in text:
        return "https", text
    scheme, rest = text.split("://", 1)
    if scheme.lower() not in ("https", "http"):
        raise OptionError("hostname %r has the scheme %r; use https:// (or http:// for local testing); %s"
                          % (text, scheme.lower(), _HOSTNAME_EXAMPLE))
    return scheme.lower(), rest


def _split_host(rest):
    """``(host, port or None, problem or None)`` of an authority without user info."""
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        port = after[1:] if after.startswith(":") else None
        try:
            ipaddress.IPv6Address(host)
            problem = None if bracket and (not after or port is not None) else "is not a bracketed IPv6 address"
        except ValueError:
            problem = "is not a valid IPv6 address"
        return host.lower(), port, problem
    host, colon, port = rest.lower().partition(":")
    problem = _host_problem(host) if host else "has no host"
    if colon and ":" in port:
        problem = "holds an IPv6 address without brackets (write it as [::1]:8443)"
    return host, port if colon else None, problem


def parse_hostname(value):
    """``host``, ``host:port`` or ``http(s)://host[:port]`` into ``(base_url, host, credentials_host)``.

    Only a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional port 1-65535, gets
    through. Anything else may reach a different host than the one written: urllib3 ends the authority
    at a backslash, so ``http://evil.example\\.app.terraform.io`` would send the token to evil.example.
    """
    text = str(value or "").strip()
    scheme, rest = _split_scheme(text)
    rest = rest[:-1] if rest.endswith("/") else rest
    if not rest or any(char in "/?#@\\%" or ord(char) < 33 or ord(char) == 127 for char in rest):
        raise OptionError("hostname %r must be a host, host:port or a URL without a path, user info (@), '\\', "
                          "'%%', white space or control characters; %s" % (text, _HOSTNAME_EXAMPLE))
    host, port, problem = _split_host(rest)
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


class Endpoint:
    """Where and how to reach the API, resolved and checked: everything but the token.

    :param params: the connection options by name (``connection_argument_spec()``; the token is not read);
        a missing one takes its default. Environment fallbacks of ``hostname`` are the caller's.
    :param environ: where ``TFE_SSL_SKIP_VERIFY`` is read (default ``os.environ``). Proxies are always those
        of the process environment, as requests uses them.

    Raises :class:`OptionError` for anything that would send the token where it must not go: a host that is not
    a host, ``http://`` off loopback, or ``http://`` to loopback carried by a proxy from the environment, the
    last two unless ``allow_insecure_http``. ``warnings`` lists what the caller must show.
    """

    def __init__(self, params, environ=None):
        environ = os.environ if environ is None else environ
        params = dict(dict((name, spec.get("default")) for name, spec in connection_argument_spec().items()),
                      **params)
        self.base_url, self.host, self.hostname = parse_hostname(params["hostname"])
        self.plain_http = self.base_url.startswith("http://")
        self.plain_http_remote = self.plain_http and not is_loopback(self.host)
        self.warnings = self._plain_http_policy(bool(params["allow_insecure_http"]))
        self.verify = _verify(params["validate_certs"], params["ca_path"], environ)
        self.timeout = params["timeout"]
        if self.timeout is None or self.timeout <= 0:
            raise OptionError("timeout must be a positive number of seconds, got %r; for example timeout: 30"
                              % self.timeout)
        self.max_retries = params["max_retries"]
        if self.max_retries is None or self.max_retries < 0:
            raise OptionError("max_retries must be 0 or more, got %r; for example max_retries: 5" % self.max_retries)
        self.allow_unverified_platform = bool(params["allow_unverified_platform"])

    def _plain_http_policy(self, allowed):
        if not self.plain_http:
            return []
        if self.plain_http_remote and not allowed:
            raise OptionError(
                "hostname %s is http:// to a host that is not loopback: the API token would cross the network "
                "in clear text. Use https:// (for example hostname: https://%s), or, for a lab proxy only, set "
                "allow_insecure_http: true" % (self.base_url, self.base_url[len("http://"):]))
        if self.plain_http_remote:
            return ["hostname %s uses plain http to a host that is not loopback: the API token travels unencrypted "
                    "(allow_insecure_http is true). Use https://." % self.base_url]
        if not environment_proxy(self.base_url):
            return []
        if not allowed:
            raise OptionError(
                "hostname %s is plain http and a proxy from the environment (http_proxy, HTTP_PROXY or all_proxy) "
                "would carry it: the API token would leave this machine in clear text. Add the host to no_proxy "
                "(for example the task's environment: {no_proxy: '%s'}), unset the proxy for this task, or, if the "
                "proxy may see the token, set allow_insecure_http: true" % (self.base_url, self.host))
        return ["hostname %s is plain http and a proxy from the environment (http_proxy, HTTP_PROXY or all_proxy) "
                "carries it: the API token leaves this machine in clear text (allow_insecure_http is true). Add the "
                "host to no_proxy, or unset the proxy for this task." % self.base_url]

    def client_for(self, token, warn=None, max_wait=None):
        """A :class:`TfeClient` for this endpoint that sends ``token``.

        :param warn: called with a warning (a str), e.g. when the platform cannot be established.
        :param max_wait: the most seconds one request may spend waiting between retries (default 60).
        """
        return TfeClient(self.base_url, token, verify=self.verify, timeout=self.timeout, max_retries=self.max_retries,
                         max_wait=max_wait, hostname=self.host, allow_unverified_platform=self.allow_unverified_platform,
                         warn=warn)


def _verify(validate_certs, ca_path, environ):
    """``requests``' ``verify``: ``True``, ``False`` or the CA bundle path."""
    if validate_certs is None:
        skip = environ.get("TFE_SSL_SKIP_VERIFY")
        try:
            validate_certs = not boolean(skip) if skip not in (None, "") else True
        except TypeError:
            raise OptionError("TFE_SSL_SKIP_VERIFY=%r is not a boolean; use true or false (or set "
                              "validate_certs: true)" % skip) from None
    if ca_path and not os.path.isfile(ca_path):
        raise OptionError("ca_path %r is not a file; for example ca_path: /etc/pki/tls/certs/my-ca.pem" % ca_path)
    return ca_path if (validate_certs and ca_path) else bool(validate_certs)


# -- the token, as Terraform finds it ---------------------------------------------------------------

_CLI_CREDENTIALS = re.compile(r'credentials\s+"([^"]+)"\s*\{[^}]*?\btoken\s*=\s*"([^"]*)"', re.S)
# What an HTTP header can carry as it is: visible ASCII. Real tokens are narrower ("<id>.atlasv1.<secret>").
_TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def check_token(token, source="token"):
    """``token`` when it can be sent as a bearer token, else :class:`OptionError` naming ``source`` (where it came
    from, e.g. ``token_file /var/lib/tfe-audit/token``), never the value.

    A line break or another character outside visible ASCII would be refused by the HTTP library with an error
    that quotes the header, that is the token.
    """
    if not isinstance(token, str) or not token:
        raise OptionError("the API token from %s is empty; it must hold the token" % source)
    if not _TOKEN_CHARACTERS.fullmatch(token):
        raise OptionError("the API token from %s holds white space, control or non-ASCII characters; it must be the "
                          "token alone (%d characters, for example ABCDEFGHIJKLMN.atlasv1.<secret>)"
                          % (source, len(token)))
    return token


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
    """``(token, where it was found)`` as Terraform would use it for the host, or ``(None, None)``.

    ``TF_TOKEN_<host>``, then ``credentials`` blocks of the CLI config (``TF_CLI_CONFIG_FILE``,
    else ``~/.terraformrc``), then ``~/.terraform.d/credentials.tfrc.json``.
    """
    environ = os.environ if environ is None else environ
    home = os.path.expanduser("~") if home is None else home
    found = (None, None)
    for name, value in environ.items():
        if value and terraform_token_env_host(name) == credentials_host:
            found = (value, "the environment variable %s" % name)  # the last one wins, as in Terraform
    if found[0]:
        return found
    cli_config = environ.get("TF_CLI_CONFIG_FILE") or os.path.join(home, ".terraformrc")
    try:
        with open(cli_config) as handle:
            for host, token in _CLI_CREDENTIALS.findall(handle.read()):
                if host.lower() == credentials_host and token:
                    return token, "the credentials block in %s" % cli_config
    except (IOError, OSError, UnicodeDecodeError):
        pass
    path = os.path.join(home, ".terraform.d", "credentials.tfrc.json")
    try:
        with open(path) as handle:
            credentials = json.load(handle).get("credentials") or {}
        for host, entry in credentials.items():
            if host.lower() == credentials_host and (entry or {}).get("token"):
                return entry["token"], path
    except (IOError, OSError, ValueError, AttributeError, RecursionError):
        pass
    return None, None


def discover_token(token, endpoint, environ=None, home=None):
    """The API token for ``endpoint``: ``token`` (the option, after its ``TFE_TOKEN`` fallback), else what
    Terraform would use for that host (never for an ``http://`` one); checked with :func:`check_token`.

    Raises :class:`OptionError` saying where to put one when there is none.
    """
    if token:
        return check_token(token, "the token option (or TFE_TOKEN)")
    found, source = (None, None) if endpoint.plain_http else find_terraform_token(endpoint.hostname, environ, home)
    if found:
        return check_token(found, source)
    # Terraform's credentials belong to the https host of that name; an http:// hostname (loopback
    # included: an environment proxy can carry it off the machine) must be given its token explicitly.
    if endpoint.plain_http:
        raise OptionError(
            "No API token for %s: set token (for example token: \"{{ lookup('ansible.builtin.env', 'TFE_TOKEN') }}\") "
            "or the TFE_TOKEN environment variable. Terraform's credentials (TF_TOKEN_* variables, credentials "
            "blocks and files) are never used for an http:// hostname" % endpoint.base_url)
    variable = "" if ":" in endpoint.hostname else " or %s" % terraform_token_env_name(endpoint.hostname)
    raise OptionError(
        "No API token for %s: set token (for example token: \"{{ lookup('ansible.builtin.env', 'TFE_TOKEN') }}\"), "
        "the TFE_TOKEN%s environment variable, or a Terraform credentials block for %s"
        % (endpoint.hostname, variable, endpoint.hostname))


class Connection(Endpoint):
    """An :class:`Endpoint` and its API token (:func:`discover_token`): the connection options of a module."""

    def __init__(self, params, environ=None, home=None):
        super().__init__(params, environ)
        self.token = discover_token(params.get("token"), self, environ, home)

    def client(self, warn=None):
        return self.client_for(self.token, warn=warn)
