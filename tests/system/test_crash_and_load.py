# -*- coding: utf-8 -*-
"""Crash safety and concurrency/load of the role tfe.audit.audit_trail_token (Ansible Vault store).

With real ``ansible-playbook`` runs against the in-process emulator:

* crash safety: a regenerate-and-store run is held at one point (the POST in flight, the POST processed
  but not answered, the temp file half written, the temp file complete before the rename, the rename done
  before the directory fsync) and its whole process tree is killed with SIGKILL. The vault file must then
  be the old or the new one, decrypt, no file may hold a secret in clear, and a re-run must converge.
* concurrency and load: 8 runs at once on one organization with no token yet, and a fleet of
  organizations (one inventory host each, forks 10) under a rate limit of 4 requests/s (429s on purpose).
  ``TFE_AUDIT_RELIABILITY_FULL=1`` runs the 100-organization fleet, otherwise 20.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ansible.parsing.vault import VaultLib, VaultSecret

from conftest import BIN
from reliability import Stopwatch, record
from vaults import write_password_file

PASSWORD = "crash and load vault password"
VAR = "vault_tfe_audit_trail_token"
TOKEN_PATH = "/authentication-token"
FULL = os.environ.get("TFE_AUDIT_RELIABILITY_FULL") == "1"

PLAYBOOK = """
- hosts: all
  gather_facts: false
  roles:
    - role: tfe.audit.audit_trail_token
      audit_trail_token_organization: "{{{{ inventory_hostname }}}}"
      audit_trail_token_hostname: {url}
      audit_trail_token_vault_file: "{{{{ playbook_dir }}}}/vaults/{{{{ inventory_hostname }}}}.vault.yml"
