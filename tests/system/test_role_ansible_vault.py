# -*- coding: utf-8 -*-
"""The role tfe.audit.audit_trail_token with its Ansible Vault store, end to end.

Real ansible-playbook runs of the role against the in-process emulator; the vault file is decrypted
here with ansible.parsing.vault.VaultLib. One test per behaviour of the role's issue that applies to
this store (1-11).
"""

import hashlib
import os
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from ansible.parsing.vault import VaultLib, VaultSecret

from conftest import BIN, files_under
from vaults import write_password_file

PASSWORD = "correct horse battery staple"
VAULT_REL = Path("group_vars") / "all" / "tfe_audit_trail_token.vault.yml"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  roles:
    - role: tfe.audit.audit_trail_token
      audit_trail_token_organization: {org}
      audit_trail_token_hostname: {url}
{role_vars}
  tasks:
    - name: The fact holds the secret (its hash, for the test)
      ansible.builtin.copy:
        dest: "{{{{ playbook_dir }}}}/fact.sha256"
        content: "{{{{ lookup('ansible.builtin.vars', audit_trail_token_vault_var | default('vault_tfe_audit_trail_token'),
                    default='') | hash('sha256') }}}}"
        mode: "0600"
      changed_when: false
{extra_tasks}
"""


class Unsafe(str):
    """A ``!unsafe`` scalar of a vault file: equal to its text, and tells that it was tagged."""


class _TagLoader(yaml.SafeLoader):
    pass


_TagLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))
_TagLoader.add_multi_constructor("!", lambda loader, suffix, node: (node.tag, loader.construct_scalar(node)))


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def decrypt(path, password=PASSWORD):
    """The decrypted mapping of a vault file (``!unsafe`` as :class:`Unsafe`, other local tags as (tag, value))."""
    vault = VaultLib([("default", VaultSecret(password.encode()))])
    return yaml.load(vault.decrypt(Path(path).read_bytes()), Loader=_TagLoader)


def stored_secret(path, var="vault_tfe_audit_trail_token"):
    """The secret in the vault file, which must be tagged ``!unsafe`` (never rendered as a template)."""
    value = decrypt(path)[var]
    assert isinstance(value, Unsafe), "%s is stored as !unsafe" % var
    return value


def encrypt(mapping_text, password=PASSWORD):
    vault = VaultLib([("default", VaultSecret(password.encode()))])
    return vault.encrypt(mapping_text, secret=VaultSecret(password.encode()))


def changed_count(run):
    recap = [line for line in run.stdout.splitlines() if line.startswith("localhost") and "changed=" in line]
    assert recap, run
    return int(recap[-1].split("changed=")[1].split()[0])


def mutations(emulator):
    return [(r["method"], r["path"]) for r in emulator.requests if r["method"] not in ("GET", "HEAD")]


@pytest.fixture
def password_file(tmp_path):
    return write_password_file(tmp_path, PASSWORD)


@pytest.fixture
def issued(emulator):
    """Every secret the emulator issues during the test (for the leak searches)."""
    return emulator.issued_secrets


@pytest.fixture
def role(emulator, admin_token, run_playbook, password_file):
    """Run the role: role(role_vars=dict, args=[...], env={...}, org=..., extra_tasks=...)."""

    def run(role_vars=None, args=None, env=None, org="acme", extra_tasks="", vault_args=None, name="playbook.yml"):
        lines = "".join("      %s: %s\n" % (key, _yaml_scalar(value)) for key, value in (role_vars or {}).items())
        playbook = PLAYBOOK.format(org=org, url=emulator.url, role_vars=lines.rstrip("\n"), extra_tasks=extra_tasks)
        full_env = {"TFE_TOKEN": admin_token}
        full_env.update(env or {})
        vault = ["--vault-password-file", str(password_file)] if vault_args is None else vault_args
        return run_playbook(playbook, *(vault + list(args or [])), env=full_env, name=name)

    return run


def _yaml_scalar(value):
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def live(emulator, org="acme"):
    token = emulator.audit_trail_token(org)
    return token and token["token"]


# -- first run -------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["password-file", "vault-id", "env"])
def test_first_run_creates_the_token_and_stores_its_secret(emulator, role, password_file, variant):
    vault_args, env, role_vars = None, None, None
    if variant == "vault-id":
        vault_args = ["--vault-id", "prod@%s" % password_file]
        role_vars = {"audit_trail_token_vault_id": "prod"}
    elif variant == "env":
        vault_args, env = [], {"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}

    run = role(role_vars=role_vars, vault_args=vault_args, env=env)

    assert run.rc == 0, run
    assert changed_count(run) == 1
    path = run.workdir / VAULT_REL
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert decrypt(path) == {"vault_tfe_audit_trail_token": live(emulator)}
    assert stored_secret(path) == live(emulator)
    header = path.read_bytes().splitlines()[0]
    assert header == (b"$ANSIBLE_VAULT;1.2;AES256;prod" if variant == "vault-id" else b"$ANSIBLE_VAULT;1.1;AES256")
    assert (run.workdir / "fact.sha256").read_text() == sha256(live(emulator))
    assert mutations(emulator) == [("POST", "/api/v2/organizations/acme/authentication-token")]


# -- idempotence -----------------------------------------------------------------------------------

def test_a_second_run_changes_nothing(emulator, role):
    first = role()
    assert first.rc == 0, first
    vault_file = first.workdir / VAULT_REL
    before = vault_file.read_bytes()
    emulator.clear_requests()

    run = role()

    assert run.rc == 0, run
    assert changed_count(run) == 0
    assert vault_file.read_bytes() == before
    assert [r["method"] for r in emulator.requests] == ["GET", "GET", "GET"]
    assert (run.workdir / "fact.sha256").read_text() == sha256(live(emulator))


# -- regenerated outside Ansible -------------------------------------------------------------------

def test_a_token_regenerated_outside_ansible_is_replaced_and_stored(emulator, role):
    first = role()
    assert first.rc == 0, first
    old = live(emulator)
    emulator.regenerate_audit_trail_token("acme")
    outside = live(emulator)

    run = role()

    assert run.rc == 0, run
    assert changed_count(run) == 1
    stored = decrypt(run.workdir / VAULT_REL)["vault_tfe_audit_trail_token"]
    assert stored == live(emulator)
    assert stored not in (old, outside)
    assert (run.workdir / "fact.sha256").read_text() == sha256(stored)


def test_a_token_over_a_lowered_lifetime_policy_is_rotated_like_a_stale_one(emulator, role):
    """The organization lowers its maximum lifetime for audit trail tokens below the stored token's: HCP Terraform
    answers 401 for it from then on, and the role stores a new one, within the policy."""
    first = role()
    assert first.rc == 0, first
    old = live(emulator)
    emulator.set_token_ttl_policy("acme", timedelta(days=30))

    run = role()

    assert run.rc == 0, run
    assert changed_count(run) == 1
    stored = decrypt(run.workdir / VAULT_REL)["vault_tfe_audit_trail_token"]
    assert stored == live(emulator) and stored != old
    expires = datetime.strptime(emulator.audit_trail_token("acme")["expired_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires.replace(tzinfo=timezone.utc) <= datetime.now(timezone.utc) + timedelta(days=30, minutes=1)


# -- vault file deleted ----------------------------------------------------------------------------

def test_a_deleted_vault_file_leads_to_a_new_stored_token(emulator, role):
    first = role()
    assert first.rc == 0, first
    old = live(emulator)
    (first.workdir / VAULT_REL).unlink()

    run = role()

    assert run.rc == 0, run
    assert changed_count(run) == 1
    stored = decrypt(run.workdir / VAULT_REL)["vault_tfe_audit_trail_token"]
    assert stored == live(emulator) != old


# -- rotation --------------------------------------------------------------------------------------

def test_reaching_rotate_before_regenerates_and_stores(emulator, role):
    first = role(role_vars={"audit_trail_token_lifetime": "10d"})
    assert first.rc == 0, first
    old = live(emulator)
    rotation = {"audit_trail_token_lifetime": "90d", "audit_trail_token_rotate_before": "30d"}

    run = role(role_vars=rotation)

    assert run.rc == 0, run
    assert changed_count(run) == 1
    stored = decrypt(run.workdir / VAULT_REL)["vault_tfe_audit_trail_token"]
    assert stored == live(emulator) != old
    again = role(role_vars=rotation)
    assert again.rc == 0 and changed_count(again) == 0, again


# -- other variables -------------------------------------------------------------------------------

OTHER_VARS = """---
db_password: "s3cr3t: with colon"
nested:
  list: [1, two, 3.5, true]
  deeper: {a: null}
