"""Fidelity tests of the HCP Terraform / TFE emulator against its contract, API.md (same directory)."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

sys.path.insert(0, os.path.dirname(__file__))
import tfe_emulator  # noqa: E402
from tfe_emulator import Emulator, add_years, default_expiry, visibility_delay  # noqa: E402

ADMIN = "admin-token"
OTHER = "other-admin"
JSONAPI = "application/vnd.api+json"
TOKEN_PATH = "/api/v2/organizations/{}/authentication-token"
EVENTS = "/api/v2/organization/audit-trail"
TS_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def emu():
    with Emulator(api_tokens=(ADMIN, OTHER)) as e:
        e.add_organization("acme", entitlement=True)
        e.add_organization("free", entitlement=False)
        yield e


def call(emu, method, org="acme", audit=True, token=ADMIN, ctype=JSONAPI, body=None, headers=None, **kw):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if ctype:
        headers["Content-Type"] = ctype
    params = {"token": "audit-trails"} if audit else None
    data = json.dumps(body) if isinstance(body, dict) else body
    return requests.request(method, emu.url + TOKEN_PATH.format(org), headers=headers, params=params,
                            data=data, timeout=5, **kw)


def events(emu, secret, **params):
    return requests.get(emu.url + EVENTS, headers={"Authorization": f"Bearer {secret}"}, params=params, timeout=5)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---- ping and discovery ------------------------------------------------------------------------
def test_ping_hcp_and_tfe_headers(emu):
    r = requests.get(emu.url + "/api/v2/ping", timeout=5)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["TFP-AppName"] == "HCP Terraform"
    assert r.headers["TFP-API-Version"] == "2.5" and r.headers["X-RateLimit-Limit"] == "30"
    assert "X-TFE-Version" not in r.headers and "X-TFE-Current-Version" not in r.headers
    emu.set_platform("tfe")
    r = requests.get(emu.url + "/api/v2/ping", timeout=5)
    assert r.headers["TFP-AppName"] == "Terraform Enterprise"
    assert r.headers["X-TFE-Version"] == "202405-1" and r.headers["X-TFE-Current-Version"] == "1.0.0"


def test_platform_headers_only_on_ping(emu):
    r = call(emu, "GET")
    assert r.status_code == 404
    assert "TFP-AppName" not in r.headers and "TFP-API-Version" not in r.headers


def test_service_discovery(emu):
    r = requests.get(emu.url + "/.well-known/terraform.json", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"tfe.v2": "/api/v2/", "tfe.v2.1": "/api/v2/", "tfe.v2.2": "/api/v2/",
                        "modules.v1": "/api/registry/v1/modules/"}


def test_unknown_path_is_jsonapi_404(emu):
    r = requests.get(emu.url + "/api/v2/nope", timeout=5)
    assert r.status_code == 404 and r.json() == {"errors": [{"status": "404", "title": "not found"}]}


# ---- auth, 404, 415 ----------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong"])
def test_missing_or_unknown_token_is_401(emu, token):
    r = call(emu, "GET", token=token)
    assert r.status_code == 401
    assert r.json() == {"errors": [{"status": "401", "title": "unauthorized"}]}


def test_unknown_org_is_404(emu):
    r = call(emu, "POST", org="nope")
    assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"


def test_org_name_is_path_unescaped(emu):
    emu.add_organization("my org.x", entitlement=True)
    r = call(emu, "POST", org="my%20org.x")
    assert r.status_code == 201
    assert emu.audit_trail_token("my org.x")["id"] == r.json()["data"]["id"]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("ctype", [None, "application/json", "text/plain"])
def test_415_without_jsonapi_content_type(emu, method, ctype):
    r = call(emu, method, ctype=ctype)
    assert r.status_code == 415
    assert r.json()["errors"][0]["status"] == "415"
    assert emu.audit_trail_token("acme") is None


def test_content_type_parameters_allowed(emu):
    assert call(emu, "POST", ctype="application/vnd.api+json; charset=utf-8").status_code == 201
    assert call(emu, "DELETE", ctype="Application/VND.API+JSON; charset=utf-8").status_code == 204


def test_get_needs_no_content_type(emu):
    call(emu, "POST")
    assert call(emu, "GET", ctype=None).status_code == 200


def test_read_and_delete_when_none_is_404(emu):
    assert call(emu, "GET").status_code == 404
    assert call(emu, "DELETE").status_code == 404


# ---- create / read / delete --------------------------------------------------------------------
def parse_ms(value):
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def two_calendar_years(dt):
    """Independent of the emulator: Go's AddDate(2, 0, 0), where Feb 29 becomes Mar 1."""
    if (dt.month, dt.day) == (2, 29):
        return dt.replace(year=dt.year + 2, month=3, day=1)
    return dt.replace(year=dt.year + 2)


def test_create_document_shape_and_default_expiry(emu):
    r = call(emu, "POST")
    assert r.status_code == 201 and r.headers["Content-Type"] == JSONAPI
    data = r.json()["data"]
    assert re.fullmatch(r"at-[A-Za-z0-9]{16}", data["id"]) and data["type"] == "authentication-tokens"
    a = data["attributes"]
    assert set(a) == {"created-at", "last-used-at", "description", "token", "expired-at"}
    assert re.fullmatch(r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_-]{60,80}", a["token"])
    assert a["last-used-at"] is None and a["description"] is None
    assert TS_MS.match(a["created-at"]) and a["expired-at"].endswith(".000Z")
    # two calendar years after created-at (not 730 days), stored to the second
    assert parse_ms(a["expired-at"]) == two_calendar_years(parse_ms(a["created-at"])).replace(microsecond=0)
    assert data["relationships"]["created-by"]["data"] == {"id": emu.user_id(ADMIN), "type": "users"}
    assert emu.audit_trail_token("acme")["token"] == a["token"]


@pytest.mark.parametrize("created,expected", [
    ("2024-02-29T10:11:12.345Z", "2026-03-01T10:11:12.345Z"),   # Feb 29 + 2 years: Go rolls over to Mar 1
    ("2024-03-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"),   # 730 days would give Feb 28
    ("2023-02-28T23:59:59.999Z", "2025-02-28T23:59:59.999Z"),
    ("2026-12-31T08:00:00.000Z", "2028-12-31T08:00:00.000Z"),   # 731 days: 2028 is a leap year
])
def test_add_years_like_go_adddate(created, expected):
    assert add_years(parse_ms(created), 2) == parse_ms(expected)
    assert default_expiry(parse_ms(created)) == parse_ms(expected).replace(microsecond=0)


def test_default_expiry_of_a_token_created_on_feb_29(emu, monkeypatch):
    leap_day = datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=timezone.utc)
    monkeypatch.setattr(tfe_emulator, "_now", lambda: leap_day)   # the creation time, for every thread
    attrs = call(emu, "POST").json()["data"]["attributes"]
    assert attrs["created-at"] == "2024-02-29T12:00:00.123Z"
    assert attrs["expired-at"] == "2026-03-01T12:00:00.000Z"
    assert emu.create_organization_token("acme")["expired_at"] == "2026-03-01T12:00:00.000Z"


@pytest.mark.parametrize("body", [None, "", {}, {"data": {"type": "authentication-token"}},
                                  {"data": {"type": "authentication-tokens", "attributes": {}}},   # go-tfe v2
                                  {"data": {"type": "authentication-token", "attributes": {}}},
                                  {"data": {"type": "authentication-token", "attributes": {"expired-at": None}}}])
def test_optional_body_forms(emu, body):
    r = call(emu, "POST", body=body)
    assert r.status_code == 201 and r.json()["data"]["attributes"]["expired-at"]


def test_secret_only_in_201(emu):
    secret = call(emu, "POST").json()["data"]["attributes"]["token"]
    r = call(emu, "GET")
    assert r.status_code == 200 and r.headers["Content-Type"] == JSONAPI
    assert r.json()["data"]["attributes"]["token"] is None
    assert secret not in r.text


def test_explicit_expiry_round_trips_to_second(emu):
    want = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    local = want.astimezone(timezone(timedelta(hours=2)))
    value = local.strftime("%Y-%m-%dT%H:%M:%S") + ".789+02:00"
    r = call(emu, "POST", body={"data": {"type": "authentication-token", "attributes": {"expired-at": value}}})
    assert r.status_code == 201
    assert r.json()["data"]["attributes"]["expired-at"] == iso(want)
    assert call(emu, "GET").json()["data"]["attributes"]["expired-at"] == iso(want)


@pytest.mark.parametrize("value", ["2001-01-01T00:00:00Z", "garbage", "2099-04-11", "2099-04-11T10:00:00",
                                   "2099-13-40T10:00:00Z", 12345])
def test_bad_expiry_is_422(emu, value):
    r = call(emu, "POST", body={"data": {"type": "authentication-token", "attributes": {"expired-at": value}}})
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["status"] == "422" and err["title"] == "invalid attribute"
    assert err["detail"].startswith("Expired at")
    assert err["source"] == {"pointer": "/data/attributes/expired-at"}
    assert emu.audit_trail_token("acme") is None


def test_invalid_json_body(emu):
    r = call(emu, "POST", body="{not json")
    assert r.status_code in (400, 422) and r.json()["errors"]


def test_create_without_entitlement_404_but_read_delete_allowed(emu):
    assert call(emu, "POST", org="free").status_code == 404
    assert emu.audit_trail_token("free") is None
    emu.regenerate_audit_trail_token("free")  # e.g. created while the org was still on Business tier
    assert call(emu, "GET", org="free").status_code == 200
    assert call(emu, "DELETE", org="free").status_code == 204
    assert emu.audit_trail_token("free") is None


def test_delete_is_204_empty_and_revokes(emu):
    secret = call(emu, "POST").json()["data"]["attributes"]["token"]
    r = call(emu, "DELETE")
    assert r.status_code == 204 and r.content == b""
    assert events(emu, secret).status_code == 401
    assert call(emu, "GET").status_code == 404


def test_regenerate_replaces_and_old_secret_dies(emu):
    first = call(emu, "POST").json()["data"]
    second = call(emu, "POST").json()["data"]
    assert first["id"] != second["id"]
    assert first["attributes"]["token"] != second["attributes"]["token"]
    assert events(emu, first["attributes"]["token"]).status_code == 401
    assert events(emu, second["attributes"]["token"]).status_code == 200
    # regenerated outside Ansible: the stored secret is stale too
    outside = emu.regenerate_audit_trail_token("acme")
    assert events(emu, second["attributes"]["token"]).status_code == 401
    assert events(emu, outside["token"]).status_code == 200
    assert call(emu, "GET").json()["data"]["id"] == outside["id"]


