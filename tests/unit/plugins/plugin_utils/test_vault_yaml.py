# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils._vault_yaml: the YAML round trip keeps local tags, and the secret is never rendered."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19: every string is a template unless it is unsafe
    def trust_as_template(value):
        return value

from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import (
    TaggedScalar,
    dump_mapping,
    load_mapping,
    secret_of,
    unsafe,
)
from ansible_collections.tfe.audit.tests.unit.plugins.plugin_utils.store_helpers import VAR

TEMPLATE = "{{ 6 * 7 }}"


def test_round_trip_keeps_other_variables_their_tags_and_order():
    text = "---\nb: 1\na: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3030\nc: !unsafe '{{ x }}'\n"
    mapping = load_mapping(text, "the file")

    assert list(mapping) == ["b", "a", "c"]
    assert mapping["a"] == TaggedScalar("!vault", "$ANSIBLE_VAULT;1.1;AES256\n3030\n")
    assert load_mapping(dump_mapping(mapping), "the file") == mapping


def rendered(text, tmp_path):
    """The variable as a play renders it after loading ``text`` as a vars file (vars_files, group_vars)."""
    path = tmp_path / "vars.yml"
    path.write_text(text)
    loader = DataLoader()
    try:
        variables = loader.load_from_file(str(path), trusted_as_template=True)
    except TypeError:  # ansible-core < 2.19
        variables = loader.load_from_file(str(path))
    return Templar(loader=loader, variables=variables).template(trust_as_template("{{ %s }}" % VAR))


def test_the_secret_is_dumped_unsafe_and_ansible_does_not_render_it(tmp_path):
    text = dump_mapping({VAR: unsafe(TEMPLATE)})

    assert "%s: !unsafe '%s'" % (VAR, TEMPLATE) in text
    assert rendered(text, tmp_path) == TEMPLATE


def test_a_plain_scalar_would_be_rendered(tmp_path):
    """The check above can fail: without the tag Ansible renders the stored string."""
    assert rendered(yaml.safe_dump({VAR: TEMPLATE}), tmp_path) in (42, "42")


@pytest.mark.parametrize("value, expected", [("s", ("s", False)), (unsafe("s"), ("s", True)), (None, (None, False))])
def test_secret_of_reads_plain_and_unsafe_strings(value, expected):
    assert secret_of({VAR: value}, VAR, "the file") == expected


@pytest.mark.parametrize("value", [42, TaggedScalar("!vault", "x"), ["s"]])
def test_secret_of_refuses_anything_else(value):
    with pytest.raises(StoreError, match="is not a plain string"):
        secret_of({VAR: value}, VAR, "the file")


@pytest.mark.parametrize("text, message", [("[1, 2]", "holds a list"), ("a: [", "does not hold valid YAML")])
def test_load_mapping_refuses_what_is_not_a_mapping(text, message):
    with pytest.raises(StoreError, match=message):
        load_mapping(text, "the file")
