# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Text from a server made inert for Ansible's templating (every form 2.18 to 2.21 render, then a check handed
in, failing closed), and secrets censored.

These run where a module's code runs (ansible-test's module_utils context: no ansible.template). With the installed
ansible-core's own check handed in, as the event source does: tests/unit/extensions/.../test_audit_trail_hostile.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.tfe.audit.plugins.module_utils import _untrusted
from ansible_collections.tfe.audit.tests.shared.template_forms import renders, strings
from ansible_collections.tfe.audit.plugins.module_utils._untrusted import (
    MASK, REFUSED, Censor, inert, inert_json, inert_text)

# Characters that make up every template form, and some that do not.
TEMPLATE_TEXT = st.text(alphabet="{%#}[]<>:'\n jinja2_stvr", max_size=40) | st.sampled_from([
    "#jinja2:", "#jinja2:variable_start_string:'[['\n[[ x ]]", "#jinja2:line_statement_prefix:'%'\n% set x = 1\n"])


@pytest.fixture(autouse=True)
def known_forms_only(monkeypatch):
    """Each test checks its strings itself (the module remembers what it checked), with no check handed in."""
    monkeypatch.setattr(_untrusted, "_checked", {})
    monkeypatch.setattr(_untrusted, "_installed", [None])


json_values = st.recursive(st.none() | st.booleans() | st.integers() | TEMPLATE_TEXT,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEMPLATE_TEXT, inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_inert_leaves_nothing_any_ansible_renders_and_touches_nothing_else(value):
    copy, changed = inert(value)
    assert not any(renders(text) for text in strings(copy))
    assert changed == (copy != value)


@settings(max_examples=400, deadline=None)
@given(json_values | st.dictionaries(st.text(), st.text() | TEMPLATE_TEXT, max_size=4), st.booleans())
def test_inert_json_is_inert_of_the_decoded_document(value, ensure_ascii):
    """The fast way reads the strings as the JSON text holds them (escapes included): it must agree."""
    assert inert_json(json.dumps(value, ensure_ascii=ensure_ascii)) == inert(value)


def test_an_escaped_delimiter_is_no_way_around_the_check():
    assert inert_json('{"a": "\\u007b{ x }}", "#": ["\\u0023jinja2:"]}') == (
        {"a": "{ { x }}", "#": ["# jinja2:"]}, True)
    inert_text("\\u007b{")  # checked as text once: the escaped form must not pass for it later
    assert inert_json('["\\u007b{"]') == (["{ {"], True)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_text_that_is_no_template_comes_out_unchanged(text):
    if not renders(text):
        assert inert_text(text) == text


@pytest.mark.parametrize("text, expected", [
    ("{{ lookup('pipe', 'id') }}", "{ { lookup('pipe', 'id') }}"),
    ("{%raw%}{#x#}", "{ %raw%}{ #x#}"),
    ("{{{", "{ { {"),
    ("#jinja2:variable_start_string:'[['\n[[ x ]]", "# jinja2:variable_start_string:'[['\n[[ x ]]"),
    ("#jinja2:", "# jinja2:"),
    ("x #jinja2: not a header", "x #jinja2: not a header"),
    ("{#jinja2:", "{ #jinja2:"),
    ("pveverka destroyed ws-sjt83qTw3GZatuPm", "pveverka destroyed ws-sjt83qTw3GZatuPm"),
])
def test_each_form_is_broken_where_it_starts(text, expected):
    assert inert_text(text) == expected


def test_what_the_installed_ansible_core_still_calls_a_template_is_refused_whole(monkeypatch):
    """A form a later release may add: the installed ansible-core's own check has the last word."""
    monkeypatch.setattr(_untrusted, "_installed", [lambda text: "<%" in text])
    assert inert_text("a <% new form %>") == REFUSED
    assert inert({"k": ["a <% new form %>", "plain"]}) == ({"k": [REFUSED, "plain"]}, True)


def test_a_check_that_fails_counts_as_a_template(monkeypatch):
    def broken(text):
        raise ValueError("cannot parse %r" % text)

    monkeypatch.setattr(_untrusted, "_installed", [broken])
    assert inert_text("anything") == REFUSED


def test_without_a_check_handed_in_the_known_forms_still_hold():
    """Inside a module's payload ansible.template cannot be imported: every known form is still broken."""
    assert inert_text("#jinja2:x\n{{ y }}") == "# jinja2:x\n{ { y }}"
    assert inert_text("plain") == "plain"


def test_the_check_handed_in_is_asked_and_each_string_once(monkeypatch):
    asked = []

    def check(text):
        asked.append(text)
        return text == "judged a template"

    monkeypatch.setattr(_untrusted, "_installed", [None])
    _untrusted.use_installed_check(check)
    assert inert({"a": ["judged a template", "plain", "plain"]}) == ({"a": [REFUSED, "plain", "plain"]}, True)
    assert sorted(asked) == ["a", "judged a template", "plain"]


def test_censor_masks_every_known_secret_the_longest_first():
    censor = Censor(["abc", None, ""])
    censor.add("abcdef")
    assert censor.text("x abcdef y abc z") == "x %s y %s z" % (MASK, MASK)
    assert censor.value({"abc": ["abcdef", 1, None]}) == {MASK: [MASK, 1, None]}


@pytest.mark.parametrize("secret, text, masked", [
    ("tok-123", '{"a": "x tok-123 y"}', {"a": "x %s y" % MASK}),
    ("tok-123", '{"a": "x tok\\u002d123 y"}', {"a": "x %s y" % MASK}),  # held escaped
    ('"}', '{"a": "q\\"}"}', {"a": "q%s" % MASK}),  # masking the text would end the string early
    ("1234", '{"n": 1234, "s": "1234"}', {"n": 1234, "s": MASK}),  # a number stays a number
    ("absent-secret", '{"a": "line\\nbreak"}', None),
])
def test_censor_masks_json_in_its_values_and_the_result_is_json(secret, text, masked):
    result = Censor([secret]).json_text(text)
    assert json.loads(result) == (masked if masked is not None else json.loads(text))
    assert result == text or masked is not None


def test_the_log_filter_masks_messages_and_their_arguments(caplog):
    censor = Censor(["s3cr3t-token"])
    logger = logging.getLogger("tfe.audit.test_untrusted")
    logger.addFilter(censor.log_filter())
    with caplog.at_level(logging.INFO, logger="tfe.audit.test_untrusted"):
        logger.info("the server said %s", "Bearer s3cr3t-token")
        logger.info("s3cr3t-token in the message")
    assert "s3cr3t-token" not in caplog.text
    assert caplog.text.count(MASK) == 2