def test_audit_and_organization_tokens_are_separate(emu):
    audit = call(emu, "POST").json()["data"]
    org = call(emu, "POST", audit=False).json()["data"]
    assert audit["id"] != org["id"]
    assert emu.organization_token("acme")["id"] == org["id"]
    assert emu.audit_trail_token("acme")["id"] == audit["id"]
    assert call(emu, "DELETE", audit=False).status_code == 204
    assert emu.audit_trail_token("acme")["id"] == audit["id"] and emu.organization_token("acme") is None


def test_tfe_ignores_token_parameter(emu):
    emu.set_platform("tfe")
    r = call(emu, "POST")  # ?token=audit-trails is sent, but TFE acts on the regular org token
    assert r.status_code == 201
    assert emu.organization_token("acme")["id"] == r.json()["data"]["id"]
    assert emu.audit_trail_token("acme") is None
    assert call(emu, "DELETE").status_code == 204
    assert emu.organization_token("acme") is None
    # no entitlement gate either: it is the org token
    assert call(emu, "POST", org="free").status_code == 201


def test_tfe_has_no_audit_trail_api(emu):
    secret = call(emu, "POST", audit=False).json()["data"]["attributes"]["token"]
    emu.set_platform("tfe")
    assert events(emu, secret).status_code == 404


# ---- the organization API token -----------------------------------------------------------------
def test_org_token_manages_its_own_audit_trail_token(emu):
    org_tok = emu.create_organization_token("acme")
    assert org_tok["token"] in emu.issued_secrets and emu.organization_token("acme") == org_tok
    r = call(emu, "POST", token=org_tok["token"])
    assert r.status_code == 201
    data = r.json()["data"]
    acme_id = emu._orgs["acme"].id
    assert data["relationships"]["created-by"]["data"] == {"id": acme_id, "type": "organizations"}
    assert call(emu, "GET", token=org_tok["token"]).json()["data"]["id"] == data["id"]
    assert call(emu, "DELETE", token=org_tok["token"]).status_code == 204
    assert call(emu, "GET", token=org_tok["token"]).status_code == 404
    trail_events = events(emu, org_tok["token"]).json()["data"]
    assert {e["auth"]["accessor_id"] for e in trail_events} == {acme_id}
    assert {e["resource"]["action"] for e in trail_events} == {"create", "show", "destroy"}
    assert emu.organization_token("acme")["last_used_at"] is not None


def test_org_token_of_another_org_gets_404(emu):
    emu.add_organization("beta")
    beta = emu.create_organization_token("beta")["token"]
    acme_audit = call(emu, "POST").json()["data"]                     # made by the admin user
    for method in ("GET", "POST", "DELETE"):
        r = call(emu, method, token=beta)
        assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"
    assert call(emu, "GET", token=beta, org="nope").status_code == 404
    assert emu.audit_trail_token("acme")["id"] == acme_audit["id"]    # untouched
    assert call(emu, "POST", token=beta, org="beta").status_code == 201
    assert call(emu, "POST", token=OTHER, org="beta").status_code == 201   # user tokens: every organization


def test_org_token_needs_the_entitlement_to_create(emu):
    free = emu.create_organization_token("free")["token"]
    assert call(emu, "POST", org="free", token=free).status_code == 404


def test_audit_stale_and_expired_tokens_cannot_manage_tokens(emu):
    audit = emu.regenerate_audit_trail_token("acme")["token"]
    assert call(emu, "GET", token=audit).status_code == 401           # audit trail tokens only read events
    stale = emu.create_organization_token("acme")["token"]
    emu.create_organization_token("acme")                               # replaced: the old one dies
    assert call(emu, "GET", token=stale).status_code == 401
    past = iso(datetime.now(timezone.utc) - timedelta(minutes=1))
    expired = emu.create_organization_token("acme", expired_at=past)["token"]
    assert call(emu, "GET", token=expired).status_code == 401


def test_owners_manage_the_token_of_their_own_organization_only(emu):
    team = emu.add_team_token("acme", owners=True)
    owner = emu.add_user_token("acme", owner=True)
    emu.add_organization("beta")
    for secret, kind in ((team, "teams"), (owner, "users")):
        r = call(emu, "POST", token=secret)
        assert r.status_code == 201
        assert r.json()["data"]["relationships"]["created-by"]["data"] == {"id": emu.user_id(secret), "type": kind}
        assert call(emu, "GET", token=secret).status_code == 200
        assert call(emu, "POST", token=secret, audit=False).status_code == 201     # the organization token too
        for method in ("GET", "POST", "DELETE"):
            assert call(emu, method, org="beta", token=secret).status_code == 404
    assert call(emu, "DELETE", token=team).status_code == 204
    assert emu.audit_trail_token("beta") is None


def test_members_and_other_teams_get_404_on_the_token_endpoints(emu):
    existing = emu.regenerate_audit_trail_token("acme")
    member, team = emu.add_user_token("acme"), emu.add_team_token("acme")
    owners_elsewhere = emu.add_team_token("free", owners=True)
    for secret in (member, team, owners_elsewhere):
        for method in ("GET", "POST", "DELETE"):
            for audit in (True, False):
                r = call(emu, method, token=secret, audit=audit)
                assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404", (method, audit)
    assert emu.audit_trail_token("acme") == existing and emu.organization_token("acme") is None
    assert call(emu, "POST", token=member, ctype=None).status_code == 415    # checked before permission, as before


@pytest.mark.parametrize("reading", ["401", "404", "empty"])
def test_user_and_team_tokens_on_the_audit_trail(emu, reading):
    emu.seed_events("acme", count=3)
    emu.set_readings(user_token_trail=reading)
    for secret in (ADMIN, emu.add_user_token("acme"), emu.add_team_token("acme", owners=True),
                   emu.add_user_token("acme", owner=True), emu.add_team_token("acme")):
        r = events(emu, secret, **{"page[number]": 3, "page[size]": 2})
        assert r.status_code == {"401": 401, "404": 404, "empty": 200}[reading]
        if reading == "empty":
            assert r.headers["Content-Type"] == "application/json"
            assert r.json() == {"data": [], "pagination": {"current_page": 3, "page_size": 2, "prev_page": 2,
                                                           "next_page": None, "total_pages": 1, "total_count": 0}}
        else:
            assert r.json()["errors"][0]["status"] == reading
    assert events(emu, "not-a-token").status_code == 401          # an unknown token stays 401 in every reading


def test_readings_defaults_validation_and_reset(emu):
    assert emu.readings == {"user_token_trail": "401", "disabled_trail": "empty", "ttl_refusal": "422",
                            "show_events": True}
    emu.set_readings(user_token_trail=404)                         # a status may be given as a number
    emu.set_readings()
    assert emu.readings["user_token_trail"] == "404"
    for bad in ({"user_token_trail": "403"}, {"disabled_trail": "gone"}, {"ttl_refusal": 409},
                {"show_events": "yes"}, {"user_token_trail": "empty", "ttl_refusal": "418"}):
        with pytest.raises(ValueError):
            emu.set_readings(**bad)
    assert emu.readings["user_token_trail"] == "404"               # a bad call changes nothing
    member = emu.add_team_token("acme")
    emu.reset()
    assert emu.readings["user_token_trail"] == "401"
    emu.add_organization("acme")
    assert call(emu, "GET", token=member).status_code == 401       # reset drops user and team tokens
    with pytest.raises(ValueError):
        Emulator(user_token_trail="maybe")


def test_user_and_team_token_controls(emu):
    c = emu.url + "/_emulator/organizations/{}/{}"
    r = requests.post(c.format("acme", "team-tokens"), json={"owners": True}, timeout=5)
    assert r.status_code == 201 and call(emu, "POST", token=r.json()["token"]).status_code == 201
    assert r.json()["token"] in emu.issued_secrets
    r = requests.post(c.format("acme", "user-tokens"), json={"token": "plain-member"}, timeout=5)
    assert r.json() == {"token": "plain-member"} and call(emu, "GET", token="plain-member").status_code == 404
    assert requests.post(c.format("acme", "user-tokens"), json={"token": "plain-member"}, timeout=5).status_code == 400
    assert requests.post(c.format("acme", "user-tokens"), json={"token": ADMIN}, timeout=5).status_code == 400
    assert requests.post(c.format("nope", "team-tokens"), json={}, timeout=5).status_code == 404
    r = requests.post(emu.url + "/_emulator/readings", json={"user_token_trail": "empty"}, timeout=5)
    assert r.status_code == 204 and events(emu, "plain-member").json()["data"] == []
    assert requests.get(emu.url + "/_emulator/readings", timeout=5).json() == emu.readings
    assert requests.post(emu.url + "/_emulator/readings", json={"show_events": "no"}, timeout=5).status_code == 400


def test_org_token_rate_limited_per_organization(emu):
    emu.add_organization("beta")
    acme, beta = emu.create_organization_token("acme")["token"], emu.create_organization_token("beta")["token"]
    audit = emu.regenerate_audit_trail_token("acme")["token"]
    emu.set_rate_limit(3)
    assert [call(emu, "GET", token=acme).status_code for dummy in range(2)] == [200, 200]
    assert events(emu, audit).status_code == 200                       # the same organization's bucket ...
    assert call(emu, "GET", token=acme).status_code == 429             # ... is now full
    assert events(emu, audit).status_code == 429
    assert call(emu, "GET", token=beta, org="beta").status_code == 404  # beta has its own (and no audit token)
    assert call(emu, "GET").status_code == 200                          # the admin user is another identity


def test_org_token_control_route(emu):
    c = emu.url + "/_emulator/organizations/{}/organization-token"
    r = requests.post(c.format("acme"), json={}, timeout=5)
    assert r.status_code == 201 and r.json() == emu.organization_token("acme") and r.json()["token"]
    assert call(emu, "POST", token=r.json()["token"]).status_code == 201
    assert requests.post(c.format("nope"), json={}, timeout=5).status_code == 404
    assert requests.post(c.format("acme"), json={"expired_at": "soon"}, timeout=5).status_code == 400


# ---- events ------------------------------------------------------------------------------------
def test_events_auth_rules(emu):
    assert events(emu, ADMIN).status_code == 401          # user tokens are refused
    assert events(emu, "unknown").status_code == 401
    assert requests.get(emu.url + EVENTS, timeout=5).status_code == 401
    org_secret = call(emu, "POST", audit=False).json()["data"]["attributes"]["token"]
    r = events(emu, org_secret)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"


