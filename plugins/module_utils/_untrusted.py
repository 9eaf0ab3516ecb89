# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Text from a server made inert for Ansible's templating, and known secrets censored out of text.

Private to the collection (leading underscore): free to change between releases.

When Ansible renders a string
=============================

A value that reaches a playbook as a variable (the event source's events are extra vars of the playbooks that
``run_playbook`` and ``run_module`` start) is rendered as a template when ansible-core's own check calls it
"possibly a template":

* 2.18 (``ansible/template/__init__.py``, ``Templar.is_possibly_template``): the string holds the block, variable
  or comment start string (``{%``, ``{{``, ``{#``) anywhere, *after* a ``#jinja2:`` header at its very start has
  been applied. The header sets those strings, e.g. ``#jinja2:variable_start_string:'[['`` makes ``[[`` one.
* 2.19, 2.20 and 2.21 (``ansible/_internal/_templating/_jinja_bits.py``, ``is_possibly_template``): the string
  starts with ``#jinja2:`` (whatever the header sets, a ``line_statement_prefix`` included), or holds one of the
  three default start strings.

So :func:`inert` breaks every default start string (``{{`` becomes ``{ {``) and a header at the start (``#jinja2:``
becomes ``# jinja2:``): no supported release renders what is left. Then, where the caller has handed it the
installed ansible-core's own check (:func:`use_installed_check`; controller code can import it, a module's payload
cannot), a string that the check still calls a possible template, a form a later release may add, is replaced
whole (fail closed).
Real audit events hold none of this: their text comes out unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import logging
import re

from ansible_collections.tfe.audit.plugins.module_utils._errors import MASK

# The default start strings of Jinja's blocks, variables and comments: "{" followed by "{", "%" or "#".
_START_STRING = re.compile(r"\{(?=[{%#])")
# Every string, key or value, of a JSON document, as written in it (escapes included).
_JSON_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.S)
# ansible-core's JINJA2_OVERRIDE: a string that starts with it may redefine every delimiter.
_OVERRIDE_HEADER = "#jinja2:"
REFUSED = "(refused: ansible-core would read this text as a template)"

# Audit events repeat most of their strings (keys, types, actions, who): each is checked once.
_CHECKED_LIMIT = 65536
_checked = {}

# ansible-core's own check, when the caller can import it (see use_installed_check).
_installed = [None]


def use_installed_check(check):
    """Have ``check`` (the installed ansible-core's ``Templar.is_possibly_template``) judge every string too, after
    the known forms are broken. Controller code sets it (plugin_utils); a module's payload carries no
    ``ansible.template`` and relies on the forms of 2.18 to 2.21 alone."""
    _installed[0] = check
    _checked.clear()


def possibly_template(text):
    """Whether any supported ansible-core, or the installed one, may render ``text``; an error says yes."""
    if text.startswith(_OVERRIDE_HEADER) or _START_STRING.search(text) is not None:
        return True
    check = _installed[0]
    if check is None:
        return False
    try:
        return bool(check(text))
    except Exception:  # pylint: disable=broad-except  # e.g. a header 2.18 cannot parse: fail closed
        return True


def inert_text(text):
    """``text`` with every template form broken (see the module docstring); unchanged when it holds none."""
    broken = _checked.get(text)
    if broken is None:
        broken = _START_STRING.sub("{ ", text) if "{" in text else text
        if broken.startswith(_OVERRIDE_HEADER):
            broken = "# " + broken[1:]
        if possibly_template(broken):
            broken = REFUSED
        if len(_checked) >= _CHECKED_LIMIT:
            _checked.clear()
        _checked[text] = broken
    return broken


def inert(value):
    """``(copy, changed)``: ``value`` (JSON data) with :func:`inert_text` applied to every string and key."""
    if isinstance(value, str):
        broken = inert_text(value)
        return broken, broken != value
    changed = False
    if isinstance(value, dict):
        copy = {}
        for key, item in value.items():
            (key, key_changed), (item, item_changed) = inert(key), inert(item)
            copy[key] = item
            changed = changed or key_changed or item_changed
        return copy, changed
    if isinstance(value, list):
        copy = []
        for item in value:
            item, item_changed = inert(item)
            copy.append(item)
            changed = changed or item_changed
        return copy, changed
    return value, False


def inert_json(text):
    """``(value, changed)``: the JSON document ``text`` decoded, with :func:`inert` applied. The fast way for
    documents that need no change (every real audit event): their strings are checked as the text holds them
    (most of them checked before), and only a document with one that changes is walked."""
    checked = _checked.get
    for raw in _JSON_STRING.findall(text):
        escaped = "\\" in raw
        if not escaped and checked(raw) == raw:
            continue
        string = json.loads('"%s"' % raw) if escaped else raw
        if inert_text(string) != string:
            return inert(json.loads(text))
    return json.loads(text), False


class Censor:
    """The secrets a program knows, and where they show, replaced by ``********`` (as ``no_log`` values are)."""

    def __init__(self, secrets=()):
        self._secrets = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret):
        """Know ``secret`` from now on (a token read again, a new token). Empty and non-strings are ignored."""
        if isinstance(secret, str) and secret and secret not in self._secrets:
            # The longest first: a secret that contains another is masked whole.
            self._secrets = sorted(self._secrets + [secret], key=len, reverse=True)

    def text(self, text):
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def shows_in(self, text):
        """Whether a known secret shows in ``text``."""
        return any(secret in text for secret in self._secrets)

    def json_text(self, text):
        """The JSON document ``text`` with every known secret masked in its strings and keys, still valid JSON: a
        secret that shows is masked in the decoded values (masking the text itself could cut through an escape or
        a number), and so is one that the document may hold escaped (``\\u0041`` for ``A``)."""
        if not self._secrets or ("\\" not in text and not self.shows_in(text)):
            return text
        data = json.loads(text)
        masked = self.value(data)
        return text if masked == data else json.dumps(masked, ensure_ascii=False, separators=(",", ":"))

    def raw(self, data):
        """Bytes (an event that could not be decoded) with every known secret masked in them, as UTF-8."""
        for secret in self._secrets:
            data = data.replace(secret.encode("utf-8"), MASK.encode("ascii"))
        return data

    def value(self, value):
        """JSON data with every known secret masked in its strings and keys."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return dict((self.value(key), self.value(item)) for key, item in value.items())
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def log_filter(self):
        """A ``logging.Filter`` that masks the known secrets in every record's message (its arguments included)."""
        return _CensoringFilter(self)


class _CensoringFilter(logging.Filter):
    def __init__(self, censor):
        super().__init__()
        self._censor = censor

    def filter(self, record):
        message = record.getMessage()
        censored = self._censor.text(message)
        if censored != message:
            record.msg, record.args = censored, None
        return True
