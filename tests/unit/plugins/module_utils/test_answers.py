# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a server answers is hostile: token documents, too deep or too large bodies, compressed bodies, error texts."""

import gzip
import json
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tfe_emulator import REAL_LOOKING_TOKEN, token_document  # tests/unit/conftest.py puts it on sys.path

from ansible_collections.tfe.audit.plugins.module_utils import _answers, _jsonsplit
from ansible_collections.tfe.audit.plugins.module_utils._answers import Undecodable, decode_jsonapi_errors
from ansible_collections.tfe.audit.plugins.module_utils._errors import TfeError
from ansible_collections.tfe.audit.tests.unit.plugins.module_utils.test_client import make_client

TRAIL = "/api/v2/organization/audit-trail"
DEEP = "[" * 20000 + "]" * 20000  # deeper than the JSON decoder of any Python from 3.11 to 3.13 goes


@pytest.mark.parametrize("body, expected", [
    ({"errors": [{"status": "404", "title": "not found"}]}, ["not found"]),
    ({"errors": [{"status": 429, "title": "Too many requests", "detail": "slow down"}]},
     ["Too many requests: slow down"]),
    ({"errors": ["plain message"]}, ["plain message"]),
    ({"errors": "not a list"}, []),
    ({"data": {}}, []),
    (None, []),
    ([1, 2], []),
])
def test_decode_jsonapi_errors(body, expected):
    assert decode_jsonapi_errors(body) == expected


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20))
def test_jsonapi_error_decoder_never_raises(document):
    texts = decode_jsonapi_errors({"errors": document}) + decode_jsonapi_errors(document)
    assert all(isinstance(text, str) for text in texts)


# -- a hostile server: what it answers is never trusted, never echoed --------------------------------

REAL_LOOKING = REAL_LOOKING_TOKEN


def answer(emulator, method, document, status=None):
    status = status or (201 if method == "POST" else 200)
    body = document if isinstance(document, str) else json.dumps(document)
    emulator.add_fault(method=method, path="authentication-token", status=status, body=body,
                       headers={"Content-Type": "application/vnd.api+json"})


def assert_refused_without_echo(info, emulator, value):
    message = str(info.value)
    assert emulator.url in message and "refusing" in message
    echoed = json.dumps(value) if not isinstance(value, str) else value
    for text in (message, repr(vars(info.value))):
        if len(echoed) > 4:  # "", null, 42: nothing to search for
            assert echoed not in text
        assert "lookup" not in text and "pwned" not in text


HOSTILE_TOKENS = [
    ("a Jinja2 template", "{{ lookup('pipe', 'id > pwned.txt') }}"),
    ("a template in a token's shape", "ABCDEFGHIJKLMN.atlasv1.{{lookup('pipe','id')}}"),
    ("a newline inside", "ABCDEFGHIJKLMN.atlasv1.abc\nlookup-pwned"),
    ("a trailing newline", REAL_LOOKING + "\n"),
    ("a space", "ABCDEFGHIJKLMN.atlasv1. lookup-pwned"),
    ("empty", ""),
    ("too short", "ABC.atlasv1.x"),
    ("too long", "A" * 513),
    ("huge", "A" * 1000000),
    ("a number", 12345678901234567890),
    ("a list", [REAL_LOOKING]),
    ("an object", {"value": REAL_LOOKING}),
    ("null", None),
    ("non-ASCII letters", "ÀBCDEFGHIJKLMN.atlasv1.secret"),
]


@pytest.mark.parametrize("value", [case[1] for case in HOSTILE_TOKENS], ids=[case[0] for case in HOSTILE_TOKENS])
def test_create_refuses_a_token_that_does_not_look_like_one(emulator, value):
    answer(emulator, "POST", token_document(token=value))
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("acme")
    assert_refused_without_echo(info, emulator, value)
    assert "token" in str(info.value) and info.value.kind == "response"


def test_create_refuses_a_document_without_a_token(emulator):
    document = token_document()
    del document["data"]["attributes"]["token"]
    answer(emulator, "POST", document)
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("acme")
    assert "null" in str(info.value)


