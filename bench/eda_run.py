# -*- coding: utf-8 -*-
"""One ansible-rulebook process (.venv-eda) whose rule prints ``FIRED <value>``, for the eda section."""

import datetime
import json
import os
import shutil
import subprocess
import time

from harness import ROOT

INTERVAL = 2
RULEBOOK = """
- name: bench
  hosts: localhost
  sources:
    - name: source
      {source}
  rules:
    - name: fired
      condition: {condition}
      action:
        debug:
          msg: "FIRED {{{{ {field} }}}}"
"""
INVENTORY = "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"


def rulebook_bin():
    """ansible-rulebook of .venv-eda (`make eda` creates it), with ansible-galaxy beside it; None when missing."""
    path = ROOT / ".venv-eda" / "bin" / "ansible-rulebook"
    return path if path.exists() else None


def missing():
    """Why the eda section cannot run here, or None."""
    if rulebook_bin() is None or not shutil.which("java"):
        return "the eda section needs ansible-rulebook in .venv-eda and a Java 17 runtime: run `make eda` once " \
               "(it sets up both), or leave it out of --only"
    return None


def audit_source(ws, emu, org, **extra):
    """The source's rulebook line for an organization of the emulator, reading its own token file."""
    token = ws.path("eda", "%s.token" % org)
    token.parent.mkdir(exist_ok=True)
    token.write_text(emu.regenerate_audit_trail_token(org)["token"])
    args = dict(hostname=emu.url, token_file=str(token), interval=INTERVAL)
    args.update(extra)
    return "tfe.audit.audit_trail: %s" % json.dumps(args)


class EdaRun:
    """One ansible-rulebook process whose rule prints ``FIRED <value>``; fired() reads the debug banners' times."""

    def __init__(self, ws, name, source, condition, field):
        self.dir = ws.path("eda", name)
        self.dir.mkdir(parents=True)
        (self.dir / "rulebook.yml").write_text(RULEBOOK.format(source=source, condition=condition, field=field))
        (self.dir / "inventory.yml").write_text(INVENTORY)
        self.out = self.dir / "out.txt"
        binary = rulebook_bin()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "TFE_"))}
        env.update(PATH="%s:%s" % (binary.parent, env.get("PATH", "")), PYTHONUNBUFFERED="1", HOME=str(self.dir),
                   ANSIBLE_COLLECTIONS_PATH=str(ws.path("collections")))
        self.started = time.time()
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen([str(binary), "-r", "rulebook.yml", "-i", "inventory.yml"], cwd=str(self.dir),
                                         env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def fired(self):
        found, when = [], None
        for line in self.out.read_text(errors="replace").splitlines():
            if line.startswith("** ") and line.rstrip("*").endswith("[debug] "):
                when = datetime.datetime.strptime(line[3:29], "%Y-%m-%d %H:%M:%S.%f").timestamp()
            elif line.startswith("FIRED "):
                found.append((when, line[6:]))
        return found

    def wait(self, count, timeout):
        deadline = time.monotonic() + timeout
        while True:
            fired = self.fired()
            if len(fired) >= count:
                return fired
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ansible-rulebook: %d of %d rules fired\n%s" % (
                    len(fired), count, self.out.read_text(errors="replace")[-3000:]))
            time.sleep(0.05)

    def span(self, count, timeout):
        """Wait for count firings; {events, first, last}: the first and last firing, seconds after the start."""
        fired = self.wait(count, timeout)
        return {"events": len(fired), "first": fired[0][0] - self.started, "last": fired[-1][0] - self.started}

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(60)
