# -*- coding: utf-8 -*-
"""Interpreter wrapper for bench/profile_create.py: runs a module's AnsiballZ payload under cProfile.

usage: python cprofile_launch.py PAYLOAD [ARGS...]   (BENCH_PROFILE_DIR: where p-<pid>.out goes)

Not ``python -m cProfile``: AnsiballZ drops the directory of ``__main__`` from sys.path, which is the standard
library's when cProfile is ``__main__``.
"""

import cProfile
import os
import runpy
import sys


def main():
    path = sys.argv[1]
    sys.argv = sys.argv[1:]
    profile = cProfile.Profile()
    try:
        profile.enable()
        runpy.run_path(path, run_name="__main__")
    finally:
        profile.disable()
        profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"], "p-%d.out" % os.getpid()))


if __name__ == "__main__":
    main()
