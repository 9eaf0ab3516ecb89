# -*- coding: utf-8 -*-
"""Shared plumbing of the benchmark (bench/run.py, the measure_*.py sections) and the request-count smoke test.

A Workspace is a temp dir holding a collections path with the tfe.audit under test (this checkout symlinked,
as in tests/system/conftest.py, or another revision or checkout: see Source), its own HOME and Ansible temp
dirs; run_playbook() runs a real ansible-playbook in it with the bench_timer callback, which records per-task
timestamps.
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

from tfe_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position

BIN = Path(sys.executable).parent
PASSWORD = "bench vault password"
JSONAPI = "application/vnd.api+json"
ADMIN = "admin-bench-token"
# (label, (1, 5, 15 min load averages)) of each step of this run, in order.
STEPS = []


def emulator(admin_token=ADMIN, **kwargs):
    """An in-process HCP Terraform emulator without rate limit (the benchmark measures the client)."""
    kwargs.setdefault("rate_limit", 0)
    return Emulator(platform="hcp", api_tokens=(admin_token,), **kwargs)


def median(values):
    values = list(values)
    return statistics.median(values) if values else float("nan")


def interleaved(kinds, reps):
    """``(rep, kinds in this rep's order)``: every rep runs every kind, the order turning round from one rep to
    the next (A, B, B, A, ...), so that a slow spell of the shared machine does not fall on one kind only."""
    kinds = tuple(kinds)
    for rep in range(reps):
        yield rep, (kinds if rep % 2 == 0 else kinds[::-1])


def step(label):
    """Note the start of a step and the machine's load then (the report lists them: a loaded machine is noisier)."""
    STEPS.append((label, os.getloadavg()))
    print("[bench] %s (load %.2f %.2f %.2f)" % ((label,) + os.getloadavg()), flush=True)


def git(*args, cwd=ROOT):
    return subprocess.run(["git", "-C", str(cwd)] + list(args), check=True, capture_output=True,
                          text=True).stdout.strip()


class Source:
    """Which tfe.audit a workspace holds: this checkout as it is (linked), a git revision of this repository
    (exported with git archive, so edits during a long run do not matter), or another directory: a checkout
    of the collection or a tree holding ansible_collections/tfe/audit.

    ``Source.parse("before=c72ba69")``, ``Source.parse("/tmp/old-checkout")``; ``commit`` and ``date`` say
    what was measured (``None`` for a directory that is not a git checkout).
    """

    def __init__(self, label, revision=None, path=None):
        self.label, self.revision, self.path = label, revision, path
        self.commit = self.date = self.plugins = None
        where = Path(path) if path else ROOT
        try:
            top = Path(git("rev-parse", "--show-toplevel", cwd=where)).resolve()
            if top == where.resolve():  # not the commit of some other repository the tree sits in
                self.commit = git("rev-parse", "%s^{commit}" % (revision or "HEAD"), cwd=where)
                self.date = git("show", "-s", "--format=%cd", "--date=format:%Y-%m-%d %H:%M %z", self.commit,
                                cwd=where)
                self.plugins = git("rev-parse", "%s:plugins" % self.commit, cwd=where)  # same hash, same code
        except (subprocess.CalledProcessError, OSError):
            pass
        if revision and not self.commit:
            raise SystemExit("%s is neither a directory nor a git revision of %s" % (revision, ROOT))
        self.dirty = bool(self.commit and not revision and git(
            "status", "--porcelain", "--", "plugins", "roles", "meta", "extensions", cwd=where))
        self.plugins = None if self.dirty else self.plugins

    @classmethod
    def parse(cls, spec):
        label, sep, what = spec.partition("=")
        label, what = (label, what) if sep else (spec, spec)
        if not Path(what).is_dir():
            return cls(label, revision=what)
        tree = Path(what).resolve()
        if not (tree / "galaxy.yml").exists() and (tree / "ansible_collections" / "tfe" / "audit").is_dir():
            tree = tree / "ansible_collections" / "tfe" / "audit"
        if not (tree / "galaxy.yml").exists():
            raise SystemExit("%s is not a checkout of tfe.audit nor a tree holding ansible_collections/tfe/audit" % what)
        return cls(label, path=str(tree))

    def describe(self):
        """What the report says was measured."""
        if self.commit is None:
            return "the directory %s (not a git checkout)" % self.path
        how = ("committed tree, `git archive`" if self.revision else
               "the checkout, with uncommitted changes" if self.dirty else "the checkout")
        return "commit %s of %s (%s)" % (self.commit, self.date, how)

    def install(self, target):
        if self.revision:
            target.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", self.commit], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        else:
            target.symlink_to(self.path or ROOT)


def rss_wrapper(ws, log):
    """An interpreter that runs Python through bench/rsswrap.py: each process's wall time, CPU and peak RSS go to log."""
    wrapper = ws.path("rsswrap-%s.sh" % Path(log).stem)
    wrapper.write_text("#!/bin/sh\nBENCH_RSS_LOG='%s' BENCH_RSS_PYTHON='%s' exec '%s' '%s' \"$@\"\n"
                       % (log, sys.executable, sys.executable, BENCH / "rsswrap.py"))
    wrapper.chmod(0o755)
    return wrapper


def rss_rows(log):
    """The rows rsswrap.py appended to log (one per process), oldest first."""
    path = Path(log)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Result:
    def __init__(self, proc, wall, records):
        self.rc, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        self.wall, self.records = wall, records

    def check(self):
        if self.rc != 0:
            raise RuntimeError("ansible-playbook failed (rc=%s)\n%s\n%s"
                               % (self.rc, self.stdout[-4000:], self.stderr[-4000:]))
        return self

    def task_starts(self):
        """[(name, t)] of the task starts, in order, then ("<end>", t) of the stats."""
        return [(r.get("name", "<end>"), r["t"]) for r in self.records if r["event"] in ("task", "end")]

    def spans(self, prefix):
        """Durations of the tasks whose name starts with prefix: from their start to the next task's start."""
        starts = self.task_starts()
        return [nxt[1] - cur[1] for cur, nxt in zip(starts, starts[1:]) if cur[0].startswith(prefix)]

    def active(self):
        """First task start to the end of the play (ansible-playbook's start-up and exit excluded)."""
        starts = self.task_starts()
        return starts[-1][1] - starts[0][1]


class Workspace:
    def __init__(self, prefix="tfe-audit-bench-", source=None):
        """``source``: the tfe.audit to install (a :class:`Source`); default: this checkout, symlinked."""
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        namespace = self.dir / "collections" / "ansible_collections" / "tfe"
        namespace.mkdir(parents=True)
        self.source = source or Source("this checkout")
        self.source.install(namespace / "audit")
        for sub in ("home", "local-tmp", "remote-tmp", "work"):
            (self.dir / sub).mkdir()
        self.password_file = self.dir / "vault-pass.txt"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    def run_playbook(self, playbook, args=(), env=None, inventory="localhost,", check=True, retry_on_signal=True):
        """Run a playbook (text) with ansible-playbook; returns a Result with the callback's records."""
        self._n += 1
        work = self.dir / "work"
        book = work / ("playbook-%d.yml" % self._n)
        book.write_text(playbook)
        timings = work / ("timings-%d.jsonl" % self._n)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "TFE_", "BENCH_"))}
        full_env.update(
            ANSIBLE_COLLECTIONS_PATH=str(self.dir / "collections"),
            ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="bench_timer",
            ANSIBLE_LOCAL_TEMP=str(self.dir / "local-tmp"),
            ANSIBLE_REMOTE_TEMP=str(self.dir / "remote-tmp"),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_GATHERING="explicit",
            ANSIBLE_HOST_KEY_CHECKING="0",
            BENCH_TIMINGS=str(timings),
            HOME=str(self.dir / "home"),
        )
        full_env.update(env or {})
        cmd = [str(BIN / "ansible-playbook"), "-i", inventory, "-c", "local", str(book)] + list(args)
        start, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, cwd=str(work), env=full_env, capture_output=True, text=True, timeout=3600,
                              check=False)
        if proc.returncode < 0 and retry_on_signal:  # killed from outside (a shared machine): once more
            print("[bench] ansible-playbook was killed by signal %d; running it again" % -proc.returncode, flush=True)
            timings.unlink(missing_ok=True)
            start, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.run(cmd, cwd=str(work), env=full_env, capture_output=True, text=True, timeout=3600,
                                  check=False)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        records = [json.loads(line) for line in timings.read_text().splitlines()] if timings.exists() else []
        result = Result(proc, wall, records)
        result.cpu = cpu  # CPU seconds of ansible-playbook and everything it ran (less sensitive to load)
        return result.check() if check else result