unsafe_value: !unsafe '{{ not a template }}'
unicode: "Grüße ✓"
"""


def test_the_other_variables_of_the_vault_file_survive(emulator, role, tmp_path):
    path = tmp_path / "work" / VAULT_REL
    path.parent.mkdir(parents=True)
    path.write_bytes(encrypt(OTHER_VARS))
    expected = yaml.load(OTHER_VARS, Loader=_TagLoader)
    show = """
    - name: The other variables still load
      ansible.builtin.copy:
        dest: "{{ playbook_dir }}/others.txt"
        content: "{{ db_password }}|{{ nested.list[1] }}|{{ unicode }}"
        mode: "0600"
      changed_when: false
"""

    for step in ("create", "regenerate", "idempotent", "absent"):
        if step == "regenerate":
            emulator.regenerate_audit_trail_token("acme")
        role_vars = {"audit_trail_token_state": "absent"} if step == "absent" else None
        run = role(role_vars=role_vars, extra_tasks=show)
        assert run.rc == 0, (step, run)
        data = decrypt(path)
        others = dict((key, value) for key, value in data.items() if key != "vault_tfe_audit_trail_token")
        assert others == expected, step
        assert list(others) == list(expected), "order kept (%s)" % step
        assert (run.workdir / "others.txt").read_text() == "s3cr3t: with colon|two|Grüße ✓"
        if step == "absent":
            assert "vault_tfe_audit_trail_token" not in data
        else:
            assert data["vault_tfe_audit_trail_token"] == live(emulator)


# -- failures, backups and kills -------------------------------------------------------------------

SECRETS_FILE = {"audit_trail_token_vault_file": "{{ playbook_dir }}/secrets/token.vault.yml"}


class _ReadOnly:
    """Make a directory unwritable, even for root (chattr +i), and undo it."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        if os.geteuid() == 0:
            proc = subprocess.run(["chattr", "+i", str(self.path)], capture_output=True, check=False)
            if proc.returncode:
                pytest.skip("running as root and chattr +i is not available: %s" % proc.stderr)
        else:
            self.path.chmod(0o500)
        return self

    def __exit__(self, *exc):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(self.path)], check=False)
        else:
            self.path.chmod(0o700)


