# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""``tfe.audit.audit_trail``: an Event-Driven Ansible event source for the HCP Terraform audit trail.

Each audit event of the token's organization becomes one event for ``ansible-rulebook``, oldest
first, under the key ``tfe_audit`` (``event.tfe_audit.resource.type``, ``event.tfe_audit.auth.description``
...). The source never stops by itself; what happens to it arrives as events of its own:

``tfe_audit_source_error``
    HCP Terraform could not be read (5xx or 429 after the client's own retries, the network, TLS, a 404, a
    malformed answer, an unreadable ``token_file``, an unwritable ``state_file``). One per outage; the source
    backs off (1 s, 2 s, 4 s ... up to ``interval``) and keeps trying.
``tfe_audit_source_recovered``
    The first successful poll after an error event.
``tfe_audit_token_stale``
    HTTP 401: the token was regenerated, revoked or expired. One per token; the source re-reads
    ``token_file`` (or the environment) every second and goes on as soon as it holds another token.
``tfe_audit_gap``
    The position (``state_file``, else ``since``) is older than the 14 days HCP Terraform keeps: events between
    ``start`` and ``end`` may be lost. Once per position.

The feed is the collection's export walk (``plugins/module_utils/_feed.py``): one ``since`` per poll, pages
by number, repeats dropped, correct whichever order HCP Terraform lists events in. The blocking HTTP client
runs in a daemon thread, so the event loop never waits for the network and stopping the rulebook never
waits for a request in flight.

Exactly once, with ``state_file``: the state (the collection's cursor format: the newest recorded timestamp and
the ids recorded at it) records an event once the rule engine has taken it from the queue. ansible-rulebook
gives a source a queue that holds one event; an event still in it when the rulebook stops never reached a rule,
so it is not recorded and comes again after a restart. The state is written atomically at least every second
while a backlog is emitted, after each poll once the engine has taken its last event, and when the source is
cancelled. A restart therefore repeats nothing and misses nothing when the rulebook stopped while idle (however
it stopped) or was cancelled (a ``shutdown`` action; SIGTERM or SIGINT when the JVM leaves those signals to
ansible-rulebook, ``JAVA_TOOL_OPTIONS=-Xrs``). When the process dies in the middle of a backlog (SIGKILL, power
loss, or SIGTERM handled by the JVM, which exits at once), the events taken after the last write, about one
second's worth, come again; none is lost, because nothing is recorded before the engine took it.

A token never appears in an event, a log line or the state file.