def test_events_without_entitlement_404(emu):
    tok = emu.regenerate_audit_trail_token("free")
    assert events(emu, tok["token"]).status_code == 404


@pytest.mark.parametrize("reading", ["empty", "404"])
def test_audit_trail_switched_off(emu, reading):
    emu.seed_events("acme", count=3)
    tok = emu.regenerate_audit_trail_token("acme")
    org_token = emu.create_organization_token("acme")
    emu.set_readings(disabled_trail=reading)
    emu.set_audit_trail_enabled("acme", False)
    for secret in (tok["token"], org_token["token"]):
        r = events(emu, secret, **{"page[number]": 2, "page[size]": 2})
        if reading == "404":
            assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"
        else:
            assert r.status_code == 200 and r.json() == {"data": [], "pagination": {
                "current_page": 2, "page_size": 2, "prev_page": 1, "next_page": None, "total_pages": 1,
                "total_count": 0}}
    assert call(emu, "GET").status_code == 200                   # the token endpoints do not change
    planted = emu.add_event("acme")                               # events still happen while it is off
    emu.set_audit_trail_enabled("acme", True)
    data = events(emu, tok["token"]).json()["data"]
    assert len(data) == len(trail(emu)) >= 5 and planted["id"] in [e["id"] for e in data]
    assert events(emu, "wrong").status_code == 401
    with pytest.raises(ValueError):
        emu.set_audit_trail_enabled("acme", "no")


def test_audit_trail_switch_controls(emu):
    tok = emu.regenerate_audit_trail_token("acme")
    c = emu.url + "/_emulator/organizations"
    r = requests.post(c, json={"name": "quiet", "audit_trail_enabled": False}, timeout=5)
    assert r.status_code == 201 and r.json()["audit_trail_enabled"] is False and r.json()["entitlement"] is True
    assert emu.add_organization("acme")["audit_trail_enabled"] is True
    assert requests.post(c + "/acme/audit-trail", json={"enabled": False}, timeout=5).status_code == 204
    assert events(emu, tok["token"]).json()["data"] == []
    assert requests.post(c + "/acme/audit-trail", json={"enabled": "off"}, timeout=5).status_code == 400
    assert requests.post(c + "/acme/audit-trail", json={}, timeout=5).status_code == 400
    assert requests.post(emu.url + "/_emulator/readings", json={"disabled_trail": "404"}, timeout=5).status_code == 204
    assert events(emu, tok["token"]).status_code == 404


def test_events_expired_token_401(emu):
    tok = emu.regenerate_audit_trail_token("acme", expired_at="2001-01-01T00:00:00Z")
    assert events(emu, tok["token"]).status_code == 401


def test_events_sets_last_used(emu):
    created = call(emu, "POST").json()["data"]
    assert emu.audit_trail_token("acme")["last_used_at"] is None
    assert events(emu, created["attributes"]["token"]).status_code == 200
    assert TS_MS.match(emu.audit_trail_token("acme")["last_used_at"])
    assert TS_MS.match(call(emu, "GET").json()["data"]["attributes"]["last-used-at"])


def all_pages(emu, secret, **params):
    """Walk page numbers from 1 until next_page is null; the list of response bodies."""
    pages, number = [], 1
    while number:
        r = events(emu, secret, **params, **{"page[number]": number})
        assert r.status_code == 200
        pages.append(r.json())
        number = pages[-1]["pagination"]["next_page"]
    return pages


def stamps(data):
    return [e["timestamp"] for e in data]


def test_listing_defaults(emu):
    assert emu.listing == {"order": "newest", "ties": "insertion", "max_page_size": 1000, "since": "exclusive",
                           "visibility_delay_ms": 0}


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_pagination_in_both_orders(emu, order):
    emu.set_listing(order=order)
    emu.seed_events("acme", count=2499)               # 1 s apart, the last one 1 s ago
    tok = emu.regenerate_audit_trail_token("acme")     # + its create event, now: the newest of 2500
    emu.clear_requests()
    pages = all_pages(emu, tok["token"], **{"page[size]": 1000})
    assert emu.requests[0]["query"]["page[size]"] == "1000"
    assert [len(p["data"]) for p in pages] == [1000, 1000, 500]
    assert pages[0]["pagination"] == {"current_page": 1, "page_size": 1000, "prev_page": None, "next_page": 2,
                                      "total_pages": 3, "total_count": 2500}
    assert pages[2]["pagination"]["next_page"] is None and pages[2]["pagination"]["prev_page"] == 2
    everything = [e for p in pages for e in p["data"]]
    assert sorted(e["id"] for e in everything) == sorted(e[1] for e in emu._orgs["acme"].events)  # each once
    newest_first = order == "newest"
    assert stamps(everything) == sorted(stamps(everything), reverse=newest_first)
    create_event = [e for e in everything if e["resource"]["id"] == tok["id"]]
    assert (everything[0] if newest_first else everything[-1]) == create_event[0]
    # page 1 holds the newest events in newest order, the oldest in oldest order (no ties here: 1 s apart)
    if newest_first:
        assert min(stamps(pages[0]["data"])) > max(stamps(pages[1]["data"]))
    else:
        assert max(stamps(pages[0]["data"])) < min(stamps(pages[1]["data"]))
    ev = everything[0]
    assert set(ev) == {"id", "version", "type", "timestamp", "auth", "request", "resource"}
    assert set(ev["auth"]) == {"accessor_id", "description", "type", "impersonator_id", "organization_id"}
    assert set(ev["resource"]) == {"id", "type", "action", "meta"} and TS_MS.match(ev["timestamp"])


def test_newest_page_one_holds_the_newest_events(emu):
    emu.seed_events("acme", count=30, step_seconds=60)
    tok = emu.regenerate_audit_trail_token("acme")
    page1 = events(emu, tok["token"], **{"page[size]": 10}).json()["data"]
    page2 = events(emu, tok["token"], **{"page[size]": 10, "page[number]": 2}).json()["data"]
    assert page1[0]["resource"]["id"] == tok["id"]
    assert min(stamps(page1)) > max(stamps(page2))
    emu.set_listing(order="oldest")
    oldest1 = events(emu, tok["token"], **{"page[size]": 10}).json()["data"]
    assert max(stamps(oldest1)) < min(stamps(page1)) and tok["id"] not in str(oldest1)


def test_page_size_capped_silently_and_reported(emu):
    emu.seed_events("acme", count=1499)
    tok = emu.regenerate_audit_trail_token("acme")                      # 1500 events
    body = events(emu, tok["token"], **{"page[size]": 5000}).json()
    assert len(body["data"]) == 1000
    assert body["pagination"]["page_size"] == 1000 and body["pagination"]["total_pages"] == 2
    assert len(events(emu, tok["token"]).json()["data"]) == 1000         # docs: default 1000
    emu.set_listing(max_page_size=100)
    for params in ({"page[size]": 1000}, {}):                            # asked for, or the default 1000
        body = events(emu, tok["token"], **params).json()
        assert len(body["data"]) == 100
        assert body["pagination"] == {"current_page": 1, "page_size": 100, "prev_page": None, "next_page": 2,
                                      "total_pages": 15, "total_count": 1500}
    body = events(emu, tok["token"], **{"page[size]": 30}).json()        # below the cap: honoured
    assert len(body["data"]) == 30 and body["pagination"]["total_pages"] == 50
    assert len({e["id"] for p in all_pages(emu, tok["token"], **{"page[size]": 1000}) for e in p["data"]}) == 1500
    assert events(emu, tok["token"], **{"page[number]": 99}).json()["data"] == []


def tied_trail(emu, count=20):
    """count events with one timestamp an hour ago; their ids in insertion order, and a token."""
    tied_at = iso(datetime.now(timezone.utc) - timedelta(hours=1))
    emu.seed_events("acme", count=count, timestamp=tied_at)
    inserted = [e[1] for e in emu._orgs["acme"].events]
    tok = emu.regenerate_audit_trail_token("acme")
    assert inserted != sorted(inserted), "the id reading must differ from insertion"
    return tied_at, inserted, tok["token"]


def tied_ids(emu, secret, tied_at, **params):
    return [e["id"] for e in events(emu, secret, **params).json()["data"] if e["timestamp"] == tied_at]


def test_ties_insertion_newest_is_the_exact_reverse_of_oldest(emu):
    tied_at, inserted, secret = tied_trail(emu)
    assert tied_ids(emu, secret, tied_at) == inserted[::-1]             # default: newest, insertion
    assert tied_ids(emu, secret, tied_at) == inserted[::-1]             # stable between requests
    newest = [e["id"] for e in events(emu, secret).json()["data"]]
    emu.set_listing(order="oldest")
    assert tied_ids(emu, secret, tied_at) == inserted
    assert [e["id"] for e in events(emu, secret).json()["data"]] == newest[::-1]
    # across a page boundary inside the tie group too
    pages = all_pages(emu, secret, **{"page[size]": 7})
    assert [e["id"] for p in pages for e in p["data"]][:20] == inserted


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_ties_by_id_same_direction_in_both_orders(emu, order):
    tied_at, inserted, secret = tied_trail(emu)
    emu.set_listing(order=order, ties="id")
    assert tied_ids(emu, secret, tied_at) == sorted(inserted)
    assert tied_ids(emu, secret, tied_at) == sorted(inserted)
    # the untied event (the token's create, now) still follows the order
    data = events(emu, secret).json()["data"]
    assert (data[0] if order == "newest" else data[-1])["timestamp"] != tied_at


# exclusive: +5 .. +9 and the create event; inclusive: also the 4 events at exactly +4
@pytest.mark.parametrize("mode,total,at_since", [("exclusive", 6, 0), ("inclusive", 10, 4)])
def test_since_exclusive_or_inclusive(emu, mode, total, at_since):
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    emu.seed_events("acme", count=10, start=iso(base), step_seconds=60)   # base, +1 .. +9 minutes
    emu.seed_events("acme", count=3, timestamp=iso(base + timedelta(minutes=4)))  # 3 more exactly at since
    tok = emu.regenerate_audit_trail_token("acme")                      # + 1 (now)
    emu.set_listing(since=mode)
    since = base + timedelta(minutes=4)
    body = events(emu, tok["token"], since=iso(since)).json()
    assert body["pagination"]["total_count"] == total
    assert stamps(body["data"]).count(iso(since)) == at_since
    assert all(t >= iso(since) if mode == "inclusive" else t > iso(since) for t in stamps(body["data"]))


