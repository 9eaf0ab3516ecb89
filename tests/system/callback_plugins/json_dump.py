# -*- coding: utf-8 -*-
"""A stdout callback that prints every task result as JSON, like ansible.posix's ``json`` callback.

Used by the leak tests so that "the json callback" is covered without installing ansible.posix:
both receive the same (possibly censored) result objects from ansible-core.
"""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: json_dump
type: stdout
short_description: every result as JSON (test helper)
description: Prints each task result as one JSON document.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json_dump"

    def _emit(self, result, status):
        self._display.display(json.dumps({"task": result.task_name, "status": status,
                                          "result": result._result}, default=str))

    def v2_runner_on_ok(self, result):
        self._emit(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit(result, "failed")

    def v2_on_file_diff(self, result):
        self._emit(result, "diff")
