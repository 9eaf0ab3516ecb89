# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_time: the collection's one RFC 3339 parser, and the API's canonical form."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.tfe.audit.plugins.module_utils import _time
from ansible_collections.tfe.audit.plugins.module_utils._time import (
    UTC,
    TimeError,
    canonical_time,
    format_time,
    parse_time,
)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)))
def test_canonical_strings_sort_as_the_times_they_name(moment):
    text = format_time(moment)
    later = format_time(moment + timedelta(milliseconds=1))
    assert canonical_time(text) == text and text < later
    assert parse_time(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@pytest.mark.parametrize("text, reason", [
    ("yesterday", "must be an RFC 3339 date-time"),
    ("2030-01-02T03:04:05", "must be an RFC 3339 date-time"),  # no offset: which zone?
    ("2030-02-30T00:00:00.000Z", "is not a real date-time"),
    ("2030-01-02T03:04:05+24:00", "has an invalid offset"),
])
def test_what_is_wrong_is_said(text, reason):
    with pytest.raises(TimeError, match=reason):
        parse_time(text)


def test_offsets_become_utc_and_long_fractions_milliseconds():
    assert canonical_time("2030-01-02T04:04:05.6789+01:00") == "2030-01-02T03:04:05.678Z"
    assert canonical_time("2030-01-02 03:04:05z") == "2030-01-02T03:04:05.000Z"


@pytest.mark.parametrize("value", ["9999-12-31T23:30:00.000-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_time_outside_the_representable_years_is_a_time_error_not_an_overflow(value):
    with pytest.raises(_time.TimeError, match="outside the years"):
        _time.parse_time(value)


def test_shift_clamps_at_the_ends_of_time_instead_of_overflowing():
    first = _time.parse_time("0001-01-01T00:00:00Z")
    assert _time.shift(first, -timedelta(milliseconds=1)) == first
    last = _time.parse_time("9999-12-31T23:59:59.999Z")
    assert _time.shift(last, timedelta(days=1)) == datetime.max.replace(tzinfo=timezone.utc)
    assert _time.shift(first, timedelta(days=1)) == first + timedelta(days=1)
