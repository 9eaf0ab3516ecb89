# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils._hidden_result: a result with a secret is hidden, and its warnings are still shown."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from types import SimpleNamespace

import pytest

from ansible_collections.tfe.audit.plugins.plugin_utils import _hidden_result
from ansible_collections.tfe.audit.plugins.plugin_utils._hidden_result import hide_secret

WARNING = "HCP Terraform's answer held an expired-at that is not a time; expired_at is null"


@pytest.fixture
def shown(monkeypatch):
    monkeypatch.setattr(_hidden_result, "DROPS_HIDDEN_WARNINGS", True)  # ansible-core 2.18
    warnings = []
    monkeypatch.setattr(_hidden_result.display, "warning", warnings.append)
    return warnings


@pytest.mark.parametrize("no_log, token", [(False, "s3cret"), (True, "s3cret"), (True, None)])
def test_the_warnings_of_a_hidden_result_are_shown_by_the_action(shown, no_log, token):
    result = dict(changed=True, warnings=[WARNING], **({"token": token} if token else {}))

    hide_secret(SimpleNamespace(no_log=no_log), result)

    assert shown == [WARNING] and "warnings" not in result
    assert result.get("_ansible_no_log") is (True if token else None)


def test_a_result_without_a_secret_is_left_to_ansible_core(shown):
    result = dict(changed=False, warnings=[WARNING])

    hide_secret(SimpleNamespace(no_log=False), result)

    assert shown == [] and result == dict(changed=False, warnings=[WARNING])


def test_ansible_core_2_19_and_later_show_them_itself(monkeypatch, shown):
    monkeypatch.setattr(_hidden_result, "DROPS_HIDDEN_WARNINGS", False)
    result = dict(changed=True, token="s3cret", warnings=[WARNING])

    hide_secret(SimpleNamespace(no_log=True), result)

    assert shown == [] and result["warnings"] == [WARNING] and result["_ansible_no_log"] is True


def test_output_ansible_core_could_not_parse_is_not_passed_on(shown):
    """A module that printed its result and then something else: the output holds the new secret, unparsed."""
    result = dict(failed=True, msg="MODULE FAILURE", module_stdout='{"token": "s3cret-new"} trailing', rc=0)

    hide_secret(SimpleNamespace(no_log=False), result)

    assert "s3cret" not in repr(result) and result["msg"] == "MODULE FAILURE" and result["rc"] == 0
