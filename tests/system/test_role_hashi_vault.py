# -*- coding: utf-8 -*-
"""The role tfe.audit.audit_trail_token with the hashi_vault store, end to end.

Real ansible-playbook runs of the role against the in-process HCP Terraform emulator and a real
OpenBao dev server (``bao server -dev``, KV v2 at ``secret/``): the role's behaviours that apply to this
store (first run, idempotence, a token regenerated outside Ansible, a deleted KV entry, rotation, check
mode, absent), the secret never printed, a clear failure when Vault is unreachable, and check-and-set
against a concurrent writer.
"""

import hashlib
import re

import hvac
import pytest

ORG = "acme"
KV_PATH = "tfe/acme-audit-trail"

PLAYBOOK = """
- name: Role tfe.audit.audit_trail_token, hashi_vault store
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  roles:
    - role: tfe.audit.audit_trail_token
      vars:
        audit_trail_token_organization: {org}
        audit_trail_token_store: hashi_vault
        audit_trail_token_hashi_vault_path: {path}
        audit_trail_token_hostname: {url}
{extra}
  post_tasks:
    - name: Report a hash of the fact the role set
      ansible.builtin.debug:
        msg: "FACT_SHA256={{{{ (vars[fact_name] | default('')) | hash('sha256') }}}}"
      vars:
        fact_name: {fact}
"""

RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def role(run_playbook, emulator, admin_token, openbao, collections_path, test_collections):
    """Run the role: ``role(check=False, absent=False, args=(), **role_vars)`` -> (Run, changed)."""

    def run(*args, check=False, state=None, fact="vault_tfe_audit_trail_token", env=None, **role_vars):
        if state:
            role_vars["audit_trail_token_state"] = state
        extra = "".join("        %s: %s\n" % (key, value) for key, value in role_vars.items())
        playbook = PLAYBOOK.format(org=ORG, path=KV_PATH, url=emulator.url, extra=extra.rstrip("\n"), fact=fact)
        full_env = dict(openbao.env(), TFE_TOKEN=admin_token,
                        ANSIBLE_COLLECTIONS_PATH="%s:%s" % (collections_path, test_collections))
        full_env.update(env or {})
        result = run_playbook(playbook, *(list(args) + (["--check"] if check else [])), env=full_env)
        recap = RECAP.search(result.stdout)
        result.changed = int(recap.group(2)) if recap else None
        match = re.search(r"FACT_SHA256=([0-9a-f]{64})", result.stdout)
        result.fact_sha256 = match.group(1) if match else None
        return result

    return run


def kv_read(openbao, path=KV_PATH, mount="secret"):
    """(data, version) of the latest version, or (None, None) when absent/deleted."""
    try:
        answer = openbao.client().secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None, None
    return answer["data"]["data"], answer["data"]["metadata"]["version"]


def kv_current_version(openbao, path=KV_PATH, mount="secret"):
    try:
        meta = openbao.client().secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)
    except hvac.exceptions.InvalidPath:
        return 0
    return meta["data"]["current_version"]


def assert_stored_live(openbao, emulator, version=None):
    live = emulator.audit_trail_token(ORG)
    assert live is not None
    data, stored_version = kv_read(openbao)
    assert data == {"token": live["token"], "id": live["id"], "expired_at": live["expired_at"],
                    "created_at": live["created_at"], "organization": ORG}
    if version is not None:
        assert stored_version == version
    return live


def mutations(emulator):
    return [r for r in emulator.requests if r["method"] not in ("GET", "HEAD")]


# -- first run ------------------------------------------------------------------------------------

def test_first_run_creates_and_stores(role, emulator, openbao):
    assert emulator.audit_trail_token(ORG) is None

    run = role()

    assert run.rc == 0, run
    assert run.changed == 2, run  # the token created, the KV entry written
    live = assert_stored_live(openbao, emulator, version=1)
    assert run.fact_sha256 == sha256(live["token"]), "the play's fact is the live secret"
    assert [r["method"] for r in mutations(emulator)] == ["POST"]


