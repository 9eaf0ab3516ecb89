# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one place that talks to the HCP Terraform API.

Private to the collection (leading underscore): free to change between releases.
Modules use :class:`TfeClient` and turn :class:`TfeError` into ``fail_json``;
they never build URLs, headers or retry loops themselves.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import re
import time

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps the import sanity test quiet
    from urllib import quote

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.auth import AuthBase
    from urllib3.exceptions import MaxRetryError, NewConnectionError, TimeoutError as Urllib3Timeout
    from urllib3.util.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised by the module's missing_required_lib path
    REQUESTS_IMPORT_ERROR = exc
    HTTPAdapter = AuthBase = Retry = object
    MaxRetryError = NewConnectionError = Urllib3Timeout = Exception

from ansible_collections.tfe.audit.plugins.module_utils._errors import TfeError

HAS_REQUESTS = REQUESTS_IMPORT_ERROR is None
REQUESTS_VERSION = requests.__version__ if HAS_REQUESTS else None
# requests 2.25-2.27 take CURL_CA_BUNDLE="" (with REQUESTS_CA_BUNDLE unset) as "do not verify", whatever
# validate_certs says: a man in the middle would receive the API token.
MIN_REQUESTS = (2, 28)

COLLECTION_VERSION = "0.1.0"
USER_AGENT = "tfe.audit/" + COLLECTION_VERSION
JSONAPI = "application/vnd.api+json"

# HCP Terraform's own hostnames: the platform is known without asking.
HCP_TERRAFORM_HOSTNAMES = frozenset(("app.terraform.io", "app.eu.terraform.io"))
# What /api/v2/ping says in TFP-AppName on HCP Terraform (older releases said "Terraform Cloud").
HCP_TERRAFORM_APP_NAMES = frozenset(("hcp terraform", "terraform cloud"))

RETRY_STATUSES = frozenset((429, 502, 503, 504))
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
TOTAL_WAIT_CAP = 60.0
MIN_RATE_LIMIT_WAIT = 0.25


def requests_version_ok(version):
    """Whether ``version`` (``requests.__version__``) is at least ``MIN_REQUESTS``; ``False`` when unreadable."""
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= MIN_REQUESTS


