# -*- coding: utf-8 -*-
"""What the source says and refuses at start, in the real engine: a literal token is warned about (ansible-rulebook
prints the source's arguments at -vv), a token quoted back by the server is masked, and a loopback http:// hostname
that a proxy from the environment would carry is refused before any request."""

import json
import socket
import threading
import time

from conftest import assert_clean, source_rulebook
from reliability import record

WARNING = "ansible-rulebook prints the arguments of its sources at -vv"


def test_a_literal_token_is_warned_about_and_a_quoted_one_masked(emulator_factory, rulebook):
    emu = emulator_factory("newest")
    secret = emu.regenerate_audit_trail_token("acme")["token"]
    # A server (or a proxy) quoting the request's header back in its error.
    emu.add_fault(method="GET", path="audit-trail", status=500,
                  body=json.dumps({"errors": [{"title": "rejected header Authorization: Bearer %s" % secret}]}))
    book = rulebook(source_rulebook(hostname=emu.url, token=secret, interval=1), verbosity=1).start()
    book.wait_for(lambda records: any("tfe_audit_source_recovered" in event for dummy, event in records), 60,
                  "the recovery")
    book.stop()
    text = book.text
    assert_clean(text)
    assert WARNING in text
    error = next(event["tfe_audit_source_error"] for dummy, event in book.records() if "tfe_audit_source_error" in event)
    assert error["message"].endswith("rejected header Authorization: Bearer ********")
    assert secret not in text, "the token in ansible-rulebook's output at -v"


class Proxy:
    """A listening socket standing for an HTTP proxy from the environment: it records what connects, answers nothing."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.server.getsockname()[1]
        self.received = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, dummy = self.server.accept()
            except OSError:
                return
            connection.settimeout(2)
            try:
                self.received.append(connection.recv(65536))
            except OSError:
                pass
            connection.close()

    def close(self):
        self.server.close()


def test_a_loopback_http_hostname_behind_an_environment_proxy_is_refused_at_start(emulator_factory, rulebook):
    emu = emulator_factory("newest")
    secret = emu.regenerate_audit_trail_token("acme")["token"]
    proxy = Proxy()
    try:
        book = rulebook(source_rulebook(hostname=emu.url, interval=1),
                        env={"TFE_AUDIT_TRAIL_TOKEN": secret, "http_proxy": proxy.url, "HTTP_PROXY": proxy.url,
                             "no_proxy": "", "NO_PROXY": ""}).start()
        deadline = time.monotonic() + 60
        while book.proc.poll() is None and time.monotonic() < deadline and not proxy.received:
            time.sleep(0.2)
        book.stop()
    finally:
        proxy.close()
    record("hostile", "event source: a loopback http:// hostname behind a proxy from the environment",
           outcome="refused at start" if not proxy.received else "SENT", code_execution=0, truncated=0,
           token_off_host=int(bool(proxy.received)))
    assert not proxy.received, "the request (and the token) went to the proxy"
    assert "allow_insecure_http" in book.text and "proxy" in book.text
    assert emu.requests == []