def test_connection_from_role_variables_other_mount_and_key(role, emulator, openbao):
    """URL and token as role variables (no VAULT_* in the environment), another mount and key."""
    openbao.client().sys.enable_secrets_engine("kv", path="kv-siem", options={"version": "2"})
    env = {"VAULT_ADDR": "", "VAULT_TOKEN": ""}

    run = role(env=env, audit_trail_token_hashi_vault_url=openbao.addr,
               audit_trail_token_hashi_vault_token=openbao.token,
               audit_trail_token_hashi_vault_mount="kv-siem", audit_trail_token_hashi_vault_key="secret_value",
               audit_trail_token_vault_var="siem_token", fact="siem_token")

    assert run.rc == 0, run
    live = emulator.audit_trail_token(ORG)
    data, version = kv_read(openbao, mount="kv-siem")
    assert version == 1 and data["secret_value"] == live["token"] and data["id"] == live["id"]
    assert run.fact_sha256 == sha256(live["token"])
    assert openbao.token not in run.stdout + run.stderr

    again = role(env=env, audit_trail_token_hashi_vault_url=openbao.addr,
                 audit_trail_token_hashi_vault_token=openbao.token,
                 audit_trail_token_hashi_vault_mount="kv-siem", audit_trail_token_hashi_vault_key="secret_value")
    assert again.rc == 0 and again.changed == 0, again


# -- idempotent -----------------------------------------------------------------------------------

def test_second_run_is_idempotent_and_reads_only(role, emulator, openbao):
    assert role().rc == 0
    live = assert_stored_live(openbao, emulator, version=1)
    emulator.clear_requests()

    run = role()

    assert run.rc == 0, run
    assert run.changed == 0, run
    assert_stored_live(openbao, emulator, version=1)
    assert kv_current_version(openbao) == 1
    assert emulator.audit_trail_token(ORG)["token"] == live["token"]
    assert [r["method"] for r in emulator.requests] == ["GET"] * 3, emulator.requests  # ping, read, verify
    assert run.fact_sha256 == sha256(live["token"])


# -- regenerated outside Ansible ---------------------------------------------------------------------

def test_token_regenerated_outside_ansible_is_replaced(role, emulator, openbao):
    assert role().rc == 0
    outside = emulator.regenerate_audit_trail_token(ORG)

    run = role()

    assert run.rc == 0, run
    assert run.changed == 2, run
    live = assert_stored_live(openbao, emulator, version=2)
    assert live["token"] != outside["token"], "the secret held was stale: a new token was generated"
    assert run.fact_sha256 == sha256(live["token"])
    assert role().changed == 0


def test_a_token_over_a_lowered_lifetime_policy_is_rotated_like_a_stale_one(role, emulator, openbao):
    assert role().rc == 0
    old = emulator.audit_trail_token(ORG)["token"]
    emulator.set_token_ttl_policy(ORG, 30 * 24 * 3600)  # below the two years the stored token lives

    run = role()

    assert run.rc == 0, run
    assert run.changed == 2, run
    live = assert_stored_live(openbao, emulator, version=2)
    assert live["token"] != old
    assert role().changed == 0


# -- KV entry deleted -----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["soft-delete", "metadata-delete"])
def test_kv_entry_deleted_regenerates(role, emulator, openbao, how):
    assert role().rc == 0
    before = emulator.audit_trail_token(ORG)
    kv = openbao.client().secrets.kv.v2
    if how == "soft-delete":  # the latest version deleted; the entry's version number lives on (CAS 1)
        kv.delete_latest_version_of_secret(path=KV_PATH, mount_point="secret")
        expected_version = 2
    else:  # the whole entry gone (CAS 0)
        kv.delete_metadata_and_all_versions(path=KV_PATH, mount_point="secret")
        expected_version = 1
    assert kv_read(openbao) == (None, None)

    run = role()

    assert run.rc == 0, run
    assert run.changed == 2, run
    live = assert_stored_live(openbao, emulator, version=expected_version)
    assert live["token"] != before["token"]
    assert role().changed == 0


# -- rotate_before --------------------------------------------------------------------------------

def test_rotate_before_regenerates_and_stores(role, emulator, openbao):
    assert role(audit_trail_token_lifetime="10d").rc == 0
    first = emulator.audit_trail_token(ORG)
    assert role(audit_trail_token_lifetime="90d", audit_trail_token_rotate_before="5d").changed == 0

    run = role(audit_trail_token_lifetime="90d", audit_trail_token_rotate_before="30d")

    assert run.rc == 0, run
    assert run.changed == 2, run
    live = assert_stored_live(openbao, emulator, version=2)
    assert live["token"] != first["token"] and live["expired_at"] > first["expired_at"]
    assert role(audit_trail_token_lifetime="90d", audit_trail_token_rotate_before="30d").changed == 0