@pytest.mark.parametrize("failure", ["read-only directory", "missing vault secret", "wrong password"])
def test_failures_found_without_the_api_change_nothing(emulator, role, tmp_path, failure):
    first = role(role_vars=SECRETS_FILE)
    assert first.rc == 0, first
    path = first.workdir / "secrets" / "token.vault.yml"
    emulator.regenerate_audit_trail_token("acme")  # the stored secret is stale: a run would regenerate
    outside = live(emulator)
    before = path.read_bytes()
    listing = sorted(p.name for p in path.parent.iterdir())
    emulator.clear_requests()

    if failure == "read-only directory":
        with _ReadOnly(path.parent):
            run = role(role_vars=SECRETS_FILE)
        message = "cannot write in"
    elif failure == "missing vault secret":
        run = role(role_vars=SECRETS_FILE, vault_args=[])
        message = "--vault-password-file"
    else:
        wrong = tmp_path / "wrong-pass.txt"
        wrong.write_text("not the password\n")
        run = role(role_vars=SECRETS_FILE, vault_args=["--vault-password-file", str(wrong)])
        message = "cannot decrypt"

    assert run.rc != 0, run
    assert message in run.stdout, run
    assert emulator.requests == [], "failed before any API call"
    assert live(emulator) == outside
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == listing, "no temp file left"


