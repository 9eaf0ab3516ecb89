# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs the tfe_audit_trail_token module and hides its output whenever it carries a new secret.

A module cannot mark its own result no_log, and a newly generated secret is not an input, so
Ansible's no_log censoring of inputs does not cover it: without this, ``-v``, ``--diff`` or a
``json`` callback would print the token of a task whose author forgot ``no_log: true``.
``register`` still receives the full result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    _supports_check_mode = True
    # An async job's result is read back by async_status, past this plugin: it would print the secret.
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        result.update(self._execute_module(task_vars=task_vars))
        if result.get("token"):
            result["_ansible_no_log"] = True
        return result
