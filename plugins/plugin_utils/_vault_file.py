# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller machinery of the Ansible Vault store (``tfe.audit.tfe_audit_trail_token_vault_file``).

Private to the collection (leading underscore): free to change between releases.

* the vault secrets of a run (:class:`VaultKeys`);
* the YAML round trip that keeps the file's other variables and their local tags (:func:`load_mapping`,
  :func:`dump_mapping`), the secret always ``!unsafe`` (:func:`unsafe`);
* the lock beside the file (:class:`FileLock`);
* space reserved before the API call and atomic writes with one backup (:class:`VaultFile`, with
  :class:`_files.TempFile`, the same atomic write the export uses);
* the pending file that keeps a new secret when the vault file could not be written;
* one store run from the read to the write (:class:`StoreRun`).

Every message is for the user and never holds a secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import re
import time

import yaml

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.parsing.vault import VaultLib, get_file_vault_secret, is_encrypted, match_encrypt_secret

from ansible_collections.tfe.audit.plugins.module_utils._files import NotRegularFile, TempFile, fsync_dir, open_regular

UNSAFE_TAG = "!unsafe"
# The reservation is sized for a secret much longer than any real token (about 90 characters).
PROBE_SECRET_LENGTH = 4096
_HOW_TO_GIVE_A_SECRET = (
    "give ansible-playbook a vault secret (--vault-password-file FILE, --vault-id LABEL@FILE, "
    "--ask-vault-pass or the ANSIBLE_VAULT_PASSWORD_FILE environment variable), or set vault_password_file "
    "(the role variable audit_trail_token_vault_password_file)")


class StoreError(Exception):
    """A failure of the store step, with a message for the user (never a secret)."""


# -- YAML round trip ---------------------------------------------------------------------------------

class TaggedScalar(object):
    """A scalar with a local YAML tag (``!vault``, ``!unsafe``), kept as it is so that the file's other
    variables survive a rewrite unchanged."""

    def __init__(self, tag, value, style=None):
        self.tag, self.value, self.style = tag, value, style

    def __eq__(self, other):
        return isinstance(other, TaggedScalar) and (self.tag, self.value) == (other.tag, other.value)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "TaggedScalar(%r, <%d characters>)" % (self.tag, len(self.value or ""))


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _construct_tagged(loader, tag_suffix, node):
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "the tag %r on a non-scalar value is not supported"
                                                % node.tag, node.start_mark)
    return TaggedScalar(node.tag, loader.construct_scalar(node), node.style)


_Loader.add_multi_constructor("!", _construct_tagged)
_Dumper.add_representer(TaggedScalar, lambda dumper, data: dumper.represent_scalar(data.tag, data.value, data.style))


