"""Local emulator of the HCP Terraform / Terraform Enterprise API that the audit trail token collection uses.

What it imitates, each behaviour with its public source or marked unverified, is the contract in
``tests/emulator/API.md``. Where the API docs are silent the emulator plays every reading, so tests can prove a
client right under each: of the listing (``order``, ``ties``, ``max_page_size``, ``since``,
``visibility_delay_ms``) and of the token rules (``user_token_trail``, ``disabled_trail``, ``ttl_refusal``,
``show_events``).

Emulated: ping, service discovery, the organization authentication-token endpoints (audit trail
token with ``?token=audit-trails``, the regular organization token without it), and the audit
trail events endpoint; admin, member, owner and team tokens, organization lifetime policies and a switched-off
audit trail. Plus test controls: a request log (never secrets), fault injection (including faults that change
the trail between two page requests, and faults that break the real answer: ``mangle``, ``echo_token``,
``ignore_page_number``), planted events, rate limiting, platform switch (``hcp``/``tfe``), all steerable
in-process (``Emulator``) or over HTTP under ``/_emulator/``. Stdlib only; ``trustme`` is imported only when TLS
is asked for.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import ssl
import string
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

JSONAPI = "application/vnd.api+json"
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
RETENTION = timedelta(days=14)        # audit trail events are kept 14 days
DEFAULT_TOKEN_YEARS = 2               # server-side default expiry of new tokens: two calendar years
DEFAULT_PAGE_SIZE = 1000              # docs: "If omitted, the endpoint will return 1000 audit events per page"
MAX_PAGE_SIZE = 1000                  # not documented: the default of max_page_size, one reading among many
# Readings of what the audit trail docs leave open (see API.md); each one can be played.
ORDERS = ("newest", "oldest")         # newest first is what the public evidence shows
TIES = ("insertion", "id")            # order among events with the same millisecond
SINCE_MODES = ("exclusive", "inclusive")
# Readings of what the API docs leave open about tokens (see API.md); each one can be played.
USER_TOKEN_TRAIL = ("401", "404", "empty")   # what user and team tokens get from the audit trail endpoint
DISABLED_TRAIL = ("empty", "404")            # what the endpoint answers for an organization with the trail off
TTL_REFUSAL = ("422", "400")                 # the status of a create beyond the lifetime policy
UTC_MIN = datetime.min.replace(tzinfo=timezone.utc)
UTC_MAX = datetime.max.replace(tzinfo=timezone.utc)
AUDIT = "audit-trails"                # token kinds, keyed like the query parameter value
ORG = "organization"
TOKEN_PATH = re.compile(r"^/api/v2/organizations/([^/]+)/authentication-token$")
DISCOVERY = {"tfe.v2": "/api/v2/", "tfe.v2.1": "/api/v2/", "tfe.v2.2": "/api/v2/",
             "modules.v1": "/api/registry/v1/modules/"}
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _to_ms(dt: datetime) -> datetime:
    """The API shows times to the millisecond."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def describe_lifetime(ttl: timedelta) -> str:
    """A lifetime in words for error details: "730 days", "1 hour", "90 seconds"."""
    seconds = ttl.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


def _rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for dummy in range(n))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def fmt_time(dt: datetime | None) -> str | None:
    """The API's timestamp format: UTC, millisecond precision, ``Z``."""
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def add_years(dt: datetime, years: int) -> datetime:
    """Go's ``t.AddDate(years, 0, 0)``: same month, day and time; a day the target month lacks rolls over
    into the next month (Feb 29 + 2 years = Mar 1), as Go normalises it."""
    return dt.replace(year=dt.year + years, day=1) + timedelta(days=dt.day - 1)


def default_expiry(created_at: datetime) -> datetime:
    """Expiry of a token created without ``expired-at``: go-tfe's tests expect
    ``CreatedAt.AddDate(2, 0, 0)``; stored to the second like every expiry."""
    return add_years(created_at, DEFAULT_TOKEN_YEARS).replace(microsecond=0)


def _rfc3339_parts(value) -> tuple[datetime, timezone]:
    """(the wall-clock time, its offset) of a strict RFC 3339 text (offset or Z required), parsed by hand so
    3.11-3.13 behave the same."""
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac, tz = m.group(7), m.group(8)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    if tz.upper() == "Z":
        tzinfo = timezone.utc
    else:
        delta = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        tzinfo = timezone(-delta if tz[0] == "-" else delta)
    return datetime(y, mo, d, h, mi, s, micro), tzinfo


def parse_rfc3339(value) -> datetime:
    """Strict RFC 3339 in UTC; ValueError also for a time outside UTC's years 1-9999
    (``9999-12-31T23:30:00-01:00``)."""
    wall, tzinfo = _rfc3339_parts(value)
    try:
        return wall.replace(tzinfo=tzinfo).astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"not representable in UTC: {value!r}") from None


def _event_time(value) -> tuple[datetime, str]:
    """(the instant a listing sorts and filters by, the text the event shows) of a planted event timestamp.

    A text is shown exactly as given. One outside UTC's years 1-9999 sorts at the end (or start) of time, so
    that the emulator never fails on what it was asked to plant.
    """
    if isinstance(value, datetime):
        dt = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return dt, fmt_time(dt)
    wall, tzinfo = _rfc3339_parts(value)
    try:
        return wall.replace(tzinfo=tzinfo).astimezone(timezone.utc), value
    except OverflowError:
        return (UTC_MAX if wall.year == 9999 else UTC_MIN), value


def _optional_time(value) -> datetime | None:
    """None, or a datetime / RFC 3339 text in UTC (a naive datetime is taken as UTC)."""
    return None if value is None else _event_time(value)[0]


def _shift(dt: datetime, delta: timedelta) -> datetime:
    """dt + delta, clamped to the representable range instead of overflowing."""
    try:
        return dt + delta
    except OverflowError:
        return UTC_MAX if delta > timedelta(0) else UTC_MIN