@pytest.mark.parametrize("length", [16, 512])
def test_create_accepts_tokens_of_the_allowed_lengths(emulator, length):
    token = ("ABCDEFGHIJKLMN.atlasv1." + "x" * 600)[:length]
    answer(emulator, "POST", token_document(token=token))
    assert make_client(emulator).create_audit_trail_token("acme")["token"] == token


HOSTILE_METADATA = [
    # of the right form, but outside the years 1-9999 once in UTC, or not a real day
    ("expired-at", "9999-12-31T23:30:00.000-01:00"),
    ("created-at", "2030-02-30T00:00:00.000Z"),
    ("id", "{{ lookup('pipe', 'id > pwned.txt') }}"),
    ("id", "at-1\nlookup"),
    ("id", 987654321987),  # a number no port or time on the machine can hold
    ("id", "at-" + "x" * 200),
    ("created-at", "{{ now() }}"),
    ("expired-at", "2030-01-01T00:00:00.000Z\n{{ lookup('pipe', 'id') }}"),
    ("expired-at", ["2030-01-01T00:00:00.000Z"]),
    ("last-used-at", "yesterday, lookup"),
]


@pytest.mark.parametrize("field, value", HOSTILE_METADATA)
def test_a_read_refuses_metadata_of_the_wrong_form(emulator, field, value):
    answer(emulator, "GET", token_document(**{field: value}))
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert_refused_without_echo(info, emulator, value)
    assert field.replace("-", "_") in str(info.value) and info.value.kind == "response"


@pytest.mark.parametrize("field, value", HOSTILE_METADATA)
def test_a_create_keeps_the_new_secret_and_nulls_metadata_of_the_wrong_form(emulator, field, value):
    """The old token stopped working when the server created the new one: refusing the answer would lose both."""
    answer(emulator, "POST", token_document(**{field: value}))
    created = make_client(emulator).create_audit_trail_token("acme")
    key = field.replace("-", "_")
    assert created["token"] == REAL_LOOKING and created[key] is None
    assert len(created["warnings"]) == 1 and key in created["warnings"][0]
    assert created["created_at" if key != "created_at" else "expired_at"] is not None
    echoed = json.dumps(value) if not isinstance(value, str) else value
    assert echoed not in created["warnings"][0] and "lookup" not in created["warnings"][0]


def test_a_create_answer_of_the_right_form_has_no_warnings(emulator):
    created = make_client(emulator).create_audit_trail_token("acme", "2031-01-02T03:04:05.000Z")
    assert created["warnings"] == [] and created["expired_at"] == "2031-01-02T03:04:05.000Z"
    assert sorted(created) == ["created_at", "expired_at", "id", "last_used_at", "token", "warnings"]


@pytest.mark.parametrize("body", [{"data": "at-1"}, {"data": {"id": "at-1", "attributes": []}}, [], "a string", 7])
def test_a_body_that_is_not_a_token_document_is_a_clean_error(emulator, body):
    answer(emulator, "GET", body if body != "a string" else json.dumps(body))
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "not an authentication-token document" in str(info.value)


def test_a_token_on_read_is_dropped_not_returned(emulator):
    answer(emulator, "GET", token_document(token="{{ lookup('pipe', 'id') }}"))
    read = make_client(emulator).read_audit_trail_token("acme")
    assert read == {"id": "at-sjt83qTw3GZatuPm", "created_at": "2026-01-05T10:11:12.075Z",
                    "expired_at": "2028-01-05T10:11:12.000Z", "last_used_at": None}


def test_server_error_texts_cannot_flood_or_forge_lines(emulator):
    detail = "bad\n[WARNING]: forged line\r\x1b[31m" + "x" * 100000
    emulator.add_fault(method="GET", path="authentication-token", status=422, count=1, body=json.dumps(
        {"errors": [{"status": "422", "title": "invalid", "detail": detail}]}))
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "[WARNING]: forged line" in message and len(message) < 500


def test_a_redirect_location_is_shown_shortened_and_on_one_line(emulator):
    emulator.add_fault(method="GET", path="authentication-token", status=302, count=1,
                       headers={"Location": "https://elsewhere.invalid/" + "a" * 5000}, body="")
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail_token("acme")
    assert "elsewhere.invalid" in str(info.value) and len(str(info.value)) < 500


# -- answers nested too deeply for Python's JSON decoder ------------------------------------------------


