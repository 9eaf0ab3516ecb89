# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A task result that holds a secret is hidden; its warnings are shown all the same.

A module cannot mark its own result no_log, and a newly generated secret is not an input, so ansible-core's
no_log censoring of inputs does not cover it: without this, ``-v``, ``--diff`` or a ``json`` callback would
print the token of a task whose author forgot ``no_log: true``. ``register`` still receives the full result.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.release import __version__ as ansible_core_version
from ansible.utils.display import Display

display = Display()
# ansible-core 2.18 drops the warnings of a hidden result with the rest; 2.19 and later show them.
DROPS_HIDDEN_WARNINGS = tuple(int(part) for part in ansible_core_version.split(".")[:2]) < (2, 19)


def hide_secret(task, result):
    """Mark ``result`` no_log when it holds a secret (``token``), and drop output ansible-core could not parse
    (``module_stdout``), which may hold one. Where ansible-core would drop the warnings of
    a hidden result (the task's no_log, or this), they are shown here: they are what says that a new secret was
    kept while part of the server's answer was not (they never hold a secret)."""
    if result.get("token"):
        result["_ansible_no_log"] = True
    if "module_stdout" in result:  # output ansible-core could not parse: after a create it holds the new secret
        result["module_stdout"] = "(not shown: the module's output could not be parsed, and may hold a secret)"
    if DROPS_HIDDEN_WARNINGS and (task.no_log or result.get("_ansible_no_log")):
        for warning in result.pop("warnings", None) or ():
            display.warning(warning)
    return result