# -- check mode -----------------------------------------------------------------------------------

def test_check_mode_first_run_changes_nothing(role, emulator, openbao):
    run = role(check=True)

    assert run.rc == 0, run
    assert run.changed == 1, run  # the module reports the creation it would do
    assert emulator.audit_trail_token(ORG) is None
    assert mutations(emulator) == []
    assert kv_current_version(openbao) == 0


def test_check_mode_stale_secret_changes_nothing(role, emulator, openbao):
    assert role().rc == 0
    outside = emulator.regenerate_audit_trail_token(ORG)
    emulator.clear_requests()

    run = role(check=True)

    assert run.rc == 0, run
    assert run.changed == 1, run
    assert mutations(emulator) == []
    assert emulator.audit_trail_token(ORG)["token"] == outside["token"]
    assert kv_current_version(openbao) == 1

    assert role().changed == 2  # the real run does what check mode announced
    in_sync = role(check=True)
    assert in_sync.rc == 0 and in_sync.changed == 0, in_sync


def test_check_mode_absent_changes_nothing(role, emulator, openbao):
    assert role().rc == 0
    live = emulator.audit_trail_token(ORG)
    emulator.clear_requests()

    run = role(check=True, state="absent")

    assert run.rc == 0, run
    assert run.changed == 2, run  # the token and the KV entry would be deleted
    assert mutations(emulator) == []
    assert emulator.audit_trail_token(ORG)["token"] == live["token"]
    assert_stored_live(openbao, emulator, version=1)


# -- absent ----------------------------------------------------------------------------------------

def test_absent_deletes_token_and_entry_idempotently(role, emulator, openbao):
    assert role().rc == 0

    run = role(state="absent")

    assert run.rc == 0, run
    assert run.changed == 2, run
    assert emulator.audit_trail_token(ORG) is None
    assert kv_read(openbao) == (None, None)

    again = role(state="absent")
    assert again.rc == 0 and again.changed == 0, again

    # and present again afterwards: the soft-deleted entry's version is honoured by check-and-set
    back = role()
    assert back.rc == 0 and back.changed == 2, back
    assert_stored_live(openbao, emulator, version=2)


# -- the secret is never printed -------------------------------------------------------------------------

def test_secret_never_in_output_at_vvv(role, emulator, openbao):
    issued = emulator.issued_secrets
    outputs = []
    for kwargs in ({}, {}, {"check": True}, {"audit_trail_token_force_regenerate": "true"}, {"state": "absent"}):
        run = role("-vvv", "--diff", **kwargs)
        assert run.rc == 0, run
        outputs.append(run.stdout + run.stderr)
        if not issued:
            continue
        if kwargs.get("check"):
            emulator.regenerate_audit_trail_token(ORG)  # next: a stale secret in KV, handed to the module
    assert len(issued) >= 3
    for number, secret in enumerate(issued + [openbao.token]):
        leaks = [run_number for run_number, text in enumerate(outputs) if secret in text]
        assert leaks == [], "secret %d (the last is the Vault token) printed by run(s) %s" % (number, leaks)


# -- failures -------------------------------------------------------------------------------------------

def test_unreachable_vault_fails_before_any_api_call(role, emulator, openbao):
    openbao.stop()

    run = role()

    assert run.rc != 0
    assert "Could not read the KV v2 entry" in run.stdout, run
    assert emulator.requests == [], "nothing reached HCP Terraform"


def test_concurrent_writer_is_not_overwritten(role, emulator, openbao):
    """Check-and-set: a KV write between this run's read and its write makes the run fail, loudly."""
    assert role().rc == 0
    emulator.regenerate_audit_trail_token(ORG)  # the stored secret is stale: the next run regenerates
    other = {"token": "written-by-another-run", "id": "at-other"}
    original = emulator._new_token  # pylint: disable=protected-access

    def new_token_while_another_run_writes(*args, **kwargs):
        # Runs while HCP Terraform handles the role's POST: after the role read version 1, before it writes.
        openbao.client().secrets.kv.v2.create_or_update_secret(path=KV_PATH, mount_point="secret", secret=other, cas=1)
        return original(*args, **kwargs)

    emulator._new_token = new_token_while_another_run_writes  # pylint: disable=protected-access
    run = role()

    assert run.rc != 0, run
    assert "another run stored a token at the same time" in run.stdout, run.stdout
    assert kv_read(openbao) == (other, 2), "the concurrent write survived"