def plant_page(emulator, body, status=200, headers=None):
    emulator.add_fault(method="GET", path="audit-trail", status=status, body=body,
                       headers=headers or {"Content-Type": "application/json"})


def event(number):
    return {"id": "ev-%d" % number, "timestamp": "2030-01-01T00:00:0%d.000Z" % number, "type": "Resource"}


def assert_clean_response_error(info, emulator, method, path):
    assert info.value.kind == "response" and info.value.method == method and info.value.path == path
    for word in (emulator.url, method, path):
        assert word in str(info.value)


def test_an_event_nested_too_deeply_comes_back_as_its_raw_bytes_in_its_place(emulator):
    deep = '{"id": "ev-deep", "nested": %s}' % DEEP
    body = '{"data": [%s, %s ,\n %s], "pagination": {"current_page": 1, "next_page": null}}' % (
        json.dumps(event(1)), deep, json.dumps(event(2)))
    plant_page(emulator, body)
    page = make_client(emulator).read_audit_trail()
    assert page["pagination"] == {"current_page": 1, "next_page": None}
    assert page["data"][0] == event(1) and page["data"][2] == event(2)
    assert page["data"][1] == Undecodable(deep.encode(), "nested too deeply to decode")


def test_a_page_with_an_event_that_is_not_json_keeps_the_others(emulator):
    body = b'{"data": [%s, {"id": "ev-x", "n": 1e999999999999999999, "s": "\xff"}, %s], "pagination": {}}' % (
        json.dumps(event(1)).encode(), json.dumps(event(2)).encode())
    plant_page(emulator, body)
    data = make_client(emulator).read_audit_trail()["data"]
    assert data[0] == event(1) and data[2] == event(2)
    assert isinstance(data[1], Undecodable) and data[1].raw.startswith(b'{"id": "ev-x"')
    assert data[1].reason.startswith("not valid JSON")


@pytest.mark.parametrize("body", [DEEP, '"a string"', "[]", "7", "", '{"data": [%s]' % DEEP, '{"data": {"x": %s}}' % DEEP,
                                  '{"data": [], "pagination": %s}' % DEEP, '{"data": [%s] "x": 1}' % DEEP,
                                  '{"data": ["%s]}' % DEEP, '{"data": [1,,%s]}' % DEEP])
def test_a_page_that_is_not_an_object_or_whose_structure_cannot_be_found_is_a_clean_error(emulator, body):
    plant_page(emulator, body)
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail()
    assert_clean_response_error(info, emulator, "GET", "/organization/audit-trail")


def test_a_page_that_is_not_json_at_all_says_so(emulator):
    plant_page(emulator, "<html>Sign in</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail()
    assert "not JSON" in str(info.value) and "text/html" in str(info.value)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_token_document_nested_too_deeply_is_a_clean_error(emulator, method):
    answer(emulator, method, '{"data": {"id": "at-1", "attributes": {"token": %s}}}' % DEEP)
    client = make_client(emulator)
    with pytest.raises(TfeError) as info:
        client.read_audit_trail_token("acme") if method == "GET" else client.create_audit_trail_token("acme")
    assert_clean_response_error(info, emulator, method, "/organizations/acme/authentication-token")
    assert "nested too deeply" in str(info.value)


def test_an_error_answer_nested_too_deeply_keeps_its_status(emulator):
    answer(emulator, "POST", '{"errors": %s}' % DEEP, status=422)
    with pytest.raises(TfeError) as info:
        make_client(emulator).create_audit_trail_token("acme")
    assert info.value.status == 422 and info.value.kind == "http" and "not JSON" in str(info.value)


def test_the_live_check_survives_a_deep_page(emulator):
    plant_page(emulator, '{"data": [%s]}' % DEEP)
    assert make_client(emulator).audit_trail_token_is_live("some-audit-trail-token") is True


# -- the splitter, on its own -----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@given(st.lists(JSON_VALUES, max_size=6), st.sampled_from([None, 0, 2]))
def test_split_array_gives_each_element_as_json_encodes_it(values, indent):
    body = json.dumps(values, indent=indent).encode()
    assert [json.loads(raw) for raw in _jsonsplit.split_array(body)] == values


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6), st.sampled_from([None, 2]))
def test_split_object_gives_each_member(members, indent):
    body = json.dumps(members, indent=indent, ensure_ascii=False).encode()
    assert dict((key, json.loads(raw)) for key, raw in _jsonsplit.split_object(body)) == members


