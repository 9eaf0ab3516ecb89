# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Files written safely: never through a planted link, atomically, durably. For the export (dest,
cursor) and the Ansible Vault store (vault file, lock, pending secret).

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os
import stat
import tempfile

# Never follow a symbolic link at the last component (a planted link must not redirect or cut another
# file), never block on a planted FIFO, never leak the descriptor into a child process.
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
# What file systems that cannot sync a directory answer; anything else is a real failure.
_NO_DIRECTORY_SYNC = frozenset(getattr(errno, name) for name in ("EINVAL", "ENOTSUP", "EOPNOTSUPP")
                               if hasattr(errno, name))


class NotRegularFile(Exception):
    """The path is a symbolic link or not a regular file; the message names it and says which."""


def open_regular(path, flags, mode=0o600):
    """``os.open`` of a regular file, never through a symbolic link and never blocking on a FIFO.

    Raises :class:`NotRegularFile`, or ``OSError`` (``ENOENT`` when it does not exist, and the rest).
    """
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise NotRegularFile("%s is a symbolic link" % path)
        if exc.errno != errno.ENXIO:  # ENXIO: a FIFO nobody reads
            raise
        fd = None
    if fd is None or not stat.S_ISREG(os.fstat(fd).st_mode):
        if fd is not None:
            os.close(fd)
        raise NotRegularFile("%s is not a regular file" % path)
    return fd


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(directory):
    """Make a rename in ``directory`` durable. Raises, except where the file system cannot sync directories."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIRECTORY_SYNC:
            raise
    finally:
        os.close(fd)


class TempFile(object):
    """A 0600 temp file beside its target, renamed over the target in one step (:meth:`commit`).

    :meth:`reserve` claims its disk space ahead (before an API call whose answer must not be lost).
    """

    def __init__(self, directory, prefix, suffix=".tmp"):
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
        write_all(self.fd, bytes(size))

    def commit(self, data, target, mode=0o600):
        """Write ``data`` (over any reserved space), ``fsync`` it and rename it to ``target``. The caller
        syncs the directory (once for several renames). The temp file is gone on every path out."""
        fd, self.fd = self.fd, None
        try:
            try:
                os.fchmod(fd, mode)
                os.lseek(fd, 0, os.SEEK_SET)
                write_all(fd, data)
                os.ftruncate(fd, len(data))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.path, target)
        except BaseException:
            self.discard()
            raise
        self.path = None

    def discard(self):
        """Close and remove the temp file, whatever is left of it; never raises."""
        fd, path, self.fd, self.path = self.fd, self.path, None, None
        with contextlib.suppress(OSError):
            if fd is not None:
                os.close(fd)
        with contextlib.suppress(OSError):
            if path is not None:
                os.unlink(path)


def atomic_write(path, data):
    """Replace ``path`` with ``data`` (bytes), durably. A new file is 0600 whatever the umask; an existing
    file keeps its mode. A symbolic link at ``path`` is replaced, never followed."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        existing = os.lstat(path)
        mode = 0o600 if stat.S_ISLNK(existing.st_mode) else stat.S_IMODE(existing.st_mode)
    except OSError:
        mode = 0o600
    TempFile(directory, ".%s." % name).commit(data, path, mode)
    fsync_dir(directory)
