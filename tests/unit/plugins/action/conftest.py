# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run an action plugin of the collection on a real ``local`` connection (and become plugin), the module stubbed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import become_loader, connection_loader

NEW_SECRET = "new-secret"


def local_connection(play_context, become=None):
    """ansible-core's own local connection with its defaults (pipelining off), and a become plugin."""
    connection = connection_loader.get("local", play_context)
    connection.set_options()
    if become:
        plugin = become_loader.get(become)
        plugin.set_options()
        connection.set_become_plugin(plugin)
    return connection


@pytest.fixture
def run_action(monkeypatch):
    """run_action(plugin_module, name, args, module_result=None, check_mode=False, become=None, loader=None)
    -> (result, [(module name, module args, whether ansible-core runs it pipelined)], connection)."""

    def run(plugin_module, name, args, module_result=None, check_mode=False, become=None, loader=None):
        task = Task.load(dict(action=dict(module=name, args=args)))
        task.args = dict(args)
        play_context = PlayContext()
        play_context.check_mode = check_mode
        connection = local_connection(play_context, become)
        plugin = plugin_module.ActionModule(task, connection, play_context, loader, None, None)
        plugin._load_name = name
        calls = []

        def execute_module(module_name=None, module_args=None, task_vars=None, **kwargs):
            calls.append((module_name, task.args if module_args is None else module_args,
                          plugin._is_pipelining_enabled("new")))
            return dict(module_result or dict(changed=True, operation="create", id="at-1", token=NEW_SECRET))

        monkeypatch.setattr(plugin, "_execute_module", execute_module)
        return plugin.run(task_vars={}), calls, connection

    return run
