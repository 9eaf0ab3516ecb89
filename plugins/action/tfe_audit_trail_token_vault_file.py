# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Keeps the audit trail token's secret in an Ansible Vault encrypted vars file on the controller.

One task does the whole store step under one lock, so that read -> API -> write cannot interleave
with another run: validate the own options, find the vault secret, lock ``<dir>/.<name>.lock``,
read and decrypt the file, prove the directory writable, run ``tfe.audit.tfe_audit_trail_token``
with ``known_token`` = the stored secret, and write the new secret atomically (temp file in the same
directory, fsync, rename, fsync of the directory), keeping one encrypted backup.

Every failure that can be found without the API is found before the first API call. The plaintext
never touches the disk: it is encrypted in memory, and the module runs pipelined when the connection
allows it, so its arguments (which hold the stored secret) are not written to a temp file either.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import glob
import os
import re
import stat
import tempfile
import time

import yaml

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.parsing.vault import VaultLib, get_file_vault_secret, is_encrypted, match_encrypt_secret
from ansible.plugins.action import ActionBase

MODULE = "tfe.audit.tfe_audit_trail_token"
DEFAULT_VAULT_VAR = "vault_tfe_audit_trail_token"

# Options of this action; every other option is passed to the module (which validates it).
OWN_ARGUMENT_SPEC = dict(
    vault_file=dict(type="path", required=True),
    vault_var=dict(type="str", default=DEFAULT_VAULT_VAR),
    vault_id=dict(type="str"),
    vault_password_file=dict(type="path", no_log=False),
    backup=dict(type="bool", default=True),
    lock_timeout=dict(type="float", default=300),
    verify=dict(type="bool", default=True),
)
# Options of the module that this action sets itself.
RESERVED = ("known_token", "verify_known_token")

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOW_TO_GIVE_A_SECRET = (
    "give ansible-playbook a vault secret (--vault-password-file FILE, --vault-id LABEL@FILE, "
    "--ask-vault-pass or the ANSIBLE_VAULT_PASSWORD_FILE environment variable), or set vault_password_file "
    "(the role variable audit_trail_token_vault_password_file)")


class StoreError(Exception):
    """A failure of the store step, with a message for the user (never a secret)."""


class _TaggedScalar(object):
    """A scalar with a local YAML tag (``!vault``, ``!unsafe``) from another variable of the file,
    kept as it is so that the file's other variables survive a rewrite unchanged."""

    def __init__(self, tag, value, style):
        self.tag, self.value, self.style = tag, value, style


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _construct_tagged(loader, tag_suffix, node):
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "the tag %r on a non-scalar value is not supported"
                                                % node.tag, node.start_mark)
    return _TaggedScalar(node.tag, loader.construct_scalar(node), node.style)


def _represent_tagged(dumper, data):
    return dumper.represent_scalar(data.tag, data.value, style=data.style)


_Loader.add_multi_constructor("!", _construct_tagged)
_Dumper.add_representer(_TaggedScalar, _represent_tagged)


