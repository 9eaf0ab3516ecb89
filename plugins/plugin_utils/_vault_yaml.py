# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The YAML round trip of an Ansible Vault vars file: the file's other variables and their local tags
(``!vault``, ``!unsafe``) survive a rewrite unchanged, and the secret is always written ``!unsafe``.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import yaml

from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError

UNSAFE_TAG = "!unsafe"


class TaggedScalar:
    """A scalar with a local YAML tag, kept as it is."""

    def __init__(self, tag, value, style=None):
        self.tag, self.value, self.style = tag, value, style

    def __eq__(self, other):
        return isinstance(other, TaggedScalar) and (self.tag, self.value) == (other.tag, other.value)

    def __repr__(self):
        return "TaggedScalar(%r, <%d characters>)" % (self.tag, len(self.value or ""))


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _construct_tagged(loader, tag_suffix, node):
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "the tag %r on a non-scalar value is not supported"
                                                % node.tag, node.start_mark)
    return TaggedScalar(node.tag, loader.construct_scalar(node), node.style)


_Loader.add_multi_constructor("!", _construct_tagged)
_Dumper.add_representer(TaggedScalar, lambda dumper, data: dumper.represent_scalar(data.tag, data.value, data.style))


def plain(value):
    """Plain Python types for yaml.safe_dump: ansible-core 2.19+ hands out tagged strings it refuses."""
    if isinstance(value, (TaggedScalar, bytes)):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    for kind in (bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return dict((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def unsafe(value):
    """The secret as ``!unsafe``: Ansible never renders it as a template (a server could answer ``{{ ... }}``)."""
    return TaggedScalar(UNSAFE_TAG, plain(value))


def dump_mapping(mapping):
    return yaml.dump(plain(mapping), Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, explicit_start=True)


def load_mapping(text, what):
    """The mapping of a decrypted vars file; the plaintext is never shown (it may be the secret itself)."""
    try:
        mapping = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise StoreError("%s does not hold valid YAML (%s); fix it with 'ansible-vault edit'"
                         % (what, getattr(exc, "problem", None) or "parse error"))
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise StoreError("%s must hold a YAML mapping of variables, it holds a %s; fix it with 'ansible-vault edit'"
                         % (what, type(mapping).__name__))
    return mapping


def secret_of(mapping, var, what):
    """``(secret or None, marked unsafe)``: a secret is a string, plain or ``!unsafe``."""
    value = mapping.get(var)
    if isinstance(value, TaggedScalar) and value.tag == UNSAFE_TAG and isinstance(value.value, str):
        return value.value, True
    if value is not None and not isinstance(value, str):
        raise StoreError("the variable %s in %s is not a plain string (%s); it must hold the token's secret: "
                         "fix it with 'ansible-vault edit'" % (var, what, type(value).__name__))
    return value, False