def test_since_with_offset_and_old_cutoff(emu):
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    emu.seed_events("acme", count=10, start=iso(base), step_seconds=60)
    tok = emu.regenerate_audit_trail_token("acme")
    local = (base + timedelta(minutes=4)).astimezone(timezone(timedelta(hours=2)))
    assert events(emu, tok["token"], since=local.isoformat()).json()["pagination"]["total_count"] == 6
    assert events(emu, tok["token"], since=iso(base - timedelta(days=1))).json()["pagination"]["total_count"] == 11
    assert events(emu, tok["token"], since="garbage").status_code == 422


def test_retention_14_days(emu):
    tok = emu.regenerate_audit_trail_token("acme")
    old = datetime.now(timezone.utc) - timedelta(days=20)
    emu.seed_events("acme", count=3, timestamp=iso(old))
    assert events(emu, tok["token"]).json()["pagination"]["total_count"] == 1  # just the create event


# ---- late visibility and planted events -------------------------------------------------------
T0 = datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock(monkeypatch):
    """The emulator's clock, frozen at T0 and moved by hand: clock.now = T0 + timedelta(...)."""
    class Clock:
        now = T0
    monkeypatch.setattr(tfe_emulator, "_now", lambda: Clock.now)
    return Clock


def listed_ids(emu, secret, **params):
    return [e["id"] for e in events(emu, secret, **params).json()["data"]]


def test_visibility_delay_is_per_event_bounded_and_deterministic():
    ids = [f"ev-{i}" for i in range(300)]
    delays = [visibility_delay(i, 5000) for i in ids]
    assert all(0 <= d <= 5000 for d in delays) and len(set(delays)) > 250     # spread over the range
    assert delays == [visibility_delay(i, 5000) for i in ids]                  # the same every time
    assert {visibility_delay(i, 0) for i in ids} == {0} and {visibility_delay(i, 1) for i in ids} == {0, 1}


def test_event_is_listed_exactly_its_delay_after_its_timestamp(emu, clock):
    tok = emu.regenerate_audit_trail_token("acme", expired_at="2040-01-01T00:00:00Z")
    emu.set_listing(visibility_delay_ms=60000)
    ev = emu.add_event("acme", timestamp=T0 - timedelta(seconds=10))
    delay = timedelta(milliseconds=visibility_delay(ev["id"], 60000))
    clock.now = T0 - timedelta(seconds=10) + delay - timedelta(milliseconds=1)
    assert ev["id"] not in listed_ids(emu, tok["token"])
    clock.now += timedelta(milliseconds=1)
    assert ev["id"] in listed_ids(emu, tok["token"])
    clock.now = T0 - timedelta(seconds=20)                  # before its timestamp: only without a delay reading
    assert ev["id"] not in listed_ids(emu, tok["token"])
    emu.set_listing(visibility_delay_ms=0)
    assert ev["id"] in listed_ids(emu, tok["token"])


def test_without_a_delay_a_future_event_is_listed_at_once(emu):
    tok = emu.regenerate_audit_trail_token("acme")
    future = emu.add_event("acme", timestamp="2099-01-01T00:00:00.000Z")
    assert listed_ids(emu, tok["token"])[0] == future["id"]          # newest first: 2099 leads
    emu.set_listing(visibility_delay_ms=1)
    assert future["id"] not in listed_ids(emu, tok["token"])


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_visible_at_lists_an_old_event_late_behind_newer_ones(emu, clock, order):
    emu.set_listing(order=order)
    tok = emu.regenerate_audit_trail_token("acme", expired_at="2040-01-01T00:00:00Z")   # its event at T0
    emu.seed_events("acme", count=5, start=iso(T0 - timedelta(seconds=5)))
    late = emu.add_event("acme", timestamp=T0 - timedelta(minutes=1), visible_at=T0 + timedelta(seconds=2))
    first = events(emu, tok["token"]).json()["data"]
    assert len(first) == 6 and late["id"] not in [e["id"] for e in first]
    newest_seen = max(stamps(first))
    clock.now = T0 + timedelta(seconds=2)
    second = listed_ids(emu, tok["token"])
    assert len(second) == 7 and second.index(late["id"]) == (6 if order == "newest" else 0)
    assert late["id"] not in listed_ids(emu, tok["token"], since=newest_seen)   # a since-only reader misses it


def test_seed_events_visible_at(emu, clock):
    tok = emu.regenerate_audit_trail_token("acme", expired_at="2040-01-01T00:00:00Z")
    emu.seed_events("acme", count=3, visible_at=iso(T0 + timedelta(seconds=1)))
    assert len(listed_ids(emu, tok["token"])) == 1
    clock.now = T0 + timedelta(seconds=1)
    assert len(listed_ids(emu, tok["token"])) == 4


def test_backdate_ms_inserts_events_listed_late_behind_newer_ones(emu, clock):
    emu.set_listing(visibility_delay_ms=3600 * 1000)        # backdated events are listed at once all the same
    tok = emu.regenerate_audit_trail_token("acme", expired_at="2040-01-01T00:00:00Z")
    emu.seed_events("acme", count=10, start=iso(T0 - timedelta(seconds=10)), visible_at=T0)   # T0-10 s .. T0-1 s
    seeded = {i for t, i in trail(emu)} - {emu._orgs["acme"].events[0][1]}   # all but the token's create event
    emu.add_fault(path="audit-trail", skip=1, insert_events=2, insert_step_ms=5, backdate_ms=4500)
    before = [i for i in listed_ids(emu, tok["token"]) if i in seeded]
    assert len(before) == 10
    after = [e for e in events(emu, tok["token"]).json()["data"] if e["resource"]["type"] != "authentication_token"]
    new = [e for e in after if e["id"] not in before]
    assert len(after) == 12 and [after.index(e) for e in new] == [4, 5]   # behind T0-1 s .. T0-4 s
    assert stamps(new) == ["2030-06-01T11:59:55.500Z", "2030-06-01T11:59:55.495Z"]
    for bad in ({"backdate_ms": -1}, {"backdate_ms": 0.5}):
        with pytest.raises(ValueError):
            emu.add_fault(**bad)


OUT_OF_UTC = "9999-12-31T23:30:00.000-01:00"        # 10000-01-01T00:30Z: no datetime holds it


def test_far_future_and_unrepresentable_timestamps_are_planted_verbatim(emu):
    tok = emu.regenerate_audit_trail_token("acme")
    far = emu.add_event("acme", timestamp="2099-12-31T23:59:59.999Z", auth={"description": "far"})
    out = emu.add_event("acme", timestamp=OUT_OF_UTC, id="planted-id", resource={"action": "show"})
    assert out["id"] == "planted-id" and out["resource"]["type"] == "workspace" and far["auth"]["type"] == "Client"
    for order, ties in (("newest", "insertion"), ("oldest", "id")):
        emu.set_listing(order=order, ties=ties)
        data = events(emu, tok["token"]).json()["data"]
        assert stamps(data)[::1 if order == "newest" else -1][:2] == [OUT_OF_UTC, "2099-12-31T23:59:59.999Z"]
    assert listed_ids(emu, tok["token"], since="2099-12-31T23:59:59.999Z") == ["planted-id"]
    assert len(listed_ids(emu, tok["token"], since="2099-01-01T00:00:00.000Z")) == 2
    r = events(emu, tok["token"], since=OUT_OF_UTC)
    assert r.status_code == 422 and r.json()["errors"][0]["status"] == "422"
    emu.add_fault(path="audit-trail", insert_events=1)       # "newer than the newest" must not overflow either
    assert events(emu, tok["token"]).json()["pagination"]["total_count"] == 4
    body = {"data": {"type": "authentication-token", "attributes": {"expired-at": OUT_OF_UTC}}}
    assert call(emu, "POST", body=body).status_code == 422


def test_add_event_over_http(emu, clock):
    tok = emu.regenerate_audit_trail_token("acme", expired_at="2040-01-01T00:00:00Z")
    c = emu.url + "/_emulator/organizations/{}/event"
    r = requests.post(c.format("acme"), json={"timestamp": "2030-06-01T11:00:00.000Z",
                                              "visible_at": "2030-06-01T12:00:01Z", "auth": {"description": "x"}},
                      timeout=5)
    assert r.status_code == 201 and r.json()["auth"]["description"] == "x"
    assert r.json()["timestamp"] == "2030-06-01T11:00:00.000Z"
    assert r.json()["id"] not in listed_ids(emu, tok["token"])
    clock.now = T0 + timedelta(seconds=1)
    assert r.json()["id"] in listed_ids(emu, tok["token"])
    assert requests.post(c.format("nope"), json={}, timeout=5).status_code == 404
    for bad in ({"timestamp": "yesterday"}, {"visible_at": 5}):
        assert requests.post(c.format("acme"), json=bad, timeout=5).status_code == 400


# ---- organization token lifetime policy --------------------------------------------------------
def expiring(value):
    return {"data": {"type": "authentication-token", "attributes": {"expired-at": value}}}


@pytest.mark.parametrize("reading", ["422", "400"])
def test_create_beyond_the_lifetime_policy_is_refused(emu, clock, reading):
    emu.set_readings(ttl_refusal=reading)
    emu.set_token_ttl_policy("acme", timedelta(days=30))
    existing = emu.regenerate_audit_trail_token("acme")
    r = call(emu, "POST", body=expiring("2030-07-01T12:00:01Z"))              # T0 + 30 days + 1 s
    assert r.status_code == int(reading) and r.headers["Content-Type"] == JSONAPI
    err = r.json()["errors"][0]
    assert err["status"] == reading and err["title"] == {"422": "invalid attribute", "400": "bad request"}[reading]
    assert "maximum lifetime for audit trail tokens is 30 days" in err["detail"]
    assert "2030-07-01T12:00:00.000Z" in err["detail"] and err["source"] == {"pointer": "/data/attributes/expired-at"}
    assert emu.audit_trail_token("acme") == existing                           # nothing changed
    r = call(emu, "POST", body=expiring("2030-07-01T12:00:00Z"))              # exactly at the limit
    assert r.status_code == 201 and r.json()["data"]["attributes"]["expired-at"] == "2030-07-01T12:00:00.000Z"
    assert call(emu, "POST", audit=False, body=expiring("2035-01-01T00:00:00Z")).status_code == 201  # other kinds


