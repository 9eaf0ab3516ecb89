# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""One step of the Ansible Vault store (``tfe.audit.tfe_audit_trail_token_vault_file``), from the read of the
vault file to the write of the new secret, under the lock beside the file.

Private to the collection (leading underscore): free to change between releases. Every message is for the
user and never holds a secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.tfe.audit.plugins.module_utils._files import fsync_dir
from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import os_error
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_files import unlink
from ansible_collections.tfe.audit.plugins.plugin_utils._vault_yaml import plain, secret_of, unsafe

# The reservation is sized for a secret much longer than any real token (about 90 characters).
PROBE_SECRET_LENGTH = 4096
# What the action's result takes from the module's, when the module ran (or failed) as itself.
_REPORTED = ("operation", "reason", "id", "created_at", "expired_at", "diff")
# Not module_stdout: output that is not valid JSON could still hold a new secret.
_REPORTED_ON_FAILURE = ("operation", "reason", "exception", "module_stderr", "rc")


class StoreRun:
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
            self.reserved = self.file.reserve(self._sizes())
        return self

    def _sizes(self):
        """What the writes after the API call may need, with room for a much longer secret."""
        probe = unsafe("x" * max(PROBE_SECRET_LENGTH, 2 * len(self.known or "")))
        sizes = dict(file=len(self.keys.encrypt(dict(self.mapping, **{self.var: probe}))),
                     pending=len(self.keys.encrypt({self.var: probe})))
        if self.backup and self.previous:
            sizes["backup"] = len(self.previous)
        return sizes

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
            result.update(_picked(module_result, _REPORTED_ON_FAILURE), failed=True, changed=False,
                          msg="%s (%s was not changed)" % (module_result.get("msg", "the module failed"), self.file.path))
            return result

        result.update(_picked(module_result, _REPORTED))
        new_secret = module_result.get("token")
        live = new_secret or (self.known if result.get("operation") == "none" else None)
        new_mapping = self._new_mapping(live, new_secret)
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

    def _new_mapping(self, live, new_secret):
        """The file's new variables, or None when the file stays as it is."""
        if self.state == "present" and live and (new_secret or self.rewrite):
            # Always !unsafe: a later play reading the variable must never render the server's string as a template.
            return dict(self.mapping, **{self.var: unsafe(live)})
        if self.state == "absent" and (self.var in self.mapping or self.pending):
            return dict((key, value) for key, value in self.mapping.items() if key != self.var)
        return None

    def _write(self, new_mapping, new_secret):
        """The pending secret first, then the backup and the file; a message when the file could not be written."""
        kept = bool(new_secret) and self._keep_pending(new_secret)
        try:
            if self.backup and self.previous:
                self.reserved.pop("backup").commit(self.previous, self.file.backup_path)
            self.reserved.pop("file").commit(self.keys.encrypt(new_mapping), self.file.path)
            fsync_dir(self.file.directory)
        except OSError as exc:
            if kept or (self.pending and not new_secret):
                return ("%s. The file still holds the previous content; the new secret is kept, encrypted, in %s: "
                        "run again once the file can be written, and it is verified and stored."
                        % (os_error(exc), self.file.pending_path))
            return ("%s. The file still holds the previous content and the new secret could not be kept; run "
                    "again to generate and store a new token." % os_error(exc))
        if kept or self.pending:
            unlink(self.file.pending_path)
            fsync_dir(self.file.directory)
        return None

    def _keep_pending(self, new_secret):
        """Whether the new secret is kept, encrypted, in the pending file: if the vault file cannot be written
        (or the run is killed first), the next run finds it there instead of a revoked token in the file."""
        try:
            self.reserved.pop("pending").commit(self.keys.encrypt({self.var: unsafe(new_secret)}),
                                                self.file.pending_path)
            fsync_dir(self.file.directory)
        except OSError:
            return False
        return True


def _picked(mapping, keys):
    return dict((key, mapping[key]) for key in keys if key in mapping)
