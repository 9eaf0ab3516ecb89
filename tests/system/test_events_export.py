# -*- coding: utf-8 -*-
"""The audit trail export end to end, with real ``ansible-playbook`` runs, in both listing orders.

HCP Terraform's documents do not say in which order the audit trail is listed; the emulator plays
newest first (its default, what the public evidence shows) and oldest first, and every case here
runs in both. Each case checks that every event the emulator keeps is in ``dest`` exactly once,
in time order, and records a row for docs/RELIABILITY.md ("feed order"). Planted files record rows
in the "hostile" suite: nothing the export did not write may ever be cut.
"""

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import BIN
from plays import localhost_play
from reliability import Stopwatch, record
from test_crash_and_load import kill_tree

ORDERS = ["newest", "oldest"]

EXPORT_TASKS = """
    - name: Export the audit trail
      tfe.audit.tfe_audit_trail_events:
        hostname: {url}
        token: "{{{{ lookup('ansible.builtin.env', 'AUDIT_TOKEN') }}}}"
        dest: "{{{{ dest }}}}"
        cursor_file: "{{{{ cursor }}}}"
        page_size: {page_size}
      register: exported

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{{{ exported | to_json }}}}"
        dest: "{{{{ playbook_dir }}}}/result.json"
        mode: "0600"
"""


@pytest.fixture(params=ORDERS)
def order(request, emulator):
    emulator.set_listing(order=request.param)
    return request.param


@pytest.fixture
def secret(emulator):
    return emulator.regenerate_audit_trail_token("acme")["token"]


class Export:
    """Runs the export playbook in one work directory, the way cron would, and reads what it wrote."""

    def __init__(self, emulator, secret, tmp_path, run_playbook, page_size=1000):
        self.emulator, self.secret, self.run_playbook = emulator, secret, run_playbook
        self.dest, self.cursor = tmp_path / "audit.ndjson", tmp_path / "audit.cursor.json"
        self.playbook = localhost_play("Export the audit trail",
                                       EXPORT_TASKS.format(url=emulator.url, page_size=page_size))

    def args(self):
        return ["-e", "dest=%s" % self.dest, "-e", "cursor=%s" % self.cursor]

    def __call__(self, *args, check=True):
        run = self.run_playbook(self.playbook, *(self.args() + list(args)), env={"AUDIT_TOKEN": self.secret})
        if check:
            assert run.rc == 0, run
            return json.loads((run.workdir / "result.json").read_text())
        return run

    def lines(self):
        if not self.dest.exists():
            return []
        return [json.loads(line) for line in self.dest.read_bytes().splitlines()]

    def verdict(self):
        """duplicates, missing, whether the file is in time order; all against the emulator's trail."""
        lines = self.lines()
        ids = [event["id"] for event in lines]
        kept = set(event[1] for event in self.emulator._orgs["acme"].events)  # pylint: disable=protected-access
        times = [event["timestamp"] for event in lines]
        return dict(lines=len(lines), duplicates=len(ids) - len(set(ids)), missing=len(kept - set(ids)),
                    in_order=times == sorted(times))


def check_exact(export, case, order, seconds, ordered=True):
    """Every event once; in time order too unless events were listed late (they then follow newer ones)."""
    verdict = export.verdict()
    wrong = verdict["duplicates"] or verdict["missing"] or (ordered and not verdict["in_order"])
    record("feed order", case, order=order + " first", outcome="WRONG" if wrong else "exact", seconds=seconds,
           **verdict)
    assert not wrong, verdict
    return verdict


