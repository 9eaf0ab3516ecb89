# -*- coding: utf-8 -*-
"""Benchmark callback: appends one JSON line per task start and per host result to $BENCH_TIMINGS.

Timestamps are time.monotonic() of the controller process (one clock for the whole run), so the time of
a task is the distance between consecutive task starts, which includes Ansible's own per-task overhead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: per-task timestamps for bench/run.py
description: Writes task start and host result timestamps as JSON lines to the file named by BENCH_TIMINGS.
requirements:
  - enabled in callbacks_enabled
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        path = os.environ.get("BENCH_TIMINGS")
        self._out = open(path, "a") if path else None  # pylint: disable=consider-using-with

    def _emit(self, **record):
        if self._out:
            record["t"] = time.monotonic()
            self._out.write(json.dumps(record) + "\n")
            self._out.flush()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit(event="task", name=task.get_name())

    def _result(self, result, status):
        self._emit(event="result", status=status, host=result._host.get_name(), name=result._task.get_name())

    def v2_runner_on_ok(self, result, **kwargs):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._emit(event="end")
