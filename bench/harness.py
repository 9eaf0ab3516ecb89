# -*- coding: utf-8 -*-
"""Shared plumbing of the benchmark (bench/run.py) and the request-count smoke test.

A Workspace is a temp dir holding a collections path with this checkout symlinked as tfe.audit (as in
tests/system/conftest.py), its own HOME and Ansible temp dirs; run_playbook() runs a real ansible-playbook
in it with the bench_timer callback, which records per-task timestamps.
"""

import json
import os
import resource
import shutil
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


def emulator(admin_token, **kwargs):
    """An in-process HCP Terraform emulator without rate limit (the benchmark measures the client)."""
    kwargs.setdefault("rate_limit", 0)
    return Emulator(platform="hcp", api_tokens=(admin_token,), **kwargs)


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
    def __init__(self, prefix="tfe-audit-bench-", snapshot=None):
        """``snapshot``: a git revision to export as tfe.audit (a fixed copy, unaffected by edits in the
        checkout while a long run goes on); default: the checkout itself, symlinked."""
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        namespace = self.dir / "collections" / "ansible_collections" / "tfe"
        namespace.mkdir(parents=True)
        if snapshot:
            (namespace / "audit").mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", snapshot], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(namespace / "audit")], input=archive.stdout, check=True)
        else:
            (namespace / "audit").symlink_to(ROOT)
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