def test_2506_events_then_10_new_ones(emulator, secret, tmp_path, run_playbook, order):
    emulator.seed_events("acme", 2505)
    export = Export(emulator, secret, tmp_path, run_playbook)
    with Stopwatch() as watch:
        first = export()
    assert first["count"] == 2506 and first["pages"] == 3 and first["listing_order"] == order + "_first"
    assert check_exact(export, "2506 events, page_size 1000", order, watch.seconds)["lines"] == 2506
    emulator.seed_events("acme", 10, start=(datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat(), step_seconds=0.001)
    with Stopwatch() as watch:
        again = export()
    assert again["count"] == 10
    assert check_exact(export, "a re-run after 10 new events", order, watch.seconds)["lines"] == 2516


def test_events_listed_late_are_exported_once(emulator, secret, tmp_path, run_playbook, order):
    """Each event is listed up to 3 s after its own time (the emulator's late visibility): runs a few seconds apart,
    with the default lookback, export each event once; the first run cannot have seen the newest ones."""
    emulator.set_listing(visibility_delay_ms=3000)
    emulator.seed_events("acme", 600, step_seconds=0.01)
    export = Export(emulator, secret, tmp_path, run_playbook, page_size=100)
    with Stopwatch() as watch:
        counts = [export()["count"]]
        emulator.seed_events("acme", 300, step_seconds=0.01)
        counts.append(export()["count"])
        time.sleep(3.2)
        counts.append(export()["count"])
    assert counts[0] < 601 and sum(counts) == 901, counts
    verdict = check_exact(export, "every event listed up to 3 s late; three runs", order, watch.seconds, ordered=False)
    assert not verdict["in_order"]  # some came after newer ones: the reading was played


@pytest.mark.parametrize("inserted", [20, 1500])
def test_events_arriving_while_the_run_pages(emulator, secret, tmp_path, run_playbook, order, inserted):
    emulator.seed_events("acme", 2505)
    emulator.add_fault(method="GET", path="audit-trail", status=None, skip=1, count=1, insert_events=inserted)
    export = Export(emulator, secret, tmp_path, run_playbook)
    with Stopwatch() as watch:
        first, second = export(), export()
    assert first["count"] + second["count"] == 2506 + inserted
    check_exact(export, "%d events arrive between page 1 and page 2" % inserted, order, watch.seconds)


def test_events_leaving_retention_while_the_run_pages(emulator, secret, tmp_path, run_playbook, order):
    emulator.seed_events("acme", 600)
    emulator.add_fault(method="GET", path="audit-trail", status=None, skip=1, count=20, expire_events=9)
    export = Export(emulator, secret, tmp_path, run_playbook, page_size=50)
    with Stopwatch() as watch:
        export()
    check_exact(export, "9 oldest events expire before each page request", order, watch.seconds)


# -- a run killed with SIGKILL, at two points --------------------------------------------------------

# Loaded through PYTHONPATH by the module's Python: holds the run at one point, announced in a marker file.
HOLD_HOOK = '''
import os
import time

MODE, DEST, MARKER = (os.environ.get(name, "") for name in ("TFE_AUDIT_HOLD", "TFE_AUDIT_HOLD_DEST",
                                                             "TFE_AUDIT_HOLD_MARKER"))
REAL_WRITE = os.write


def hold():
    with open(MARKER + ".part", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(MARKER + ".part", MARKER)
    time.sleep(600)


def write_part(fd, data):
    try:
        target = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        target = ""
    if target == DEST and len(data) > 1000:
        REAL_WRITE(fd, bytes(data)[:len(data) // 2 + 7])  # lines and then part of one
        os.fsync(fd)
        hold()
    return REAL_WRITE(fd, data)


if MODE == "appending" and DEST and MARKER:
    os.write = write_part
'''


@pytest.mark.parametrize("point", ["paging", "appending"])
def test_a_killed_run_loses_and_repeats_nothing(emulator, secret, tmp_path, run_playbook, collections_path, order,
                                                point):
    emulator.seed_events("acme", 3000)
    export = Export(emulator, secret, tmp_path, run_playbook)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOLD_HOOK)
    marker = tmp_path / "held"
    work = tmp_path / "killed"
    (work / "home").mkdir(parents=True)
    (work / "playbook.yml").write_text(export.playbook)
    if point == "paging":
        emulator.add_fault(method="GET", path="audit-trail", status=None, skip=1, count=1, delay=600)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "TFE_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections_path), HOME=str(work / "home"), AUDIT_TOKEN=secret,
               ANSIBLE_LOCAL_TEMP=str(work / "tmp"), PYTHONPATH=str(hooks), TFE_AUDIT_HOLD=point,
               TFE_AUDIT_HOLD_DEST=str(export.dest), TFE_AUDIT_HOLD_MARKER=str(marker))
    proc = subprocess.Popen([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "playbook.yml"]
                            + export.args(), cwd=str(work), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120

    def held():
        if point == "paging":  # page 1 answered; page 2 is held by the fault's delay
            return any(r["path"].endswith("/audit-trail") for r in emulator.requests)
        return marker.exists()

    while not held() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert held(), proc.communicate()[0]
    time.sleep(1.0)
    killed = kill_tree(proc, work)
    emulator.clear_faults()
    written_before = export.dest.read_bytes().count(b"\n") if export.dest.exists() else 0  # complete lines
    if point == "paging":
        assert written_before == 0  # nothing is written before the whole trail is read
    else:
        assert export.dest.read_bytes()[-1:] != b"\n"  # killed in the middle of a line
    with Stopwatch() as watch:
        result = export()
    assert result["recovered"] == (0 if point == "paging" else written_before)
    assert result["recovered"] + result["count"] == 3001 and killed >= 1
    check_exact(export, "SIGKILL while %s, then a re-run" % point, order, watch.seconds)


# -- the organization token ------------------------------------------------------------------------


def test_an_organization_token_manages_and_reads_the_audit_trail(emulator, tmp_path, run_playbook):
    org_token = emulator.create_organization_token("acme")["token"]
    tasks = """
    - name: Create the audit trail token with the organization token
      tfe.audit.tfe_audit_trail_token:
        organization: acme
      register: created

    - name: Read it back
      tfe.audit.tfe_audit_trail_token_info:
        organization: acme
      register: info

    - name: Read the audit trail with the organization token
      tfe.audit.tfe_audit_trail_events:
        max_events: 5
      register: events

    - name: Check
      ansible.builtin.assert:
        that:
          - created is changed
          - info.exists
          - info.id == created.id
          # the create, then the info module's read where HCP Terraform records token reads (as show)
          - (events.events | map(attribute='resource.action') | list) in [['create', 'show'], ['create']]
          - events.events | map(attribute='resource.type') | unique == ['authentication_token']
"""
    playbook = localhost_play("An organization token manages and reads the audit trail", tasks, url=emulator.url,
                              token="{{ lookup('ansible.builtin.env', 'ORG_TOKEN') }}")
    run = run_playbook(playbook, env={"ORG_TOKEN": org_token})
    assert run.rc == 0, run
    assert emulator.audit_trail_token("acme") is not None
    assert org_token not in run.stdout + run.stderr


# -- gaps ------------------------------------------------------------------------------------------


def test_a_cursor_older_than_14_days_warns_in_words(emulator, secret, tmp_path, run_playbook, order):
    emulator.seed_events("acme", 5)
    export = Export(emulator, secret, tmp_path, run_playbook)
    assert export()["gap"] is False
    cursor = json.loads(export.cursor.read_text())
    old = (datetime.now(timezone.utc) - timedelta(days=15)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    cursor.update(newest=old, horizon=old, seen=[])
    export.dest.write_bytes(b"")
    export.cursor.write_text(json.dumps(cursor))
    run = export(check=False)
    assert run.rc == 0, run
    result = json.loads((run.workdir / "result.json").read_text())
    assert result["gap"] is True and result["gap_start"] == old
    warning = " ".join(run.stderr.split())
    assert "the previous export ended at %s" % old in warning and "run the export more often" in warning


# -- planted files: never cut what the export did not write ---------------------------------------------


VICTIM = b"2026-11-29 12:00:00 app started\n2026-11-29 12:00:01 a log line that is not ours\n"


def planted(case, export, victim, run_check, run_real):
    """Both runs must fail before writing, naming the files; the victim keeps every byte."""
    outcomes = []
    for run in (run_check, run_real):
        assert run.rc != 0, run
        outcomes.append(" ".join(run.stdout.split()))
    truncated = int(victim.read_bytes() != VICTIM)
    record("hostile", case, outcome="refused before writing" if not truncated else "CUT", code_execution=0,
           truncated=truncated, token_off_host=0)
    assert not truncated
    return outcomes


def exported_and_a_victim(emulator, secret, tmp_path, run_playbook):
    """An export that has run once (dest and cursor exist), and another program's log beside it."""
    emulator.seed_events("acme", 5)
    export = Export(emulator, secret, tmp_path, run_playbook)
    export()
    victim = tmp_path / "app.log"
    victim.write_bytes(VICTIM)
    return export, victim


def test_dest_pointed_at_a_foreign_file_while_a_cursor_exists(emulator, secret, tmp_path, run_playbook):
    export, victim = exported_and_a_victim(emulator, secret, tmp_path, run_playbook)
    export.dest = victim  # a typo, or a reused cursor
    check, real = export("--check", check=False), export(check=False)
    for message in planted("dest is another file while a cursor exists (check mode and real)", export, victim,
                           check, real):
        assert str(victim) in message and "audit.ndjson" in message


def test_dest_swapped_for_a_symlink(emulator, secret, tmp_path, run_playbook):
    export, victim = exported_and_a_victim(emulator, secret, tmp_path, run_playbook)
    export.dest.unlink()
    export.dest.symlink_to(victim)
    for message in planted("dest swapped for a symlink to another file", export, victim,
                           export("--check", check=False), export(check=False)):
        assert "symbolic link" in message


def test_foreign_lines_appended_to_dest(emulator, secret, tmp_path, run_playbook):
    emulator.seed_events("acme", 5)
    export = Export(emulator, secret, tmp_path, run_playbook)
    export()
    with export.dest.open("ab") as handle:
        handle.write(VICTIM)
    victim_copy = export.dest.read_bytes()
    emulator.seed_events("acme", 3, start=(datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat(), step_seconds=0.001)
    check, real = export("--check", check=False), export(check=False)
    assert check.rc != 0 and real.rc != 0
    truncated = int(export.dest.read_bytes() != victim_copy)
    record("hostile", "another program appended to dest", outcome="refused before writing", code_execution=0,
           truncated=truncated, token_off_host=0)
    assert not truncated and "another program changed it" in " ".join(real.stdout.split())


def test_a_cursor_from_the_future_is_an_error(emulator, secret, tmp_path, run_playbook):
    emulator.seed_events("acme", 5)
    export = Export(emulator, secret, tmp_path, run_playbook)
    export()
    cursor = json.loads(export.cursor.read_text())
    cursor["newest"] = "2099-01-01T00:00:00.000Z"
    export.cursor.write_text(json.dumps(cursor))
    run = export(check=False)
    record("hostile", "a cursor in the future", outcome="error" if run.rc else "silently nothing new",
           code_execution=0, truncated=0, token_off_host=0)
    assert run.rc != 0 and "later than now" in " ".join(run.stdout.split())


def test_dest_and_cursor_are_created_0600_whatever_the_umask(emulator, secret, tmp_path, run_playbook):
    emulator.seed_events("acme", 5)
    export = Export(emulator, secret, tmp_path, run_playbook)
    old = os.umask(0)
    try:
        export()
    finally:
        os.umask(old)
    assert [oct(os.stat(str(path)).st_mode & 0o777) for path in (export.dest, export.cursor)] == ["0o600"] * 2
    assert Path(str(export.dest)).read_bytes().count(b"\n") == 6