What the server sends is never a template: a playbook that ``run_playbook`` starts receives the event as extra
vars, which Ansible renders when it reads them, so every Jinja opening delimiter in the event's strings and keys
is broken (``{{`` becomes ``{ {``; real audit events hold none), and the exact original then travels beside it,
base64-encoded JSON, under ``tfe_audit_original``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any


def _collections_root(path: str) -> str:
    """The directory holding ``ansible_collections/`` for this file
    (``<root>/ansible_collections/tfe/audit/extensions/eda/plugins/event_source/audit_trail.py``)."""
    return os.path.abspath(os.path.join(os.path.dirname(path), *([os.pardir] * 7)))


# ansible-rulebook runs a source with runpy.run_path and does not put the collections path on sys.path: the
# collection's own code is found from this file's location when it is not importable already.
try:
    from ansible_collections.tfe.audit.plugins.module_utils import _client, _cursor, _errors, _feed, _module, _spool, _time
except ImportError:  # pragma: no cover - exercised by the real-engine tests (tests/eda)
    sys.path.insert(0, _collections_root(__file__))
    from ansible_collections.tfe.audit.plugins.module_utils import _client, _cursor, _errors, _feed, _module, _spool, _time

from ansible.module_utils.parsing.convert_bool import boolean

DOCUMENTATION = r"""
---
short_description: Receive the audit trail events of an HCP Terraform organization
description:
  - An ansible-rulebook event source that polls the audit trail of the organization the token belongs to
    (C(GET /api/v2/organization/audit-trail)) and puts each new audit event on the queue as one event, oldest
    first, under the key C(tfe_audit).
  - Values from the server are never templates. A Jinja opening delimiter in a string or key of the event is broken
    (V({{) becomes V({ {)), because a playbook started by C(run_playbook) receives the event as extra vars, which
    Ansible renders; the exact event then comes as well, base64-encoded JSON, under C(tfe_audit_original).
  - With O(state_file), each audit event is put on the queue once across restarts of the rulebook.
  - The source never stops by itself. It reports its own condition as events C(tfe_audit_source_error),
    C(tfe_audit_source_recovered), C(tfe_audit_token_stale) (HTTP 401, one per token) and C(tfe_audit_gap).
version_added: 0.1.0
author:
  - tfe.audit maintainers (@tfe-audit)
options:
  hostname:
    description:
      - The HCP Terraform host, as C(host), C(host:port) or an C(https://) URL. C(http://) is for local testing.
      - Default from C(TFE_HOSTNAME), then C(TFE_ADDRESS), else V(app.terraform.io).
    type: str
    default: app.terraform.io
  token:
    description:
      - The organization's audit trail token, or an organization token. User and team tokens are refused by
        HCP Terraform.
      - Default from C(TFE_AUDIT_TRAIL_TOKEN), then C(TFE_TOKEN). Mutually exclusive with O(token_file).
    type: str
  token_file:
    description:
      - A file holding only the token (surrounding white space is ignored). It is read again before each poll,
        so a token written there by the playbook C(tfe.audit.rotate_audit_trail_token) reaches a running
        source without a restart.
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Default true, unless C(TFE_SSL_SKIP_VERIFY) is true.
    type: bool
  ca_path:
    description:
      - A CA bundle to verify the server's certificate with.
    type: path
  interval:
    description:
      - Seconds between the starts of two polls. An idle poll costs one request.
    type: float
    default: 60
  since:
    description:
      - Without a position in O(state_file), start after this time, an RFC 3339 date-time such as
        V(2030-12-31T23:59:59.000Z), or V(now) for only the events that happen from now on.
      - Not set means every event HCP Terraform still keeps (14 days).
    type: str
  page_size:
    description:
      - Events per request, from V(1) to V(1000).
    type: int
    default: 1000
  allow_insecure_http:
    description:
      - Allow an C(http://) O(hostname) that is not loopback (a lab proxy). The token then crosses the network in
        clear text; without this, such a hostname is refused at start.
    type: bool
    default: false
  state_file:
    description:
      - Where the source records which events it emitted (the collection's cursor format, written atomically
        with mode C(0600), never through a symbolic link). A restart continues after the last emitted event.
      - Its directory must exist. Give each source its own file; an export's O(cursor_file) is refused.
    type: path
"""

EXAMPLES = r"""
- name: React to the HCP Terraform audit trail
  hosts: localhost
  sources:
    - tfe.audit.audit_trail:
        token_file: /var/lib/tfe-audit/audit-trail-token
        state_file: /var/lib/tfe-audit/audit-trail-source.json
        interval: 60
        since: now
  rules:
    - name: A workspace was destroyed
      condition: event.tfe_audit.resource.type == "workspace" and event.tfe_audit.resource.action == "destroy"
      action:
        debug:
          msg: "{{ event.tfe_audit.auth.description }} destroyed {{ event.tfe_audit.resource.id }}"
"""

logger = logging.getLogger("tfe.audit.audit_trail")

ARGUMENTS = ("hostname", "token", "token_file", "validate_certs", "ca_path", "interval", "since", "page_size",
             "state_file", "allow_insecure_http")
DEFAULT_INTERVAL = 60.0
MAX_PAGE_SIZE = 1000
# Per request, the client waits out 429s (Retry-After / X-RateLimit-Reset) and backs off on 5xx and network
# errors for at most this long (bounded by the interval, from 5 s to 60 s) before the poll counts as failed.
MIN_REQUEST_WAIT, MAX_REQUEST_WAIT = 5.0, 60.0
REQUEST_TIMEOUT = 30.0
REQUEST_RETRIES = 5
# While a backlog is emitted, the state is written at least this often (seconds).
# Jinja's opening delimiters. A playbook that ansible-rulebook runs (run_playbook) receives the whole event as
# extra vars, and Ansible renders a string that holds one of them as a template when the playbook reads it
# (ansible-core 2.18 renders every string of ansible_eda as soon as any of it is read): a server that planted
# "{{ lookup('pipe', ...) }}" in an audit event would run code where the rulebook runs.
_TEMPLATE_START = re.compile(r"\{(?=[{%#])")
SAVE_EVERY = 1.0
# After a poll, wait this long at most for the engine to take the last event before writing the state.
SETTLE_LIMIT = 2.0
# While the token is stale, token_file (or the environment) is read this often (seconds).
STALE_CHECK_EVERY = 1.0
# A state ahead of this controller's clock by more than this would skip every event until then.
TOKEN_FILE_LIMIT = 64 * 1024


class ArgumentError(ValueError):
    """A bad source argument, found at start. The message names the argument and shows a valid value."""


def inert(value):
    """``(copy, changed)``: ``value`` with every Jinja opening delimiter in its strings and keys broken
    (``{{`` becomes ``{ {``), so no Ansible version can render it. Real audit events hold none."""
    if isinstance(value, str):
        broken = _TEMPLATE_START.sub("{ ", value)
        return broken, broken != value
    changed = False
    if isinstance(value, dict):
        copy = {}
        for key, item in value.items():
            (key, key_changed), (item, item_changed) = inert(key), inert(item)
            copy[key] = item
            changed = changed or key_changed or item_changed
        return copy, changed
    if isinstance(value, list):
        copy = []
        for item in value:
            item, item_changed = inert(item)
            copy.append(item)
            changed = changed or item_changed
        return copy, changed
    return value, False


class _Problem(Exception):
    """A poll that could not run or failed: becomes a ``tfe_audit_source_error`` event."""

    def __init__(self, message, kind, status=None):
        super().__init__(message)
        self.message, self.kind, self.status = message, kind, status


class _Stopped(Exception):
    """The source was cancelled while its walk thread was still paging."""


def _now_text():
    """Now, as the API writes times (``2030-12-31T23:59:59.123Z``)."""
    return _time.format_time(_time.utcnow())


# -- arguments -------------------------------------------------------------------------------------


def _number(args, name, kind, default, example):
    value = args.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ArgumentError("%s must be a number, got %r; for example %s: %s" % (name, value, name, example))
    try:
        number = kind(value)
        if kind is int and isinstance(value, float) and value != number:
            raise ValueError(value)
    except (TypeError, ValueError):
        raise ArgumentError("%s must be a%s number, got %r; for example %s: %s"
                            % (name, " whole" if kind is int else "", value, name, example)) from None
    return number


def _boolean(args, name):
    value = args.get(name)
    if value is None or value == "":
        return None
    try:
        return boolean(value)
    except TypeError:
        raise ArgumentError("%s must be a boolean, got %r; for example %s: true" % (name, value, name)) from None


def _path(args, name, example, must_exist=False):
    value = args.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ArgumentError("%s must be a file path, got %r; for example %s: %s" % (name, value, name, example))
    path = os.path.abspath(os.path.expanduser(value))
    if value.endswith(os.sep) or os.path.isdir(path):
        raise ArgumentError("%s %r must be a file path, not a directory; for example %s: %s"
                            % (name, value, name, example))
    if must_exist and not os.path.isfile(path):
        raise ArgumentError("%s %r is not a file; for example %s: %s" % (name, value, name, example))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise ArgumentError("the directory of %s (%s) does not exist; create it first, for example %s: %s"
                            % (name, directory, name, example))
    return path


class Options:
    """The validated arguments of one source."""

    def __init__(self, args, environ=None):
        environ = os.environ if environ is None else environ
        if not isinstance(args, dict):
            raise ArgumentError("the arguments of tfe.audit.audit_trail must be a mapping, for example "
                                "{token_file: /var/lib/tfe-audit/token}")
        unknown = sorted(str(key) for key in args if key not in ARGUMENTS and not str(key).startswith("eda_"))
        if unknown:
            raise ArgumentError("tfe.audit.audit_trail has no argument %s; it takes %s"
                                % (", ".join(unknown), ", ".join(ARGUMENTS)))
        hostname = args.get("hostname") or environ.get("TFE_HOSTNAME") or environ.get("TFE_ADDRESS") \
            or _module.DEFAULT_HOSTNAME
        self.interval = _number(args, "interval", float, DEFAULT_INTERVAL, 60)
        if not self.interval > 0 or self.interval != self.interval or self.interval == float("inf"):
            raise ArgumentError("interval must be a number of seconds above 0, got %r; for example interval: 60"
                                % args.get("interval"))
        self.page_size = _number(args, "page_size", int, MAX_PAGE_SIZE, 1000)
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ArgumentError("page_size must be from 1 to %d, got %r; for example page_size: 1000"
                                % (MAX_PAGE_SIZE, args.get("page_size")))
        self.since = args.get("since")
        if self.since is not None and not isinstance(self.since, str):
            self.since = str(self.since)
        if self.since and self.since.strip().lower() != "now":
            try:
                self.since = _cursor.Cursor.after(self.since).newest
            except _errors.FeedError:
                raise ArgumentError("since must be now or an RFC 3339 date-time with a time zone offset or Z, got %r; "
                                    "for example since: 2030-12-31T23:59:59.000Z" % self.since[:64]) from None
        elif self.since:
            self.since = "now"
        self.state_file = _path(args, "state_file", "/var/lib/tfe-audit/audit-trail-source.json")
        self.token_file = _path(args, "token_file", "/var/lib/tfe-audit/audit-trail-token", must_exist=True)
        token = args.get("token")
        if token is not None and not isinstance(token, str):
            raise ArgumentError("token must be a string (the audit trail token, or better token_file)")
        if token and self.token_file:
            raise ArgumentError("set token or token_file, not both; for example token_file: "
                                "/var/lib/tfe-audit/audit-trail-token")
        if self.token_file and self.state_file and self.token_file == self.state_file:
            raise ArgumentError("token_file and state_file must be different files")
        self._token = token or None
        self._environ = environ
        if not self.token_file and not self.token_and_origin()[0]:
            raise ArgumentError("no token: set token_file (for example token_file: /var/lib/tfe-audit/audit-trail-token), "
                                "token, or the TFE_AUDIT_TRAIL_TOKEN or TFE_TOKEN environment variable")
        try:
            self.token_and_origin()  # token_file must be readable and hold a token at start
            # hostname, validate_certs and ca_path as every module of the collection reads them.
            self.connection = _module.Connection(
                dict(hostname=hostname, token="-", validate_certs=_boolean(args, "validate_certs"),
                     ca_path=_path(args, "ca_path", "/etc/pki/tls/certs/my-ca.pem", must_exist=True),
                     timeout=REQUEST_TIMEOUT, max_retries=REQUEST_RETRIES, allow_unverified_platform=False,
                     allow_insecure_http=_boolean(args, "allow_insecure_http")),
                environ=environ)
        except _module.OptionError as exc:
            raise ArgumentError(str(exc)) from None
        except _Problem as exc:
            raise ArgumentError(exc.message) from None
        if self.connection.plain_http_remote and not _boolean(args, "allow_insecure_http"):
            raise ArgumentError("hostname %s is http:// to a host that is not loopback: the token would cross the "
                                "network in clear text. Use https:// (for example hostname: https://%s), or, for a lab "
                                "proxy only, set allow_insecure_http: true"
                                % (self.connection.base_url, self.connection.base_url[len("http://"):]))
        self.max_wait = max(MIN_REQUEST_WAIT, min(MAX_REQUEST_WAIT, self.interval))

    def token_and_origin(self):
        """``(token, where it came from)``, read now: token_file, else the argument, else the environment.

        Raises :class:`_Problem` when token_file cannot be read or is empty.
        """
        if self.token_file:
            try:
                with open(self.token_file, "rb") as handle:
                    data = handle.read(TOKEN_FILE_LIMIT + 1)
            except (IOError, OSError) as exc:
                raise _Problem("cannot read token_file %s: %s" % (self.token_file, exc.strerror or exc), "token_file")
            if len(data) > TOKEN_FILE_LIMIT:
                raise _Problem("token_file %s is larger than a token (%d bytes or more); it must hold only the token"
                               % (self.token_file, TOKEN_FILE_LIMIT), "token_file")
            token = data.decode("utf-8", "replace").strip()
            if not token or any(char.isspace() for char in token):
                raise _Problem("token_file %s must hold only the token (it is %s)"
                               % (self.token_file, "empty" if not token else "several words"), "token_file")
            return token, "token_file"
        if self._token:
            return self._token, "token"
        for name in ("TFE_AUDIT_TRAIL_TOKEN", "TFE_TOKEN"):
            if self._environ.get(name):
                return self._environ[name], name
        return None, None


# -- the source ------------------------------------------------------------------------------------


class AuditTrailSource:
    """One running source: polls, emits, records; see the module docstring for the guarantees."""

    def __init__(self, options, queue, clock=time.monotonic):
        self.options = options
        self.queue = queue
        self._clock = clock
        # cursor: what the rule engine has taken from the queue (what state_file records); emitted: what was put
        # on the queue (where the next poll starts). In between: the positions after each event put but maybe
        # still in the queue, oldest first.
        self.cursor, from_state = self._load_state()
        self.emitted = self.cursor.copy()
        self._unconfirmed = collections.deque()
        # A start position from since (above all "now") is written at once, so a restart does not take a new "now".
        self._saved = self.cursor.to_dict() if from_state or self.cursor.horizon is None else None
        self._client = None
        self._client_token = None
        self._stop = threading.Event()
        # While something fails: {"since": time, "failures": n}, per channel ("read": the audit trail, "state": the
        # state file); one error event when it starts, one recovered event when it ends.
        self.outages = {}
        self.stale_token = None      # the token HCP Terraform answered 401 to (compared, never shown)
        self._gap_reported = None
        self.polls = 0

    # -- state -------------------------------------------------------------------------------

    def _load_state(self):
        """``(cursor, from_state)``: the position to continue from, and whether it came from state_file."""
        path = self.options.state_file
        stored = None
        if path:
            try:
                stored = _cursor.load_cursor(path, "state_file")
            except _errors.FeedError as exc:
                raise ArgumentError(str(exc)) from None
        if stored is not None:
            if stored.dest:
                raise ArgumentError("state_file %s is the cursor_file of the export into %s; give the event source "
                                    "a state file of its own, for example state_file: "
                                    "/var/lib/tfe-audit/audit-trail-source.json" % (path, stored.dest))
            if stored.newest and _time.parse_time(stored.newest) > _time.utcnow() + _cursor.FUTURE_ALLOWANCE:
                raise ArgumentError("state_file %s says the source reached %s, which is later than now (%s) on this "
                                    "controller: it would skip every event until then. Fix the clock, or move the "
                                    "state file away to start again from since." % (path, stored.newest, _now_text()))
            if not stored.empty:
                return stored, True
        if self.options.since == "now":
            return _cursor.Cursor.after(_now_text()), False
        return _cursor.Cursor.after(self.options.since), False

    def _queued(self):
        """How many items the queue holds now; 0 when it cannot tell (ansible-rulebook wraps its asyncio.Queue
        in a FilteredQueue that keeps it as ``.queue``)."""
        inner = self.queue if hasattr(self.queue, "qsize") else getattr(self.queue, "queue", None)
        try:
            return max(0, int(inner.qsize()))
        except (AttributeError, TypeError, ValueError):
            return 0

    def confirm(self):
        """Record the emitted events the rule engine has taken. The queue is FIFO and holds ``n`` items, the
        last ``n`` put by anyone: every event of ours put before our last ``n`` has left it."""
        queued = self._queued()
        while len(self._unconfirmed) > queued:
            self.cursor = self._unconfirmed.popleft()

    def save_state(self):
        """Record what the engine has taken, and write the state when it changed.

        Returns a :class:`_Problem` instead of raising.
        """
        self.confirm()
        if not self.options.state_file:
            return None
        current = self.cursor.to_dict()
        if current == self._saved:
            return None
        try:
            _cursor.save_cursor(self.options.state_file, self.cursor, "state_file")
        except _errors.FeedError as exc:
            return _Problem(str(exc), "state_file")
        self._saved = current
        return None

    # -- the client, in a thread ---------------------------------------------------------------

    def _client_for(self, token):
        if self._client is None or token != self._client_token:
            connection = self.options.connection
            client = _client.TfeClient(
                connection.base_url, token, verify=connection.verify, timeout=connection.timeout,
                max_retries=connection.max_retries, max_wait=self.options.max_wait, hostname=connection.host,
                allow_unverified_platform=connection.allow_unverified_platform, warn=logger.warning)
            if self._client is not None:
                client.platform = self._client.platform  # the host did not change: no second platform check
                self._client.session.close()
            self._client, self._client_token = client, token
        return self._client

    async def _walk(self, client, position):
        """Run the export walk in a daemon thread; returns ``(Walk, Spool)``. The caller closes the spool.

        A daemon thread rather than the default executor: asyncio.run joins executor threads at shutdown, so
        stopping the rulebook would wait for a request in flight (retries included). Cancelled, the thread
        stops before its next request and the spool is closed when it ends.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        stop, page_size = self._stop, self.options.page_size

        def fetch(since, page, size):
            if stop.is_set():
                raise _Stopped()
            return client.read_audit_trail(since=since, page=page, page_size=size)

        def deliver(result, error):
            if future.cancelled():
                if result is not None:
                    result[1].close()
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def work():
            spool, result, error = None, None, None
            try:
                spool = _spool.Spool()
                result = (_feed.walk(fetch, position, page_size, spool, _time.utcnow()), spool)
            except BaseException as exc:  # pylint: disable=broad-except  # handed to the loop
                error = exc
                if spool is not None:
                    spool.close()
            try:
                loop.call_soon_threadsafe(deliver, result, error)
            except RuntimeError:  # the loop is closed: nobody will read the spool
                if result is not None:
                    result[1].close()

        threading.Thread(target=work, name="tfe-audit-walk", daemon=True).start()
        return await future

    # -- events about the source ----------------------------------------------------------------

    async def _put(self, event):
        """Put an event about the source; its messages may quote the server, so they are made inert too."""
        await self.queue.put(inert(event)[0])

    async def _failed(self, problem, channel="read"):
        logger.warning("%s", problem.message)
        outage = self.outages.get(channel)
        if outage is None:
            outage = self.outages[channel] = {"since": _now_text(), "failures": 0}
            await self._put({"tfe_audit_source_error": {
                "message": problem.message, "kind": problem.kind, "status": problem.status,
                "hostname": self.options.connection.base_url, "since": outage["since"]}})
        outage["failures"] += 1

    async def _recovered(self, channel="read"):
        outage = self.outages.pop(channel, None)
        if outage is None:
            return
        what = "reading the audit trail" if channel == "read" else "writing state_file"
        logger.info("%s again after %d failed attempt(s)", what, outage["failures"])
        await self._put({"tfe_audit_source_recovered": {
            "message": "%s again after %d failed attempt(s) since %s" % (what, outage["failures"], outage["since"]),
            "hostname": self.options.connection.base_url, "since": outage["since"], "recovered_at": _now_text(),
            "failures": outage["failures"]}})

    async def _token_refused(self, token, origin):
        if token == self.stale_token:
            return
        self.stale_token = token
        where = {"token_file": "token_file %s" % self.options.token_file, "token": "the token argument"}.get(
            origin, "the environment variable %s" % origin)
        message = ("HCP Terraform refused the token from %s (HTTP 401): it was regenerated, revoked or has expired, "
                   "or it is not an audit trail or organization token. The source reads %s again before each poll."
                   % (where, where))
        logger.warning("%s", message)
        await self._put({"tfe_audit_token_stale": {
            "message": message, "hostname": self.options.connection.base_url, "token_source": origin,
            "token_file": self.options.token_file, "at": _now_text()}})

    async def _gap(self, position, oldest):
        span = _feed.gap(position, oldest, _time.utcnow())
        if not span or span[0] == self._gap_reported:
            return
        self._gap_reported = span[0]
        message = ("the source's position %s is older than the 14 days HCP Terraform keeps; events between %s and %s "
                   "may be lost" % (span[0], span[0], span[1]))
        logger.warning("%s", message)
        await self._put({"tfe_audit_gap": {"start": span[0], "end": span[1], "message": message,
                                           "hostname": self.options.connection.base_url}})

    # -- one poll ------------------------------------------------------------------------------

    async def poll(self):
        """Read what is new and emit it. Every failure becomes an event; nothing here raises but cancellation."""
        self.polls += 1
        try:
            token, origin = self.options.token_and_origin()
            if not token:
                raise _Problem("no token: TFE_AUDIT_TRAIL_TOKEN and TFE_TOKEN are not set any more", "token")
        except _Problem as problem:
            await self._failed(problem)
            return
        await self._save()  # what the engine took since the last poll
        position = self.emitted.copy()
        try:
            seen, spool = await self._walk(self._client_for(token), position)
        except _client.TfeError as exc:
            if exc.status == 401:
                await self._token_refused(token, origin)
            else:
                await self._failed(_describe(exc))
            return
        except _errors.FeedError as exc:
            await self._failed(_Problem(str(exc), "malformed"))
            return
        with spool:
            self.stale_token = None
            await self._recovered()
            await self._gap(position, seen.oldest)
            await self._emit(spool, seen)

    async def _emit(self, spool, seen):
        last_save, count = self._clock(), 0
        # follow() moves self.emitted past each event as it yields it, before the put: a put cancelled while waiting
        # for room puts nothing, but then the source is ending and emitted (the next poll's start) no longer matters.
        for dummy, dummy_id, line, dummy_ahead in _feed.follow(spool, self.emitted, _time.utcnow()):
            audit, changed = inert(json.loads(line.decode("utf-8")))
            event = {"tfe_audit": audit}
            if changed:  # the exact original too, in a form no template engine reads
                event["tfe_audit_original"] = base64.b64encode(line).decode("ascii")
            await self.queue.put(event)
            self._unconfirmed.append(self.emitted.copy())  # recorded once the engine took it (confirm)
            self.confirm()
            count += 1
            if self._clock() - last_save >= SAVE_EVERY:
                await self._save()
                last_save = self._clock()
        self.emitted.finish_walk(_time.format_time(seen.started), None)
        if count:
            logger.debug("emitted %d audit event(s), now at %s", count, self.emitted.newest)
            await self._settle()
        await self._save()

    async def _settle(self):
        """Wait (a little) until the engine has taken what was put, so that the state written after a poll holds
        every event: a rulebook stopped by a signal the JVM handles exits at once, without cancelling sources."""
        deadline = self._clock() + SETTLE_LIMIT
        while self._unconfirmed and self._queued() and self._clock() < deadline:
            await asyncio.sleep(0.01)

    async def _save(self):
        problem = self.save_state()
        if problem is not None:
            await self._failed(problem, channel="state")
        elif "state" in self.outages and self.cursor.to_dict() == self._saved:
            await self._recovered(channel="state")

    # -- the loop ------------------------------------------------------------------------------

    def _delay(self, started):
        outage = self.outages.get("read")
        if outage is not None:  # back off from the end of the failed poll: 1, 2, 4 ... up to interval
            return min(self.options.interval, 2.0 ** min(outage["failures"] - 1, 16))
        return max(0.0, started + self.options.interval - self._clock())

    async def _wait(self, started):
        deadline = self._clock() + self._delay(started)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            if self.stale_token is None:
                await asyncio.sleep(remaining)
                return
            await asyncio.sleep(min(remaining, STALE_CHECK_EVERY))
            try:
                token = self.options.token_and_origin()[0]
            except _Problem:
                continue
            if token and token != self.stale_token:
                return  # a new token: poll now

    async def run(self):
        """Poll every ``interval`` until cancelled; the state is written when cancelled."""
        options = self.options
        logger.info("reading the audit trail at %s every %ss, from %s%s", options.connection.base_url, options.interval,
                    "after " + self.cursor.newest if self.cursor.newest else "the oldest event kept",
                    ", state in %s" % options.state_file if options.state_file else "")
        if options.connection.plain_http_remote:
            logger.warning("hostname %s uses plain http to a host that is not loopback: the token travels "
                           "unencrypted. Use https://.", options.connection.base_url)
        try:
            await self._save()
            while True:
                started = self._clock()
                await self.poll()
                await self._wait(started)
        except KeyboardInterrupt:
            # ansible-rulebook turns SIGINT and SIGTERM into KeyboardInterrupt wherever the main thread is. Landing
            # here, it would be taken for this source ending, and the rulebook would wait 60 s for pending work:
            # hand it back to the event loop, as if it had arrived while the loop waited.
            asyncio.get_running_loop().call_soon(_interrupt)
            raise asyncio.CancelledError() from None
        finally:  # cancelled (the rulebook stops): record what was emitted; never a traceback from here
            self._stop.set()
            problem = self.save_state()
            if problem is not None:
                logger.error("%s", problem.message)
            if self._client is not None:
                self._client.session.close()


def _interrupt():
    raise KeyboardInterrupt()


def _describe(exc):
    """A :class:`_client.TfeError` as a problem, with a hint where the client's message has none."""
    message = str(exc)
    if exc.status == 404 and exc.kind == "http":
        message += (" (the token's organization lacks the audit-logging entitlement, or the host has no audit trail "
                    "API: it is not HCP Terraform)")
    return _Problem(message, exc.kind if exc.status is None else "http", exc.status)


async def main(queue: asyncio.Queue[Any], args: dict[str, Any]) -> None:
    """Entry point for ansible-rulebook: validate the arguments, then poll until cancelled."""
    options = Options(args)
    await AuditTrailSource(options, queue).run()