"""

# Loaded through PYTHONPATH by ansible-playbook (and inherited by its forked workers): holds the
# store step of the action plugin at one point of the vault file write, announcing it in a marker file.
CRASH_HOOK = '''
import os
import time

MODE = os.environ.get("TFE_AUDIT_CRASH_HOLD")
TARGET = os.environ.get("TFE_AUDIT_CRASH_TARGET", "")
MARKER = os.environ.get("TFE_AUDIT_CRASH_MARKER", "")
REAL_REPLACE, REAL_WRITE = os.replace, os.write


def hold():
    with open(MARKER + ".part", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(MARKER + ".part", MARKER)
    time.sleep(600)


def replace_before(src, dst, *args, **kwargs):
    if os.fspath(dst) == TARGET:
        hold()
    return REAL_REPLACE(src, dst, *args, **kwargs)


def replace_after(src, dst, *args, **kwargs):
    result = REAL_REPLACE(src, dst, *args, **kwargs)
    if os.fspath(dst) == TARGET:
        hold()
    return result


def write_half(fd, data):
    try:
        name = os.path.basename(os.readlink("/proc/self/fd/%d" % fd))
    except OSError:
        name = ""
    if name.startswith("." + os.path.basename(TARGET) + ".") and name.endswith(".tmp") and len(data) > 1:
        with open(TARGET, "rb") as handle:
            current = handle.read()
        if bytes(data) != current:  # the new file, not the backup copy of the old one
            REAL_WRITE(fd, bytes(data)[:len(data) // 2])
            os.fsync(fd)
            hold()
    return REAL_WRITE(fd, data)


if MODE and TARGET and MARKER:
    if MODE == "before-rename":
        os.replace = replace_before
    elif MODE == "after-rename":
        os.replace = replace_after
    elif MODE == "mid-write":
        os.write = write_half
'''


class _Loader(yaml.SafeLoader):
    pass


# The secret is stored as !unsafe (never rendered as a template by a play that reads it).
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def decrypt(path):
    vault = VaultLib([("default", VaultSecret(PASSWORD.encode()))])
    return yaml.load(vault.decrypt(Path(path).read_bytes()), Loader=_Loader)


def live(emulator, org):
    token = emulator.audit_trail_token(org)
    return token and token["token"]


def recap(stdout):
    """{host: {"ok": n, "changed": n, ...}} from the PLAY RECAP."""
    hosts, seen = {}, False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            seen = True
            continue
        if seen and " : " in line and "ok=" in line:
            host, counts = line.split(" : ", 1)
            hosts[host.strip()] = dict((key, int(value)) for key, value in
                                       (item.split("=") for item in counts.split()))
    return hosts


# -- processes -------------------------------------------------------------------------------------

def _children():
    kids = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def descendants(root):
    kids, found, queue = _children(), [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(kids.get(pid, []))
    return found


def marked(marker):
    """Live processes whose environment names ``marker`` (a run's private dir: every process of the run has it)."""
    needle, pids = str(marker).encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def kill_tree(proc, private):
    """SIGKILL the run's whole tree (descendants by parent pid, plus anything carrying its private dir),
    by PID; returns how many processes were killed."""
    pids = set(descendants(proc.pid)) | set(marked(private))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while marked(private) and time.monotonic() < deadline:
        for pid in marked(private):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    assert not marked(private), "a process of the killed run survived"
    return len(pids)


class Launcher:
    """Starts ansible-playbook runs in their own session, each with its own temp dirs and HOME;
    kills whatever is still running at teardown."""

    def __init__(self, collections_path, admin_token, password_file, base):
        self.collections_path, self.admin_token, self.password_file, self.base = (
            collections_path, admin_token, password_file, base)
        self.started = []

    def start(self, workdir, name, args=(), env=None):
        private = self.base / name
        (private / "home").mkdir(parents=True, exist_ok=True)
        full_env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "TFE_"))}
        full_env.update(ANSIBLE_COLLECTIONS_PATH=str(self.collections_path),
                        ANSIBLE_LOCAL_TEMP=str(private / "local-tmp"), ANSIBLE_REMOTE_TEMP=str(private / "remote-tmp"),
                        ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", HOME=str(private / "home"),
                        TFE_TOKEN=self.admin_token, TFE_AUDIT_RUN_MARKER=str(private))
        full_env.update(env or {})
        proc = subprocess.Popen(
            [str(BIN / "ansible-playbook"), "-i", "inventory.yml", "playbook.yml",
             "--vault-password-file", str(self.password_file)] + list(args),
            cwd=str(workdir), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.started.append((proc, private))
        return proc, private

    def run(self, workdir, name, args=(), env=None, timeout=600):
        proc, dummy = self.start(workdir, name, args, env)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err

    def cleanup(self):
        for proc, private in self.started:
            if proc.poll() is None or marked(private):
                kill_tree(proc, private)


@pytest.fixture
def vault_password_file(tmp_path):
    return write_password_file(tmp_path, PASSWORD)


@pytest.fixture
def launcher(collections_path, admin_token, vault_password_file, tmp_path):
    runs = Launcher(collections_path, admin_token, vault_password_file, tmp_path / "runs")
    yield runs
    runs.cleanup()


@pytest.fixture
def issued(emulator):
    """Every secret the emulator issues during the test."""
    return emulator.issued_secrets


def workspace(tmp_path, emulator, orgs):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "playbook.yml").write_text(PLAYBOOK.format(url=emulator.url))
    host_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": dict((org, dict(host_vars)) for org in orgs)}}
    (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return workdir


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out after %s s waiting for %s" % (timeout, what))
        time.sleep(0.05)


# -- crash safety ----------------------------------------------------------------------------------

CRASH_POINTS = {
    # case: (where the run is held, the file expected after the kill, whether the new secret was kept)
    # The new secret is kept (encrypted, in .<name>.pending) before the vault file is written; a re-run
    # verifies it and stores it instead of regenerating.
    "POST in flight": ("emulator delays the POST before processing it", "old", False),
    "POST processed, answer not received": ("emulator processed the POST and holds the answer", "old", False),
    "temp file half written": ("store step, mid os.write of the first temp file (the pending secret)", "old", False),
    "temp file complete, before rename": ("store step, at os.replace of the vault file", "old", True),
    "renamed, before directory fsync": ("store step, right after os.replace", "new", True),
}


@pytest.mark.parametrize("case", list(CRASH_POINTS))
def test_crash_safety_kill_during_regenerate_and_store(emulator, launcher, issued, tmp_path, monkeypatch, case):
    org = "acme"
    workdir = workspace(tmp_path, emulator, [org])
    path = workdir / "vaults" / ("%s.vault.yml" % org)
    rc, out, err = launcher.run(workdir, "first")
    assert rc == 0, (out[-3000:], err[-3000:])
    old_bytes, old_secret = path.read_bytes(), live(emulator, org)
    assert decrypt(path) == {VAR: old_secret}
    emulator.clear_requests()

    held, release = threading.Event(), threading.Event()
    env = {}
    marker = tmp_path / "held.marker"
    if case == "POST in flight":
        emulator.add_fault(method="POST", path=TOKEN_PATH, status=None, delay=4.0)
        take = emulator._take_fault

        def spying_take(method, request_path):
            fault = take(method, request_path)
            if fault is not None and method == "POST":
                held.set()
            return fault

        monkeypatch.setattr(emulator, "_take_fault", spying_take)
    elif case == "POST processed, answer not received":
        dispatch = emulator.dispatch

        def holding_dispatch(method, request_path, query, headers, body):
            resp = dispatch(method, request_path, query, headers, body)
            if method == "POST" and request_path.endswith(TOKEN_PATH) and resp.status == 201 and not held.is_set():
                held.set()
                release.wait(60)
            return resp

        monkeypatch.setattr(emulator, "dispatch", holding_dispatch)
    else:
        hook_dir = tmp_path / "hook"
        hook_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(CRASH_HOOK)
        mode = {"temp file half written": "mid-write", "temp file complete, before rename": "before-rename",
                "renamed, before directory fsync": "after-rename"}[case]
        env = {"PYTHONPATH": str(hook_dir), "TFE_AUDIT_CRASH_HOLD": mode, "TFE_AUDIT_CRASH_TARGET": str(path),
               "TFE_AUDIT_CRASH_MARKER": str(marker)}

    proc, private = launcher.start(workdir, "killed", args=["-e", "audit_trail_token_force_regenerate=true"], env=env)
    try:
        wait_for(lambda: held.is_set() or marker.exists() or proc.poll() is not None, 180, "the run to reach: " + case)
        assert proc.poll() is None, "the run ended before the crash point: %s" % (proc.communicate()[0][-3000:],)
        killed = kill_tree(proc, private)
    finally:
        release.set()
    assert killed >= 2, "ansible-playbook and at least its worker"
    if case == "POST in flight":
        # The emulator answers the dead client after its delay; it processes the POST all the same.
        wait_for(lambda: any(r["method"] == "POST" for r in emulator.requests), 30, "the delayed POST")
    assert len(issued) == 2, "the killed run regenerated exactly once: %s" % len(issued)
    new_secret = live(emulator, org)
    assert new_secret == issued[-1] != old_secret

    # The file is the old one (byte for byte) or the new one (whole, decrypting to the new live secret).
    outcome, kept = CRASH_POINTS[case][1:]
    if outcome == "old":
        assert path.read_bytes() == old_bytes
        assert decrypt(path) == {VAR: old_secret}
    else:
        assert path.read_bytes() != old_bytes
        assert decrypt(path) == {VAR: new_secret}
        assert Path(str(path) + ".bak").read_bytes() == old_bytes
    leftovers = sorted(path.parent.glob(".%s.*.tmp" % path.name))
    if case in ("temp file half written", "temp file complete, before rename"):
        assert leftovers, "the run was held with its temp file written"
    for leftover in leftovers:
        data = leftover.read_bytes()
        assert data.strip(b"\0") == b"" or data.startswith(b"$ANSIBLE_VAULT;"), \
            "a temp file is empty, reserved space (zeros) or holds ciphertext only"
    pending = path.parent / (".%s.pending" % path.name)
    assert pending.exists() == kept, "the new secret is kept for the re-run: %s" % kept
    for candidate in tmp_path.rglob("*"):
        if candidate.is_file() and not candidate.is_symlink():
            data = candidate.read_bytes()
            assert not any(secret.encode() in data for secret in issued), "a secret in clear in %s" % candidate

    # A re-run (no force) converges: the stored secret is the live token.
    with Stopwatch() as watch:
        rc, out, err = launcher.run(workdir, "rerun")
    assert rc == 0, (out[-3000:], err[-3000:])
    stored = decrypt(path)[VAR]
    assert stored == live(emulator, org)
    regenerated = stored != new_secret
    assert regenerated == (not kept), "a lost secret is replaced, a kept one is stored"
    assert recap(out)[org]["changed"] == (1 if regenerated or outcome == "old" else 0)
    assert not list(path.parent.glob(".%s.*.tmp" % path.name)), "the re-run removed the leftover temp file"
    assert not pending.exists(), "the re-run used up the pending secret"
    record("crash safety", "kill (SIGKILL, whole tree): " + case, outcome="%s file kept, re-run converged%s"
           % (outcome, " (regenerated)" if regenerated else " (kept secret stored)" if outcome == "old"
              else " (no change)"), seconds=watch.seconds,
           held_at=CRASH_POINTS[case][0], killed_processes=killed, leftover_temp_files=len(leftovers))


# -- concurrency and load --------------------------------------------------------------------------

def test_concurrency_8_runs_from_no_token(emulator, launcher, tmp_path):
    org = "acme"
    workdir = workspace(tmp_path, emulator, [org])
    assert emulator.audit_trail_token(org) is None
    with Stopwatch() as watch:
        procs = [launcher.start(workdir, "run%d" % number)[0] for number in range(8)]
        outputs = [proc.communicate(timeout=600) for proc in procs]
    results = [(proc.returncode, out, err) for proc, (out, err) in zip(procs, outputs)]

    for rc, out, err in results:
        assert rc == 0, (out[-3000:], err[-3000:])
    path = workdir / "vaults" / ("%s.vault.yml" % org)
    assert decrypt(path) == {VAR: live(emulator, org)}
    posts = [r for r in emulator.requests if r["method"] == "POST" and r["status"] == 201]
    assert len(posts) == 1, "the lock serialises the runs: one creates, the others find it live"
    assert sorted(recap(out)[org]["changed"] for dummy, out, dummy2 in results) == [0] * 7 + [1]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, ".%s.lock" % path.name])
    throttled = sum(1 for r in emulator.requests if r["status"] == 429)
    record("concurrency", "8 runs at once, one organization, no token yet", outcome="consistent (stored == live)",
           seconds=watch.seconds, attempts=len(emulator.requests), posts=len(posts), throttled_429=throttled)