def test_brackets_quotes_and_escapes_inside_strings_do_not_count():
    body = br'[" ] } [ {", "\" ]", "\\", {"a\\\"": "]]]"}, "x"]'
    assert [json.loads(raw) for raw in _jsonsplit.split_array(body)] == [" ] } [ {", '" ]', "\\", {'a\\"': "]]]"}, "x"]


@pytest.mark.parametrize("body", [b"", b"[", b"[1", b'["a]', b"[1,]", b"[,1]", b"[1,,2]", b"[1] 2", b"{}", b"[]]"])
def test_split_array_refuses_what_is_not_one_array(body):
    with pytest.raises(ValueError):
        _jsonsplit.split_array(body)


@pytest.mark.parametrize("body", [b"[]", b'{"a"}', b'{"a":}', b'{1: 2}', b'{"a" 1}', b'{"\\x": 1}'])
def test_split_object_refuses_what_is_not_one_object(body):
    with pytest.raises(ValueError):
        _jsonsplit.split_object(body)


def test_a_million_brackets_are_split_in_a_few_steps():
    body = b'[1, ' + b"[" * 1000000 + b"]" * 1000000 + b', "x"]'
    assert _jsonsplit.split_array(body)[::2] == [b"1", b'"x"']


# -- the size of a body -----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_clean_error(emulator, monkeypatch):
    monkeypatch.setattr(_answers, "MAX_BODY", 4096)
    plant_page(emulator, '{"data": [], "pad": "%s"}' % ("x" * 5000))
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail()
    assert_clean_response_error(info, emulator, "GET", "/organization/audit-trail")
    assert "larger than 4096 bytes" in str(info.value)


def test_a_body_at_the_limit_is_read(emulator, monkeypatch):
    body = '{"data": [], "pad": "%s"}' % ("x" * 5000)
    monkeypatch.setattr(_answers, "MAX_BODY", len(body))
    plant_page(emulator, body)
    assert make_client(emulator).read_audit_trail()["data"] == []


def test_a_gzip_answer_is_read(emulator):
    body = gzip.compress(json.dumps({"data": [event(1)], "pagination": {}}).encode())
    plant_page(emulator, body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert make_client(emulator).read_audit_trail()["data"] == [event(1)]


def test_a_gzip_bomb_is_refused_without_filling_memory(emulator, monkeypatch):
    monkeypatch.setattr(_answers, "MAX_BODY", 1 << 20)
    bomb = gzip.compress(b'{"data": [], "pad": "' + b" " * (200 << 20) + b'"}', 9)
    assert len(bomb) < 1 << 20  # under the limit as sent: only the decompressed size can be caught
    plant_page(emulator, bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    client = make_client(emulator)
    client.ensure_hcp_terraform()
    tracemalloc.start()
    try:
        with pytest.raises(TfeError) as info:
            client.read_audit_trail()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "larger than" in str(info.value) and peak < 16 << 20


@pytest.mark.parametrize("encoding, body", [("br", b"\x1b\x03"), ("gzip", b"not gzip at all")])
def test_an_encoding_that_cannot_be_read_is_a_clean_error(emulator, encoding, body):
    plant_page(emulator, body, headers={"Content-Type": "application/json", "Content-Encoding": encoding})
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail()
    assert_clean_response_error(info, emulator, "GET", "/organization/audit-trail")


def test_only_encodings_that_can_be_bounded_are_offered(emulator):
    client = make_client(emulator)
    sent = []
    client.session.hooks["response"].append(lambda response, **kwargs: sent.append(response.request.headers))
    client.read_audit_trail_token("acme")
    assert {headers["Accept-Encoding"] for headers in sent} == {"gzip, deflate"}


def test_an_unusable_answer_has_no_status_so_that_no_status_hint_applies(emulator):
    plant_page(emulator, "[]")
    with pytest.raises(TfeError) as info:
        make_client(emulator).read_audit_trail()
    assert info.value.kind == "response" and info.value.status is None
