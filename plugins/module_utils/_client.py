# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one place that talks to the HCP Terraform API.

Private to the collection (leading underscore): free to change between releases.
Modules use :class:`TfeClient` (built by ``_connection.Endpoint.client_for``); they never build URLs,
headers or retry loops themselves. Every failure is a :class:`TfeError`; what the server answers is read
and checked in ``_answers``.
"""

import json
import random
import re
import time
from urllib.parse import quote

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.auth import AuthBase
    from urllib3.exceptions import HTTPError as Urllib3Error, SSLError as Urllib3SSLError
    from urllib3.exceptions import MaxRetryError, NewConnectionError, TimeoutError as Urllib3Timeout
    from urllib3.util.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised by the module's missing_required_lib path
    REQUESTS_IMPORT_ERROR = exc
    HTTPAdapter = AuthBase = Retry = object
    MaxRetryError = NewConnectionError = Urllib3Timeout = Urllib3Error = Urllib3SSLError = Exception

from ansible_collections.tfe.audit.plugins.module_utils._answers import (
    ACCEPT_ENCODING,
    CHUNK,
    Answer,
    BodyError,
    read_body,
    server_text,
    token_metadata,
)
from ansible_collections.tfe.audit.plugins.module_utils._errors import TfeError

HAS_REQUESTS = REQUESTS_IMPORT_ERROR is None
REQUESTS_VERSION = requests.__version__ if HAS_REQUESTS else None
# requests 2.25-2.27 take CURL_CA_BUNDLE="" (with REQUESTS_CA_BUNDLE unset) as "do not verify", whatever
# validate_certs says: a man in the middle would receive the API token.
MIN_REQUESTS = (2, 28)

# The same as galaxy.yml's version: module_utils travel to the managed host without galaxy.yml or
# MANIFEST.json, so it cannot be read at run time. A unit test (test_client.py) fails when they differ.
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

AUDIT_TRAILS = {"token": "audit-trails"}
TRAIL_PATH = "/organization/audit-trail"


def requests_version_ok(version):
    """Whether ``version`` (``requests.__version__``) is at least ``MIN_REQUESTS``; ``False`` when unreadable."""
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= MIN_REQUESTS


class BearerAuth(AuthBase):
    """``Authorization: Bearer`` as an auth object.

    Passing ``auth=`` to requests stops it from reading ``~/.netrc``, whose entry for
    the host would otherwise silently replace a hand-set Authorization header.
    """

    def __init__(self, token):
        self._token = token

    @property
    def secrets(self):
        """What an answer must never be quoted with (:func:`server_text`'s ``hide``)."""
        return (self._token,)

    def __call__(self, request):
        request.headers["Authorization"] = "Bearer " + self._token
        return request

    def __repr__(self):
        return "BearerAuth(<redacted>)"


class NoAuth(AuthBase):
    """No credentials at all: with ``auth=None`` requests would send a ``~/.netrc`` entry instead."""

    secrets = ()

    def __call__(self, request):
        return request


class TfeRetry(Retry):
    """urllib3 ``Retry`` plus what it lacks for HCP Terraform (urllib3 1.26, the floor, has no jitter at all;
    2.x retries the first time at once, so a fleet of forks that met one 503 would come back together):

    - 429 waits for ``Retry-After`` when sent, else ``X-RateLimit-Reset`` (seconds, a float; at least
      ``MIN_RATE_LIMIT_WAIT``), plus a little jitter. A 429 does not use up the retry count: the server says
      when to come back, and forks sharing one rate limit can be told "later" many times in a row. Only the
      cap below ends it (``max_retries=0`` still disables every retry).
    - 502/503/504 and connection errors back off exponentially with jitter, ``max_retries`` times. A
      ``Retry-After`` that is neither seconds nor a date is ignored (urllib3 would end the request).
    - Once the waits would exceed ``max_wait`` seconds in total, retrying stops and the last answer is
      returned (or the connection error raised).
    """

    def __init__(self, *args, **kwargs):
        self.max_wait = kwargs.pop("max_wait", TOTAL_WAIT_CAP)
        self.waited = kwargs.pop("waited", 0.0)
        self.next_wait = kwargs.pop("next_wait", 0.0)
        super().__init__(*args, **kwargs)

    def new(self, **kw):
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        kw.setdefault("next_wait", self.next_wait)
        return super().new(**kw)

    def get_retry_after(self, response):
        try:
            seconds = super().get_retry_after(response)
        except Urllib3Error:  # a Retry-After that is neither seconds nor a date: as if it were not there
            seconds = None
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
        backoff = min(BACKOFF_MAX, BACKOFF_BASE * (2 ** max(0, len(self.history) - 1)))
        return random.uniform(backoff / 2.0, backoff)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
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


class TfeClient:
    """A small HCP Terraform API client for audit trail tokens and the audit trail.

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
        self._auth = BearerAuth(token) if token else NoAuth()
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": JSONAPI, "Accept-Encoding": ACCEPT_ENCODING})
        retry = TfeRetry(
            total=max_retries, connect=max_retries, read=max_retries, status=max_retries, other=0, redirect=0,
            status_forcelist=RETRY_STATUSES,
            # POST and DELETE too: a repeated create just replaces the token again (the last
            # response holds the live one) and a repeated delete answers 404, which means done.
            allowed_methods=None,
            respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False,
            max_wait=TOTAL_WAIT_CAP if max_wait is None else max_wait,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    # -- transport -------------------------------------------------------------------------

    def send(self, method, path, params=None, body=None, auth=True, accept=JSONAPI):
        """Send one request (retries included) and return its :class:`Answer`, the body read within ``MAX_BODY``.

        ``auth`` is ``True`` for the API token, ``False`` for none, or another auth object.
        Raises :class:`TfeError` for network and TLS failures and for a body it cannot take; HTTP statuses
        are left to the caller.
        """
        headers = {"Accept": accept}
        data = None
        if method in ("POST", "PATCH", "DELETE"):
            # HCP Terraform answers 415 without it, on DELETE too, even with no body.
            headers["Content-Type"] = JSONAPI
            if body is not None:
                data = json.dumps(body)
        auth = self._auth if auth is True else NoAuth() if auth is False else auth
        try:
            response = self.session.request(
                method, self.api_url + path, params=params, data=data, headers=headers,
                auth=auth, verify=self.verify, timeout=self.timeout, allow_redirects=False, stream=True)
            with response:
                content = read_body(response.raw.stream(CHUNK, decode_content=False),
                                    response.headers.get("Content-Encoding"))
        except BodyError as exc:
            raise TfeError("%s answered %s %s with %s" % (self.base_url, method, path, exc),
                           method=method, path=path, kind="response") from None
        except (requests.exceptions.RequestException, Urllib3Error, OSError) as exc:
            raise self._transport_error(exc, method, path, auth.secrets) from None
        except ValueError:
            # http.client refuses a header value with a line break or a character outside Latin-1, quoting it:
            # the value is the token, so the message must not be passed on.
            raise TfeError("%s %s could not be sent: a header holds white space, control or non-Latin-1 characters "
                           "(is the token only the token?)" % (method, path), method=method, path=path,
                           kind="request") from None
        return Answer(self.base_url, method, path, response.status_code, response.reason, response.headers, content,
                      auth.secrets)

    def _transport_error(self, exc, method, path, hide):
        """The :class:`TfeError` for a request that got no (whole) answer: TLS, a timeout or the network."""
        cause = server_text(_root_cause(exc), hide=hide)
        if isinstance(exc, (requests.exceptions.SSLError, Urllib3SSLError)):
            return TfeError(
                "TLS error talking to %s: %s. Set ca_path to the CA bundle that signed the server's certificate "
                "(or validate_certs: false, for testing only)." % (self.base_url, cause),
                method=method, path=path, kind="tls")
        if isinstance(exc, (requests.exceptions.Timeout, Urllib3Timeout)) or _timed_out(exc):
            return TfeError(
                "%s %s timed out after %ss (retries included): %s. Raise timeout or check the network."
                % (method, path, self.timeout, cause), method=method, path=path, kind="timeout")
        return TfeError("Cannot reach %s (%s %s): %s. Check hostname and the network."
                        % (self.base_url, method, path, cause), method=method, path=path, kind="network")

    def _call(self, method, path, ok, absent=(), **request):
        """The one way to the API: check the platform, send, and judge the status.

        Returns the :class:`Answer` of a status in ``ok``, ``None`` for a status in ``absent`` (what "there
        is none" looks like for this request), and raises :class:`TfeError` for any other.
        """
        self.ensure_hcp_terraform()
        answer = self.send(method, path, **request)
        if answer.status in absent:
            return None
        if answer.status not in ok:
            raise answer.unexpected()
        return answer

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
        answer = self.send("GET", "/ping", auth=False)
        app_name = _app_name(answer)
        if answer.headers.get("X-TFE-Version") or "enterprise" in app_name.lower():
            raise TfeError(
                "%s is Terraform Enterprise (TFP-AppName: %s). Audit trail tokens exist on HCP Terraform only; on "
                "Terraform Enterprise this request would regenerate or revoke the organization's regular API token, "
                "so nothing was changed." % (self.base_url, app_name or "unknown"),
                status=answer.status, method="GET", path="/ping", kind="platform")
        if answer.status < 300 and app_name.lower() in HCP_TERRAFORM_APP_NAMES:
            self.platform = "hcp"
            return self.platform
        reason = "GET /api/v2/ping answered HTTP %s with TFP-AppName %r" % (answer.status, app_name or None)
        if not self.allow_unverified_platform:
            raise TfeError(
                "Cannot establish that %s is HCP Terraform (%s). Audit trail tokens exist on HCP Terraform "
                "only, and on Terraform Enterprise this request would act on the organization's regular API "
                "token. If you are sure the host is HCP Terraform (for example behind a proxy that strips "
                "headers), set allow_unverified_platform: true." % (self.base_url, reason),
                status=answer.status, method="GET", path="/ping", kind="platform")
        self._warn("Could not establish that %s is HCP Terraform (%s); going on because "
                   "allow_unverified_platform is true." % (self.base_url, reason))
        self.platform = "unverified"
        return self.platform

    # -- audit trail tokens ----------------------------------------------------------------

    @staticmethod
    def _token_path(organization):
        return "/organizations/%s/authentication-token" % quote(organization, safe="")

    def read_audit_trail_token(self, organization):
        """The organization's audit trail token metadata (``id``, ``created_at``, ``expired_at``,
        ``last_used_at``), or ``None`` when it has none (404). Never the secret."""
        answer = self._call("GET", self._token_path(organization), ok=(200,), absent=(404,), params=AUDIT_TRAILS)
        return None if answer is None else token_metadata(answer, with_secret=False)

    def create_audit_trail_token(self, organization, expired_at=None):
        """Create or replace the audit trail token.

        Returns ``id``, ``created_at``, ``expired_at``, ``last_used_at``, ``token`` (the new secret) and
        ``warnings`` (a list of str, empty when all is well). Once the server has created the token the old one
        no longer works, so a metadata value of the wrong form is returned as ``None`` with a warning naming
        it, never raised; only a secret that does not look like a token is refused (:class:`TfeError`).

        :param expired_at: an RFC 3339 string (UTC) or ``None`` for the server's default.
        """
        attributes = {"expired-at": expired_at} if expired_at else {}
        body = {"data": {"type": "authentication-token", "attributes": attributes}}
        answer = self._call("POST", self._token_path(organization), ok=(200, 201), params=AUDIT_TRAILS, body=body)
        return token_metadata(answer, with_secret=True)

    def delete_audit_trail_token(self, organization):
        """Delete the audit trail token. Returns ``False`` when there was none (404)."""
        path = self._token_path(organization)
        return self._call("DELETE", path, ok=(200, 204), absent=(404,), params=AUDIT_TRAILS) is not None

    def audit_trail_token_is_live(self, secret):
        """Whether ``secret`` is the organization's live audit trail token.

        Reads one event with it: 200 means live, 401 stale (regenerated, deleted or expired).
        Anything else (404 for an organization without the entitlement, 5xx after retries) raises:
        an answer that does not say "stale" is never a reason to regenerate.
        """
        answer = self._call("GET", TRAIL_PATH, ok=(200,), absent=(401,), params={"page[size]": 1},
                            accept="application/json", auth=BearerAuth(secret))
        return answer is not None and answer.audit_trail_page() is not None

    # -- audit trail events ----------------------------------------------------------------

    def read_audit_trail(self, since=None, page=1, page_size=1000):
        """One page of the audit trail of the bearer token's organization.

        Returns the decoded body ``{"data": [...], "pagination": {...}}`` (plain JSON, not JSON:API); an event
        that cannot be decoded is an ``_answers.Undecodable`` (its raw bytes) in its place in ``data``.
        A body that is not a JSON object is a :class:`TfeError` (kind ``response``).
        """
        params = {"page[number]": page, "page[size]": page_size}
        if since:
            params["since"] = since
        return self._call("GET", TRAIL_PATH, ok=(200,), params=params, accept="application/json").audit_trail_page()


def environment_proxy(url):
    """Whether requests would send ``url`` through a proxy from the environment (``http_proxy``,
    ``HTTP_PROXY``, ``all_proxy``, ...; ``no_proxy`` honoured). Never the proxy's address: it may
    carry credentials."""
    proxies = requests.utils.get_environ_proxies(url)
    return requests.utils.select_proxy(url, proxies) is not None


def _app_name(answer):
    return answer.text((answer.headers.get("TFP-AppName") or "").strip(), 100)


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