def visibility_delay(event_id, limit_ms: int) -> int:
    """How many milliseconds after its timestamp an event is first listed, in [0, limit_ms]: derived from the
    event id, so the same on every request and every run (reading ``visibility_delay_ms``)."""
    if limit_ms <= 0:
        return 0
    digest = hashlib.sha256(str(event_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (limit_ms + 1)


def parse_iso8601(value) -> datetime:
    """Lenient ISO 8601 for ``since``; a naive value is taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            return parse_rfc3339(value)
        except ValueError:
            dt = datetime.fromisoformat(str(value))
    try:
        return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"not representable in UTC: {value!r}") from None


# A secret of the real shape (``<14 chars>.atlasv1.<secret>``) for documents that tests plant.
REAL_LOOKING_TOKEN = "ABCDEFGHIJKLMN.atlasv1." + "s3cr3t-_" * 8


def token_document(**attributes) -> dict:
    """A create (201) answer of the API's shape with ``attributes`` overridden (``id`` too), for tests that make
    the emulator answer with planted values (``add_fault(status=201, body=json.dumps(token_document(...)))``)."""
    values = {"created-at": "2026-01-05T10:11:12.075Z", "last-used-at": None, "description": None,
              "token": REAL_LOOKING_TOKEN, "expired-at": "2028-01-05T10:11:12.000Z"}
    values.update(attributes)
    return {"data": {"id": values.pop("id", "at-sjt83qTw3GZatuPm"), "type": "authentication-tokens",
                     "attributes": values}}


def error_doc(status: int, title: str | None = None, detail: str | None = None, pointer: str | None = None):
    err = {"status": str(status), "title": title or HTTPStatus(status).phrase.lower()}
    if detail:
        err["detail"] = detail
    if pointer:
        err["source"] = {"pointer": pointer}
    return {"errors": [err]}


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer, not {value!r}")


def check_listing(order=None, ties=None, max_page_size=None, since=None, visibility_delay_ms=None) -> dict:
    """The listing settings that were given (None = not given), validated; ValueError on a bad one."""
    for name, value, allowed in (("order", order, ORDERS), ("ties", ties, TIES), ("since", since, SINCE_MODES)):
        if value is not None and value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    if max_page_size is not None:
        _check_int("max_page_size", max_page_size, 1)
    if visibility_delay_ms is not None:
        _check_int("visibility_delay_ms", visibility_delay_ms, 0)
    given = {"order": order, "ties": ties, "max_page_size": max_page_size, "since": since,
             "visibility_delay_ms": visibility_delay_ms}
    return {k: v for k, v in given.items() if v is not None}


def check_readings(user_token_trail=None, disabled_trail=None, ttl_refusal=None, show_events=None) -> dict:
    """The readings that were given (None = not given), validated; a status may be given as a number."""
    given = {"user_token_trail": user_token_trail, "disabled_trail": disabled_trail, "ttl_refusal": ttl_refusal}
    allowed = {"user_token_trail": USER_TOKEN_TRAIL, "disabled_trail": DISABLED_TRAIL, "ttl_refusal": TTL_REFUSAL}
    for name, value in list(given.items()):
        if isinstance(value, int) and not isinstance(value, bool):
            value = given[name] = str(value)
        if value is not None and value not in allowed[name]:
            raise ValueError(f"{name} must be one of {', '.join(allowed[name])}, not {value!r}")
    if show_events is not None and not isinstance(show_events, bool):
        raise ValueError(f"show_events must be true or false, not {show_events!r}")
    given["show_events"] = show_events
    return {k: v for k, v in given.items() if v is not None}


def order_events(events: list, order: str, ties: str) -> list:
    """Events ``(timestamp, id, event)``, given in insertion order, in the order a listing shows them.

    ``ties="insertion"``: same-millisecond events keep the order they were added in, and ``newest`` is
    exactly the reverse of ``oldest`` (the tie group flips too). ``ties="id"``: same-millisecond events
    are sorted by event id in both orders: stable between requests, unrelated to insertion.
    """
    newest = order == "newest"
    if ties == "id":
        by_id = sorted(events, key=lambda e: e[1])
        return sorted(by_id, key=lambda e: e[0], reverse=newest)  # sorted() is stable: ties stay by id
    oldest = sorted(events, key=lambda e: e[0])                   # stable: ties stay in insertion order
    return oldest[::-1] if newest else oldest


# ---- broken and hostile answers: small operations on the JSON the emulator would have sent -------------
MANGLE_OPS = ("delete", "set", "nest")
PAGE_NUMBER_IGNORED = ("echo", "first")   # a server that ignores page[number] (fault ignore_page_number)


class MangleError(ValueError):
    """A mangle operation that does not fit the answer (a path that is not there)."""


def _path_parts(path) -> list:
    """A mangle path: ``"data.0.auth.description"`` or a list of keys and indexes; ``""`` is the whole answer."""
    if isinstance(path, str):
        return path.split(".") if path else []
    if isinstance(path, list) and all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in path):
        return list(path)
    raise ValueError(f"a mangle path is a dotted string or a list of keys and indexes, not {path!r}")


def check_mangle(ops) -> list:
    """The mangle operations, validated: a list of ``{"delete": PATH}``, ``{"set": PATH, "value": V}`` or
    ``{"nest": PATH, "depth": N, "container": "list"|"object"}``; ValueError on a bad one."""
    if not isinstance(ops, list):
        raise ValueError(f"mangle must be a list of operations, not {ops!r}")
    for op in ops:
        kinds = [k for k in MANGLE_OPS if isinstance(op, dict) and k in op]
        if len(kinds) != 1:
            raise ValueError(f"a mangle operation has exactly one of {', '.join(MANGLE_OPS)}: {op!r}")
        allowed = {"delete": {"delete"}, "set": {"set", "value"}, "nest": {"nest", "depth", "container"}}[kinds[0]]
        if set(op) - allowed or (kinds[0] == "set" and "value" not in op):
            raise ValueError(f"mangle operation {op!r}: want the keys {', '.join(sorted(allowed))}")
        _path_parts(op[kinds[0]])
        if kinds[0] == "nest":
            _check_int("nest depth", op.get("depth"), 1)
            if op.get("container", "list") not in ("list", "object"):
                raise ValueError(f"nest container must be list or object, not {op.get('container')!r}")
    return [dict(op) for op in ops]


def _step(node, part, must_exist: bool = True):
    """The key or index ``part`` names in ``node``; MangleError if it is not there."""
    if isinstance(node, list):
        try:
            index = int(part)
            node[index]  # pylint: disable=pointless-statement
            return index
        except (ValueError, IndexError):
            raise MangleError(f"no item {part!r} in a list of {len(node)}") from None
    if isinstance(node, dict) and (str(part) in node or not must_exist):
        return str(part)
    raise MangleError(f"no key {part!r} in {type(node).__name__}")


def mangle_document(body, ops: list) -> str:
    """The JSON text of ``body`` (a dict/list, or JSON text) with the operations applied in order.

    ``nest`` wraps a value in ``depth`` lists (or ``{"nested": ...}`` objects). The nesting is spliced into the
    text afterwards, without recursion, so 5,000 levels are no problem for the emulator (only for the reader).
    """
    if body is None or body == "":
        raise MangleError("the answer has no body to mangle")
    doc = json.loads(body if isinstance(body, (str, bytes)) else json.dumps(body))   # a copy: stored events stay
    nests = []
    for n, op in enumerate(ops):
        kind = next(k for k in MANGLE_OPS if k in op)
        parts = _path_parts(op[kind])
        value = op.get("value")
        if kind == "nest":
            value = f"\u0000tfe-emulator-nest-{n}\u0000"
        if not parts:
            if kind == "delete":
                raise MangleError("the whole answer cannot be deleted")
            nests += [(value, doc, op)] if kind == "nest" else []
            doc = value
            continue
        parent = doc
        for part in parts[:-1]:
            parent = parent[_step(parent, part)]
        key = _step(parent, parts[-1], must_exist=kind != "set")
        if kind == "delete":
            del parent[key]
            continue
        if kind == "nest":
            nests.append((value, parent[key], op))
        parent[key] = value
    text = json.dumps(doc)
    for marker, inner, op in reversed(nests):   # the last nest first: it may wrap an earlier one's marker
        opening, closing = ("[", "]") if op.get("container", "list") == "list" else ('{"nested": ', "}")
        text = text.replace(json.dumps(marker), opening * op["depth"] + json.dumps(inner) + closing * op["depth"], 1)
    return text


def echo_page_number(body, query):
    """Page 1's answer dressed as the page asked for: a server that ignores ``page[number]`` and always has a
    next page (``current_page`` echoed, ``next_page`` = current + 1, ``total_pages`` growing)."""
    if not isinstance(body, dict) or not isinstance(body.get("pagination"), dict):
        return body
    number = max(1, _int(query.get("page[number]"), 1))
    pagination = dict(body["pagination"], current_page=number, prev_page=number - 1 if number > 1 else None,
                      next_page=number + 1)
    pagination["total_pages"] = max(_int(pagination.get("total_pages"), 1), number + 1)
    return dict(body, pagination=pagination)


_DEFAULT_STATUS = object()  # add_fault: "status not given", which depends on the kind of fault


class UnknownOrganization(KeyError):
    pass


@dataclass
class Response:
    status: int
    body: object = None                    # dict/list -> JSON, str/bytes as is, None -> empty
    headers: dict = field(default_factory=dict)
    content_type: str = JSONAPI


def _json(status: int, obj) -> Response:
    """Plain JSON (control API); serialised here so that None becomes `null`, not an empty body."""
    return Response(status, json.dumps(obj), content_type="application/json")


def _no_content() -> Response:
    return Response(204, content_type="application/json")


def _error(status, title=None, detail=None, pointer=None) -> Response:
    return Response(status, error_doc(status, title, detail, pointer))


@dataclass
class Token:
    id: str
    secret: str
    created_at: datetime
    expired_at: datetime
    created_by: str
    last_used_at: datetime | None = None
    created_by_type: str = "users"      # or "organizations" when the organization token made it

    def as_dict(self) -> dict:
        return {"id": self.id, "token": self.secret, "expired_at": fmt_time(self.expired_at),
                "created_at": fmt_time(self.created_at), "last_used_at": fmt_time(self.last_used_at)}

    def document(self, with_secret: bool) -> dict:
        # Shape of docs §1. The secret appears only in the 201 of a create.
        return {"data": {"id": self.id, "type": "authentication-tokens",
                         "attributes": {"created-at": fmt_time(self.created_at),
                                        "last-used-at": fmt_time(self.last_used_at),
                                        "description": None,
                                        "token": self.secret if with_secret else None,
                                        "expired-at": fmt_time(self.expired_at)},
                         "relationships": {"created-by": {"data": {"id": self.created_by,
                                                                   "type": self.created_by_type}}}}}


class _Event(dict):
    """An audit event as the API shows it; ``visible_at`` (UTC) is when it is first listed, None = by the
    listing's ``visibility_delay_ms`` reading."""
    visible_at: datetime | None = None


@dataclass
class Organization:
    name: str
    entitlement: bool
    id: str = field(default_factory=lambda: "org-" + _rand(16))
    tokens: dict = field(default_factory=dict)     # AUDIT / ORG -> Token
    audit_trail_enabled: bool = True               # False: events go to HCP audit log streaming instead
    max_ttl: timedelta | None = None               # lifetime policy for audit trail tokens; None = no policy
    events: list = field(default_factory=list)     # (timestamp, id, _Event), in insertion order

    def beyond_policy(self, kind: str, tok: Token) -> bool:
        """Whether a token lives longer than the organization's policy allows: such tokens stop working."""
        return kind == AUDIT and self.max_ttl is not None and tok.expired_at - tok.created_at > self.max_ttl


@dataclass
class User:
    """Who acts: a user, a team, or an organization (through its organization API token)."""
    id: str
    name: str
    kind: str = "users"          # the JSON:API type of created-by: users, teams or organizations
    org: str | None = None       # the organization it belongs to; None: an admin who owns every organization
    manages_tokens: bool = True  # False: a member outside the owners team, or a team other than owners


@dataclass
class Caller:
    """Who called a token endpoint: who acts, the rate-limit identity, the organization it is confined to."""
    actor: User
    identity: str
    org: str | None
    manages_tokens: bool = True


@dataclass
class Fault:
    method: str | None
    pattern: re.Pattern
    status: int | None
    count: int
    delay: float
    drop: bool
    headers: dict | None
    body: str | None
    skip: int = 0              # matching requests still to let through untouched before the fault applies
    insert_events: int = 0     # the trail changes before the request is answered: new events ...
    insert_step_ms: int = 1    # ... spaced this far apart (0 = one timestamp for all) ...
    expire_events: int = 0     # ... and the oldest ones gone, as the 14-day retention does
    backdate_ms: int = 0       # > 0: the new events are this much older than now, listed late behind newer ones
    mangle: list = field(default_factory=list)   # operations on the real answer's JSON (mangle_document)
    echo_token: bool = False   # an error whose title quotes the request's own Authorization header
    ignore_page_number: str | None = None        # "echo" / "first": page 1's answer for every page number

    def matches(self, method: str, path: str) -> bool:
        return ((self.count is None or self.count > 0) and (self.method is None or self.method == method)
                and bool(self.pattern.search(path)))

    @property
    def rewrites_answer(self) -> bool:
        """Whether the fault changes the real answer (rather than answering in its place)."""
        return bool(self.mangle or self.ignore_page_number)

    @property
    def changes_trail(self) -> bool:
        return bool(self.insert_events or self.expire_events)


class RateLimiter:
    """Sliding one-second window per identity (per user, or per organization for org tokens)."""

    def __init__(self, per_second: int, retry_after: bool = True):
        self.per_second, self.retry_after = per_second, retry_after
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> Response | None:
        if not self.per_second:
            return None
        with self._lock:
            now, hits = time.monotonic(), self._hits[key]
            while hits and hits[0] <= now - 1.0:
                hits.popleft()
            if len(hits) < self.per_second:
                hits.append(now)
                return None
            reset = max(hits[0] + 1.0 - now, 0.001)
        headers = {"X-RateLimit-Limit": str(self.per_second), "X-RateLimit-Reset": f"{reset:.3f}"}
        if self.retry_after:  # undocumented but seen in the wild; a knob lets clients be tested without it
            headers["Retry-After"] = str(max(1, math.ceil(reset)))
        # The documented 429 sample has the status as a number, unlike the other errors.
        return Response(429, {"errors": [{"status": 429, "title": "Too many requests",
                                          "detail": "You have exceeded the API's rate limit."}]}, headers)


class Emulator:
    def __init__(self, platform="hcp", tls=False, tls_names=("127.0.0.1", "localhost"),
                 api_tokens=("admin-token",), rate_limit=30, host="127.0.0.1", port=0,
                 retry_after=True, log_stream=None, order="newest", ties="insertion",
                 max_page_size=MAX_PAGE_SIZE, since="exclusive", visibility_delay_ms=0,
                 user_token_trail="401", disabled_trail="empty", ttl_refusal="422", show_events=True):
        self._initial = (platform, rate_limit, retry_after)
        # Readings of the token rules the docs leave open; reset() returns to these.
        self._initial_readings = check_readings(user_token_trail, disabled_trail, ttl_refusal, show_events)
        self._readings = dict(self._initial_readings)
        self.set_platform(platform)
        # How the audit trail listing reads where the docs are silent; reset() returns to these.
        self._initial_listing = check_listing(order, ties, max_page_size, since, visibility_delay_ms)
        self._listing = dict(self._initial_listing)
        self.tls, self.tls_names, self.host, self.port = tls, tuple(tls_names), host, port
        self.log_stream = log_stream
        self._users = {tok: User("user-" + _rand(16), "admin" if i == 0 else f"admin{i + 1}")
                       for i, tok in enumerate(api_tokens)}
        self._outsider = User("user-" + _rand(16), "someone-else")   # who regenerates "outside Ansible"
        self._members: dict[str, User] = {}   # API token -> a user or team of one organization
        self._lock = threading.RLock()
        self._limiter = RateLimiter(rate_limit, retry_after)
        self._orgs: dict[str, Organization] = {}
        self.issued_secrets: list[str] = []  # every secret handed out, oldest first (leak searches)
        self._log: list[dict] = []
        self._faults: list[Fault] = []
        self.fault_errors: list[str] = []    # mangle operations that did not fit an answer (answered 500)
        self._server = self._thread = self._tmpdir = None
        self.ca_path = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Emulator":
        self._server = _Server((self.host, self.port), _Handler)
        self._server.emu = self
        if self.tls:
            import trustme  # only needed for TLS
            ca = trustme.CA()
            self._tmpdir = tempfile.mkdtemp(prefix="tfe-emulator-")
            self.ca_path = os.path.join(self._tmpdir, "ca.pem")
            ca.cert_pem.write_to_path(self.ca_path)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(*self.tls_names).configure_cert(ctx)
            self._server.ssl_context = ctx
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), name="tfe-emulator",
                                        daemon=True)  # short poll: fast stop()
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = self.ca_path = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # ---- controls ----------------------------------------------------------------------------
    def add_organization(self, name: str, entitlement: bool = True, audit_trail_enabled: bool = True) -> dict:
        """Add an organization, or update one: its settings are then the ones given (or their defaults)."""
        with self._lock:
            org = self._orgs.setdefault(name, Organization(name, bool(entitlement)))
            org.entitlement = bool(entitlement)
            org.audit_trail_enabled = bool(audit_trail_enabled)
            return {"name": org.name, "id": org.id, "entitlement": org.entitlement,
                    "audit_trail_enabled": org.audit_trail_enabled}

    def set_token_ttl_policy(self, org: str, max_ttl) -> None:
        """The organization's maximum lifetime for audit trail tokens: a timedelta or seconds; None = no policy.

        A create beyond it is refused (status: the reading ``ttl_refusal``), a create without ``expired-at``
        expires at the latest at created-at + max_ttl, and a token living longer than it answers 401.
        """
        if max_ttl is not None and not isinstance(max_ttl, timedelta):
            if isinstance(max_ttl, bool) or not isinstance(max_ttl, (int, float)):
                raise ValueError(f"max_ttl must be a timedelta, seconds or None, not {max_ttl!r}")
            try:
                max_ttl = timedelta(seconds=max_ttl)
            except (OverflowError, ValueError):
                raise ValueError(f"max_ttl must be a number of seconds a timedelta can hold, not {max_ttl!r}") from None
        if max_ttl is not None and max_ttl <= timedelta(0):
            raise ValueError(f"max_ttl must be positive, not {max_ttl!r}")
        with self._lock:
            self._org(org).max_ttl = max_ttl

    def token_ttl_policy(self, org: str) -> timedelta | None:
        with self._lock:
            return self._org(org).max_ttl

    def set_audit_trail_enabled(self, org: str, enabled: bool) -> None:
        """Switch an organization's audit trail off (its events go to HCP audit log streaming) or on again.
        Events still happen while it is off; what the endpoint answers then is the reading ``disabled_trail``."""
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be true or false, not {enabled!r}")
        with self._lock:
            self._org(org).audit_trail_enabled = enabled

    def user_id(self, api_token: str) -> str:
        """The id of the user (or team) behind an API token."""
        return (self._users.get(api_token) or self._members[api_token]).id

    def add_user_token(self, org: str, token: str | None = None, owner: bool = False) -> str:
        """The API token (returned; random unless given) of a new user of ``org`` only: in its owners team
        with ``owner``, else a member who may not manage its tokens (404 there)."""
        name = f"{'owner' if owner else 'member'}-{_rand(6).lower()}"
        return self._add_member(org, token, User("user-" + _rand(16), name, "users", org, bool(owner)))

    def add_team_token(self, org: str, token: str | None = None, owners: bool = False) -> str:
        """The API token (returned; random unless given) of a team of ``org``: its owners team with ``owners``
        (may manage the audit trail token, as the docs say), else another team (404 there)."""
        name = "owners" if owners else f"team-{_rand(6).lower()}"
        return self._add_member(org, token, User("team-" + _rand(16), name, "teams", org, bool(owners)))

    def _add_member(self, org: str, token: str | None, member: User) -> str:
        secret = token or f"{_rand(14)}.atlasv1.{_rand(70, URLSAFE)}"
        if not isinstance(secret, str) or not secret.strip() or secret != secret.strip():
            raise ValueError(f"token must be a non-empty string without surrounding spaces, not {secret!r}")
        with self._lock:
            self._org(org)
            if secret in self._users or secret in self._members or self._token_owner(secret):
                raise ValueError("token is already in use")
            self._members[secret] = member
            self.issued_secrets.append(secret)
        return secret

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._log]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def add_fault(self, method=None, path="", status=_DEFAULT_STATUS, count=1, delay=0.0, drop=False,
                  headers=None, body=None, skip=0, insert_events=0, insert_step_ms=1, expire_events=0,
                  backdate_ms=0, mangle=None, echo_token=False, ignore_page_number=None) -> None:
        """The next ``count`` requests (None: every one, until ``clear_faults``) matching method and path (a regex),
        after ``skip`` of them, misbehave. See README.md, Faults.

        ``status`` defaults to 503; to 500 with ``echo_token``; to None (the real answer's status) for a fault that
        only changes the trail (``insert_events`` / ``expire_events``) or the real answer (``mangle``,
        ``ignore_page_number``).
        """
        numbers = {"skip": skip, "insert_events": insert_events, "insert_step_ms": insert_step_ms,
                   "expire_events": expire_events, "backdate_ms": backdate_ms}
        if count is not None:
            numbers["count"] = count
        for name, value in numbers.items():
            _check_int(name, value, 0)
        mangle = check_mangle(mangle) if mangle is not None else []
        if ignore_page_number not in (None,) + PAGE_NUMBER_IGNORED:
            raise ValueError(f"ignore_page_number must be one of {', '.join(PAGE_NUMBER_IGNORED)}, "
                             f"not {ignore_page_number!r}")
        if (body is not None or echo_token) and (mangle or ignore_page_number):
            raise ValueError("body and echo_token answer in place of the real answer: neither goes with mangle "
                             "or ignore_page_number")
        if body is not None and echo_token:
            raise ValueError("echo_token makes its own body: it cannot go with body")
        if status is _DEFAULT_STATUS:
            status = 500 if echo_token else None if (
                insert_events or expire_events or mangle or ignore_page_number) else 503
        fault = Fault(method.upper() if method else None, re.compile(path), None if status is None else int(status),
                      count, float(delay), bool(drop), dict(headers or {}), body, skip, insert_events,
                      insert_step_ms, expire_events, backdate_ms, mangle, bool(echo_token), ignore_page_number)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Drop every fault, and the record of faults that could not apply."""
        with self._lock:
            self._faults.clear()
            self.fault_errors.clear()

    def _token_dict(self, org_name, kind):
        with self._lock:
            tok = self._org(org_name).tokens.get(kind)
            return tok.as_dict() if tok else None

    def audit_trail_token(self, org: str) -> dict | None:
        return self._token_dict(org, AUDIT)

    def organization_token(self, org: str) -> dict | None:
        return self._token_dict(org, ORG)

    def regenerate_audit_trail_token(self, org: str, expired_at=None) -> dict:
        """A new audit trail token made by "someone else" (outside the collection); no future check on
        ``expired_at``, which makes expired tokens easy."""
        return self._outside_token(org, AUDIT, expired_at)

    def create_organization_token(self, org: str, expired_at=None) -> dict:
        """A new organization API token made by "someone else", e.g. for tests that act as the organization."""
        return self._outside_token(org, ORG, expired_at)

    def _outside_token(self, org: str, kind: str, expired_at) -> dict:
        expiry = None if expired_at is None else (
            expired_at.astimezone(timezone.utc) if isinstance(expired_at, datetime) else parse_rfc3339(expired_at))
        with self._lock:
            return self._new_token(self._org(org), kind, self._outsider,
                                   expiry and expiry.replace(microsecond=0)).as_dict()

    def seed_events(self, org: str, count: int = 2500, start=None, step_seconds: float = 1.0, timestamp=None,
                    visible_at=None) -> int:
        """Synthetic events; by default the last one is about now, spaced step_seconds apart.
        ``visible_at``: when they are first listed (None: by the ``visibility_delay_ms`` reading)."""
        now = _now()
        fixed = parse_iso8601(timestamp) if timestamp is not None else None
        first = parse_iso8601(start) if start is not None else now - timedelta(seconds=count * step_seconds)
        shown_at = _optional_time(visible_at)
        with self._lock:
            o = self._org(org)
            for i in range(count):
                self._synthetic_event(o, i, fixed or first + timedelta(seconds=i * step_seconds), shown_at)
        return count

    def add_event(self, org: str, timestamp=None, visible_at=None, **fields) -> dict:
        """One event (a copy is returned) at ``timestamp`` (default now; a datetime, or an RFC 3339 text that the
        event shows verbatim, even one outside UTC's range such as ``9999-12-31T23:30:00.000-01:00``), first
        listed at ``visible_at`` (None: by the ``visibility_delay_ms`` reading). ``fields`` are merged into the
        event (dicts key by key), e.g. ``auth={"description": "x"}``, ``id="..."``, ``resource={"action": "show"}``.
        """
        ts, text = _event_time(_now() if timestamp is None else timestamp)
        shown_at = _optional_time(visible_at)
        with self._lock:
            o = self._org(org)
            ev = self._new_event(o, self._first_user(), "workspace", "ws-" + _rand(16), "update", ts)
            ev["timestamp"] = text
            _merge(ev, fields)
            self._store_event(o, ev, ts, shown_at)
            return json.loads(json.dumps(ev))

    def _first_user(self) -> User:
        return next(iter(self._users.values()), self._outsider)

    def _synthetic_event(self, org: Organization, i: int, ts: datetime, visible_at: datetime | None = None) -> None:
        """Some activity by the first admin user; ``i`` varies the resource type and action."""
        rtype, prefix = (("workspace", "ws-"), ("run", "run-"), ("variable", "var-"), ("team", "team-"))[i % 4]
        action = ("create", "update", "destroy")[i % 3]
        self._store_event(org, self._new_event(org, self._first_user(), rtype, prefix + _rand(16), action, ts),
                          ts, visible_at)

    def set_rate_limit(self, per_second: int, retry_after: bool = True) -> None:
        self._limiter = RateLimiter(int(per_second), bool(retry_after))

    def set_platform(self, platform: str) -> None:
        if platform not in ("hcp", "tfe"):
            raise ValueError("platform must be 'hcp' or 'tfe'")
        self.platform = platform

    def _update_settings(self, settings: dict, changes: dict) -> None:
        """``settings`` is ``_listing`` or ``_readings``: the same dict for the emulator's life (reset refills it)."""
        with self._lock:
            settings.update(changes)

    def _copy_settings(self, settings: dict) -> dict:
        with self._lock:
            return dict(settings)

    def set_listing(self, order=None, ties=None, max_page_size=None, since=None, visibility_delay_ms=None) -> None:
        """Change how the audit trail listing reads; None leaves a setting as it is."""
        changes = check_listing(order, ties, max_page_size, since, visibility_delay_ms)  # all or nothing
        self._update_settings(self._listing, changes)

    @property
    def listing(self) -> dict:
        return self._copy_settings(self._listing)

    def set_readings(self, user_token_trail=None, disabled_trail=None, ttl_refusal=None, show_events=None) -> None:
        """Change the token readings; None leaves a reading as it is; a bad value changes nothing."""
        changes = check_readings(user_token_trail, disabled_trail, ttl_refusal, show_events)
        self._update_settings(self._readings, changes)

    @property
    def readings(self) -> dict:
        return self._copy_settings(self._readings)

    def reset(self) -> None:
        """Drop orgs, tokens, user and team tokens, events, the log and faults; platform, rate limit, listing
        and readings back to start values."""
        with self._lock:
            self._orgs.clear()
            self._log.clear()
            self.issued_secrets.clear()
            self._faults.clear()
            self.fault_errors.clear()
            platform, rate, retry_after = self._initial
            self.set_platform(platform)
            self.set_rate_limit(rate, retry_after)
            for settings, initial in ((self._listing, self._initial_listing), (self._readings, self._initial_readings)):
                settings.clear()
                settings.update(initial)
            self._members.clear()

    # ---- state helpers (call with the lock held) --------------------------------------------
    def _org(self, name: str) -> Organization:
        if name not in self._orgs:
            raise UnknownOrganization(f"unknown organization {name!r}")
        return self._orgs[name]

    def _new_token(self, org: Organization, kind: str, user: User, expired_at: datetime | None,
                   now: datetime | None = None) -> Token:
        """Create (or replace) an organization's token; expired_at None = the server's default."""
        now = now or _now()
        created_at = _to_ms(now)
        tok = Token("at-" + _rand(16), f"{_rand(14)}.atlasv1.{_rand(70, URLSAFE)}", created_at,
                    expired_at or self._server_expiry(org, kind, created_at), user.id, created_by_type=user.kind)
        org.tokens[kind] = tok  # replaces: the old secret stops working at once
        self.issued_secrets.append(tok.secret)
        if kind == AUDIT:
            self._append_event(org, user, "authentication_token", tok.id, "create", now)
        return tok

    @staticmethod
    def _server_expiry(org: Organization, kind: str, created_at: datetime) -> datetime:
        """The expiry of a token created without one: two calendar years, or sooner under a shorter policy."""
        default = default_expiry(created_at)
        if kind == AUDIT and org.max_ttl is not None:
            return min(default, _shift(created_at, org.max_ttl).replace(microsecond=0))
        return default

    def _ttl_refusal(self, org: Organization, kind: str, expiry: datetime | None, now: datetime) -> Response | None:
        """The answer to a create whose expiry lies beyond the organization's lifetime policy, else None.
        Its status is the reading ``ttl_refusal``; the wording is invented (no public sample)."""
        if kind != AUDIT or org.max_ttl is None or expiry is None:
            return None
        latest = _shift(_to_ms(now), org.max_ttl)
        if expiry <= latest:
            return None
        status = int(self._readings["ttl_refusal"])
        detail = (f"Expired at must be no later than {fmt_time(latest)}: the organization's maximum lifetime for "
                  f"audit trail tokens is {describe_lifetime(org.max_ttl)}")
        return _error(status, "invalid attribute" if status == 422 else "bad request", detail,
                      "/data/attributes/expired-at")

    def _append_event(self, org, user, rtype, rid, action, ts):
        self._store_event(org, self._new_event(org, user, rtype, rid, action, ts), ts)

    @staticmethod
    def _new_event(org, user, rtype, rid, action, ts) -> _Event:
        return _Event({"id": str(uuid.uuid4()), "version": "0", "type": "Resource", "timestamp": fmt_time(ts),
                       "auth": {"accessor_id": user.id, "description": user.name, "type": "Client",
                                "impersonator_id": None, "organization_id": org.id},
                       "request": {"id": str(uuid.uuid4())},
                       "resource": {"id": rid, "type": rtype, "action": action, "meta": None}})

    @staticmethod
    def _store_event(org, ev: _Event, ts: datetime, visible_at: datetime | None = None) -> None:
        ev.visible_at = visible_at
        org.events.append((ts.replace(microsecond=ts.microsecond // 1000 * 1000), str(ev["id"]), ev))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        """The fault that applies to this request, if any: the first matching one with no skip left.

        Every matching fault still skipping counts the request, whether or not another fault applies to
        it: ``skip=n`` always means "from the (n+1)th matching request the server receives".
        """
        with self._lock:
            matching = [f for f in self._faults if f.matches(method, path)]
            chosen = next((f for f in matching if f.skip == 0), None)
            for f in matching:
                if f.skip:
                    f.skip -= 1
            if chosen and chosen.count is not None:
                chosen.count -= 1
                if chosen.count == 0:
                    self._faults.remove(chosen)
            return chosen

    def answer(self, method, path, query, headers, body: bytes) -> Response | None:
        """The answer to an API request, faults included; None: drop the connection without one."""
        fault = self._take_fault(method, path)
        if fault is None:
            return self.dispatch(method, path, query, headers, body)
        self._change_trail(fault, path, headers)
        time.sleep(fault.delay)
        if fault.drop:   # no response at all: the client sees a closed connection
            return None
        if fault.status is not None and not fault.rewrites_answer:
            if fault.echo_token:   # the server quotes what it got: the client must not pass this on
                title = "rejected header Authorization: " + (headers.get("Authorization") or "")
                return Response(fault.status, error_doc(fault.status, title), fault.headers)
            return Response(fault.status, fault.body if fault.body is not None else error_doc(fault.status),
                            fault.headers)
        asked = dict(query, **{"page[number]": "1"}) if fault.ignore_page_number else query
        return self._rewrite(fault, self.dispatch(method, path, asked, headers, body), query)

    def _rewrite(self, fault: Fault, resp: Response, query) -> Response:
        """The real answer as the fault changes it: page number ignored, then the mangle operations."""
        body = resp.body
        try:
            if fault.ignore_page_number == "echo":
                body = echo_page_number(body, query)
            if fault.mangle:
                body = mangle_document(body, fault.mangle)
        except MangleError as exc:
            message = f"mangle {fault.mangle!r}: {exc}"
            with self._lock:
                self.fault_errors.append(message)
            if self.log_stream:
                print(f"emulator: fault could not apply: {message}", file=self.log_stream, flush=True)
            return _error(500, "emulator fault could not apply", message)
        status = resp.status if fault.status is None else fault.status
        return Response(status, body, {**resp.headers, **fault.headers}, resp.content_type)

    def _change_trail(self, fault: Fault, path: str, headers) -> None:
        """A fault's change to the trail, made before the request is answered (expiry first, then new events)."""
        if not fault.changes_trail:
            return
        with self._lock:
            for org in self._orgs_of_request(path, headers):
                self._expire_oldest(org, fault.expire_events)
                self._insert_now(org, fault.insert_events, fault.insert_step_ms, fault.backdate_ms)

    def _orgs_of_request(self, path: str, headers) -> list:
        """The organization a request is about: its bearer token's, else the one in the path, else all."""
        owner = self._token_owner(self._bearer(headers))
        if owner:
            return [owner[0]]
        m = TOKEN_PATH.match(path)
        if m and unquote(m.group(1)) in self._orgs:
            return [self._orgs[unquote(m.group(1))]]
        return list(self._orgs.values())

    @staticmethod
    def _expire_oldest(org: Organization, count: int) -> None:
        if count:
            oldest = set(map(id, sorted(org.events, key=lambda e: e[0])[:count]))  # ties: first inserted goes
            org.events[:] = [e for e in org.events if id(e) not in oldest]

    def _insert_now(self, org: Organization, count: int, step_ms: int, backdate_ms: int = 0) -> None:
        """count new events, the newest at about now, and never older than any event already there.

        With ``backdate_ms`` the newest is that much older than now, whatever is already there, and all are
        listed from now on: events that a pipeline delivers late, behind newer events already listed.
        """
        if not count:
            return
        step, now = timedelta(milliseconds=step_ms), _now()
        first = now - timedelta(milliseconds=backdate_ms) - (count - 1) * step
        if org.events and not backdate_ms:  # new events happen after the ones there: a monotonic timeline
            first = max(first, _shift(max(e[0] for e in org.events), step))
        for i in range(count):
            self._synthetic_event(org, len(org.events), _shift(first, i * step), now if backdate_ms else None)

    # ---- the API -----------------------------------------------------------------------------
    def dispatch(self, method, path, query, headers, body: bytes) -> Response:
        if method == "GET" and path == "/api/v2/ping":
            return self._ping()
        if method == "GET" and path == "/.well-known/terraform.json":
            return Response(200, DISCOVERY, content_type="application/json")
        m = TOKEN_PATH.match(path)
        if m and method in ("GET", "POST", "DELETE"):
            return self._token_endpoint(method, unquote(m.group(1)), query, headers, body)
        # The audit trail API exists on HCP Terraform only.
        if method == "GET" and path == "/api/v2/organization/audit-trail" and self.platform == "hcp":
            return self._events(query, headers)
        return _error(404, "not found")

    def _ping(self) -> Response:
        # Platform headers are sent on ping only; clients must not expect them elsewhere.
        h = {"TFP-API-Version": "2.5", "X-RateLimit-Limit": str(self._limiter.per_second or 30)}
        if self.platform == "hcp":
            h["TFP-AppName"] = "HCP Terraform"
        else:
            h.update({"TFP-AppName": "Terraform Enterprise", "X-TFE-Version": "202405-1",
                      "X-TFE-Current-Version": "1.0.0"})
        return Response(204, None, h)

    @staticmethod
    def _bearer(headers) -> str | None:
        value = headers.get("Authorization") or ""
        scheme, dummy, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _person(self, secret: str | None) -> User | None:
        """The user or team behind a user or team API token."""
        if not secret:
            return None
        with self._lock:
            return self._users.get(secret) or self._members.get(secret)

    def _caller(self, headers) -> Caller | None:
        """Who calls a token endpoint, or None (401).

        Admin user tokens act on every organization; user and team tokens on their own organization, where
        only owners (an owners-team member or the owners team) may manage tokens. An organization API token acts
        for its own organization (docs: "members of the owners team, the owners team API token, and the
        organization API token"). Audit trail tokens, stale and expired tokens: None.
        """
        secret = self._bearer(headers)
        person = self._person(secret)
        if person is not None:
            return Caller(person, f"{person.kind}:{person.id}", person.org, person.manages_tokens)
        owner = self._token_owner(secret)
        if owner is None or owner[1] != ORG or not _alive(*owner):
            return None
        org, dummy, tok = owner
        tok.last_used_at = _now()
        # Rate limited per organization, the same bucket as its audit trail reads.
        return Caller(User(org.id, org.name, "organizations"), "org:" + org.name, org.name)

    def _token_endpoint(self, method, org_name, query, headers, body) -> Response:
        caller = self._caller(headers)
        if caller is None:
            return _error(401, "unauthorized")
        limited = self._limiter.check(caller.identity)
        if limited:
            return limited
        # The server wants the JSON:API media type on POST *and* DELETE, even without a body.
        if method in ("POST", "DELETE"):
            media = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if media != JSONAPI:
                return _error(415, "unsupported media type",
                              f"Content-Type must be {JSONAPI}")
        # go-tfe: the token parameter "is ignored by TFE" -> TFE acts on the regular org token.
        kind = AUDIT if query.get("token") == AUDIT and self.platform == "hcp" else ORG
        with self._lock:
            org = self._orgs.get(org_name)
            # Another organization, or a member who may not manage tokens: forbidden, which the API hides as 404.
            if org is None or caller.org not in (None, org.name) or not caller.manages_tokens:
                return _error(404, "not found")
            if method == "POST":
                return self._create_token(org, kind, caller.actor, body)
            tok = org.tokens.get(kind)
            if tok is None:
                return _error(404, "not found")
            if method == "GET":
                if kind == AUDIT and self._readings["show_events"]:   # a read is an event too ("show")
                    self._append_event(org, caller.actor, "authentication_token", tok.id, "show", _now())
                return Response(200, tok.document(False))
            del org.tokens[kind]
            if kind == AUDIT:
                self._append_event(org, caller.actor, "authentication_token", tok.id, "destroy", _now())
            return Response(204)

    def _create_token(self, org: Organization, kind: str, user: User, body: bytes) -> Response:
        # Create needs the entitlement; the API hides "forbidden" as 404.
        if kind == AUDIT and not org.entitlement:
            return _error(404, "not found")
        expiry = self._parse_expiry(body)
        if isinstance(expiry, Response):
            return expiry
        now = _now()
        refusal = self._ttl_refusal(org, kind, expiry, now)
        if refusal:
            return refusal
        return Response(201, self._new_token(org, kind, user, expiry, now).document(True))

    def _parse_expiry(self, body: bytes) -> datetime | None | Response:
        """The requested expiry, None when not given (the server's default applies), or an error."""
        if not body.strip():
            return None
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "bad request", "The request body is not valid JSON")
        if not isinstance(doc, dict):
            return _error(400, "bad request", "The request body must be a JSON object")
        data = doc.get("data")
        if data is None:
            return None
        if not isinstance(data, dict):
            return _error(422, "invalid attribute", "Data must be an object", "/data")
        attrs = data.get("attributes") or {}
        if not isinstance(attrs, dict):
            return _error(422, "invalid attribute", "Attributes must be an object", "/data/attributes")
        value = attrs.get("expired-at")
        if value is None:
            return None
        pointer = "/data/attributes/expired-at"
        try:
            expiry = parse_rfc3339(value).replace(microsecond=0)  # stored to the second
        except ValueError:
            return _error(422, "invalid attribute", "Expired at is not a valid RFC 3339 date-time", pointer)
        if expiry <= _now():
            return _error(422, "invalid attribute", "Expired at must be in the future", pointer)
        return expiry

    def _token_owner(self, secret: str | None):
        """(organization, kind, token) of a current (not replaced, not deleted) token secret, else None."""
        if not secret:
            return None
        with self._lock:
            return next(((o, kind, t) for o in self._orgs.values() for kind, t in o.tokens.items()
                         if secrets.compare_digest(t.secret.encode(), secret.encode())), None)

    def _events(self, query, headers) -> Response:
        secret = self._bearer(headers)
        person = self._person(secret)
        if person is not None:
            return self._events_for_person(person, query)
        found = self._token_owner(secret)
        # Stale (replaced/deleted), expired and over-policy tokens are refused.
        if found is None or not _alive(*found):
            return _error(401, "unauthorized")
        org, dummy, tok = found
        limited = self._limiter.check("org:" + org.name)
        if limited:
            return limited
        if not org.entitlement:
            return _error(404, "not found")
        try:
            since = parse_iso8601(query["since"]) if query.get("since") else None
        except ValueError:
            return _error(422, "invalid attribute", "since is not a valid ISO 8601 date-time")
        now = _now()
        with self._lock:
            tok.last_used_at = now
            listing = dict(self._listing)
            if not org.audit_trail_enabled:   # unknown what a real server answers: the reading disabled_trail
                return _error(404, "not found") if self._readings["disabled_trail"] == "404" else _page(
                    [], query, listing["max_page_size"])
            visible = [e for e in org.events if _after(e[0], now - RETENTION, since, listing["since"])
                       and _listed_yet(e, now, listing["visibility_delay_ms"])]
        return _page(order_events(visible, listing["order"], listing["ties"]), query, listing["max_page_size"])

    def _events_for_person(self, person: User, query) -> Response:
        """User and team tokens "cannot" read the audit trail; how they are refused is the reading
        ``user_token_trail``: 401, 404 (a valid token without permission), or an empty 200."""
        reading = self.readings["user_token_trail"]
        if reading == "401":
            return _error(401, "unauthorized")
        limited = self._limiter.check(f"{person.kind}:{person.id}")
        if limited:
            return limited
        if reading == "404":
            return _error(404, "not found")
        return _page([], query, self.listing["max_page_size"])

    # ---- the control API (no auth, not logged, not rate limited) -----------------------------
    def control(self, method, path, body: bytes) -> Response:
        try:
            args = json.loads(body) if body.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("body must be a JSON object")
            return self._control(method, path[len("/_emulator"):], args)
        except UnknownOrganization as exc:
            return _json(404, {"error": exc.args[0]})
        except (ValueError, KeyError, TypeError, re.error) as exc:
            return _json(400, {"error": str(exc)})

    def _control(self, method, path, args) -> Response:
        m = re.match(r"^/organizations/([^/]+)/([a-z-]+)$", path)
        if m:
            return self._org_control(method, unquote(m.group(1)), m.group(2), args)
        ok = _no_content()
        routes = {
            ("GET", "/requests"): lambda: _json(200, self.requests),
            ("DELETE", "/requests"): lambda: (self.clear_requests(), ok)[1],
            ("POST", "/faults"): lambda: (self.add_fault(**args), ok)[1],
            ("DELETE", "/faults"): lambda: (self.clear_faults(), ok)[1],
            ("GET", "/fault-errors"): lambda: _json(200, list(self.fault_errors)),
            ("POST", "/organizations"): lambda: _json(201, self.add_organization(
                args["name"], args.get("entitlement", True), args.get("audit_trail_enabled", True))),
            ("POST", "/rate-limit"): lambda: (self.set_rate_limit(
                args["per_second"], args.get("retry_after", True)), ok)[1],
            ("POST", "/platform"): lambda: (self.set_platform(args["platform"]), ok)[1],
            ("POST", "/reset"): lambda: (self.reset(), ok)[1],
            ("GET", "/listing"): lambda: _json(200, self.listing),
            ("POST", "/listing"): lambda: (self.set_listing(**args), ok)[1],
            ("GET", "/readings"): lambda: _json(200, self.readings),
            ("POST", "/readings"): lambda: (self.set_readings(**args), ok)[1],
        }
        route = routes.get((method, path))
        return route() if route else _json(404, {"error": "no such control"})

    def _org_control(self, method, org, what, args) -> Response:
        """The control routes under ``/_emulator/organizations/{org}/``."""
        with self._lock:
            self._org(org)
        routes = {
            ("GET", "audit-trail-token"): lambda: _json(200, self._token_dict(org, AUDIT)),
            ("POST", "audit-trail-token"): lambda: _json(201, self.regenerate_audit_trail_token(
                org, args.get("expired_at"))),
            ("GET", "organization-token"): lambda: _json(200, self._token_dict(org, ORG)),
            ("POST", "organization-token"): lambda: _json(201, self.create_organization_token(
                org, args.get("expired_at"))),
            ("POST", "events"): lambda: _json(201, {"count": self.seed_events(org, **args)}),
            ("POST", "event"): lambda: _json(201, self.add_event(org, **args)),
            ("POST", "audit-trail"): lambda: (self.set_audit_trail_enabled(org, args["enabled"]), _no_content())[1],
            ("GET", "token-ttl-policy"): lambda: _json(200, {"max_ttl": _seconds(self.token_ttl_policy(org))}),
            ("POST", "token-ttl-policy"): lambda: (self.set_token_ttl_policy(org, args["max_ttl"]), _no_content())[1],
            ("POST", "user-tokens"): lambda: _json(201, {"token": self.add_user_token(
                org, args.get("token"), args.get("owner", False))}),
            ("POST", "team-tokens"): lambda: _json(201, {"token": self.add_team_token(
                org, args.get("token"), args.get("owners", False))}),
        }
        route = routes.get((method, what))
        return route() if route else _json(404, {"error": "no such control"})

    def _record(self, method, path, query, headers, status) -> None:
        # Deliberately no Authorization header and no body: nothing secret ends up in the log.
        entry = {"method": method, "path": path, "query": query, "status": status,
                 "user_agent": headers.get("User-Agent"), "content_type": headers.get("Content-Type"),
                 "time": time.time()}
        with self._lock:
            self._log.append(entry)
        if self.log_stream:
            print(f"{method} {path} {status}", file=self.log_stream, flush=True)


def _after(ts: datetime, retention_cutoff: datetime, since: datetime | None, since_mode: str) -> bool:
    """Whether an event shows in a listing: inside retention, and after ``since`` (or at it, if inclusive)."""
    if ts <= retention_cutoff:
        return False
    if since is None:
        return True
    return ts > since or (since_mode == "inclusive" and ts == since)


def _alive(org: Organization, kind: str, tok: Token) -> bool:
    """A current token works until it expires, or until the organization's lifetime policy drops below its
    lifetime (docs: such tokens "stop working")."""
    return tok.expired_at > _now() and not org.beyond_policy(kind, tok)


def _page(events: list, query, max_page_size: int) -> Response:
    """The audit trail answer: the page of ``events`` (listing order) that the query asks for, and pagination."""
    number = max(1, _int(query.get("page[number]"), 1))
    # A page size above the server's maximum is capped silently; pagination tells what was used.
    size = min(max_page_size, max(1, _int(query.get("page[size]"), DEFAULT_PAGE_SIZE)))
    total = len(events)
    pages = max(1, math.ceil(total / size))
    page = [e[2] for e in events[(number - 1) * size:number * size]]
    pagination = {"current_page": number, "page_size": size,
                  "prev_page": number - 1 if number > 1 else None,
                  "next_page": number + 1 if number < pages else None,
                  "total_pages": pages, "total_count": total}
    return Response(200, {"data": page, "pagination": pagination}, content_type="application/json")


def _listed_yet(entry, now: datetime, delay_ms: int) -> bool:
    """Whether an event is visible yet: from its own ``visible_at``, else ``visibility_delay(id)`` ms after its
    timestamp; with no delay reading (0) at once, even an event stamped in the future (as always)."""
    ts, event_id, event = entry
    shown_at = getattr(event, "visible_at", None)
    if shown_at is None:
        if not delay_ms:
            return True
        shown_at = _shift(ts, timedelta(milliseconds=visibility_delay(event_id, delay_ms)))
    return now >= shown_at


def _merge(target: dict, changes: dict) -> None:
    """Merge ``changes`` into ``target``: a dict into a dict key by key, anything else replaces."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _seconds(ttl: timedelta | None):
    """A lifetime as JSON: seconds (an integer when whole), or None."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ssl_context = None
    emu: Emulator

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread, so a bad client cannot stall accept().
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        request.settimeout(30)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # client hang-ups and failed handshakes are normal in tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, like the real API; every response has a length
    timeout = 30
    # Like a production server on a keep-alive connection: a response leaves in as few segments as
    # possible (one buffered write, flushed per request) and never waits on Nagle + delayed ACK (40 ms).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def log_request(self, code="-", size="-"):
        pass  # our own one-line log in Emulator._record, without query strings

    def log_message(self, fmt, *args):
        if self.server.emu.log_stream:
            print("emulator: " + (fmt % args), file=self.server.emu.log_stream, flush=True)

    def _handle(self):
        emu, method = self.server.emu, self.command
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self.rfile.read(_int(self.headers.get("Content-Length"), 0) or 0)
        try:
            if path.startswith("/_emulator/"):
                return self._send(emu.control(method, path, body))
            resp = emu.answer(method, path, query, self.headers, body)
            if resp is None:
                self.close_connection = True
                return emu._record(method, path, query, self.headers, "dropped")
        except Exception as exc:  # never hang: any bug becomes a JSON:API 500
            print(f"emulator: internal error on {method} {path}: {exc!r}", file=sys.stderr, flush=True)
            resp = _error(500, "internal server error")
        # Log before answering, so a client that got its response always finds it in the log.
        emu._record(method, path, query, self.headers, resp.status)
        self._send(resp)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

    def _send(self, resp: Response) -> None:
        body = resp.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = b"" if body is None else body.encode() if isinstance(body, str) else body
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if resp.status != 204:
            self.wfile.write(data)


def _env_int(name: str, default: int, parser) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        parser.error(f"{name} must be an integer, not {value!r}")


def _env_bool(name: str, default: bool, parser) -> bool:
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    parser.error(f"{name} must be true or false, not {value!r}")


def _org_specs(emu: Emulator, flag: str, specs: list, parser) -> list:
    """(organization, value) of each ``ORG:VALUE`` of a flag; the organization must be given with --org."""
    pairs = []
    for spec in specs:
        org, dummy, value = spec.partition(":")
        if org not in emu._orgs or not value:
            parser.error(f"{flag} {spec!r}: want ORG:VALUE for an org given with --org")
        pairs.append((org, value))
    return pairs


def _add_members(emu: Emulator, a, parser) -> None:
    """The user and team tokens of the command line, each of one organization."""
    kinds = (("--user-token", a.user_token, emu.add_user_token, False),
             ("--owner-user-token", a.owner_user_token, emu.add_user_token, True),
             ("--team-token", a.team_token, emu.add_team_token, False),
             ("--owners-team-token", a.owners_team_token, emu.add_team_token, True))
    for flag, specs, add, owner in kinds:
        for org, token in _org_specs(emu, flag, specs, parser):
            try:
                add(org, token, owner)
            except ValueError as exc:
                parser.error(f"{flag}: {exc}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--platform", choices=("hcp", "tfe"), default="hcp")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--tls-name", action="append", dest="tls_names")
    p.add_argument("--api-token", action="append", dest="api_tokens", default=[])
    p.add_argument("--org", action="append", default=[])
    p.add_argument("--org-without-entitlement", action="append", default=[])
    p.add_argument("--org-without-audit-trail", action="append", default=[])
    p.add_argument("--rate-limit", type=int, default=30)
    p.add_argument("--ready-file")
    p.add_argument("--seed-events", action="append", default=[], metavar="ORG:COUNT")
    # Readings; a test wrapper may choose them through the environment instead (a flag beats it).
    p.add_argument("--order", choices=ORDERS, default=os.environ.get("TFE_EMULATOR_ORDER") or "newest")
    p.add_argument("--ties", choices=TIES, default=os.environ.get("TFE_EMULATOR_TIES") or "insertion")
    p.add_argument("--max-page-size", type=int, default=MAX_PAGE_SIZE)
    p.add_argument("--since", choices=SINCE_MODES, default="exclusive")
    p.add_argument("--visibility-delay-ms", type=int,
                   default=_env_int("TFE_EMULATOR_VISIBILITY_DELAY_MS", 0, p))
    p.add_argument("--user-token-trail", choices=USER_TOKEN_TRAIL,
                   default=os.environ.get("TFE_EMULATOR_USER_TOKEN_TRAIL") or "401")
    p.add_argument("--disabled-trail", choices=DISABLED_TRAIL,
                   default=os.environ.get("TFE_EMULATOR_DISABLED_TRAIL") or "empty")
    p.add_argument("--ttl-refusal", choices=TTL_REFUSAL, default=os.environ.get("TFE_EMULATOR_TTL_REFUSAL") or "422")
    p.add_argument("--show-events", action=argparse.BooleanOptionalAction,
                   default=_env_bool("TFE_EMULATOR_SHOW_EVENTS", True, p))
    # Per organization: lifetime policies, and user and team tokens.
    p.add_argument("--token-ttl-policy", action="append", default=[], metavar="ORG:SECONDS")
    for flag in ("--user-token", "--owner-user-token", "--team-token", "--owners-team-token"):
        p.add_argument(flag, action="append", default=[], metavar="ORG:TOKEN")
    return p


def _emulator_from(a, p) -> tuple[Emulator, list]:
    """The emulator the command line describes, and the events to seed once it runs: [(org, count)]."""
    env_tokens = [t.strip() for t in os.environ.get("TFE_EMULATOR_API_TOKENS", "").split(",") if t.strip()]
    tokens = a.api_tokens + env_tokens or ["admin-token"]
    try:  # argparse does not check defaults against choices: a bad environment value lands here
        emu = Emulator(a.platform, a.tls, a.tls_names or ("127.0.0.1", "localhost"), tokens, a.rate_limit,
                       a.host, a.port, log_stream=sys.stderr, order=a.order, ties=a.ties,
                       max_page_size=a.max_page_size, since=a.since, visibility_delay_ms=a.visibility_delay_ms,
                       user_token_trail=a.user_token_trail, disabled_trail=a.disabled_trail,
                       ttl_refusal=a.ttl_refusal, show_events=a.show_events)
    except ValueError as exc:
        p.error(str(exc))
    for names, entitlement, trail in ((a.org, True, True), (a.org_without_entitlement, False, True),
                                      (a.org_without_audit_trail, True, False)):
        for name in names:
            emu.add_organization(name, entitlement, audit_trail_enabled=trail)
    seeds = []
    for spec in a.seed_events:
        org, dummy, count = spec.rpartition(":")
        if org not in emu._orgs or not count.isdigit():
            p.error(f"--seed-events {spec!r}: want ORG:COUNT for an org given with --org")
        seeds.append((org, int(count)))
    _add_members(emu, a, p)
    for org, seconds in _org_specs(emu, "--token-ttl-policy", a.token_ttl_policy, p):
        try:
            emu.set_token_ttl_policy(org, float(seconds))
        except ValueError as exc:
            p.error(f"--token-ttl-policy {org}:{seconds}: {exc}")
    return emu, seeds


def main(argv=None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    emu, seeds = _emulator_from(args, p)
    ready_file = args.ready_file
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emu:
        for org, count in seeds:
            emu.seed_events(org, count)
        ready = json.dumps({"url": emu.url, "ca_path": emu.ca_path, "pid": os.getpid()})
        if ready_file:  # atomic: write a sibling temp file, then rename over
            tmp = f"{ready_file}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(ready + "\n")
            os.replace(tmp, ready_file)
        print(ready, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
