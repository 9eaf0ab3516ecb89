# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The files beside an Ansible Vault vars file: its directory, the lock, the temp files that reserve space
before the API call (:class:`_files.TempFile`, the same atomic write the export uses), the backup and the
pending secret.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import re
import time

from ansible_collections.tfe.audit.plugins.module_utils._files import NotRegularFile, TempFile, open_regular
from ansible_collections.tfe.audit.plugins.plugin_utils._store_error import StoreError, os_error


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
        except FileExistsError:
            pass


def unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class FileLock:
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
        except FileNotFoundError:
            if not create:
                return False
            raise
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    self.release()  # the descriptor is not left open
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


class VaultFile:
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
                                 % (self.directory, os_error(exc)))
        if not os.path.isdir(self.directory):
            return None
        lock = FileLock(self.lock_path, timeout)
        try:
            return lock if lock.acquire(create=not check_mode) else None
        except OSError as exc:
            if check_mode:
                return None
            raise StoreError("cannot write in %s (lock file %s: %s); make the directory writable or choose another "
                             "vault_file; nothing was changed" % (self.directory, self.lock_path, os_error(exc)))

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
        except OSError as exc:
            for item in reserved.values():
                item.discard()
            raise StoreError("cannot write in %s (%s, reserving %d bytes for the new vault file, its backup and "
                             "the pending secret); free some space or make the directory writable, or choose "
                             "another vault_file; nothing was changed"
                             % (self.directory, os_error(exc), sum(sizes.values())))
        return reserved