def test_the_old_file_is_kept_as_backup_and_leftovers_are_removed(emulator, role):
    first = role()
    assert first.rc == 0, first
    path = first.workdir / VAULT_REL
    before = path.read_bytes()
    assert not Path(str(path) + ".bak").exists(), "nothing to back up on the first write"
    leftover = path.parent / (".%s.deadbeef.tmp" % path.name)
    leftover.write_bytes(b"$ANSIBLE_VAULT;1.1;AES256\n00\n")  # a killed run's temp file (only ever ciphertext)
    emulator.regenerate_audit_trail_token("acme")

    run = role()

    assert run.rc == 0, run
    backup = Path(str(path) + ".bak")
    assert backup.read_bytes() == before
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert decrypt(path)["vault_tfe_audit_trail_token"] == live(emulator)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, backup.name, ".%s.lock" % path.name])
    # backup: false keeps the previous backup as it is
    emulator.regenerate_audit_trail_token("acme")
    third = role(role_vars={"audit_trail_token_backup": False})
    assert third.rc == 0, third
    assert backup.read_bytes() == before


def test_a_run_killed_while_it_holds_the_lock_leaves_the_old_file(emulator, role, collections_path, tmp_path, password_file, admin_token):
    """A run killed (whole process tree) while it holds the lock leaves the old file, whole."""
    first = role()
    assert first.rc == 0, first
    path = first.workdir / VAULT_REL
    before = path.read_bytes()
    emulator.regenerate_audit_trail_token("acme")
    emulator.add_fault(method="GET", path="/organization/audit-trail", status=503, count=100, delay=2.0)
    proc = _start(first.workdir, collections_path, tmp_path / "kill", password_file, admin_token)
    deadline = time.monotonic() + 60
    while not any(r["path"].endswith("/audit-trail") for r in emulator.requests) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, 9)
    proc.wait()
    _kill_leftover_workers(tmp_path / "kill")
    assert path.read_bytes() == before
    emulator.clear_faults()
    run = role()
    assert run.rc == 0, run
    assert decrypt(path)["vault_tfe_audit_trail_token"] == live(emulator)
    assert not list(path.parent.glob(".*.tmp"))


# -- no plaintext ----------------------------------------------------------------------------------

def test_no_plaintext_secret_on_disk_or_in_output(emulator, role, tmp_path, issued, admin_token):
    log_path = tmp_path / "ansible.log"
    env = {"ANSIBLE_LOG_PATH": str(log_path)}
    runs = [role(args=["-vvvv", "--diff"], env=env)]
    emulator.regenerate_audit_trail_token("acme")
    runs.append(role(args=["-vvvv", "--diff"], env=env))
    runs.append(role(role_vars={"audit_trail_token_force_regenerate": True}, args=["-vvvv"], env=env))
    runs.append(role(role_vars={"audit_trail_token_force_regenerate": True}, args=["-vvvv", "--check"], env=env))
    runs.append(role(args=["-vvvv", "--diff"], env=env))
    failing = role(org="small", args=["-vvvv"], env=env, name="failing.yml")  # no entitlement: fails, retry file
    assert failing.rc != 0
    assert all(run.rc == 0 for run in runs), runs
    assert (failing.workdir / "failing.retry").exists()
    assert log_path.stat().st_size > 0
    assert len(issued) >= 3
    assert decrypt(runs[-1].workdir / VAULT_REL)["vault_tfe_audit_trail_token"] == live(emulator) == issued[-1]

    haystacks = {}
    for number, run in enumerate(runs + [failing]):
        haystacks["stdout %d" % number] = run.stdout
        haystacks["stderr %d" % number] = run.stderr
    for path in files_under(tmp_path):
        haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for secret in issued + [admin_token, PASSWORD]:
        leaks = [where for where, text in haystacks.items() if secret in text]
        if secret == PASSWORD:
            leaks = [where for where in leaks if not where.endswith("vault-pass.txt")]
        assert leaks == [], "a secret appeared in %s" % leaks


