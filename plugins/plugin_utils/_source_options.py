# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The event source's arguments: validated by ansible-core on the modules' connection spec plus the source's own
options, then the checks a type cannot express; and the token, read again before each poll.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import annotations

import logging
import math
import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.tfe.audit.plugins.module_utils import _client
from ansible_collections.tfe.audit.plugins.module_utils._connection import Endpoint, check_token, connection_argument_spec
from ansible_collections.tfe.audit.plugins.module_utils._cursor import Cursor
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError, OptionError
from ansible_collections.tfe.audit.plugins.module_utils._module import DEFAULT_LOOKBACK, parse_lookback
from ansible_collections.tfe.audit.plugins.module_utils._untrusted import Censor

NAME = "tfe.audit.audit_trail"
logger = logging.getLogger(NAME)

MAX_PAGE_SIZE = 1000
# The environment variables the token may come from, in this order, when neither token nor token_file is set.
TOKEN_VARIABLES = ("TFE_AUDIT_TRAIL_TOKEN", "TFE_TOKEN")
# A token_file larger than this holds something else than a token: it is not read whole.
TOKEN_FILE_LIMIT = 64 * 1024
# The words of a token_file refused for holding several: those this long are masked wherever they show.
MIN_SECRET_WORD = 16
# Per request, the client waits out 429s (Retry-After / X-RateLimit-Reset) and backs off on 5xx and network
# errors for at most this long (bounded by the interval, from 5 s to 60 s) before the poll counts as failed.
MIN_REQUEST_WAIT, MAX_REQUEST_WAIT = 5.0, 60.0

# What an error message about an option shows as a valid value.
VALID_VALUES = {
    "hostname": "app.terraform.io", "token_file": "/var/lib/tfe-audit/audit-trail-token",
    "state_file": "/var/lib/tfe-audit/audit-trail-source.json", "ca_path": "/etc/pki/tls/certs/my-ca.pem",
    "interval": "60", "page_size": "1000", "since": "2030-12-31T23:59:59.000Z", "timeout": "30",
    "max_retries": "5", "validate_certs": "true", "allow_insecure_http": "false",
    "allow_unverified_platform": "false", "feedback": "true", "lookback": DEFAULT_LOOKBACK,
}


class ArgumentError(ValueError):
    """A bad source argument, found at start. The message names the argument and shows a valid value."""


class Problem(Exception):
    """Something that stops a poll (or a write of the state): becomes a ``tfe_audit_source_error`` event."""

    def __init__(self, message, kind, status=None):
        super().__init__(message)
        self.message, self.kind, self.status = message, kind, status


def argument_spec(own_spec):
    """The modules' connection options, then the source's own. The token's environment fallback is the source's
    own (:data:`TOKEN_VARIABLES`, read before each poll like token_file), so the spec has none."""
    spec = connection_argument_spec()
    spec["token"] = dict(spec["token"])
    spec["token"].pop("fallback", None)
    spec.update(own_spec)
    return spec


def _with_examples(message):
    named = [name for name in sorted(VALID_VALUES) if "'%s'" % name in message or name + "|" in message
             or "|" + name in message or message.startswith(name + ".")]
    hints = ["%s: %s" % (name, VALID_VALUES[name]) for name in named]
    return message + ("; for example " + ", ".join(hints) if hints else "")


def validate(args, own_spec, censor):
    """The validated parameters (``eda_*`` arguments, which ansible-rulebook adds, left out), or
    :class:`ArgumentError` with the first problem, worded as a module's, with the secrets censored."""
    if not isinstance(args, dict):
        raise ArgumentError("the arguments of %s must be a mapping, for example {token_file: %s}"
                            % (NAME, VALID_VALUES["token_file"]))
    params = dict((key, value) for key, value in args.items() if not str(key).startswith("eda_"))
    spec = argument_spec(own_spec)
    for name in ["token"] + list(spec["token"].get("aliases", [])):
        censor.add(params.get(name))
    result = ArgumentSpecValidator(spec, mutually_exclusive=[["token", "token_file"]]).validate(params)
    if result.errors.errors:
        error = result.errors.errors[0]
        message = error.msg
        if isinstance(error, UnsupportedError):
            message = "Unsupported parameters for (%s) event source: %s" % (NAME, message)
        raise ArgumentError(censor.text(_with_examples(message)))
    return result.validated_parameters


def requests_problem():
    """Why this Python's ``requests`` cannot carry the token (as the modules say), or ``None``."""
    if not _client.HAS_REQUESTS:
        return "%s needs the Python library requests where ansible-rulebook runs: pip install 'requests>=2.28'" % NAME
    if not _client.requests_version_ok(_client.REQUESTS_VERSION):
        return ("requests %s is too old: %s needs requests >= 2.28 (older releases turn TLS verification off when "
                "CURL_CA_BUNDLE is empty, whatever validate_certs says). Upgrade it where ansible-rulebook runs: "
                "pip install 'requests>=2.28'" % (_client.REQUESTS_VERSION, NAME))
    return None


def resolve_endpoint(params):
    """hostname, validate_certs, ca_path, timeout, max_retries and the plain-http rules (a loopback http:// that a
    proxy from the environment would carry included), exactly as the modules resolve them: everything but the
    token, which the source reads itself before each poll."""
    try:
        return Endpoint(params)
    except OptionError as exc:
        raise ArgumentError(str(exc)) from None


