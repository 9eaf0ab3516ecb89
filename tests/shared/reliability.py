# -*- coding: utf-8 -*-
"""Shared pieces of the reliability suites: measurements for docs/RELIABILITY.md.

Each suite asserts its outcome and also records a row (suite, case, outcome, attempts, seconds,
...) to the JSON-lines file named by ``TFE_AUDIT_RELIABILITY_RESULTS`` when it is set
(``make reliability-report`` sets it, then renders the report from the rows).
"""

import json
import os
import time

RESULTS_ENV = "TFE_AUDIT_RELIABILITY_RESULTS"


def record(suite, case, **fields):
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    row = dict(suite=suite, case=case, recorded_at=time.time(), **fields)
    with open(path, "a") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")


class Stopwatch:
    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = round(time.monotonic() - self.started, 2)


# A site hook for the module processes of a run: names under .invalid answer NXDOMAIN without
# asking the machine's resolver, so the "unknown host" case stays on loopback.
FAKE_RESOLVER = '''
import socket
_real_getaddrinfo = socket.getaddrinfo
def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, (str, bytes)) and (host.decode() if isinstance(host, bytes) else host).endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = _getaddrinfo
'''


def write_fake_resolver(directory):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(FAKE_RESOLVER)
    return directory
