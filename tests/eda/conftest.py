# -*- coding: utf-8 -*-
"""Real-engine tests of the event source tfe.audit.audit_trail: ansible-rulebook (and its JVM) against the emulator.

Run by ``make eda`` with the interpreter of .venv-eda (ansible-rulebook, ansible-core, requests; pinned in
tests/ci/requirements-eda.txt). Each test gets its own emulator (in this process, on loopback), directories and
ansible-rulebook process; the collection is this checkout, symlinked into a collections path.

A rulebook under test gets one more rule, ``record``, which prints every event it receives as
``EDA-RECORD <json>`` (with ``match_multiple_rules`` so that the rulebook's own rules still fire); the
``debug`` action's banner gives the time the rule fired.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests" / "shared"))

from tfe_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position
from checkout_fixtures import admin_token, collections_path, core_bin  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position

ORG = "acme"
ORDERS = ("newest", "oldest")
RECORD_RULE = {"name": "record", "condition": "event.meta is defined",
               "action": {"debug": {"msg": "EDA-RECORD {{ event | tojson }}"}}}
INVENTORY = "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
_BANNER = re.compile(r"^\*\* (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \[debug\] \*+$")


def make_emulator(admin_token, order):
    emu = Emulator(platform="hcp", api_tokens=(admin_token,), order=order)
    emu.add_organization(ORG, entitlement=True)
    return emu


@pytest.fixture
def emulator_factory(admin_token):
    started = []

    def factory(order="newest"):
        emu = make_emulator(admin_token, order)
        emu.start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


def trail(emu):
    """Every (timestamp, id) of the organization's audit trail, oldest first."""
    return sorted((event["timestamp"], event["id"]) for dummy, dummy_id, event in emu._orgs[ORG].events)  # pylint: disable=protected-access


def key(event):
    return event["tfe_audit"]["timestamp"], event["tfe_audit"]["id"]


def with_record_rule(rulebook):
    """The rulebook (YAML text or parsed) with the ``record`` rule appended to every ruleset."""
    rulesets = yaml.safe_load(rulebook) if isinstance(rulebook, str) else rulebook
    for ruleset in rulesets:
        ruleset["match_multiple_rules"] = True
        ruleset["rules"].append(dict(RECORD_RULE))
    return yaml.safe_dump(rulesets, sort_keys=False)


def source_rulebook(**source_args):
    """A rulebook with one tfe.audit.audit_trail source and only the ``record`` rule."""
    return with_record_rule([{"name": "feed", "hosts": "localhost",
                              "sources": [{"name": "audit_trail", "tfe.audit.audit_trail": source_args}],
                              "rules": []}])


class Rulebook:
    """One ansible-rulebook process; its output goes to a file that the test reads as it grows."""

    def __init__(self, workdir, collections_path, rulebook, variables=None, env=None, verbosity=0, name="rulebook",
                 extra_args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / ("%s.yml" % name)
        self.path.write_text(rulebook)
        (self.workdir / "inventory.yml").write_text(INVENTORY)
        self.vars_file = self.workdir / ("%s-vars.yml" % name)
        self.vars_file.write_text(yaml.safe_dump(variables or {}))
        self.output = self.workdir / ("%s.out" % name)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "TFE_", "JAVA_TOOL"))}
        self.env.update(PATH="%s:%s" % (BIN, os.environ.get("PATH", "")), ANSIBLE_COLLECTIONS_PATH=str(collections_path),
                        PYTHONUNBUFFERED="1", HOME=str(home), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                        ANSIBLE_LOCAL_TEMP=str(self.workdir / "ansible-tmp"))
        self.env.update(env or {})
        self.verbosity = verbosity
        self.extra_args = list(extra_args)
        self.proc = None
        self.runs = 0

    def start(self):
        self.runs += 1
        with open(self.output, "a") as out:
            out.write("==== run %d ====\n" % self.runs)
        args = [str(BIN / "ansible-rulebook"), "-r", str(self.path), "-i", str(self.workdir / "inventory.yml"),
                "--vars", str(self.vars_file)]
        if self.verbosity:
            args.append("-" + "v" * self.verbosity)
        args.extend(self.extra_args)
        out = open(self.output, "a")  # pylint: disable=consider-using-with  # closed in stop()
        self.proc = subprocess.Popen(args, cwd=str(self.workdir), env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.proc.out = out
        return self

    @property
    def text(self):
        return self.output.read_text(errors="replace")

    def run_text(self, run=None):
        """The output of one run (default: the latest)."""
        parts = self.text.split("==== run ")
        return parts[run or self.runs] if len(parts) > (run or self.runs) else ""

    def records(self, run=None):
        """``[(time the rule fired, event)]`` of a run, in output order."""
        found, fired = [], None
        for line in self.run_text(run).splitlines():
            match = _BANNER.match(line)
            if match:
                fired = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            elif line.startswith("EDA-RECORD "):
                found.append((fired, json.loads(line[len("EDA-RECORD "):])))
        return found

    def events(self, run=None, name="tfe_audit"):
        return [event for dummy, event in self.records(run) if name in event]

    def wait_for(self, predicate, timeout, what="the expected events", run=None):
        """Wait until ``predicate(records of the run)`` is true; fails with the output's tail otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(run)
            if predicate(records):
                return records
            if self.proc.poll() is not None:
                pytest.fail("ansible-rulebook exited (rc %s) before %s:\n%s" % (self.proc.returncode, what, self.text[-4000:]))
            if time.monotonic() > deadline:
                pytest.fail("no %s within %ss; output tail:\n%s" % (what, timeout, self.text[-4000:]))
            time.sleep(0.1)

    def wait_count(self, count, timeout, name="tfe_audit"):
        return self.wait_for(lambda records: sum(1 for dummy, event in records if name in event) >= count, timeout,
                             "%d %s events" % (count, name))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send ``sig`` to ansible-rulebook (only the process this test started) and return its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail("ansible-rulebook did not stop within %ss of %s" % (timeout, sig.name))
        self.proc.out.close()
        rc, self.proc = self.proc.returncode, None
        time.sleep(0.2)  # run_playbook children (own sessions) finish writing
        return rc

    def kill_tree(self):
        """SIGKILL ansible-rulebook's process group (it was started in a session of its own)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.stop()


@pytest.fixture
def rulebook(collections_path, tmp_path):
    if not shutil.which("java"):
        pytest.fail("ansible-rulebook needs a Java 17 runtime: `make eda` installs openjdk-17-jre-headless")
    started = []

    def make(text, variables=None, env=None, verbosity=0, name="rulebook", extra_args=()):
        book = Rulebook(tmp_path / name, collections_path, text, variables, env, verbosity, name, extra_args)
        started.append(book)
        return book

    yield make
    for book in started:
        if book.proc is not None:
            book.kill_tree()


def plant(emu, event):
    """Append an audit event of any shape to the organization's trail, as a hostile server would list it."""
    from tfe_emulator import parse_iso8601  # pylint: disable=import-outside-toplevel

    with emu._lock:  # pylint: disable=protected-access
        emu._orgs[ORG].events.append((parse_iso8601(event["timestamp"]), event["id"], event))  # pylint: disable=protected-access


def assert_clean(text):
    """No traceback and no source error from ansible-rulebook or the source."""
    assert "Traceback" not in text, text[-4000:]
    assert "Source plugin failed" not in text, text[-4000:]


def write_token(path, token):
    path.write_text(token + "\n")
    path.chmod(0o600)