# -- check mode ------------------------------------------------------------------------------------

def test_check_mode_writes_nothing_and_reports_the_change(emulator, role):
    run = role(args=["--check"])
    assert run.rc == 0, run
    assert changed_count(run) == 1
    assert not (run.workdir / VAULT_REL).exists()
    assert not (run.workdir / "group_vars").exists()
    assert emulator.audit_trail_token("acme") is None
    assert mutations(emulator) == []

    created = role()
    assert created.rc == 0, created
    path = created.workdir / VAULT_REL
    emulator.regenerate_audit_trail_token("acme")
    outside, before = live(emulator), path.read_bytes()
    emulator.clear_requests()
    stale = role(args=["--check"])
    assert stale.rc == 0, stale
    assert changed_count(stale) == 1
    assert mutations(emulator) == [] and live(emulator) == outside and path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, ".%s.lock" % path.name])

    assert role().rc == 0
    before = path.read_bytes()
    same = role(args=["--check"])
    assert same.rc == 0 and changed_count(same) == 0, same
    absent = role(role_vars={"audit_trail_token_state": "absent"}, args=["--check"])
    assert absent.rc == 0 and changed_count(absent) == 1, absent
    assert path.read_bytes() == before and live(emulator)


# -- absent ----------------------------------------------------------------------------------------

def test_absent_deletes_the_token_and_the_variable(emulator, role):
    first = role()
    assert first.rc == 0, first
    path = first.workdir / VAULT_REL
    absent = {"audit_trail_token_state": "absent"}

    run = role(role_vars=absent)

    assert run.rc == 0, run
    assert changed_count(run) == 1
    assert emulator.audit_trail_token("acme") is None
    assert path.exists() and decrypt(path) == {}, "the file stays, an encrypted empty mapping"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    emulator.clear_requests()
    again = role(role_vars=absent)
    assert again.rc == 0 and changed_count(again) == 0, again
    assert path.read_bytes() == before
    assert mutations(emulator) == []


# -- concurrency -----------------------------------------------------------------------------------

def _start(workdir, collections_path, private, password_file, admin_token, args=(), name="playbook.yml"):
    """Start ansible-playbook in its own session (own temp dirs and HOME), like run_playbook does."""
    private.mkdir(parents=True, exist_ok=True)
    (private / "home").mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "TFE_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_LOCAL_TEMP=str(private / "local-tmp"),
               ANSIBLE_REMOTE_TEMP=str(private / "remote-tmp"), ANSIBLE_NOCOLOR="1", HOME=str(private / "home"),
               ANSIBLE_RETRY_FILES_ENABLED="0", TFE_TOKEN=admin_token)
    return subprocess.Popen(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", name,
         "--vault-password-file", str(password_file)] + list(args),
        cwd=str(workdir), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def _kill_leftover_workers(private):
    """Workers of a killed run live in their own sessions: kill the processes whose environment
    names this run's private temp dir (they all inherited it), by PID."""
    marker = str(private).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                os.kill(int(entry.name), 9)
        except OSError:
            pass


def test_concurrent_runs_end_with_the_live_token_stored(emulator, role, collections_path, tmp_path, password_file, admin_token):
    setup = role(args=["--syntax-check"])  # writes the playbook into the shared work directory
    assert setup.rc == 0, setup
    procs = []
    for number in range(8):
        extra = ["-e", "audit_trail_token_force_regenerate=true"] if number % 2 else []
        procs.append(_start(setup.workdir, collections_path, tmp_path / ("run%d" % number), password_file,
                            admin_token, args=extra))
    results = [(proc, proc.communicate(timeout=600)) for proc in procs]

    for proc, (out, err) in results:
        assert proc.returncode == 0, (out[-3000:], err[-3000:])
    path = setup.workdir / VAULT_REL
    stored = decrypt(path)["vault_tfe_audit_trail_token"]
    assert stored == live(emulator)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, path.name + ".bak", ".%s.lock" % path.name])
    posts = [m for m in mutations(emulator) if m[0] == "POST"]
    assert 4 <= len(posts) <= 5, posts  # 4 forced regenerations, plus the create unless a forced run came first