def plain(value):
    """Plain Python types for yaml.safe_dump: ansible-core 2.19+ hands out tagged strings it refuses."""
    if isinstance(value, _TaggedScalar):
        return value
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return dict((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


UNSAFE_TAG = "!unsafe"


def unsafe(value):
    """The secret as ``!unsafe``: Ansible never renders it as a template (a server could answer ``{{ ... }}``)."""
    return _TaggedScalar(UNSAFE_TAG, plain(value), None)


def dump_mapping(mapping):
    text = yaml.dump(plain(mapping), Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, explicit_start=True)
    return text


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path):
    """Create missing directories, each 0700 (os.makedirs would give the parents the umask's mode)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise


class FileLock(object):
    """``fcntl.flock`` on ``<dir>/.<name>.lock`` (0600), waiting at most ``timeout`` seconds."""

    def __init__(self, path, timeout):
        self.path, self.timeout, self.fd = path, timeout, None

    def acquire(self, create=True):
        """Take the lock; ``create=False`` (check mode) never creates the file: returns False when it is missing.

        ``O_NOFOLLOW``: a symbolic link planted at the lock path would otherwise make this run create
        (or truncate the mode of) whatever file it points to.
        """
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            self.fd = os.open(self.path, flags | (os.O_CREAT if create else 0), 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not create:
                return False
            if exc.errno == errno.ELOOP or os.path.islink(self.path):
                raise StoreError("the lock file %s is a symbolic link; refusing to follow it. Remove it (nothing but "
                                 "this collection should create it) and run again; nothing was changed" % self.path)
            raise
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            self.release()
            raise StoreError("the lock file %s is not a regular file; remove it and run again; nothing was changed"
                             % self.path)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                self.release()
                raise StoreError("another run holds the lock %s (waited %s s); try again, or raise lock_timeout"
                                 % (self.path, self.timeout))
            time.sleep(0.05)

    def release(self):
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


class _Reserved(object):
    """A 0600 temp file in the vault file's directory with its disk space reserved before the API call,
    so that writing the new secret after the call cannot run out of space."""

    def __init__(self, directory, prefix, suffix):
        self.fd, self.path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)

    def reserve(self, size):
        try:
            os.posix_fallocate(self.fd, 0, size)
            return
        except AttributeError:  # not on every platform: claim the blocks by writing them
            pass
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
        view = memoryview(bytes(size))
        while view:
            view = view[os.write(self.fd, view):]

    def commit(self, data, target):
        """Write ``data`` over the reserved space and rename the file to ``target`` (atomic)."""
        fd, self.fd = self.fd, None
        try:
            os.fchmod(fd, 0o600)
            os.lseek(fd, 0, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.path, target)
        self.path = None

    def discard(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
        if self.path is not None:
            _unlink(self.path)
            self.path = None


class VaultFile(object):
    """The vault file: paths, read/decrypt, atomic encrypted write with one backup, and the pending file
    that keeps a new secret when the vault file could not be written."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.directory, self.name = os.path.split(self.path)
        self.lock_path = os.path.join(self.directory, ".%s.lock" % self.name)
        self.pending_path = os.path.join(self.directory, ".%s.pending" % self.name)
        self.backup_path = self.path + ".bak"
        self.tmp_prefix = ".%s." % self.name
        self.tmp_suffix = ".tmp"

    def remove_leftovers(self):
        """Temp files of a run that was killed mid-write (only ever ciphertext); call with the lock held."""
        pattern = os.path.join(glob.escape(self.directory), glob.escape(self.tmp_prefix) + "*" + self.tmp_suffix)
        for leftover in glob.glob(pattern):
            _unlink(leftover)

    def read(self, vault):
        """``(encrypted bytes or None, mapping)``; raises StoreError before anything is changed."""
        return _read_mapping(self.path, vault, "the vault file")

    def read_pending(self, vault):
        """The mapping kept in the pending file by a run that could not write the vault file ({} if none)."""
        return _read_mapping(self.pending_path, vault, "the pending secret file")[1]

    def reserve(self, size):
        """A :class:`_Reserved` temp file of ``size`` bytes; raises OSError (ENOSPC, EACCES, ...)."""
        reserved = _Reserved(self.directory, self.tmp_prefix, self.tmp_suffix)
        try:
            reserved.reserve(size)
        except BaseException:
            reserved.discard()
            raise
        return reserved

    def fsync_directory(self):
        _fsync_dir(self.directory)


def _read_mapping(path, vault, what):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, {}
        raise StoreError("cannot read %s %s: %s" % (what, path, to_native(exc.strerror or exc)))
    if not data.strip():
        return data, {}
    if not is_encrypted(data):
        raise StoreError("%s is not an Ansible Vault encrypted file (it must be encrypted as a whole, as "
                         "'ansible-vault encrypt' does); refusing to touch it: encrypt it, or choose another "
                         "vault_file" % path)
    try:
        plaintext = vault.decrypt(data)
    except AnsibleError as exc:
        raise StoreError("cannot decrypt %s %s with the vault secrets of this run (%s): wrong "
                         "vault password or vault id? The file was not changed." % (what, path, _vault_error(exc)))
    try:
        mapping = yaml.load(to_text(plaintext, errors="surrogate_or_strict"), Loader=_Loader)
    except yaml.YAMLError as exc:
        # The plaintext is not shown: it may be the secret itself.
        raise StoreError("%s %s does not hold valid YAML (%s); fix it with 'ansible-vault edit'"
                         % (what, path, getattr(exc, "problem", None) or "parse error"))
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise StoreError("%s %s must hold a YAML mapping of variables, it holds a %s; fix it with "
                         "'ansible-vault edit'" % (what, path, type(mapping).__name__))
    return data, mapping


def _secret_of(mapping, var, path):
    """``(secret or None, marked_unsafe)`` of ``var``; a secret must be a string, plain or ``!unsafe``."""
    value = mapping.get(var)
    if isinstance(value, _TaggedScalar) and value.tag == UNSAFE_TAG and isinstance(value.value, str):
        return value.value, True
    if value is not None and not isinstance(value, str):
        raise StoreError("the variable %s in %s is not a plain string (%s); it must hold the token's secret: "
                         "fix it with 'ansible-vault edit'" % (var, path, type(value).__name__))
    return value, False


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _vault_error(exc):
    text = to_native(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_error(exc):
    return to_native(exc.strerror or exc)


class ActionModule(ActionBase):

    _supports_check_mode = True
    # The module's result (with the secret) would be read back by async_status, past this plugin.
    _supports_async = False
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            result.update(self._run(task_vars or {}))
        except StoreError as exc:
            result.update(failed=True, changed=False, msg=to_native(exc))
        if result.get("token"):
            result["_ansible_no_log"] = True
        return result

    # -- steps ---------------------------------------------------------------------------------

    def _options(self):
        if C.DEFAULT_KEEP_REMOTE_FILES:
            # The module's arguments (the stored secret, the API token) would stay on disk in clear text.
            raise StoreError("refusing to run with ANSIBLE_KEEP_REMOTE_FILES (keep_remote_files in ansible.cfg) "
                             "enabled: it keeps the module's arguments, which hold the stored secret and the API "
                             "token, on disk in clear text. Unset it for this run; nothing was changed")
        args = dict(self._task.args)
        own = dict((key, args.pop(key)) for key in list(args) if key in OWN_ARGUMENT_SPEC)
        for key in RESERVED:
            if key in args:
                raise StoreError("%s is set by this action itself (from the vault file); remove it from the task"
                                 % key)
        validation = ArgumentSpecValidator(OWN_ARGUMENT_SPEC).validate(own)
        if validation.error_messages:
            raise StoreError("; ".join(validation.error_messages))
        params = validation.validated_parameters
        for key in ("vault_file", "vault_var", "vault_id", "vault_password_file"):
            if params[key] is not None:
                params[key] = plain(params[key])
        if params["vault_file"] and os.path.isdir(params["vault_file"]):
            raise StoreError("vault_file %r is a directory; give the path of a vars file, for example "
                             "vault_file: group_vars/all/tfe_audit_trail_token.vault.yml" % params["vault_file"])
        if not params["vault_file"] or params["vault_file"].endswith(os.sep):
            raise StoreError("vault_file must be a file path, got %r; for example "
                             "vault_file: group_vars/all/tfe_audit_trail_token.vault.yml" % params["vault_file"])
        if not _VAR_NAME.match(params["vault_var"] or ""):
            raise StoreError("vault_var %r is not a valid variable name (letters, digits and _, not starting with a "
                             "digit); for example vault_var: %s" % (params["vault_var"], DEFAULT_VAULT_VAR))
        if params["vault_id"] is not None and not re.match(r"^[^@;\s]+$", params["vault_id"]):
            raise StoreError("vault_id %r is not a valid vault id label (no '@', ';' or white space); for example "
                             "vault_id: prod" % params["vault_id"])
        if params["lock_timeout"] < 0:
            raise StoreError("lock_timeout must be 0 or more seconds, got %s; for example lock_timeout: 300"
                             % params["lock_timeout"])
        state = args.get("state", "present")
        if state not in ("present", "absent"):
            raise StoreError("state must be present or absent, got %r" % state)
        return params, args, state

    def _secrets(self, params):
        """``(decrypt secrets, encrypt secret, label for the envelope)``; raises before any API call."""
        vault_id = params["vault_id"]
        if params["vault_password_file"]:
            try:
                secret = get_file_vault_secret(filename=params["vault_password_file"], vault_id=vault_id,
                                               loader=self._loader)
                secret.load()
            except AnsibleError as exc:
                raise StoreError("cannot read the vault password from vault_password_file %s: %s"
                                 % (params["vault_password_file"], _vault_error(exc)))
            secrets = [(vault_id or "default", secret)]
        else:
            secrets = list(getattr(getattr(self._loader, "_vault", None), "secrets", None) or [])
        secrets = [(label, secret) for label, secret in secrets if secret is not None and secret.bytes]
        if not secrets:
            raise StoreError("no vault secret to encrypt %s with: %s" % (params["vault_file"], _HOW_TO_GIVE_A_SECRET))
        try:
            label, encrypt_secret = match_encrypt_secret(secrets, vault_id)
        except AnsibleError:
            raise StoreError("no vault secret with the vault id %r; this run has %s: give it with --vault-id %s@FILE "
                             "(or vault_password_file), or set vault_id to one of them"
                             % (vault_id, sorted(set(label for label, dummy in secrets)), vault_id))
        envelope_label = vault_id or (label if label and label != "default" else None)
        return secrets, encrypt_secret, envelope_label

    def _use_pipelining(self):
        """Run the module pipelined when the connection can, so its arguments (the stored secret) are
        never written to a temp file on the target."""
        connection = self._connection
        try:
            if connection.has_pipelining and not connection.become:
                connection.set_option("pipelining", True)
        except Exception:  # pylint: disable=broad-except
            pass

    def _encrypt(self, mapping):
        return self._vault.encrypt(dump_mapping(mapping), secret=self._encrypt_secret, vault_id=self._envelope_label)

    def _reserve(self, vault_file, mapping, var, known, previous, backup):
        """Temp files with room for everything the run may write after the API call (the new file, its
        backup, the pending secret), so that a full disk fails the run before HCP Terraform revokes the
        stored token. The probe secret is much longer than any real token."""
        probe = unsafe("x" * max(4096, 2 * len(known or "")))
        sizes = dict(file=len(self._encrypt(dict(mapping, **{var: probe}))),
                     pending=len(self._encrypt({var: probe})))
        if backup and previous:
            sizes["backup"] = len(previous)
        reserved = {}
        try:
            for key, size in sizes.items():
                reserved[key] = vault_file.reserve(size)
        except (IOError, OSError) as exc:
            for item in reserved.values():
                item.discard()
            raise StoreError("cannot write in %s (%s, reserving %d bytes for the new vault file, its backup and "
                             "the pending secret); free some space or make the directory writable, or choose "
                             "another vault_file; nothing was changed"
                             % (vault_file.directory, _os_error(exc), sum(sizes.values())))
        return reserved

    def _lock(self, vault_file, timeout, check_mode):
        """The lock on the vault file, or None in check mode when it cannot be had (check mode writes nothing,
        and never creates the lock file)."""
        if not check_mode:
            try:
                _make_dirs(vault_file.directory)
            except OSError as exc:
                raise StoreError("cannot create the directory %s for the vault file: %s; nothing was changed"
                                 % (vault_file.directory, _os_error(exc)))
        if not os.path.isdir(vault_file.directory):
            return None
        lock = FileLock(vault_file.lock_path, timeout)
        try:
            if not lock.acquire(create=not check_mode):
                return None
        except (IOError, OSError) as exc:
            if not check_mode:
                raise StoreError("cannot write in %s (lock file %s: %s); make the directory writable or "
                                 "choose another vault_file; nothing was changed"
                                 % (vault_file.directory, vault_file.lock_path, _os_error(exc)))
            return None
        return lock

    def _run(self, task_vars):
        params, module_args, state = self._options()
        secrets, self._encrypt_secret, self._envelope_label = self._secrets(params)
        self._vault = VaultLib(secrets)
        vault_file = VaultFile(params["vault_file"])
        var = params["vault_var"]
        check_mode = bool(self._play_context.check_mode)

        lock = self._lock(vault_file, params["lock_timeout"], check_mode)
        reserved = {}
        try:
            if lock is not None and not check_mode:
                vault_file.remove_leftovers()
            previous, mapping = vault_file.read(self._vault)
            stored, stored_unsafe = _secret_of(mapping, var, vault_file.path)
            pending_mapping = vault_file.read_pending(self._vault)
            pending, dummy = _secret_of(pending_mapping, var, vault_file.pending_path)
            # A pending secret was generated after the stored one (which that generation revoked): verify it first.
            known = pending or stored
            if not check_mode:
                reserved = self._reserve(vault_file, mapping, var, known, previous, params["backup"])

            module_args = dict(module_args)
            if state == "present":
                module_args["known_token"] = known or ""
                module_args["verify_known_token"] = params["verify"]
            self._use_pipelining()
            module_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            run = dict(params=params, vault_file=vault_file, state=state, mapping=mapping, previous=previous,
                       known=known, rewrite=bool(pending and pending != stored) or (bool(stored) and not stored_unsafe),
                       pending_exists=bool(pending), check_mode=check_mode, reserved=reserved)
            return self._finish(module_result, run)
        finally:
            for item in reserved.values():
                item.discard()
            if lock is not None:
                lock.release()

    def _finish(self, module_result, run):
        params, vault_file, state, mapping = run["params"], run["vault_file"], run["state"], run["mapping"]
        var = params["vault_var"]
        result = dict(vault_file=vault_file.path, vault_var=var)
        for key in ("warnings", "deprecations"):
            if module_result.get(key):
                result[key] = module_result[key]
        if module_result.get("failed") or module_result.get("unreachable"):
            result.update(failed=True, changed=False,
                          msg="%s (%s was not changed)" % (module_result.get("msg", "the module failed"),
                                                           vault_file.path))
            # Not module_stdout: output that is not valid JSON could still hold a new secret.
            for key in ("operation", "reason", "exception", "module_stderr", "rc"):
                if key in module_result:
                    result[key] = module_result[key]
            return result

        for key in ("operation", "reason", "id", "created_at", "expired_at", "diff"):
            if key in module_result:
                result[key] = module_result[key]
        new_secret = module_result.get("token")
        live = new_secret or (run["known"] if result.get("operation") == "none" else None)
        new_mapping = None
        if state == "present" and live and (new_secret or run["rewrite"]):
            # Always !unsafe: a later play reading the variable must never render the server's string as a template.
            new_mapping = dict(mapping)
            new_mapping[var] = unsafe(live)
        elif state == "absent" and (var in mapping or run["pending_exists"]):
            new_mapping = dict((key, value) for key, value in mapping.items() if key != var)

        written = new_mapping is not None
        if not written and run["pending_exists"] and not run["check_mode"]:
            # The run that kept it was killed after writing the file: the file already holds this secret.
            _unlink(vault_file.pending_path)
        if written and not run["check_mode"]:
            failure = self._write(vault_file, run["reserved"], new_mapping, var, new_secret, run["previous"],
                                  params["backup"], run["pending_exists"])
            if failure:
                result.update(failed=True, changed=True,
                              msg="HCP Terraform answered (%s), but writing %s failed: %s"
                                  % (result.get("operation"), vault_file.path, failure))
                return result
        result["changed"] = bool(module_result.get("changed")) or written
        result["file_changed"] = written
        if state == "present" and live:
            # Never as ansible_facts: a fact cache (jsonfile, AWX/AAP) would write it to disk in clear.
            result["token"] = plain(live)
        return result

    def _write(self, vault_file, reserved, new_mapping, var, new_secret, previous, backup, pending_exists):
        """Write the new file (pending secret first, then backup and file); a message when it failed."""
        kept = False
        if new_secret:
            # Before the vault file: if that write fails (or the run is killed), the next run finds the new
            # secret here, encrypted, instead of a revoked token in the file.
            try:
                reserved.pop("pending").commit(self._encrypt({var: unsafe(new_secret)}), vault_file.pending_path)
                vault_file.fsync_directory()
                kept = True
            except (IOError, OSError):
                kept = False
        try:
            if backup and previous:
                reserved.pop("backup").commit(previous, vault_file.backup_path)
            reserved.pop("file").commit(self._encrypt(new_mapping), vault_file.path)
            vault_file.fsync_directory()
        except (IOError, OSError) as exc:
            if kept or (pending_exists and not new_secret):
                return ("%s. The file still holds the previous content; the new secret is kept, encrypted, in %s: "
                        "run again once the file can be written, and it is verified and stored."
                        % (_os_error(exc), vault_file.pending_path))
            return ("%s. The file still holds the previous content and the new secret could not be kept; run "
                    "again to generate and store a new token." % _os_error(exc))
        if kept or pending_exists:
            _unlink(vault_file.pending_path)
            vault_file.fsync_directory()
        return None
