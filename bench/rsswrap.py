# -*- coding: utf-8 -*-
"""Interpreter wrapper: runs `python ARGS...` as a child and appends its wall time and peak RSS to a log.

bench/run.py writes an executable copy with a `#!<python>` line and the log path, and uses it as the
events task's ansible_python_interpreter (and to run the floor script), so the numbers are those of the
module process itself (os.wait4's ru_maxrss of that one child), not of ansible-playbook.
"""

import json
import os
import sys
import time

LOG = os.environ.get("BENCH_RSS_LOG", "")
PYTHON = os.environ.get("BENCH_RSS_PYTHON", sys.executable)


def main():
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.execv(PYTHON, [PYTHON] + sys.argv[1:])
    dummy, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - start
    if LOG:
        with open(LOG, "a") as log:
            log.write(json.dumps({"argv": sys.argv[1:], "seconds": elapsed, "maxrss_kib": usage.ru_maxrss,
                                  "user": usage.ru_utime, "sys": usage.ru_stime}) + "\n")
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