def server_text(value, limit=300):
    """Text from the server (an error detail, a header) fit for a message: control characters as spaces,
    at most ``limit`` characters. A hostile server could otherwise flood the output or forge log lines."""
    text = "".join(" " if ord(char) < 32 or ord(char) == 127 else char for char in str(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def decode_jsonapi_errors(body):
    """Turn a JSON:API error document into a list of readable strings.

    Accepts ``{"errors": [{"status": "404", "title": "not found", "detail": "..."}]}``
    (``status`` a string or a number), go-tfe's ``{"errors": ["plain message"]}``, or
    anything else (returns ``[]``). Never raises.
    """
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if not isinstance(errors, list):
        return []
    texts = []
    for error in errors:
        if isinstance(error, dict):
            parts = [server_text(error[key]) for key in ("title", "detail") if error.get(key) not in (None, "")]
            if parts:
                texts.append(": ".join(parts))
        elif error not in (None, ""):
            texts.append(server_text(error))
    return texts


class BearerAuth(AuthBase):
    """``Authorization: Bearer`` as an auth object.

    Passing ``auth=`` to requests stops it from reading ``~/.netrc``, whose entry for
    the host would otherwise silently replace a hand-set Authorization header.
    """

    def __init__(self, token):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = "Bearer " + self._token
        return request

    def __repr__(self):
        return "BearerAuth(<redacted>)"


class NoAuth(AuthBase):
    """No credentials at all: with ``auth=None`` requests would send a ``~/.netrc`` entry instead."""

    def __call__(self, request):
        return request


class TfeRetry(Retry):
    """urllib3 ``Retry`` with HCP Terraform's rate-limit header and a cap on total waiting.

    - 429 waits for ``Retry-After`` when sent, else ``X-RateLimit-Reset`` (seconds, a float; at
      least ``MIN_RATE_LIMIT_WAIT``), plus a little jitter so parallel forks do not return in lock
      step. A 429 does not use up the retry count: the server says when to come back, and a fleet
      of forks sharing one rate limit can be told "later" many times in a row. Only the cap below
      ends it (``max_retries=0`` still disables every retry).
    - 502/503/504 and connection errors back off exponentially with jitter, ``max_retries`` times.
    - Once the waits would exceed ``max_wait`` seconds in total, retrying stops and the
      last answer is returned (or the connection error raised).
    """

    def __init__(self, *args, **kwargs):
        self.max_wait = kwargs.pop("max_wait", TOTAL_WAIT_CAP)
        self.waited = kwargs.pop("waited", 0.0)
        self.next_wait = kwargs.pop("next_wait", 0.0)
        super(TfeRetry, self).__init__(*args, **kwargs)

    def new(self, **kw):
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        kw.setdefault("next_wait", self.next_wait)
        return super(TfeRetry, self).new(**kw)

    def get_retry_after(self, response):
        seconds = super(TfeRetry, self).get_retry_after(response)
        if seconds is None and response.status == 429:
            try:
                seconds = max(0.0, float(response.headers.get("X-RateLimit-Reset")))
            except (TypeError, ValueError):
                seconds = None
        return seconds

    def planned_wait(self, response):
        if response is not None and self.respect_retry_after_header:
            seconds = self.get_retry_after(response)
            if seconds is not None:
                if response.status == 429:
                    seconds = max(seconds, MIN_RATE_LIMIT_WAIT)
                return seconds * (1.0 + random.uniform(0.0, 0.1))
        retry_number = len(self.history)
        backoff = min(BACKOFF_MAX, BACKOFF_BASE * (2 ** max(0, retry_number - 1)))
        return random.uniform(backoff / 2.0, backoff)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        new_retry = super(TfeRetry, self).increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and response.status == 429:
            new_retry = new_retry.new(total=self.total, status=self.status)  # bounded by max_wait only
        wait = new_retry.planned_wait(response)
        if new_retry.waited + wait > new_retry.max_wait:
            raise MaxRetryError(_pool, url, error or Exception("retry wait cap of %ss reached" % new_retry.max_wait))
        return new_retry.new(waited=new_retry.waited + wait, next_wait=wait)

    def sleep(self, response=None):
        # increment() already chose the wait (and charged it against the cap).
        if self.next_wait > 0:
            time.sleep(self.next_wait)


def _response_json(response):
    try:
        return response.json()
    except ValueError:
        return None


# What a server answers is hostile until it has the right shape. A generated token is what playbooks
# store (a vault file, a vars file) and later plays read back *as a template*: a server that answers
# "{{ lookup('pipe', ...) }}" as the token would run code on the controller. Real tokens are
# "<14 chars>.atlasv1.<secret>"; ids look like "at-sjt83qTw3GZatuPm"; times like
# "2028-01-05T10:11:12.000Z". Anything else is refused, and never echoed.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._-]{16,512}")
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_TIME_ATTRIBUTES = (("created_at", "created-at"), ("expired_at", "expired-at"), ("last_used_at", "last-used-at"))


def _token_problem(value):
    """What is wrong with a token from the server (never the value itself), or ``None``."""
    if not isinstance(value, str):
        return "is not a string but %s" % ("null" if value is None else type(value).__name__)
    if not value:
        return "is empty"
    if not 16 <= len(value) <= 512:
        return "is %d characters long (a real one has 16 to 512)" % len(value)
    if not _TOKEN_SHAPE.fullmatch(value):
        return "holds characters other than letters, digits, '.', '_' and '-' (template or control characters)"
    return None


def _shape_problem(value, shape):
    """``None`` when ``value`` is null or a string of ``shape``; else what is wrong (never the value)."""
    if value is None or (isinstance(value, str) and shape.fullmatch(value)):
        return None
    if not isinstance(value, str):
        return "is not a string but %s" % type(value).__name__
    return "is not of the expected form (%d characters)" % len(value)


class TfeClient:
    """A small HCP Terraform API client for audit trail tokens.

    :param base_url: ``scheme://host[:port]`` without a path.
    :param token: the API token (user, team or organization token) used as bearer.
    :param verify: ``True``, ``False`` or a CA bundle path; passed with every request,
        because a ``Session.verify`` is silently overridden by ``REQUESTS_CA_BUNDLE``.
    """

    def __init__(self, base_url, token, verify=True, timeout=30, max_retries=5, max_wait=None,
                 hostname=None, allow_unverified_platform=False, warn=None):
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + "/api/v2"
        self.hostname = hostname
        self.verify = verify
        self.timeout = timeout
        self.allow_unverified_platform = allow_unverified_platform
        self.platform = None
        self._warn = warn or (lambda message: None)
        self._auth = BearerAuth(token) if token else None
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": JSONAPI})
        retry = TfeRetry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            # POST and DELETE too: a repeated create just replaces the token again (the last
            # response holds the live one) and a repeated delete answers 404, which means done.
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
            max_wait=TOTAL_WAIT_CAP if max_wait is None else max_wait,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    # -- transport -------------------------------------------------------------------------

    def request(self, method, path, params=None, body=None, auth=True, accept=JSONAPI):
        """Send one request (retries included) and return the ``requests.Response``.

        ``auth`` is ``True`` for the API token, ``False`` for none, or another auth object.

        Raises :class:`TfeError` for network and TLS failures; HTTP statuses are left to the caller.
        """
        url = self.api_url + path
        headers = {"Accept": accept}
        data = None
        if method in ("POST", "PATCH", "DELETE"):
            # HCP Terraform answers 415 without it, on DELETE too, even with no body.
            headers["Content-Type"] = JSONAPI
            if body is not None:
                data = json.dumps(body)
        if auth is True:
            auth = self._auth
        elif auth is False:
            auth = NoAuth()
        try:
            return self.session.request(
                method, url, params=params, data=data, headers=headers,
                auth=auth, verify=self.verify, timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise TfeError(
                "TLS error talking to %s: %s. Set ca_path to the CA bundle that signed the server's "
                "certificate (or validate_certs: false, for testing only)." % (self.base_url, _root_cause(exc)),
                method=method, path=path, kind="tls")
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            if not isinstance(exc, requests.exceptions.Timeout) and not _timed_out(exc):
                raise TfeError(
                    "Cannot reach %s (%s %s): %s. Check hostname and the network."
                    % (self.base_url, method, path, _root_cause(exc)), method=method, path=path, kind="network")
            raise TfeError(
                "%s %s timed out after %ss (retries included): %s. Raise timeout or check the network."
                % (method, path, self.timeout, _root_cause(exc)), method=method, path=path, kind="timeout")
        except requests.exceptions.RequestException as exc:
            raise TfeError(
                "Cannot reach %s (%s %s): %s. Check hostname and the network."
                % (self.base_url, method, path, _root_cause(exc)), method=method, path=path, kind="network")

    def _check(self, response, method, path, ok):
        """Return the decoded body of an expected status, else raise :class:`TfeError`."""
        body = _response_json(response) if response.content else None
        if response.status_code in ok:
            if response.content and body is None:
                raise TfeError(
                    "%s %s answered HTTP %s with a body that is not JSON (%s). Does hostname point at "
                    "HCP Terraform, and not at a proxy or a login page?"
                    % (method, path, response.status_code,
                       server_text(response.headers.get("Content-Type", "no content type"))),
                    status=response.status_code, method=method, path=path)
            return body
        errors = decode_jsonapi_errors(body)
        if 300 <= response.status_code < 400:
            location = server_text(response.headers.get("Location"))
            message = "redirected to %s; set hostname to the final address" % location
        elif errors:
            message = "; ".join(errors)
        elif body is None and response.content:
            content_type = server_text(response.headers.get("Content-Type", "no content type"))
            message = "a body that is not JSON (%s)" % content_type
        else:
            message = response.reason or "no details"
        raise TfeError(
            "%s %s failed with HTTP %s: %s" % (method, path, response.status_code, message),
            status=response.status_code, method=method, path=path, errors=errors)

    def _token_metadata(self, document, method, path, with_secret):
        """The token attributes a module returns, from an authentication-token document.

        Refuses (:class:`TfeError`) a document of the wrong shape, and an id, time or (when
        ``with_secret``) token that does not look like HCP Terraform's. A token on read is dropped.
        """
        data = document.get("data") if isinstance(document, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(attributes, dict):
            raise self._hostile(method, path, "a body that is not an authentication-token document")
        metadata = {"id": data.get("id")}
        for key, attribute in _TIME_ATTRIBUTES:
            metadata[key] = attributes.get(attribute)
        for key, value in metadata.items():
            problem = _shape_problem(value, _ID_SHAPE if key == "id" else _TIME_SHAPE)
            if problem:
                raise self._hostile(method, path, "a token %s that %s" % (key, problem))
        if with_secret:
            problem = _token_problem(attributes.get("token"))
            if problem:
                raise self._hostile(method, path, "a token that %s" % problem)
            metadata["token"] = attributes["token"]
        return metadata

    def _hostile(self, method, path, what):
        return TfeError(
            "%s answered %s %s with %s; refusing it. Nothing was returned or stored: a value like that may "
            "be planted (a template that later plays would run). Check that hostname points at HCP Terraform."
            % (self.base_url, method, path, what), method=method, path=path, kind="response")

    # -- platform safety -------------------------------------------------------------------

    def ensure_hcp_terraform(self):
        """Refuse to act unless the host is HCP Terraform.

        On Terraform Enterprise the ``token=audit-trails`` parameter is ignored: a create would
        regenerate, and a delete revoke, the organization's *regular* API token. HCP Terraform's
        own hostnames are known; any other host is asked once (``GET /api/v2/ping``).
        """
        if self.platform is not None:
            return self.platform
        if self.hostname in HCP_TERRAFORM_HOSTNAMES and self.base_url == "https://" + self.hostname:
            self.platform = "hcp"
            return self.platform
        path = "/ping"
        response = self.request("GET", path, auth=False)
        app_name = server_text((response.headers.get("TFP-AppName") or "").strip(), 100)
        if response.headers.get("X-TFE-Version") or "enterprise" in app_name.lower():
            raise TfeError(
                "%s is Terraform Enterprise (TFP-AppName: %s). Audit trail tokens exist on HCP Terraform "
                "only; on Terraform Enterprise this request would regenerate or revoke the organization's "
                "regular API token, so nothing was changed." % (self.base_url, app_name or "unknown"),
                status=response.status_code, method="GET", path=path, kind="platform")
        if response.status_code < 300 and app_name.lower() in HCP_TERRAFORM_APP_NAMES:
            self.platform = "hcp"
            return self.platform
        reason = ("GET /api/v2/ping answered HTTP %s with TFP-AppName %r"
                  % (response.status_code, app_name or None))
        if not self.allow_unverified_platform:
            raise TfeError(
                "Cannot establish that %s is HCP Terraform (%s). Audit trail tokens exist on HCP Terraform "
                "only, and on Terraform Enterprise this request would act on the organization's regular API "
                "token. If you are sure the host is HCP Terraform (for example behind a proxy that strips "
                "headers), set allow_unverified_platform: true." % (self.base_url, reason),
                status=response.status_code, method="GET", path=path, kind="platform")
        self._warn("Could not establish that %s is HCP Terraform (%s); going on because "
                   "allow_unverified_platform is true." % (self.base_url, reason))
        self.platform = "unverified"
        return self.platform

    # -- audit trail tokens ----------------------------------------------------------------

    @staticmethod
    def _token_path(organization):
        return "/organizations/%s/authentication-token" % quote(organization, safe="")

    def read_audit_trail_token(self, organization):
        """The organization's audit trail token metadata, or ``None`` when it has none (404)."""
        self.ensure_hcp_terraform()
        path = self._token_path(organization)
        response = self.request("GET", path, params={"token": "audit-trails"})
        if response.status_code == 404:
            return None
        # Never a secret on read: a token in the answer is dropped, not returned.
        return self._token_metadata(self._check(response, "GET", path, (200,)), "GET", path, with_secret=False)

    def create_audit_trail_token(self, organization, expired_at=None):
        """Create or replace the audit trail token; the result holds the new secret in ``token``.

        :param expired_at: an RFC 3339 string (UTC) or ``None`` for the server's default.
        """
        self.ensure_hcp_terraform()
        path = self._token_path(organization)
        attributes = {"expired-at": expired_at} if expired_at else {}
        body = {"data": {"type": "authentication-token", "attributes": attributes}}
        response = self.request("POST", path, params={"token": "audit-trails"}, body=body)
        return self._token_metadata(self._check(response, "POST", path, (200, 201)), "POST", path, with_secret=True)

    def delete_audit_trail_token(self, organization):
        """Delete the audit trail token. Returns ``False`` when there was none (404)."""
        self.ensure_hcp_terraform()
        path = self._token_path(organization)
        response = self.request("DELETE", path, params={"token": "audit-trails"})
        if response.status_code == 404:
            return False
        self._check(response, "DELETE", path, (200, 204))
        return True

    def audit_trail_token_is_live(self, secret):
        """Whether ``secret`` is the organization's live audit trail token.

        Reads one event with it: 200 means live, 401 stale (regenerated, deleted or expired).
        Anything else (404 for an organization without the entitlement, 5xx after retries) raises:
        an answer that does not say "stale" is never a reason to regenerate.
        """
        self.ensure_hcp_terraform()
        path = "/organization/audit-trail"
        response = self.request("GET", path, params={"page[size]": 1}, accept="application/json",
                                auth=BearerAuth(secret))
        if response.status_code == 401:
            return False
        self._check(response, "GET", path, (200,))
        return True

    # -- audit trail events ----------------------------------------------------------------

    def read_audit_trail(self, since=None, page=1, page_size=1000):
        """One page of the audit trail of the bearer token's organization.

        Returns the decoded body ``{"data": [...], "pagination": {...}}`` (plain JSON, not JSON:API).
        """
        self.ensure_hcp_terraform()
        path = "/organization/audit-trail"
        params = {"page[number]": page, "page[size]": page_size}
        if since:
            params["since"] = since
        response = self.request("GET", path, params=params, accept="application/json")
        return self._check(response, "GET", path, (200,))


def environment_proxy(url):
    """Whether requests would send ``url`` through a proxy from the environment (``http_proxy``,
    ``HTTP_PROXY``, ``all_proxy``, ...; ``no_proxy`` honoured). Never the proxy's address: it may
    carry credentials."""
    proxies = requests.utils.get_environ_proxies(url)
    return requests.utils.select_proxy(url, proxies) is not None


def _timed_out(exc):
    """Whether a requests ``ConnectionError`` wraps a read timeout (how retries exhausted by timeouts end)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, Urllib3Timeout) and not isinstance(reason, NewConnectionError)


def _root_cause(exc):
    """The innermost reason of a requests/urllib3 exception, e.g. ``Name or service not known``."""
    seen = exc
    while True:
        inner = getattr(seen, "reason", None) or (seen.args[0] if getattr(seen, "args", None) else None)
        if isinstance(inner, BaseException) and inner is not seen:
            seen = inner
            continue
        break
    text = str(seen)
    return text if text else exc.__class__.__name__
