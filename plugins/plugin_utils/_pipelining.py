# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A module whose arguments hold a secret runs pipelined, or not at all.

Unless a module runs pipelined, ansible-core writes it, with its arguments inside (AnsiballZ), to a temp
file where it runs, and keeps that file for the whole module run (for good with ANSIBLE_KEEP_REMOTE_FILES):
a stored secret (``known_token``) or the API token (``token``, also from ``module_defaults``) would be on
disk in clear text. Pipelining is off by default in ansible-core, so the collection's actions turn it on for
their own task when its arguments hold a secret, wherever the connection and the become method allow it, and
refuse to run a module that would still be written to disk with a secret in its arguments. A task without
one runs as configured: pipelining through the local connection costs the module about 45 ms per task.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

# The arguments of the collection's modules that hold a secret (tfe_token: the alias of token).
SECRET_OPTIONS = ("known_token", "token", "tfe_token")


class PipelinedAction(ActionBase):
    """The action of a module whose arguments may hold a secret (every module of the collection takes ``token``):
    with a secret in its arguments the module runs pipelined, or the task fails before anything runs. Subclasses
    name ``MODULE``."""

    _supports_check_mode = True
    MODULE = None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            run_pipelined(self, self.MODULE, self._task.args, wrap_async=self._task.async_val)
        except AnsibleActionFail as exc:
            result.update(failed=True, changed=False, msg=to_native(exc.message))
            return result
        result.update(self._execute_module(module_name=self.MODULE, task_vars=task_vars,
                                           wrap_async=self._task.async_val))
        return self.finish(result)

    def finish(self, result):
        return result


def run_pipelined(action, module_name, module_args, wrap_async=False):
    """Make ``action`` run its module pipelined for this task when ``module_args`` hold a secret.

    Raises ``AnsibleActionFail`` (before anything ran) when ansible-core would still not pipeline it. Asks
    ansible-core itself (``ActionBase._is_pipelining_enabled``), which knows the connection, the become method
    (``su`` cannot pipeline), async and ANSIBLE_KEEP_REMOTE_FILES in every supported version.
    """
    secrets = [name for name in SECRET_OPTIONS if module_args.get(name)]
    if not secrets:
        # Nothing secret would be written (a token from the environment or Terraform's credentials is read by the
        # module itself): the task runs as configured. Pipelining a module through the local connection costs
        # about 45 ms of the module process's CPU time per task (ansible-core feeds it the payload on stdin).
        return
    connection = action._connection
    if getattr(connection, "has_pipelining", False):
        # Only this task's connection: ansible-core sets every connection's options again for each task.
        connection.set_option("pipelining", True)
    if not action._is_pipelining_enabled("new", wrap_async=bool(wrap_async)):
        raise AnsibleActionFail(
            "refusing to run %s: its arguments hold a secret (%s), and %s, so ansible-core would write them to a temp "
            "file in clear text. %s; the module did not run" % (module_name, ", ".join(secrets),
                                                                *_why_not(connection, wrap_async)))


def _why_not(connection, wrap_async=False):
    """``(why this task cannot run pipelined, what to do)``."""
    if wrap_async:
        return ("it runs asynchronously (async), which never pipelines", "Run the task without async")
    if C.DEFAULT_KEEP_REMOTE_FILES:
        return ("ANSIBLE_KEEP_REMOTE_FILES (keep_remote_files in ansible.cfg) is enabled, which keeps every "
                "module's arguments on disk", "Unset it for this run")
    become = getattr(connection, "become", None)
    if getattr(connection, "has_pipelining", False) and become is not None:
        return ("the become method %s cannot run modules pipelined" % getattr(become, "name", "in use"),
                "Run the task without become (become: false) or with a become method that can (sudo, the default)")
    name = getattr(connection, "_load_name", None) or getattr(connection, "transport", "in use")
    return ("the connection %s cannot run modules pipelined" % name,
            "Run the task on the controller (hosts: localhost or delegate_to: localhost, connection local) or "
            "over a connection that pipelines (ssh)")