@pytest.mark.parametrize("policy,expected", [
    (3600, "2030-06-01T13:00:00.000Z"),                       # created-at + 1 h, stored to the second
    (timedelta(days=1000), "2032-06-01T12:00:00.000Z"),      # longer than 2 years: the 2-year default
    (None, "2032-06-01T12:00:00.000Z"),
    (90.5, "2030-06-01T12:01:31.000Z"),                     # 12:01:31.154, stored to the second
])
def test_default_expiry_under_a_lifetime_policy(emu, clock, policy, expected):
    clock.now = T0.replace(microsecond=654321)
    emu.set_token_ttl_policy("acme", policy)
    attrs = call(emu, "POST").json()["data"]["attributes"]
    assert attrs["created-at"] == "2030-06-01T12:00:00.654Z" and attrs["expired-at"] == expected
    assert emu.regenerate_audit_trail_token("acme")["expired_at"] == expected
    assert emu.create_organization_token("acme")["expired_at"] == "2032-06-01T12:00:00.000Z"   # audit trail only


def test_tokens_beyond_a_lowered_policy_stop_working(emu):
    audit = call(emu, "POST").json()["data"]["attributes"]["token"]           # two years
    org_token = emu.create_organization_token("acme")["token"]
    assert events(emu, audit).status_code == 200
    emu.set_token_ttl_policy("acme", timedelta(days=365))
    assert events(emu, audit).status_code == 401 and events(emu, org_token).status_code == 200
    assert call(emu, "GET", token=audit).status_code == 401                   # token management: 401 as well
    assert call(emu, "GET").status_code == 200                                # it still exists
    fresh = call(emu, "POST").json()["data"]["attributes"]
    assert events(emu, fresh["token"]).status_code == 200                     # one made under the policy works
    emu.set_token_ttl_policy("acme", 3600)
    assert events(emu, fresh["token"]).status_code == 401
    emu.set_token_ttl_policy("acme", None)
    assert events(emu, fresh["token"]).status_code == 200                     # no policy: it works again


def test_lifetime_policy_controls_and_validation(emu):
    c = emu.url + "/_emulator/organizations/{}/token-ttl-policy"
    assert requests.get(c.format("acme"), timeout=5).json() == {"max_ttl": None}
    assert requests.post(c.format("acme"), json={"max_ttl": 86400}, timeout=5).status_code == 204
    assert emu.token_ttl_policy("acme") == timedelta(days=1)
    assert requests.get(c.format("acme"), timeout=5).json() == {"max_ttl": 86400}
    emu.set_token_ttl_policy("acme", 1.5)
    assert requests.get(c.format("acme"), timeout=5).json() == {"max_ttl": 1.5}
    for bad in (0, -5, "1d", True, timedelta(0), 1e300, float("nan")):
        with pytest.raises(ValueError):
            emu.set_token_ttl_policy("acme", bad)
    for bad in (0, -5, "1d", True, 1e300):
        assert requests.post(c.format("acme"), json={"max_ttl": bad}, timeout=5).status_code == 400
    assert requests.post(c.format("acme"), json={}, timeout=5).status_code == 400
    assert requests.post(c.format("nope"), json={"max_ttl": 5}, timeout=5).status_code == 404
    assert requests.post(c.format("acme"), json={"max_ttl": None}, timeout=5).status_code == 204
    assert emu.token_ttl_policy("acme") is None


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_token_lifecycle_events(emu, order):
    emu.set_listing(order=order)
    created = call(emu, "POST").json()["data"]
    call(emu, "POST")
    call(emu, "DELETE")
    org_secret = call(emu, "POST", audit=False).json()["data"]["attributes"]["token"]
    data = events(emu, org_secret).json()["data"]
    oldest_first = data if order == "oldest" else data[::-1]
    acts = [(e["resource"]["type"], e["resource"]["action"]) for e in oldest_first]
    assert acts == [("authentication_token", "create"), ("authentication_token", "create"),
                    ("authentication_token", "destroy")]
    assert oldest_first[0]["resource"]["id"] == created["id"]
    assert oldest_first[0]["auth"]["accessor_id"] == emu.user_id(ADMIN)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_token_reads_add_show_events(emu, order):
    emu.set_listing(order=order)
    created = call(emu, "POST").json()["data"]
    org_token = emu.create_organization_token("acme")["token"]
    assert call(emu, "GET").status_code == 200
    assert call(emu, "GET", token=org_token).status_code == 200
    assert call(emu, "GET", audit=False).status_code == 200           # the organization token: no event
    assert call(emu, "GET", token=emu.add_user_token("acme")).status_code == 404   # not found: no event
    assert call(emu, "DELETE").status_code == 204
    assert call(emu, "GET").status_code == 404                         # none left: no event
    data = events(emu, org_token).json()["data"]
    oldest_first = data if order == "oldest" else data[::-1]
    assert [e["resource"]["action"] for e in oldest_first] == ["create", "show", "show", "destroy"]
    assert {e["resource"]["id"] for e in oldest_first} == {created["id"]}
    assert {e["resource"]["type"] for e in oldest_first} == {"authentication_token"}
    assert [e["auth"]["accessor_id"] for e in oldest_first[1:3]] == [emu.user_id(ADMIN), emu._orgs["acme"].id]


def test_show_events_can_be_switched_off(emu):
    emu.set_readings(show_events=False)
    call(emu, "POST")
    for dummy in range(3):
        assert call(emu, "GET").status_code == 200
    org_token = emu.create_organization_token("acme")["token"]
    assert [e["resource"]["action"] for e in events(emu, org_token).json()["data"]] == ["create"]


def test_set_listing_validates_and_none_keeps(emu):
    emu.set_listing(order="oldest", ties="id", max_page_size=50, since="inclusive", visibility_delay_ms=7)
    emu.set_listing()                                              # all None: nothing changes
    assert emu.listing == {"order": "oldest", "ties": "id", "max_page_size": 50, "since": "inclusive",
                           "visibility_delay_ms": 7}
    for bad in ({"order": "random"}, {"ties": "time"}, {"since": "after"}, {"max_page_size": 0},
                {"max_page_size": "10"}, {"max_page_size": True}, {"order": "newest", "ties": "bogus"},
                {"visibility_delay_ms": -1}, {"visibility_delay_ms": 1.5}, {"visibility_delay_ms": "5"}):
        with pytest.raises(ValueError):
            emu.set_listing(**bad)
    assert emu.listing["order"] == "oldest"                        # a bad call changes nothing
    with pytest.raises(ValueError):
        Emulator(order="sideways")


def test_reset_restores_constructor_listing():
    with Emulator(api_tokens=(ADMIN,), order="oldest", ties="id", max_page_size=10, since="inclusive",
                  visibility_delay_ms=250) as e:
        start = e.listing
        assert start == {"order": "oldest", "ties": "id", "max_page_size": 10, "since": "inclusive",
                         "visibility_delay_ms": 250}
        e.set_listing(order="newest", ties="insertion", max_page_size=1000, since="exclusive", visibility_delay_ms=0)
        e.reset()
        assert e.listing == start


# ---- rate limit --------------------------------------------------------------------------------
def test_rate_limit_429_and_headers(emu):
    emu.set_rate_limit(5)
    codes = [call(emu, "GET").status_code for dummy in range(6)]
    assert codes == [404] * 5 + [429]
    r = call(emu, "GET")
    assert r.status_code == 429
    assert r.json() == {"errors": [{"status": 429, "title": "Too many requests",
                                    "detail": "You have exceeded the API's rate limit."}]}
    assert r.headers["X-RateLimit-Limit"] == "5"
    reset = float(r.headers["X-RateLimit-Reset"])
    assert 0 < reset <= 1.0 and r.headers["Retry-After"] == "1"
    assert call(emu, "GET", token=OTHER).status_code == 404       # per user, not global
    assert requests.get(emu.url + "/api/v2/ping", timeout=5).status_code == 204
    time.sleep(reset + 0.05)
    assert call(emu, "GET").status_code == 404


def test_rate_limit_without_retry_after_and_off(emu):
    emu.set_rate_limit(2, retry_after=False)
    codes = [call(emu, "GET") for dummy in range(3)]
    assert codes[2].status_code == 429
    assert "Retry-After" not in codes[2].headers and "X-RateLimit-Reset" in codes[2].headers
    emu.set_rate_limit(0)
    assert all(call(emu, "GET").status_code == 404 for dummy in range(40))


def test_rate_limit_per_org_for_org_tokens(emu):
    secret = call(emu, "POST").json()["data"]["attributes"]["token"]
    emu.set_rate_limit(3)
    assert [events(emu, secret).status_code for dummy in range(4)] == [200, 200, 200, 429]
    assert call(emu, "GET").status_code == 200  # the user is a different identity


# ---- faults ------------------------------------------------------------------------------------
def test_fault_status_count_and_method(emu):
    emu.add_fault(method="POST", path=r"/authentication-token$", status=503, count=2)
    assert call(emu, "GET").status_code == 404                       # GET does not match
    r = call(emu, "POST")
    assert r.status_code == 503 and r.json()["errors"][0]["status"] == "503"
    assert call(emu, "POST").status_code == 503
    assert call(emu, "POST").status_code == 201
    assert [x["status"] for x in emu.requests] == [404, 503, 503, 201]


def test_fault_custom_headers_body_and_clear(emu):
    emu.add_fault(path="ping", status=429, headers={"X-RateLimit-Reset": "0.2"}, body="slow down", count=5)
    r = requests.get(emu.url + "/api/v2/ping", timeout=5)
    assert r.status_code == 429 and r.text == "slow down" and r.headers["X-RateLimit-Reset"] == "0.2"
    emu.clear_faults()
    assert requests.get(emu.url + "/api/v2/ping", timeout=5).status_code == 204


def test_fault_delay_then_normal(emu):
    emu.add_fault(path="ping", status=None, delay=0.3)
    t = time.monotonic()
    assert requests.get(emu.url + "/api/v2/ping", timeout=5).status_code == 204
    assert time.monotonic() - t >= 0.3
    with pytest.raises(requests.exceptions.Timeout):
        emu.add_fault(path="ping", status=None, delay=1.0)
        requests.get(emu.url + "/api/v2/ping", timeout=0.3)