def _file_path(value, name, must_exist=False):
    """An absolute file path, or ``None``; a directory, or a file whose directory is missing, is refused."""
    if not value:
        return None
    path = os.path.abspath(value)
    example = "%s: %s" % (name, VALID_VALUES[name])
    if value.endswith(os.sep) or os.path.isdir(path):
        raise ArgumentError("%s %r must be a file path, not a directory; for example %s" % (name, value, example))
    if must_exist and not os.path.isfile(path):
        raise ArgumentError("%s %r is not a file; for example %s" % (name, value, example))
    if not os.path.isdir(os.path.dirname(path)):
        raise ArgumentError("the directory of %s (%s) does not exist; create it first, for example %s"
                            % (name, os.path.dirname(path), example))
    return path


def _since(value):
    """``None``, ``"now"`` or the canonical time of ``since``."""
    if not value:
        return None
    if value.strip().lower() == "now":
        return "now"
    try:
        return Cursor.after(value).newest
    except FeedError:
        raise ArgumentError("since must be now or an RFC 3339 date-time with a time zone offset or Z, got %r; for "
                            "example since: %s" % (value[:64], VALID_VALUES["since"])) from None


class Options:
    """The arguments of one source, checked; ``tokens`` reads the token before each poll."""

    def __init__(self, args, own_spec, environ=None):
        environ = os.environ if environ is None else environ
        self.censor = Censor(environ.get(name) for name in TOKEN_VARIABLES)
        problem = requests_problem()
        if problem:
            raise ArgumentError(problem)
        params = validate(args, own_spec, self.censor)
        self.token_given = bool(params.get("token"))
        self.interval = params["interval"]
        if not (self.interval > 0 and math.isfinite(self.interval)):
            raise ArgumentError("interval must be a number of seconds above 0, got %r; for example interval: 60"
                                % args.get("interval"))
        self.page_size = params["page_size"]
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ArgumentError("page_size must be from 1 to %d, got %r; for example page_size: 1000"
                                % (MAX_PAGE_SIZE, args.get("page_size")))
        self.since = _since(params.get("since"))
        self.state_file = _file_path(params.get("state_file"), "state_file")
        self.token_file = _file_path(params.get("token_file"), "token_file", must_exist=True)
        if self.token_file and self.token_file == self.state_file:
            raise ArgumentError("token_file and state_file must be different files")
        try:
            self.lookback = parse_lookback(params["lookback"])
        except OptionError as exc:
            raise ArgumentError(str(exc)) from None
        self.feedback = params["feedback"]
        self.feedback_queue = args.get("eda_feedback_queue") if self.feedback else None
        self.tokens = Tokens(params.get("token"), self.token_file, environ, self.censor)
        try:
            if not self.tokens.read()[0]:
                raise ArgumentError("no token: set token_file (for example token_file: %s), token, or the %s "
                                    "environment variable" % (VALID_VALUES["token_file"], " or ".join(TOKEN_VARIABLES)))
        except Problem as exc:
            raise ArgumentError(exc.message) from None
        self.connection = resolve_endpoint(params)
        self.max_wait = max(MIN_REQUEST_WAIT, min(MAX_REQUEST_WAIT, self.interval))


class Tokens:
    """Where the token comes from: token_file (read again each time), else the argument, else the environment.
    Every token read is given to the censor, so that no event or log line ever shows it."""

    def __init__(self, token, token_file, environ, censor):
        self._token, self.token_file, self._environ, self._censor = token or None, token_file, environ, censor

    def read(self):
        """``(token, origin)``: origin is ``token_file``, ``token`` or the variable's name; ``(None, None)`` when
        there is none. Raises :class:`Problem` when token_file cannot be read or does not hold one token."""
        token, origin = self._find()
        self._censor.add(token)
        return token, origin

    def _find(self):
        if self.token_file:
            return self._read_file(), "token_file"
        if self._token:
            return self._checked(self._token, "the token argument", "token"), "token"
        for name in TOKEN_VARIABLES:
            if self._environ.get(name):
                return self._checked(self._environ[name], "the environment variable %s" % name, "token"), name
        return None, None

    @staticmethod
    def _checked(token, where, kind):
        """``token`` when HTTP can carry it: a header the HTTP library refuses would be quoted in its error."""
        try:
            return check_token(token, where)
        except OptionError as exc:
            raise Problem(str(exc), kind) from None

    def _read_file(self):
        try:
            with open(self.token_file, "rb") as handle:
                data = handle.read(TOKEN_FILE_LIMIT + 1)
        except OSError as exc:
            raise Problem("cannot read token_file %s: %s" % (self.token_file, exc.strerror or exc), "token_file") from None
        if len(data) > TOKEN_FILE_LIMIT:
            raise Problem("token_file %s is larger than a token (%d bytes or more); it must hold only the token"
                          % (self.token_file, TOKEN_FILE_LIMIT), "token_file")
        token = data.decode("utf-8", "replace").strip()
        for word in token.split():
            if len(word) >= MIN_SECRET_WORD:  # a file of several words is refused, and no word that could be a
                self._censor.add(word)        # token is shown (shorter ones such as "Bearer" are not masked)
        if not token or any(char.isspace() for char in token):
            raise Problem("token_file %s must hold only the token (it is %s)"
                          % (self.token_file, "empty" if not token else "several words"), "token_file")
        return self._checked(token, "token_file %s" % self.token_file, "token_file")

    def where(self, origin):
        """Where a token came from, for a message."""
        return {"token_file": "token_file %s" % self.token_file, "token": "the token argument"}.get(
            origin, "the environment variable %s" % origin)
