# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retries: 429 with its headers, gateway errors, dropped connections, the total wait cap, timeouts."""

import socket
import time

import pytest

from ansible_collections.tfe.audit.plugins.module_utils import _client
from ansible_collections.tfe.audit.plugins.module_utils._client import TfeClient
from ansible_collections.tfe.audit.plugins.module_utils._errors import TfeError
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.test_client import (
    TOKEN,
    TOKEN_PATH,
    api_requests,
    make_client,
)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    # Keep the exponential backoff's shape, at a tenth of the wait.
    monkeypatch.setattr(_client, "BACKOFF_BASE", 0.02)
    monkeypatch.setattr(_client, "BACKOFF_MAX", 0.2)


# -- retries -----------------------------------------------------------------------------------


def pinged_client_behind_429s(emulator, count, headers, **client_options):
    """A client past its platform check, so that a test times only the token read, which the next ``count``
    answers refuse with 429 and ``headers``."""
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=count, headers=headers)
    client = make_client(emulator, **client_options)
    client.ensure_hcp_terraform()
    return client


def test_429_with_retry_after_is_retried_and_waited_for(emulator):
    client = pinged_client_behind_429s(emulator, 1, {"Retry-After": "1", "X-RateLimit-Reset": "0.05"})
    started = time.monotonic()
    assert client.read_audit_trail_token("acme") is None
    assert time.monotonic() - started >= 1.0  # Retry-After wins over the reset header
    assert [r["status"] for r in api_requests(emulator, "GET")][-2:] == [429, 404]


def test_429_with_only_rate_limit_reset_waits_that_long(emulator):
    client = pinged_client_behind_429s(emulator, 2, {"X-RateLimit-Reset": "0.3"})
    started = time.monotonic()
    assert client.read_audit_trail_token("acme") is None
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 2.0


def test_429_does_not_use_up_max_retries(emulator, monkeypatch):
    """A fleet sharing one rate limit can be told "later" many times in a row: only the wait cap ends it."""
    monkeypatch.setattr(_client, "MIN_RATE_LIMIT_WAIT", 0.01)
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=6,
                       headers={"X-RateLimit-Reset": "0.02"})
    client = make_client(emulator, max_retries=2)
    assert client.read_audit_trail_token("acme") is None
    assert [r["status"] for r in api_requests(emulator, "GET")][1:] == [429] * 6 + [404]


def test_persistent_429_stops_at_the_wait_cap(emulator):
    client = pinged_client_behind_429s(emulator, 1000, {"X-RateLimit-Reset": "0.3"}, max_retries=1, max_wait=1.5)
    started = time.monotonic()
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.status == 429 and "HTTP 429" in str(info.value)
    assert time.monotonic() - started < 3.0
    attempts = len(api_requests(emulator, "GET")) - 1
    assert 3 <= attempts <= 5  # waits of 0.30-0.33 s: four fit in 1.5 s, whatever max_retries says


def test_429_waits_at_least_the_floor(emulator):
    """X-RateLimit-Reset: 0 must not turn into a tight loop against the rate limit."""
    client = pinged_client_behind_429s(emulator, 2, {"X-RateLimit-Reset": "0"})
    started = time.monotonic()
    assert client.read_audit_trail_token("acme") is None
    assert time.monotonic() - started >= 2 * _client.MIN_RATE_LIMIT_WAIT


def test_max_retries_zero_does_not_retry_429(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=429, count=1,
                       headers={"X-RateLimit-Reset": "0.01"})
    client = make_client(emulator, max_retries=0)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.status == 429
    assert [r["status"] for r in api_requests(emulator, "GET")][1:] == [429]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_then_succeed(emulator, status):
    emulator.add_fault(method="POST", path="authentication-token", status=status, count=2)
    created = make_client(emulator).create_audit_trail_token("acme")
    assert created["token"] == emulator.audit_trail_token("acme")["token"]
    assert [r["status"] for r in api_requests(emulator, "POST")] == [status, status, 201]


def test_persistent_503_stops_after_max_retries(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=503, count=100)
    with pytest.raises(TfeError) as info:
        make_client(emulator, max_retries=2).read_audit_trail_token("acme")
    assert info.value.status == 503
    assert len(api_requests(emulator, "GET")) == 1 + 3  # ping, then 1 try + 2 retries


def test_500_is_not_retried(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=500, count=5)
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert info.value.status == 500
    assert len([r for r in api_requests(emulator, "GET") if r["path"] == TOKEN_PATH]) == 1


def test_total_wait_cap_stops_retrying_early(emulator):
    client = pinged_client_behind_429s(emulator, 10, {"Retry-After": "5"}, max_retries=10, max_wait=2)
    started = time.monotonic()
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.status == 429
    assert time.monotonic() - started < 1.0  # the first wait alone would pass the cap


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_that_is_not_a_time_is_ignored(emulator, status):
    emulator.add_fault(method="GET", path="authentication-token", status=status, count=1,
                       headers={"Retry-After": "soon\x1b[31m", "X-RateLimit-Reset": "0.01"})
    assert make_client(emulator).read_audit_trail_token("acme") is None
    assert [r["status"] for r in api_requests(emulator, "GET")][1:] == [status, 404]


def test_dropped_connection_is_retried(emulator):
    emulator.add_fault(method="DELETE", path="authentication-token", drop=True, count=1)
    client = make_client(emulator)
    client.create_audit_trail_token("acme")
    assert client.delete_audit_trail_token("acme") is True
    assert [r["status"] for r in api_requests(emulator, "DELETE")] == ["dropped", 204]


def test_slow_answer_times_out_with_a_clear_error(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=None, delay=1.0, count=10)
    client = make_client(emulator, timeout=0.2, max_retries=1)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "timeout" and "timeout" in str(info.value)


def test_connection_refused_is_a_network_error(closed_port):
    client = TfeClient("http://127.0.0.1:%s" % closed_port, TOKEN, hostname="127.0.0.1", max_retries=1)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "network"
    assert "Cannot reach" in str(info.value) and "refused" in str(info.value).lower()


def test_unknown_host_is_a_network_error(monkeypatch):
    def nxdomain(host, *args, **kwargs):
        # Answer like a resolver with no such name, without asking one (tests stay on loopback).
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    client = TfeClient("https://tfe.invalid", TOKEN, hostname="tfe.invalid", max_retries=0)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme")
    assert info.value.kind == "network" and "tfe.invalid" in str(info.value)
    assert "Name or service not known" in str(info.value)