def test_fault_drop(emu):
    emu.add_fault(method="POST", path="authentication-token", drop=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        call(emu, "POST")
    assert emu.audit_trail_token("acme") is None
    assert emu.requests[-1]["status"] == "dropped"
    assert call(emu, "POST").status_code == 201


def test_fault_default_status_is_503(emu):
    emu.add_fault(path="ping")
    assert requests.get(emu.url + "/api/v2/ping", timeout=5).status_code == 503


def test_fault_skip_lets_matching_requests_through_first(emu):
    emu.add_fault(path="ping", status=502, skip=2, count=1)
    codes = [requests.get(emu.url + "/api/v2/ping", timeout=5).status_code for dummy in range(4)]
    assert codes == [204, 204, 502, 204]
    assert [x["status"] for x in emu.requests] == codes


def test_fault_skip_counts_requests_another_fault_took(emu):
    emu.add_fault(path="ping", status=503)
    emu.add_fault(path="ping", status=502, skip=1)
    codes = [requests.get(emu.url + "/api/v2/ping", timeout=5).status_code for dummy in range(3)]
    assert codes == [503, 502, 204]      # the 503 request was the one the 502 fault skipped


def trail(emu, org="acme"):
    """(timestamp, id) of an organization's events, oldest first."""
    return sorted((e[0], e[1]) for e in emu._orgs[org].events)


def test_insert_events_before_second_page_shifts_newest_pages(emu):
    emu.seed_events("acme", count=30)
    tok = emu.regenerate_audit_trail_token("acme")                            # 31 events
    before = trail(emu)
    emu.clear_requests()
    emu.add_fault(method="GET", path="audit-trail", status=None, skip=1, count=1, insert_events=10)
    pages = all_pages(emu, tok["token"], **{"page[size]": 10})                # a reader walking page numbers
    ids = [[e["id"] for e in p["data"]] for p in pages]
    assert pages[0]["pagination"]["total_count"] == 31 and pages[1]["pagination"]["total_count"] == 41
    assert ids[1] == ids[0]              # 10 newer events pushed page 1 onto page 2: the reader sees it twice
    seen = {i for page in ids for i in page}
    inserted = [i for t, i in trail(emu) if (t, i) not in before]
    assert len(inserted) == 10 and seen == {i for t, i in before} and not seen & set(inserted)
    assert [x["status"] for x in emu.requests] == [200] * 5     # logged as what was answered
    assert len(emu.requests) == len(pages) == 5


def test_expire_events_before_second_page_shifts_oldest_pages(emu):
    emu.set_listing(order="oldest")
    emu.seed_events("acme", count=30)
    tok = emu.regenerate_audit_trail_token("acme")
    before = trail(emu)
    emu.add_fault(method="GET", path="audit-trail", skip=1, expire_events=10)   # status omitted: answers 200
    pages = all_pages(emu, tok["token"], **{"page[size]": 10})
    assert [p["pagination"]["total_count"] for p in pages] == [31, 21, 21]
    seen = [e["id"] for p in pages for e in p["data"]]
    assert seen[:10] == [i for t, i in before[:10]]            # page 1, read before the expiry
    assert seen[10:] == [i for t, i in before[20:]]            # then page 2 starts at what was page 3
    assert trail(emu) == before[10:]                           # the 10 oldest are gone


def test_inserted_events_are_newer_and_spaced(emu):
    emu.seed_events("acme", count=5)
    emu.add_organization("beta")
    emu.seed_events("beta", count=2)
    tok = emu.regenerate_audit_trail_token("acme")
    newest = trail(emu)[-1][0]
    emu.add_fault(path="audit-trail", insert_events=3)
    emu.add_fault(path="audit-trail", insert_events=4, insert_step_ms=0)
    assert events(emu, tok["token"]).json()["pagination"]["total_count"] == 9
    assert events(emu, tok["token"]).json()["pagination"]["total_count"] == 13
    added = [t for t, i in trail(emu)[-7:]]
    assert added[0] > newest
    assert [b - a for a, b in zip(added, added[1:3])] == [timedelta(milliseconds=1)] * 2
    assert len(set(added[3:])) == 1 and added[3] >= added[2]
    assert len(trail(emu, "beta")) == 2                        # only the token's organization changed


def test_trail_faults_target_path_org_or_every_org(emu):
    emu.seed_events("acme", count=2)
    emu.seed_events("free", count=2)
    emu.add_fault(path="ping", insert_events=1)                # no token: every organization
    assert requests.get(emu.url + "/api/v2/ping", timeout=5).status_code == 204
    assert (len(trail(emu, "acme")), len(trail(emu, "free"))) == (3, 3)
    emu.add_fault(path="authentication-token", expire_events=2)   # a user token: the organization in the path
    assert call(emu, "GET", org="free").status_code == 404
    assert (len(trail(emu, "acme")), len(trail(emu, "free"))) == (3, 1)


def test_trail_fault_with_status_or_drop_still_changes_the_trail(emu):
    emu.seed_events("acme", count=2)
    tok = emu.regenerate_audit_trail_token("acme")
    emu.add_fault(path="audit-trail", status=503, insert_events=2)
    assert events(emu, tok["token"]).status_code == 503
    emu.add_fault(path="audit-trail", drop=True, expire_events=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        events(emu, tok["token"])
    assert [x["status"] for x in emu.requests] == [503, "dropped"]
    assert events(emu, tok["token"]).json()["pagination"]["total_count"] == 4


def test_trail_faults_over_http_and_bad_values(emu):
    emu.seed_events("acme", count=3)
    tok = emu.regenerate_audit_trail_token("acme")
    c = emu.url + "/_emulator/faults"
    assert requests.post(c, json={"method": "GET", "path": "audit-trail", "skip": 1, "insert_events": 2},
                         timeout=5).status_code == 204
    assert [events(emu, tok["token"]).json()["pagination"]["total_count"] for dummy in range(3)] == [4, 6, 6]
    for bad in ({"skip": -1}, {"insert_events": "2"}, {"expire_events": 1.5}, {"insert_step_ms": -1},
                {"count": True}):
        assert requests.post(c, json=bad, timeout=5).status_code == 400
        with pytest.raises(ValueError):
            emu.add_fault(**bad)


# ---- broken and hostile answers: mangle, echo_token, ignore_page_number --------------------------
@pytest.fixture
def paged(emu):
    """A trail of 25 events (3 pages of 10) and its audit trail token."""
    emu.seed_events("acme", count=24)
    return emu.regenerate_audit_trail_token("acme")["token"]


def page(emu, secret, number=1):
    return events(emu, secret, **{"page[number]": number, "page[size]": 10})


def test_mangle_deletes_pagination_from_page_two_only(emu, paged):
    emu.add_fault(path="audit-trail", skip=1, mangle=[{"delete": "pagination"}])
    first, second, third = (page(emu, paged, n) for n in (1, 2, 2))
    assert first.json()["pagination"]["next_page"] == 2
    assert second.status_code == 200 and set(second.json()) == {"data"} and len(second.json()["data"]) == 10
    assert second.headers["Content-Type"] == "application/json"
    assert third.json()["data"] == second.json()["data"] and "pagination" in third.json()   # count=1: once


@pytest.mark.parametrize("path,value", [
    ("pagination.next_page", "2"), ("pagination.next_page", 1), ("pagination.total_count", -1),
    ("pagination.total_count", 10 ** 30), ("pagination", "not an object"), ("pagination", None),
    ("data", {"0": "x"}), ("data", []), ("data.0.timestamp", OUT_OF_UTC), ("data.0.timestamp", "2099-01-01T00:00:00Z"),
    ("data.0.auth.description", "{{ lookup('pipe', 'id') }}"), ("data.1", 42), ("data.-1", "last"),
    ("data.0.planted_key", True),
])
def test_mangle_sets_a_path_to_a_value(emu, paged, path, value):
    real = page(emu, paged).json()
    emu.add_fault(path="audit-trail", mangle=[{"set": path, "value": value}])
    got = page(emu, paged).json()
    expected = json.loads(json.dumps(real))
    node, parts = expected, path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = value
    assert got == expected                                 # exactly the real answer, with that one change
    assert page(emu, paged).json() == real                 # the stored trail is untouched


def test_mangle_whole_answer_and_several_operations_in_order(emu, paged):
    emu.add_fault(path="audit-trail", mangle=[{"set": "", "value": ["not", "an", "object"]}])
    assert page(emu, paged).json() == ["not", "an", "object"]
    emu.add_fault(path="audit-trail", mangle=[{"set": "data", "value": []},
                                              {"set": "pagination.total_count", "value": 0},
                                              {"delete": "pagination.page_size"}])
    got = page(emu, paged).json()
    assert got["data"] == [] and got["pagination"]["total_count"] == 0 and "page_size" not in got["pagination"]
    assert got["pagination"]["next_page"] == 2                                  # the rest as it was


def test_mangle_nests_a_field_5000_levels_deep(emu, paged):
    real = page(emu, paged).json()["data"][0]["auth"]["description"]
    emu.add_fault(path="audit-trail", mangle=[{"nest": "data.0.auth.description", "depth": 5000}])
    text = page(emu, paged).text
    assert '"description": ' + "[" * 5000 + json.dumps(real) + "]" * 5000 + "," in text
    with pytest.raises(RecursionError):
        json.loads(text)                                 # what a naive reader meets
    emu.add_fault(path="audit-trail", mangle=[{"nest": "data.0.resource", "depth": 3, "container": "object"},
                                              {"nest": "data.0.resource", "depth": 2}])
    resource = page(emu, paged).json()["data"][0]["resource"]
    kinds = ("workspace", "run", "variable", "team", "authentication_token")
    assert resource[0][0]["nested"]["nested"]["nested"]["type"] in kinds


def test_mangle_on_the_token_endpoint(emu):
    emu.add_fault(method="POST", path="authentication-token", mangle=[{"delete": "data.attributes.token"}])
    r = call(emu, "POST")
    assert r.status_code == 201 and "token" not in r.json()["data"]["attributes"]
    assert r.headers["Content-Type"] == JSONAPI and emu.audit_trail_token("acme")["token"]   # really created
    emu.add_fault(method="POST", path="authentication-token", status=200, mangle=[{"set": "data.type", "value": "x"}])
    r = call(emu, "POST")
    assert r.status_code == 200 and r.json()["data"]["type"] == "x"                 # a status replaces the real one


def test_mangle_that_does_not_fit_is_a_500_and_recorded(emu, paged):
    emu.add_fault(path="audit-trail", mangle=[{"set": "data.99.timestamp", "value": "x"}])
    r = page(emu, paged)
    assert r.status_code == 500 and r.json()["errors"][0]["title"] == "emulator fault could not apply"
    assert len(emu.fault_errors) == 1 and "no item '99' in a list of 10" in emu.fault_errors[0]
    assert requests.get(emu.url + "/_emulator/fault-errors", timeout=5).json() == emu.fault_errors
    emu.add_fault(path="ping", mangle=[{"delete": "x"}])
    assert requests.get(emu.url + "/api/v2/ping", timeout=5).status_code == 500      # 204: no body to mangle
    for bad in ([{"delete": "pagination.nope"}], [{"delete": ""}], [{"nest": "pagination.nope", "depth": 2}]):
        emu.add_fault(path="audit-trail", mangle=bad)
        assert page(emu, paged).status_code == 500
    assert len(emu.fault_errors) == 5
    emu.clear_faults()
    assert emu.fault_errors == []


@pytest.mark.parametrize("bad", [
    {"mangle": {"delete": "x"}}, {"mangle": [{"remove": "x"}]}, {"mangle": [{"set": "x"}]},
    {"mangle": [{"delete": "x", "set": "y", "value": 1}]}, {"mangle": [{"delete": "x", "value": 1}]},
    {"mangle": [{"nest": "x"}]}, {"mangle": [{"nest": "x", "depth": 0}]},
    {"mangle": [{"nest": "x", "depth": 2, "container": "tuple"}]}, {"mangle": [{"delete": 5}]},
    {"mangle": [{"delete": "x"}], "body": "{}"}, {"echo_token": True, "body": "x"},
    {"ignore_page_number": "sometimes"}, {"count": -1}, {"echo_token": True, "mangle": [{"delete": "x"}]},
    {"echo_token": True, "ignore_page_number": "echo"},
])
def test_bad_answer_faults_are_refused(emu, bad):
    with pytest.raises(ValueError):
        emu.add_fault(path="audit-trail", **bad)
    assert requests.post(emu.url + "/_emulator/faults", json=dict(bad, path="x"), timeout=5).status_code == 400


def test_echo_token_quotes_the_bearer_token_but_the_log_never_holds_it(emu, paged):
    log = io.StringIO()
    emu.log_stream = log
    emu.add_fault(path="audit-trail", echo_token=True)
    r = page(emu, paged)
    assert r.status_code == 500
    assert r.json() == {"errors": [{"status": "500", "title": "rejected header Authorization: Bearer " + paged}]}
    emu.add_fault(method="POST", path="authentication-token", status=400, echo_token=True)
    r = call(emu, "POST")
    assert r.status_code == 400 and r.json()["errors"][0]["title"] == "rejected header Authorization: Bearer " + ADMIN
    assert emu.audit_trail_token("acme")["token"] == paged                      # answered in place of the create
    dumped = json.dumps(emu.requests) + log.getvalue()
    assert paged not in dumped and ADMIN not in dumped and "Bearer" not in dumped
    assert [x["status"] for x in emu.requests] == [500, 400]


@pytest.mark.parametrize("mode", ["echo", "first"])
def test_a_server_that_ignores_page_number_repeats_page_one_forever(emu, paged, mode):
    first = page(emu, paged).json()
    emu.add_fault(path="audit-trail", ignore_page_number=mode, count=None)    # every request until cleared
    seen, number = [], 1
    for dummy in range(8):                     # a reader following next_page never reaches the end
        body = page(emu, paged, number).json()
        assert body["data"] == first["data"]
        seen.append(body["pagination"])
        number = body["pagination"]["next_page"]
    if mode == "echo":
        assert [p["current_page"] for p in seen] == list(range(1, 9))
        assert [p["next_page"] for p in seen] == list(range(2, 10))
        assert [p["total_pages"] for p in seen] == [3, 3, 4, 5, 6, 7, 8, 9]
        assert [p["prev_page"] for p in seen] == [None] + list(range(1, 8))
    else:
        assert seen == [first["pagination"]] * 8
    assert [x["query"]["page[number]"] for x in emu.requests[-8:]] == [str(p["current_page"]) for p in seen] \
        if mode == "echo" else ["1"] + ["2"] * 7                                  # the log shows what was asked
    emu.clear_faults()
    assert page(emu, paged, 3).json()["pagination"] == dict(first["pagination"], current_page=3, prev_page=2,
                                                            next_page=None)


def test_answer_faults_over_http(emu, paged):
    c = emu.url + "/_emulator/faults"
    assert requests.post(c, json={"path": "audit-trail", "skip": 1, "mangle": [{"delete": "pagination"}]},
                         timeout=5).status_code == 204
    assert "pagination" in page(emu, paged).json() and "pagination" not in page(emu, paged, 2).json()
    assert requests.post(c, json={"path": "audit-trail", "count": None, "ignore_page_number": "first"},
                         timeout=5).status_code == 204
    assert [page(emu, paged, n).json()["pagination"]["current_page"] for n in (2, 3, 4)] == [1, 1, 1]
    assert requests.delete(c, timeout=5).status_code == 204
    assert requests.post(c, json={"path": "audit-trail", "echo_token": True}, timeout=5).status_code == 204
    assert page(emu, paged).json()["errors"][0]["title"].endswith(paged)


def test_server_exception_is_500(emu, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("bug")
    monkeypatch.setattr(emu, "dispatch", boom)
    r = requests.get(emu.url + "/api/v2/ping", timeout=5)
    assert r.status_code == 500 and r.json()["errors"][0]["status"] == "500"


# ---- request log -------------------------------------------------------------------------------
def test_request_log_fields_and_no_secrets(emu):
    secret = call(emu, "POST", headers={"User-Agent": "ua-test"}).json()["data"]["attributes"]["token"]
    events(emu, secret)
    log = emu.requests
    assert [(r["method"], r["status"]) for r in log] == [("POST", 201), ("GET", 200)]
    first = log[0]
    assert set(first) == {"method", "path", "query", "status", "user_agent", "content_type", "time"}
    assert first["path"] == "/api/v2/organizations/acme/authentication-token"
    assert first["query"] == {"token": "audit-trails"} and first["user_agent"] == "ua-test"
    assert first["content_type"] == JSONAPI
    dumped = json.dumps(log)
    assert secret not in dumped and ADMIN not in dumped and "Bearer" not in dumped
    emu.clear_requests()
    assert emu.requests == []


# ---- HTTP control API --------------------------------------------------------------------------
def test_http_controls(emu):
    c = emu.url + "/_emulator"
    assert requests.post(c + "/organizations", json={"name": "beta", "entitlement": True}).status_code == 201
    r = requests.post(c + "/organizations/beta/audit-trail-token", json={})
    assert r.status_code == 201 and r.json()["token"]
    assert requests.get(c + "/organizations/beta/audit-trail-token").json() == emu.audit_trail_token("beta")
    assert requests.get(c + "/organizations/beta/organization-token").json() is None
    assert requests.get(c + "/organizations/nope/audit-trail-token").status_code == 404
    assert requests.post(c + "/organizations/beta/events", json={"count": 7}).json() == {"count": 7}
    assert events(emu, r.json()["token"]).json()["pagination"]["total_count"] == 8
    requests.post(c + "/faults", json={"path": "ping", "status": 502})
    assert requests.get(emu.url + "/api/v2/ping").status_code == 502
    requests.post(c + "/faults", json={"path": "ping", "status": 502})
    requests.delete(c + "/faults")
    assert requests.get(emu.url + "/api/v2/ping").status_code == 204
    requests.post(c + "/platform", json={"platform": "tfe"})
    assert requests.get(emu.url + "/api/v2/ping").headers["TFP-AppName"] == "Terraform Enterprise"
    requests.post(c + "/rate-limit", json={"per_second": 1, "retry_after": False})
    call(emu, "GET")
    assert "Retry-After" not in call(emu, "GET").headers
    log = requests.get(c + "/requests").json()
    assert log and not any(x["path"].startswith("/_emulator") for x in log)
    assert requests.delete(c + "/requests").status_code == 204 and emu.requests == []
    assert requests.post(c + "/reset").status_code == 204
    assert emu.platform == "hcp"
    assert requests.get(c + "/organizations/beta/audit-trail-token").status_code == 404


def test_http_listing_control(emu):
    c = emu.url + "/_emulator/listing"
    assert requests.get(c, timeout=5).json() == emu.listing
    r = requests.post(c, json={"order": "oldest", "max_page_size": 2}, timeout=5)
    assert r.status_code == 204 and r.content == b""
    want = {"order": "oldest", "ties": "insertion", "max_page_size": 2, "since": "exclusive",
            "visibility_delay_ms": 0}
    assert requests.get(c, timeout=5).json() == want
    for bad in ({"order": "up"}, {"ties": "id", "since": "sometimes"}, {"max_page_size": -1}, {"colour": "red"},
                ["order", "newest"]):
        r = requests.post(c, json=bad, timeout=5)
        assert r.status_code == 400 and r.json()["error"]
    assert emu.listing == want
    assert requests.post(emu.url + "/_emulator/reset", timeout=5).status_code == 204
    assert emu.listing["order"] == "newest" and emu.listing["max_page_size"] == 1000
    log = requests.get(emu.url + "/_emulator/requests", timeout=5).json()
    assert log == []                                               # control requests are not logged


# ---- TLS ---------------------------------------------------------------------------------------
def test_tls_with_ca():
    with Emulator(tls=True, api_tokens=(ADMIN,)) as e:
        assert e.url.startswith("https://127.0.0.1:") and os.path.exists(e.ca_path)
        assert requests.get(e.url + "/api/v2/ping", verify=e.ca_path, timeout=5).status_code == 204
        local = e.url.replace("127.0.0.1", "localhost")
        assert requests.get(local + "/api/v2/ping", verify=e.ca_path, timeout=5).status_code == 204
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(e.url + "/api/v2/ping", timeout=5)
        assert requests.get(e.url + "/api/v2/ping", verify=e.ca_path, timeout=5).status_code == 204
        ca = e.ca_path
    assert not os.path.exists(ca)


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_ready_line_and_sigterm(tmp_path):
    ready = tmp_path / "ready.json"
    script = os.path.join(os.path.dirname(__file__), "tfe_emulator.py")
    env = dict(os.environ, TFE_EMULATOR_API_TOKENS="env-tok1,env-tok2")
    proc = subprocess.Popen([sys.executable, script, "--port", "0", "--platform", "hcp", "--org", "acme",
                             "--org-without-entitlement", "free", "--seed-events", "acme:5",
                             "--api-token", "cli-tok", "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["ca_path"] is None and info["pid"] == proc.pid and info["url"].startswith("http://127.0.0.1:")
        assert json.loads(ready.read_text()) == info
        url = info["url"]
        for tok in ("cli-tok", "env-tok2"):
            r = requests.post(url + TOKEN_PATH.format("acme"), params={"token": "audit-trails"},
                              headers={"Authorization": f"Bearer {tok}", "Content-Type": JSONAPI}, timeout=5)
            assert r.status_code == 201
        secret = r.json()["data"]["attributes"]["token"]
        r = requests.get(url + EVENTS, headers={"Authorization": f"Bearer {secret}"}, timeout=5)
        assert r.json()["pagination"]["total_count"] == 7
        r = requests.post(url + TOKEN_PATH.format("free"), params={"token": "audit-trails"},
                          headers={"Authorization": "Bearer cli-tok", "Content-Type": JSONAPI}, timeout=5)
        assert r.status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "POST /api/v2/organizations/acme/authentication-token 201" in err
    assert "cli-tok" not in err and secret not in err and "Bearer" not in err


SCRIPT = os.path.join(os.path.dirname(__file__), "tfe_emulator.py")


def start_cli(*args, env=None):
    """Start the emulator CLI on a free port; (process, ready info or None if it exited)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TFE_EMULATOR_")}  # not the caller's shell
    proc = subprocess.Popen([sys.executable, SCRIPT, "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(base, **(env or {})))
    line = proc.stdout.readline()
    return proc, (json.loads(line) if line else None)


def stop_cli(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return err


def test_cli_order_oldest_answers_oldest_first():
    proc, info = start_cli("--org", "acme", "--seed-events", "acme:5", "--api-token", "t", "--order", "oldest")
    try:
        url = info["url"]
        assert requests.get(url + "/_emulator/listing", timeout=5).json() == {
            "order": "oldest", "ties": "insertion", "max_page_size": 1000, "since": "exclusive",
            "visibility_delay_ms": 0}
        r = requests.post(url + TOKEN_PATH.format("acme"), params={"token": "audit-trails"},
                          headers={"Authorization": "Bearer t", "Content-Type": JSONAPI}, timeout=5)
        created = r.json()["data"]
        data = requests.get(url + EVENTS, headers={"Authorization": "Bearer " + created["attributes"]["token"]},
                            timeout=5).json()["data"]
        assert len(data) == 6 and stamps(data) == sorted(stamps(data))
        assert data[-1]["resource"]["id"] == created["id"]               # the newest event comes last
    finally:
        stop_cli(proc)


def test_cli_listing_from_environment_and_flags():
    proc, info = start_cli("--max-page-size", "3", "--since", "inclusive",
                           env={"TFE_EMULATOR_ORDER": "oldest", "TFE_EMULATOR_TIES": "id",
                                "TFE_EMULATOR_VISIBILITY_DELAY_MS": "1500"})
    try:
        assert requests.get(info["url"] + "/_emulator/listing", timeout=5).json() == {
            "order": "oldest", "ties": "id", "max_page_size": 3, "since": "inclusive", "visibility_delay_ms": 1500}
    finally:
        stop_cli(proc)
    proc, info = start_cli("--order", "newest", env={"TFE_EMULATOR_ORDER": "oldest"})  # a flag beats the env
    try:
        assert requests.get(info["url"] + "/_emulator/listing", timeout=5).json()["order"] == "newest"
    finally:
        stop_cli(proc)
    for args, env in (((), {"TFE_EMULATOR_TIES": "bogus"}), (("--max-page-size", "0"), {}),
                      ((), {"TFE_EMULATOR_VISIBILITY_DELAY_MS": "soon"}), (("--visibility-delay-ms", "-1"), {})):
        proc, info = start_cli(*args, env=env)
        out, err = proc.communicate(timeout=10)
        assert info is None and proc.returncode == 2 and "error:" in err


def test_cli_token_kinds_and_readings():
    proc, info = start_cli("--org", "acme", "--api-token", "t", "--user-token", "acme:member",
                           "--owner-user-token", "acme:owner", "--team-token", "acme:team",
                           "--owners-team-token", "acme:owners:with:colons", "--org-without-audit-trail", "quiet",
                           "--token-ttl-policy", "acme:3600",
                           env={"TFE_EMULATOR_USER_TOKEN_TRAIL": "empty", "TFE_EMULATOR_DISABLED_TRAIL": "404",
                                "TFE_EMULATOR_TTL_REFUSAL": "400", "TFE_EMULATOR_SHOW_EVENTS": "off"})
    try:
        url = info["url"]
        assert requests.get(url + "/_emulator/readings", timeout=5).json() == {
            "user_token_trail": "empty", "disabled_trail": "404", "ttl_refusal": "400", "show_events": False}
        r = requests.post(url + TOKEN_PATH.format("acme"), params={"token": "audit-trails"},
                          headers={"Authorization": "Bearer owners:with:colons", "Content-Type": JSONAPI}, timeout=5)
        assert r.status_code == 201
        codes = {}
        for secret in ("member", "owner", "team", "owners:with:colons"):
            r = requests.get(url + TOKEN_PATH.format("acme"), params={"token": "audit-trails"},
                             headers={"Authorization": f"Bearer {secret}"}, timeout=5)
            codes[secret] = r.status_code
        assert codes == {"member": 404, "owner": 200, "team": 404, "owners:with:colons": 200}
        r = requests.get(url + EVENTS, headers={"Authorization": "Bearer team"}, timeout=5)
        assert r.status_code == 200 and r.json()["data"] == []
        assert requests.get(url + "/_emulator/organizations/acme/token-ttl-policy", timeout=5).json() == {
            "max_ttl": 3600}
        r = requests.post(url + TOKEN_PATH.format("acme"), params={"token": "audit-trails"},
                          headers={"Authorization": "Bearer t", "Content-Type": JSONAPI}, timeout=5,
                          data=json.dumps(expiring("2099-01-01T00:00:00Z")))
        assert r.status_code == 400
        quiet = requests.post(url + "/_emulator/organizations/quiet/audit-trail-token", json={}, timeout=5).json()
        r = requests.get(url + EVENTS, headers={"Authorization": "Bearer " + quiet["token"]}, timeout=5)
        assert r.status_code == 404
    finally:
        stop_cli(proc)
    proc, info = start_cli("--user-token-trail", "404", "--disabled-trail", "empty", "--ttl-refusal", "422",
                           "--show-events", env={"TFE_EMULATOR_USER_TOKEN_TRAIL": "empty",
                                                 "TFE_EMULATOR_DISABLED_TRAIL": "404",
                                                 "TFE_EMULATOR_TTL_REFUSAL": "400", "TFE_EMULATOR_SHOW_EVENTS": "0"})
    try:
        assert requests.get(info["url"] + "/_emulator/readings", timeout=5).json() == {   # flags beat the environment
            "user_token_trail": "404", "disabled_trail": "empty", "ttl_refusal": "422", "show_events": True}
    finally:
        stop_cli(proc)
    for args, env in ((("--user-token", "nope:x"), {}), ((), {"TFE_EMULATOR_USER_TOKEN_TRAIL": "403"}),
                      (("--org", "acme", "--team-token", "acme:"), {}), ((), {"TFE_EMULATOR_DISABLED_TRAIL": "x"}),
                      ((), {"TFE_EMULATOR_TTL_REFUSAL": "409"}), (("--org", "a", "--token-ttl-policy", "a:-1"), {}),
                      (("--org", "a", "--token-ttl-policy", "a:week"), {}),
                      ((), {"TFE_EMULATOR_SHOW_EVENTS": "maybe"})):
        proc, info = start_cli(*args, env=env)
        out, err = proc.communicate(timeout=10)
        assert info is None and proc.returncode == 2 and "error:" in err


def test_issued_secrets_lists_every_secret_handed_out(emu):
    created = call(emu, "POST").json()["data"]["attributes"]["token"]
    outside = emu.regenerate_audit_trail_token("acme")["token"]
    org_token = call(emu, "POST", audit=False).json()["data"]["attributes"]["token"]
    outside_org_token = emu.create_organization_token("acme")["token"]
    assert emu.issued_secrets == [created, outside, org_token, outside_org_token]
    emu.reset()
    assert emu.issued_secrets == []


# ---- the documentation matches the code ---------------------------------------------------------
HERE = os.path.dirname(__file__)


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as fh:
        return fh.read()


def test_docs_point_to_the_contract_in_the_repository():
    missing_file = "tfe-api" + ".md"   # the shared notes are not in the repository
    for name in ("tfe_emulator.py", "README.md", "test_emulator.py"):
        assert missing_file not in read(name), name
    assert "tests/emulator/API.md" in tfe_emulator.__doc__ and "(API.md)" in read("README.md")
    contract = read("API.md")
    for evidence in ("appilon/terraform-aws-tfc-audit-trail", "vector.toml.tftpl", "richard-russell/tfc-audit-trail",
                     "tfc_get_logs.py", "the endpoint is sorted by most recent events, needs to be reversed",
                     "since = events[0]['timestamp']", "Deliberate non-features"):
        assert evidence in contract


def test_readme_names_every_option_keyword_and_flag():
    import inspect
    readme = read("README.md")
    for func in (Emulator.__init__, Emulator.add_fault, Emulator.set_listing, Emulator.create_organization_token,
                 Emulator.set_readings, Emulator.add_event, Emulator.seed_events, Emulator.add_user_token,
                 Emulator.add_team_token, Emulator.set_token_ttl_policy, Emulator.set_audit_trail_enabled,
                 Emulator.add_organization):
        assert func.__name__ == "__init__" or f"`{func.__name__}(" in readme, func.__name__
        for name, param in list(inspect.signature(func).parameters.items())[1:]:
            if param.default is not inspect.Parameter.empty or func.__name__ == "__init__":
                assert f"`{name}" in readme or f"{name}=" in readme, (func.__name__, name)
    flags = re.findall(r'add_argument\("(--[a-z-]+)"', read("tfe_emulator.py"))
    assert len(flags) >= 15
    for flag in flags:
        assert f"`{flag}" in readme, flag
    for route in ("/_emulator/listing", "/_emulator/organizations/{org}/organization-token", "TFE_EMULATOR_ORDER",
                  "TFE_EMULATOR_TIES", "/_emulator/readings", "/_emulator/organizations/{org}/event",
                  "/_emulator/organizations/{org}/user-tokens", "/_emulator/organizations/{org}/team-tokens",
                  "/_emulator/organizations/{org}/token-ttl-policy", "/_emulator/organizations/{org}/audit-trail",
                  "/_emulator/fault-errors", "--no-show-events"):
        assert route in readme, route
    for env in set(re.findall(r'"(TFE_EMULATOR_[A-Z_]+)"', read("tfe_emulator.py"))):
        assert f"${env}" in readme or f"`{env}" in readme, env
    for name in ("mangle_document", "check_mangle", "echo_page_number", "visibility_delay", "describe_lifetime",
                 "fault_errors", "readings", "token_ttl_policy", "user_id"):
        assert f"`{name}" in readme, name