def plain(value):
    """Plain Python types for yaml.safe_dump: ansible-core 2.19+ hands out tagged strings it refuses."""
    if isinstance(value, (TaggedScalar, bytes)):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    for kind in (bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return dict((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def unsafe(value):
    """The secret as ``!unsafe``: Ansible never renders it as a template (a server could answer ``{{ ... }}``)."""
    return TaggedScalar(UNSAFE_TAG, plain(value))


def dump_mapping(mapping):
    return yaml.dump(plain(mapping), Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, explicit_start=True)


def load_mapping(text, what):
    """The mapping of a decrypted vars file; the plaintext is never shown (it may be the secret itself)."""
    try:
        mapping = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise StoreError("%s does not hold valid YAML (%s); fix it with 'ansible-vault edit'"
                         % (what, getattr(exc, "problem", None) or "parse error"))
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise StoreError("%s must hold a YAML mapping of variables, it holds a %s; fix it with 'ansible-vault edit'"
                         % (what, type(mapping).__name__))
    return mapping


def secret_of(mapping, var, what):
    """``(secret or None, marked unsafe)``: a secret is a string, plain or ``!unsafe``."""
    value = mapping.get(var)
    if isinstance(value, TaggedScalar) and value.tag == UNSAFE_TAG and isinstance(value.value, str):
        return value.value, True
    if value is not None and not isinstance(value, str):
        raise StoreError("the variable %s in %s is not a plain string (%s); it must hold the token's secret: "
                         "fix it with 'ansible-vault edit'" % (var, what, type(value).__name__))
    return value, False


# -- vault secrets -----------------------------------------------------------------------------------

def _vault_error(exc):
    text = to_native(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_error(exc):
    return to_native(exc.strerror or exc)


class VaultKeys(object):
    """The vault secrets of a run: all of them to decrypt, one (and its label) to encrypt."""

    def __init__(self, secrets, vault_id=None, target="the vault file"):
        secrets = [(label, secret) for label, secret in secrets if secret is not None and secret.bytes]
        if not secrets:
            raise StoreError("no vault secret to encrypt %s with: %s" % (target, _HOW_TO_GIVE_A_SECRET))
        try:
            label, self.encrypt_secret = match_encrypt_secret(secrets, vault_id)
        except AnsibleError:
            raise StoreError("no vault secret with the vault id %r; this run has %s: give it with --vault-id %s@FILE "
                             "(or vault_password_file), or set vault_id to one of them"
                             % (vault_id, sorted(set(label for label, dummy in secrets)), vault_id))
        self.label = vault_id or (label if label and label != "default" else None)
        self.vault = VaultLib(secrets)

    @classmethod
    def of_run(cls, loader, vault_id=None, password_file=None, target="the vault file"):
        """The run's own secrets (``--vault-id`` ...), or the one in ``password_file``."""
        if not password_file:
            return cls(list(getattr(getattr(loader, "_vault", None), "secrets", None) or []), vault_id, target)
        try:
            secret = get_file_vault_secret(filename=password_file, vault_id=vault_id, loader=loader)
            secret.load()
        except AnsibleError as exc:
            raise StoreError("cannot read the vault password from vault_password_file %s: %s"
                             % (password_file, _vault_error(exc)))
        return cls([(vault_id or "default", secret)], vault_id, target)

    def encrypt(self, mapping):
        return self.vault.encrypt(dump_mapping(mapping), secret=self.encrypt_secret, vault_id=self.label)

    def read(self, path, what):
        """``(encrypted bytes or None, mapping)`` of a whole-file vault; ``(None, {})`` when it is missing."""
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return None, {}
            raise StoreError("cannot read %s %s: %s" % (what, path, _os_error(exc)))
        if not data.strip():
            return data, {}
        if not is_encrypted(data):
            raise StoreError("%s is not an Ansible Vault encrypted file (it must be encrypted as a whole, as "
                             "'ansible-vault encrypt' does); refusing to touch it: encrypt it, or choose another "
                             "vault_file" % path)
        try:
            plaintext = self.vault.decrypt(data)
        except AnsibleError as exc:
            raise StoreError("cannot decrypt %s %s with the vault secrets of this run (%s): wrong "
                             "vault password or vault id? The file was not changed." % (what, path, _vault_error(exc)))
        return data, load_mapping(to_text(plaintext, errors="surrogate_or_strict"), "%s %s" % (what, path))


# -- files -------------------------------------------------------------------------------------------

def make_dirs(path):
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


def unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class FileLock(object):
    """``fcntl.flock`` on ``<dir>/.<name>.lock`` (0600), waiting at most ``timeout`` seconds."""

    def __init__(self, path, timeout):
        self.path, self.timeout, self.fd = path, timeout, None

    def acquire(self, create=True):
        """Take the lock; ``create=False`` (check mode) never creates the file: returns False when it is missing.

        ``O_NOFOLLOW``: a symbolic link planted at the lock path would otherwise make this run create
        (or truncate the mode of) whatever file it points to.
        """
        try:
            self.fd = open_regular(self.path, os.O_RDWR | (os.O_CREAT if create else 0))
        except NotRegularFile as exc:
            raise StoreError("the lock file %s; refusing to use it. Remove it (nothing but this collection should "
                             "create it) and run again; nothing was changed" % exc)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not create:
                return False
            raise
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


class VaultFile(object):
    """The paths beside the vault file: the lock, the backup, the pending secret and the temp files."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.directory, self.name = os.path.split(self.path)
        self.lock_path = os.path.join(self.directory, ".%s.lock" % self.name)
        self.pending_path = os.path.join(self.directory, ".%s.pending" % self.name)
        self.backup_path = self.path + ".bak"
        self.tmp_prefix = ".%s." % self.name
        self.tmp_suffix = ".tmp"

    def lock(self, timeout, check_mode):
        """The held lock, or None in check mode when it cannot be had (check mode writes nothing, and never
        creates the lock file or the directory)."""
        if not check_mode:
            try:
                make_dirs(self.directory)
            except OSError as exc:
                raise StoreError("cannot create the directory %s for the vault file: %s; nothing was changed"
                                 % (self.directory, _os_error(exc)))
        if not os.path.isdir(self.directory):
            return None
        lock = FileLock(self.lock_path, timeout)
        try:
            return lock if lock.acquire(create=not check_mode) else None
        except (IOError, OSError) as exc:
            if check_mode:
                return None
            raise StoreError("cannot write in %s (lock file %s: %s); make the directory writable or choose another "
                             "vault_file; nothing was changed" % (self.directory, self.lock_path, _os_error(exc)))

    def remove_leftovers(self):
        """Temp files of a run that was killed mid-write (ciphertext or zeros only); call with the lock held.

        Only this file's own, exactly as :class:`TempFile` names them: ``.<name>.<8 random characters>.tmp``
        (mkstemp's random part: lower-case letters, digits and ``_``, never a dot). A sibling file named
        ``<name>.<more>`` (another vault or cursor file) has temp files ``.<name>.<more>.<random>.tmp``,
        which another run may hold reserved.
        """
        own = re.compile(re.escape(self.tmp_prefix) + r"[a-z0-9_]{8}" + re.escape(self.tmp_suffix))
        for name in os.listdir(self.directory):
            if own.fullmatch(name):
                unlink(os.path.join(self.directory, name))

    def reserve(self, sizes):
        """``{key: TempFile}`` of the given sizes; fails before the API call when there is no room."""
        reserved = {}
        try:
            for key, size in sizes.items():
                reserved[key] = TempFile(self.directory, self.tmp_prefix, self.tmp_suffix)
                reserved[key].reserve(size)
        except (IOError, OSError) as exc:
            for item in reserved.values():
                item.discard()
            raise StoreError("cannot write in %s (%s, reserving %d bytes for the new vault file, its backup and "
                             "the pending secret); free some space or make the directory writable, or choose "
                             "another vault_file; nothing was changed"
                             % (self.directory, _os_error(exc), sum(sizes.values())))
        return reserved


# -- one run -----------------------------------------------------------------------------------------

class StoreRun(object):
    """One store step, from the read to the write, under the lock (a context manager).

    ``open()`` reads the file and the pending secret and reserves the space (all before the API call);
    ``module_args()`` hands the module the secret to verify; ``finish()`` turns the module's result into
    the action's result and writes what changed.
    """

    def __init__(self, vault_file, keys, var, state="present", backup=True, check_mode=False):
        self.file, self.keys, self.var, self.state = vault_file, keys, var, state
        self.backup, self.check_mode = backup, check_mode
        self.lock, self.reserved = None, {}
        self.previous, self.mapping = None, {}
        self.stored = self.pending = None
        self.rewrite = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for item in self.reserved.values():
            item.discard()
        self.reserved = {}
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @property
    def known(self):
        """The secret to verify: a pending one was generated after the stored one (which that generation revoked)."""
        return self.pending or self.stored

    def open(self, lock_timeout):
        self.lock = self.file.lock(lock_timeout, self.check_mode)
        if self.lock is not None and not self.check_mode:
            self.file.remove_leftovers()
        self.previous, self.mapping = self.keys.read(self.file.path, "the vault file")
        self.stored, stored_unsafe = secret_of(self.mapping, self.var, self.file.path)
        self.pending = secret_of(self.keys.read(self.file.pending_path, "the pending secret file")[1], self.var,
                                 self.file.pending_path)[0]
        # Rewrite a live secret that is not in the file yet (pending), or that an older version stored untagged.
        self.rewrite = bool(self.pending and self.pending != self.stored) or bool(self.stored and not stored_unsafe)
        if not self.check_mode:
            probe = unsafe("x" * max(PROBE_SECRET_LENGTH, 2 * len(self.known or "")))
            sizes = dict(file=len(self.keys.encrypt(dict(self.mapping, **{self.var: probe}))),
                         pending=len(self.keys.encrypt({self.var: probe})))
            if self.backup and self.previous:
                sizes["backup"] = len(self.previous)
            self.reserved = self.file.reserve(sizes)
        return self

    def module_args(self, args, verify):
        args = dict(args)
        if self.state == "present":
            args.update(known_token=self.known or "", verify_known_token=verify)
        return args

    def finish(self, module_result):
        result = dict(vault_file=self.file.path, vault_var=self.var)
        for key in ("warnings", "deprecations"):
            if module_result.get(key):
                result[key] = module_result[key]
        if module_result.get("failed") or module_result.get("unreachable"):
            result.update(failed=True, changed=False, msg="%s (%s was not changed)"
                          % (module_result.get("msg", "the module failed"), self.file.path))
            # Not module_stdout: output that is not valid JSON could still hold a new secret.
            for key in ("operation", "reason", "exception", "module_stderr", "rc"):
                if key in module_result:
                    result[key] = module_result[key]
            return result

        for key in ("operation", "reason", "id", "created_at", "expired_at", "diff"):
            if key in module_result:
                result[key] = module_result[key]
        new_secret = module_result.get("token")
        live = new_secret or (self.known if result.get("operation") == "none" else None)
        new_mapping = None
        if self.state == "present" and live and (new_secret or self.rewrite):
            # Always !unsafe: a later play reading the variable must never render the server's string as a template.
            new_mapping = dict(self.mapping, **{self.var: unsafe(live)})
        elif self.state == "absent" and (self.var in self.mapping or self.pending):
            new_mapping = dict((key, value) for key, value in self.mapping.items() if key != self.var)

        if new_mapping is None and self.pending and not self.check_mode:
            # The run that kept it was killed after writing the file: the file already holds this secret.
            unlink(self.file.pending_path)
        if new_mapping is not None and not self.check_mode:
            failure = self._write(new_mapping, new_secret)
            if failure:
                result.update(failed=True, changed=True, msg="HCP Terraform answered (%s), but writing %s failed: %s"
                              % (result.get("operation"), self.file.path, failure))
                return result
        result["changed"] = bool(module_result.get("changed")) or new_mapping is not None
        result["file_changed"] = new_mapping is not None
        if self.state == "present" and live:
            # Never as ansible_facts: a fact cache (jsonfile, AWX/AAP) would write it to disk in clear.
            result["token"] = plain(live)
        return result

    def _write(self, new_mapping, new_secret):
        """The pending secret first, then the backup and the file; a message when the file could not be written."""
        kept = False
        if new_secret:
            # If the vault file cannot be written (or the run is killed first), the next run finds the new
            # secret here, encrypted, instead of a revoked token in the file.
            try:
                self.reserved.pop("pending").commit(self.keys.encrypt({self.var: unsafe(new_secret)}),
                                                    self.file.pending_path)
                fsync_dir(self.file.directory)
                kept = True
            except (IOError, OSError):
                kept = False
        try:
            if self.backup and self.previous:
                self.reserved.pop("backup").commit(self.previous, self.file.backup_path)
            self.reserved.pop("file").commit(self.keys.encrypt(new_mapping), self.file.path)
            fsync_dir(self.file.directory)
        except (IOError, OSError) as exc:
            if kept or (self.pending and not new_secret):
                return ("%s. The file still holds the previous content; the new secret is kept, encrypted, in %s: "
                        "run again once the file can be written, and it is verified and stored."
                        % (_os_error(exc), self.file.pending_path))
            return ("%s. The file still holds the previous content and the new secret could not be kept; run "
                    "again to generate and store a new token." % _os_error(exc))
        if kept or self.pending:
            unlink(self.file.pending_path)
            fsync_dir(self.file.directory)
        return None