def test_load_fleet_under_rate_limit(emulator, launcher, tmp_path):
    """A fleet sharing one token's rate limit, set low enough that the forks are told 429 again and again."""
    count = 100 if FULL else 20
    per_second = 4
    orgs = ["fleet-%03d" % number for number in range(count)]
    for org in orgs:
        emulator.add_organization(org, entitlement=True)
    emulator.set_rate_limit(per_second)
    workdir = workspace(tmp_path, emulator, orgs)
    emulator.clear_requests()

    with Stopwatch() as watch:
        rc, out, err = launcher.run(workdir, "fleet", args=["--forks", "10"], timeout=1200)

    assert rc == 0, (out[-3000:], err[-3000:])
    hosts = recap(out)
    assert sorted(hosts) == orgs
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 and counts["changed"] == 1
               for counts in hosts.values()), hosts
    for org in orgs:
        assert decrypt(workdir / "vaults" / ("%s.vault.yml" % org)) == {VAR: live(emulator, org)}, org
    throttled = sum(1 for r in emulator.requests if r["status"] == 429)
    assert throttled > 0, "the limit was meant to bite; this run proves nothing about 429 handling"
    posts = [r for r in emulator.requests if r["method"] == "POST" and r["status"] == 201]
    assert len(posts) == count, "a throttled create is retried, never doubled: one token per organization"
    record("concurrency", "fleet of %d organizations, forks 10, rate limit %d/s" % (count, per_second),
           outcome="all converged, rc 0, failed=0", seconds=watch.seconds, attempts=len(emulator.requests),
           posts=len(posts), throttled_429=throttled)
