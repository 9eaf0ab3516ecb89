# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The module wrapper of the tfe.audit modules, their shared options and value parsers.

Private to the collection (leading underscore): free to change between releases.
The options are documented once, in the ``tfe.audit.connection`` doc fragments; the connection
options themselves are resolved in ``_connection``.
"""

import re
from http import HTTPStatus
from datetime import timedelta

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.tfe.audit.plugins.module_utils._client import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    REQUESTS_VERSION,
    RETRY_STATUSES,
    requests_version_ok,
)
from ansible_collections.tfe.audit.plugins.module_utils._connection import Connection, connection_argument_spec
from ansible_collections.tfe.audit.plugins.module_utils._errors import OptionError, TfeAuditError, TfeError
from ansible_collections.tfe.audit.plugins.module_utils._time import TimeError, format_time, parse_time


def organization_argument_spec():
    """Docs: the ``tfe.audit.connection.organization`` fragment."""
    return dict(organization=dict(type="str", fallback=(env_fallback, ["TFE_ORGANIZATION"])))


def token_argument_spec():
    """What decides the token's life, for every module that manages it (docs: ``state`` in each module,
    the rest in the ``tfe.audit.connection.token`` fragment). Pass ``TOKEN_MUTUALLY_EXCLUSIVE`` with it."""
    return dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        force_regenerate=dict(type="bool", default=False),
        expired_at=dict(type="str"),
        lifetime=dict(type="str"),
        rotate_before=dict(type="str"),
    )


# Both set the new token's expiry (AnsibleModule's / ArgumentSpecValidator's ``mutually_exclusive``).
TOKEN_MUTUALLY_EXCLUSIVE = [("expired_at", "lifetime")]


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
        raise OptionError("%s %s; for example %s: '2030-12-31T23:59:59Z'" % (option, exc, option)) from None


def format_rfc3339(moment):
    """UTC, to the second, as HCP Terraform writes it: ``2030-12-31T23:59:59.000Z``."""
    return format_time(moment.replace(microsecond=0))


def parse_api_time(value):
    """A timestamp from the API (``2028-01-05T10:11:12.000Z``), to the second, or ``None``; never raises on junk."""
    try:
        return parse_time(value).replace(microsecond=0) if value else None
    except TimeError:
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
        raise OptionError("%s %r is too long; for example %s: 90d" % (option, str(value), option)) from None


# How far back each run of the feed reads again for events HCP Terraform lists late (docs/feed.md; tests/emulator/API.md
# says why 30 minutes).
DEFAULT_LOOKBACK = "30m"


def parse_lookback(value):
    """``lookback`` (``30m``, ``2h``, ``1d``) as a ``timedelta``; ``None`` for ``0`` (no lookback)."""
    text = str(value).strip().lower()
    if re.fullmatch(r"0+[wdhms]?", text):
        return None
    try:
        return parse_duration(text, "lookback")
    except OptionError:
        raise OptionError("lookback must be a duration such as 30m, 2h or 1d, or 0 for none, got %r; for example "
                          "lookback: 30m" % text[:64]) from None


def validate_organization(value):
    if value is None or not str(value).strip():
        raise OptionError("organization is required: set organization (for example organization: my-org) "
                          "or the TFE_ORGANIZATION environment variable")
    if not _ORGANIZATION.fullmatch(value):
        raise OptionError("organization %r is not a valid organization name: HCP Terraform's names hold only "
                          "letters, digits, '-' and '_' (at most 255); for example organization: my-org" % value)
    return value


# -- the module --------------------------------------------------------------------------------


class TfeModule:
    """``AnsibleModule`` with the connection options merged in, and the one edge where errors become ``fail_json``.

    Bad input fails in the constructor (before any API call). A module's work runs in :meth:`run`: whatever
    :class:`TfeAuditError` it raises (an :class:`OptionError` of its own checks, a :class:`TfeError` of the API, a
    ``FeedError``) fails the task, in words fit for it, with no ``try`` in the module. :meth:`doing` says
    what the module is doing, for the message of an API failure.
    """

    def __init__(self, argument_spec, **kwargs):
        spec = connection_argument_spec()
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.result = {}
        self._doing = ("talk to HCP Terraform", None, None)
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
            self.fail(exc)
        # A token found in Terraform's credentials is as secret as the option; censor it the same way.
        self.module.no_log_values.add(self.connection.token)
        for warning in self.connection.warnings:
            self.module.warn(warning)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self.connection.client(warn=self.module.warn)
        return self._client

    def doing(self, action, organization=None, hints=None):
        """What the module does now, for the message of a :class:`TfeError`: ``Cannot <action> for organization
        '<organization>': ...``. ``hints``: ``{status: explanation}``, see :meth:`fail_api`."""
        self._doing = (action, organization, hints)

    def run(self, work, *args):
        """``exit_json`` with the dict ``work(*args)`` returns; any :class:`TfeAuditError` it raises fails the task
        instead, with what it put in :attr:`result` so far."""
        try:
            result = work(*args)
        except TfeAuditError as exc:
            self.fail(exc, **self.result)
        else:
            self.exit_json(**result)

    def fail(self, exc, **result):
        """The one place a :class:`TfeAuditError` becomes ``fail_json``."""
        if isinstance(exc, TfeError):
            action, organization, hints = self._doing
            self.fail_api(exc, action, organization, hints, **result)
        else:
            self.module.fail_json(msg=exc.message, **result)

    def option(self, parse, *args):
        """Run a validator/parser; on :class:`OptionError` fail before any API call."""
        try:
            return parse(*args)
        except OptionError as exc:
            self.fail(exc)

    def fail_api(self, exc, action, organization=None, hints=None, **result):
        """Turn a :class:`TfeError` into ``fail_json`` with words a person can act on.

        :param hints: ``{status: explanation}`` for what an HTTP status means to this module, where the
            general explanation below would mislead (a 401 of the audit trail is about its own token).
        """
        where = " for organization %r" % organization if organization else ""
        hint = (hints or {}).get(exc.status) if exc.kind == "http" else None
        if hint:
            said = " HCP Terraform said: %s." % exc.details if _more_than_status(exc) else ""
            explanation = ": HTTP %s from %s. %s%s" % (exc.status, self.connection.base_url, hint, said)
        else:
            explanation = self._explain(exc)
        error = dict(status=exc.status, kind=exc.kind, method=exc.method, path=exc.path, errors=exc.errors)
        self.module.fail_json(msg="Cannot %s%s%s" % (action, where, explanation), error=error, **result)

    def _explain(self, exc):
        """The general meaning of a failure, after ``Cannot <action> [for organization ...]``."""
        if exc.status == 401:
            return (": the API token is missing or invalid (HTTP 401 from %s). Check token / TFE_TOKEN."
                    % self.connection.base_url)
        if exc.status == 404 and exc.method == "POST":
            return (" (HTTP 404): the organization does not exist; the API token has no permission to manage its "
                    "audit trail token because of its kind (a user token of someone outside the owners team, or "
                    "a team token other than the owners team's, gets 404: use an owners-team member's token, the "
                    "owners team token or the organization token); or the organization lacks the audit-logging "
                    "entitlement (HCP Terraform Business tier).")
        if exc.status in (415, 422, 400):
            return ": the API rejected the request (HTTP %s): %s" % (exc.status, exc.details or str(exc))
        if exc.status == 429:
            return (": still rate limited (HTTP 429) after %s retries; try again later or raise max_retries."
                    % self.connection.max_retries)
        if exc.status is not None and exc.status >= 500:
            retried = " after %s retries" % self.connection.max_retries if exc.status in RETRY_STATUSES else ""
            return ": HCP Terraform answered HTTP %s%s (%s). Try again later." % (
                exc.status, retried, exc.details or str(exc))
        return ": %s" % exc

    def warn(self, message):
        self.module.warn(message)

    def exit_json(self, **result):
        self.module.exit_json(**result)


def _more_than_status(exc):
    """Whether the server's error texts say more than its status does ("not found" for a 404 does not)."""
    try:
        phrase = HTTPStatus(exc.status).phrase.lower()
    except (TypeError, ValueError):
        phrase = None
    return bool(exc.details) and exc.details.strip().lower() != phrase
