# -*- coding: utf-8 -*-
"""Interpreter wrapper for bench/profile_create.py: runs a module's AnsiballZ payload under cProfile.

usage: python cprofile_launch.py PAYLOAD [ARGS...]   (BENCH_PROFILE_DIR: where p-<pid>.out goes; BENCH_PROFILE_CLOCK:
       ``cpu`` for the process's CPU time, which other jobs on the machine hardly move, else wall time)

Not ``python -m cProfile``: AnsiballZ drops the directory of ``__main__`` from sys.path, which is the standard
library's when cProfile is ``__main__``.
"""

import cProfile
import os
import runpy
import sys
import time


def main():
    path = sys.argv[1]
    sys.argv = sys.argv[1:]
    cpu = os.environ.get("BENCH_PROFILE_CLOCK") == "cpu"
    profile = cProfile.Profile(time.process_time) if cpu else cProfile.Profile()
    try:
        profile.enable()
        runpy.run_path(path, run_name="__main__")
    finally:
        profile.disable()
        profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"], "p-%d.out" % os.getpid()))


if __name__ == "__main__":
    main()