# -- a full disk -------------------------------------------------------------------------

SMALL_FS = {"audit_trail_token_vault_file": "{{ playbook_dir }}/small-fs/token.vault.yml"}


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs at work/small-fs (root only; skipped where mounting is impossible)."""
    path = tmp_path / "work" / "small-fs"
    path.mkdir(parents=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.skip("cannot mount a tmpfs here (%s); test_a_write_failure_after_the_api_call_keeps_the_new_secret "
                    "covers the same path by fault injection" % proc.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory):
    """Fill the file system until it refuses a single byte more."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return directory / "filler"


def test_a_full_disk_fails_before_the_api_call(emulator, role, small_fs):
    first = role(role_vars=SMALL_FS)
    assert first.rc == 0, first
    path = small_fs / "token.vault.yml"
    before, old = path.read_bytes(), live(emulator)
    filler = _fill(small_fs)
    listing = sorted(p.name for p in small_fs.iterdir())
    emulator.clear_requests()

    run = role(role_vars=dict(SMALL_FS, audit_trail_token_force_regenerate=True))

    assert run.rc != 0, run
    assert "cannot write in %s" % small_fs in run.stdout and "nothing was changed" in run.stdout, run
    assert mutations(emulator) == [], "the stored token was not revoked"
    assert live(emulator) == old and path.read_bytes() == before
    assert sorted(p.name for p in small_fs.iterdir()) == listing, "no temp file left"
    filler.unlink()
    again = role(role_vars=dict(SMALL_FS, audit_trail_token_force_regenerate=True))
    assert again.rc == 0, again
    assert stored_secret(path) == live(emulator) != old


# Loaded through PYTHONPATH by ansible-playbook and inherited by its workers: the rename of the new vault
# file fails as on a full disk (after HCP Terraform generated the new token).
NO_SPACE_HOOK = '''
import errno
import os

TARGET = os.environ.get("TFE_AUDIT_NO_SPACE_FOR", "")
REAL_REPLACE = os.replace


def replace(src, dst, *args, **kwargs):
    if TARGET and os.fspath(dst) == TARGET:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return REAL_REPLACE(src, dst, *args, **kwargs)


os.replace = replace
'''


def test_a_write_failure_after_the_api_call_keeps_the_new_secret(emulator, role, tmp_path, issued):
    first = role()
    assert first.rc == 0, first
    path = first.workdir / VAULT_REL
    before = path.read_bytes()
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_SPACE_HOOK)
    failing = {"PYTHONPATH": str(hook), "TFE_AUDIT_NO_SPACE_FOR": str(path)}

    run = role(role_vars={"audit_trail_token_force_regenerate": True}, env=failing)

    assert run.rc != 0, run
    pending = path.parent / (".%s.pending" % path.name)
    assert "writing %s failed" % path in run.stdout and str(pending) in run.stdout, run
    new = live(emulator)
    assert new == issued[-1] and path.read_bytes() == before
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert stored_secret(pending) == new, "the new secret is kept, encrypted"
    again = role(role_vars={"audit_trail_token_force_regenerate": True}, env=failing)
    assert again.rc != 0 and live(emulator) == issued[-1] != new, "a second failing run keeps the newest secret"
    new = live(emulator)
    assert stored_secret(pending) == new
    emulator.clear_requests()

    recovered = role()

    assert recovered.rc == 0, recovered
    assert changed_count(recovered) == 1
    assert mutations(emulator) == [], "the kept secret was verified and stored, not replaced"
    assert [r["path"] for r in emulator.requests][-1].endswith("/audit-trail"), "verified against the API"
    assert stored_secret(path) == new == live(emulator)
    assert not pending.exists()
    assert (recovered.workdir / "fact.sha256").read_text() == sha256(new)
    idempotent = role()
    assert idempotent.rc == 0 and changed_count(idempotent) == 0, idempotent
