# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Times as HCP Terraform writes them (RFC 3339, UTC, milliseconds): the collection's one parser.

Private to the collection (leading underscore): free to change between releases.
"""

import re
from datetime import datetime, timedelta, timezone

UTC = timezone.utc

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
# How the API writes every timestamp, also the canonical form: fixed width, so strings compare as times.
_API_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


class TimeError(ValueError):
    """Not an RFC 3339 date-time; the message says why (after the name of the value, which callers add)."""


def utcnow():
    return datetime.now(UTC)


def parse_time(value):
    """An RFC 3339 date-time (offset or ``Z`` required) into an aware UTC ``datetime``, to the millisecond."""
    if isinstance(value, str) and _API_TIME.match(value):
        try:
            return datetime.fromisoformat(value[:23] + "+00:00")  # the C parser: 10x the general path
        except ValueError:
            pass  # e.g. month 13: the general path below explains
    text = str(value).strip() if value is not None else ""
    match = _RFC3339.match(text)
    if not match:
        raise TimeError("must be an RFC 3339 date-time with a time zone offset or Z, got %r" % text[:64])
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    millis = int((match.group(7) or "0")[:3].ljust(3, "0"))
    offset = match.group(8).upper()
    try:
        moment = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise TimeError("%r is not a real date-time (%s)" % (text, exc))
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise TimeError("%r has an invalid offset" % text)
        try:
            moment -= sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:
            # 9999-12-31T23:30:00-01:00 is a valid RFC 3339 string whose UTC time is in year 10000.
            raise TimeError("%r is outside the years 1 to 9999 in UTC" % text)
    return moment


def shift(moment, delta):
    """``moment + delta``, clamped to the representable range instead of raising ``OverflowError``
    (``since: 0001-01-01T00:00:00Z`` minus one millisecond)."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if delta < timedelta(0) else datetime.max.replace(tzinfo=UTC)


def format_time(moment):
    """As the API writes it: ``2030-12-31T23:59:59.123Z`` (UTC, milliseconds)."""
    moment = moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, moment.microsecond // 1000)


def canonical_time(value):
    """``value`` in the API's own form, so that comparing strings compares times."""
    if isinstance(value, str) and _API_TIME.match(value):
        try:
            datetime.fromisoformat(value[:23])
            return value
        except ValueError:
            pass
    return format_time(parse_time(value))
