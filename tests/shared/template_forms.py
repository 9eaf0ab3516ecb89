# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every form in which ansible-core 2.18 to 2.21 may render a string (plugins/module_utils/_untrusted.py says
why), as payloads that run a command when rendered; and what in a value a supported ansible-core would render.

Shared by the unit tests, the real-engine tests (tests/eda) and the playbook runs (tests/system).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timezone

START_STRINGS = ("{{", "{%", "{#")
HEADER = "#jinja2:"


def template_forms(command_for):
    """``{name: text}``: each form, running ``command_for(name)`` (a shell command) through the pipe lookup."""
    def pipe(name):
        return "lookup('ansible.builtin.pipe', '%s')" % command_for(name).replace("'", "")

    return {
        "variable": "{{ %s }}" % pipe("variable"),
        "block": "{%% set x = %s %%}{{ x }}" % pipe("block"),
        "comment_then_variable": "{# a comment #}{{ %s }}" % pipe("comment_then_variable"),
        "header_variable": "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ %s ]]"
                           % pipe("header_variable"),
        "header_block": "#jinja2:block_start_string:'[%%', block_end_string:'%%]'\n[%% set x = %s %%][[ x ]]"
                        % pipe("header_block"),
        "header_line_statement": "#jinja2:line_statement_prefix:'%%'\n%% set x = %s\n{{ x }}"
                                 % pipe("header_line_statement"),
        "header_spaces": "#jinja2: variable_start_string: '<<' , variable_end_string: '>>'\n<< %s >>"
                         % pipe("header_spaces"),
        "header_comment": "#jinja2:comment_start_string:'<#', comment_end_string:'#>'\n<# x #>{{ %s }}"
                          % pipe("header_comment"),
    }


def planted_event(forms, event_id="planted-1", timestamp=None, accessor_id="user-planted"):
    """A workspace-destroy audit event holding every form in values, in keys and in nested lists (at
    ``timestamp``, default now)."""
    names = sorted(forms)
    timestamp = timestamp or now_text()
    return {"id": event_id, "version": "0", "type": "Resource", "timestamp": timestamp,
            "auth": {"accessor_id": accessor_id, "description": forms["header_variable"], "type": "Client",
                     "impersonator_id": None, "organization_id": "org-planted"},
            "request": {"id": forms["header_line_statement"]},
            "resource": {"id": forms["variable"], "type": "workspace", "action": "destroy",
                         "meta": {"values": dict(forms), "keys": dict((forms[name], name) for name in names),
                                  "lists": [[forms[name], [{forms[name]: [forms[name]]}]] for name in names]}}}


def now_text():
    """Now, as the API writes times (``2030-12-31T23:59:59.123Z``)."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)


def strings(value):
    """Every string of JSON data, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def renders(text, installed=None):
    """Whether a supported ansible-core may render ``text`` (2.18: a start string, after a header at the start has
    set them; 2.19+: a header at the start, or a start string); ``installed``: the installed one's own check."""
    return text.startswith(HEADER) or any(start in text for start in START_STRINGS) or bool(installed and installed(text))


def templates_in(value, installed=None):
    """The strings of ``value`` that a supported (or the installed) ansible-core would render."""
    return [text for text in strings(value) if renders(text, installed)]
