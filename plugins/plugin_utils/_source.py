# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The event source ``tfe.audit.audit_trail`` at work: poll, emit, record; and its events about itself.

Private to the collection (leading underscore): free to change between releases. The guarantees are in the
source's documentation and in docs/eda.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

from ansible.template import Templar

from ansible_collections.tfe.audit.plugins.module_utils import _feed
from ansible_collections.tfe.audit.plugins.module_utils._errors import FeedError, TfeError
from ansible_collections.tfe.audit.plugins.module_utils._untrusted import inert, inert_json, use_installed_check
from ansible_collections.tfe.audit.plugins.plugin_utils import _source_feed as feed
from ansible_collections.tfe.audit.plugins.plugin_utils._source_delivery import Delivery
from ansible_collections.tfe.audit.plugins.plugin_utils._source_options import Options, Problem, logger

# While a backlog is emitted, the state is written at least this often (seconds).
SAVE_EVERY = 1.0
# After a poll, wait this long at most for the engine to take the last event before writing the state.
SETTLE_LIMIT = 2.0
# While the token is stale, token_file (or the environment) is read this often (seconds).
STALE_CHECK_EVERY = 1.0


def _describe(exc):
    """A :class:`TfeError` as a problem, with a hint where the client's message has none."""
    message = str(exc)
    if exc.status == 404 and exc.kind == "http":
        message += (" (the token may be a user or team token, which HCP Terraform may answer with 404: use the "
                    "organization's audit trail token or an organization token; or the token's organization lacks the "
                    "audit-logging entitlement or has its audit trail turned off; or the host has no audit trail API: "
                    "it is not HCP Terraform)")
    return Problem(message, exc.kind if exc.status is None else "http", exc.status)


def _interrupt():
    raise KeyboardInterrupt()


class AuditTrailSource:
    """One running source: polls, emits, records."""

    def __init__(self, options: Options, queue, clock=time.monotonic):
        # The playbooks a rule starts may run another ansible-core than this one: every form of 2.18 to 2.21 is
        # broken anyway, and this one's own check has the last word on what is left.
        use_installed_check(Templar(loader=None).is_possibly_template)
        self.options = options
        self.censor = options.censor
        self._clock = clock
        self.position = feed.Position(options.state_file, options.since, options.lookback)
        self.delivery = Delivery(queue, options.feedback_queue, clock)
        self._client = None
        self._client_token = None
        self._stop = threading.Event()
        # While something fails: {"since": time, "failures": n}, per channel ("read": the audit trail, "state": the
        # state file); one error event when it starts, one recovered event when it ends.
        self.outages = {}
        self.stale_token = None      # the token HCP Terraform answered 401 to (compared, never shown)
        self._gap_reported = None
        self._silence_reported = False

    # -- events about the source ---------------------------------------------------------------

    async def _put(self, event):
        """Put an event about the source. Its messages may quote the server: censored, then made inert."""
        await self.delivery.put(inert(self.censor.value(event))[0])

    async def _failed(self, problem, channel="read"):
        logger.warning("%s", problem.message)
        outage = self.outages.get(channel)
        if outage is None:
            outage = self.outages[channel] = {"since": feed.now_text(), "failures": 0}
            await self._put({"tfe_audit_source_error": {
                "message": problem.message, "kind": problem.kind, "status": problem.status,
                "hostname": self.options.connection.base_url, "since": outage["since"]}})
        outage["failures"] += 1

    async def _recovered(self, channel="read"):
        outage = self.outages.pop(channel, None)
        if outage is None:
            return
        what = "reading the audit trail" if channel == "read" else "writing state_file"
        logger.info("%s again after %d failed attempt(s)", what, outage["failures"])
        await self._put({"tfe_audit_source_recovered": {
            "message": "%s again after %d failed attempt(s) since %s" % (what, outage["failures"], outage["since"]),
            "hostname": self.options.connection.base_url, "since": outage["since"], "recovered_at": feed.now_text(),
            "failures": outage["failures"]}})

    async def _token_refused(self, token, origin):
        if token == self.stale_token:
            return
        self.stale_token = token
        where = self.options.tokens.where(origin)
        then = ("The source reads token_file again before each poll." if origin == "token_file" else
                "A token from %s cannot change while the rulebook runs: give the new one and restart it (token_file "
                "is read again before each poll)." % where)
        message = ("HCP Terraform refused the token from %s (HTTP 401): it was regenerated, revoked or has expired, "
                   "or it is not an audit trail or organization token. %s" % (where, then))
        logger.warning("%s", message)
        await self._put({"tfe_audit_token_stale": {
            "message": message, "hostname": self.options.connection.base_url, "token_source": origin,
            "token_file": self.options.token_file, "at": feed.now_text()}})

    async def _gap(self, start, walk):
        span = feed.gap(start, walk, self.options.lookback)
        if not span or span[0] == self._gap_reported:
            return
        self._gap_reported = span[0]
        message = ("the source's position %s is older than the 14 days HCP Terraform keeps; events between %s and %s "
                   "may be lost" % (span[0], span[0], span[1]))
        logger.warning("%s", message)
        await self._put({"tfe_audit_gap": {"start": span[0], "end": span[1], "message": message,
                                           "hostname": self.options.connection.base_url}})

    async def _silence(self, start, walk):
        """Warn once (until events come again) when the trail listed nothing where events were delivered before."""
        message = feed.silence(start, walk, self.options.lookback)
        if message is None:
            self._silence_reported = self._silence_reported and not walk.listed
            return
        if self._silence_reported:
            return
        self._silence_reported = True
        logger.warning("%s", message)
        await self._put({"tfe_audit_source_warning": {"message": message, "kind": "silent_trail",
                                                      "hostname": self.options.connection.base_url,
                                                      "at": feed.now_text()}})

    async def _ahead(self, ahead):
        """Once for the events of a poll dated ahead of the controller's clock (each is emitted once)."""
        message = _feed.ahead_warning(len(ahead), ahead[0])
        logger.warning("%s", message)
        await self._put({"tfe_audit_source_warning": {"message": message, "kind": "ahead",
                                                      "hostname": self.options.connection.base_url,
                                                      "at": feed.now_text()}})

    # -- one poll ------------------------------------------------------------------------------

    def _client_for(self, token):
        if self._client is None or token != self._client_token:
            client = self.options.connection.client_for(token, warn=logger.warning, max_wait=self.options.max_wait)
            if self._client is not None:
                client.platform = self._client.platform  # the host did not change: no second platform check
                self._client.session.close()
            self._client, self._client_token = client, token
        return self._client

    async def poll(self):
        """Read what is new and emit it. Every failure becomes an event; nothing here raises but cancellation."""
        try:
            token, origin = self.options.tokens.read()
            if not token:
                raise Problem("no token: TFE_AUDIT_TRAIL_TOKEN and TFE_TOKEN are not set any more", "token")
        except Problem as problem:
            await self._failed(problem)
            return
        await self._save()  # what the engine took since the last poll
        start = self.position.start()
        try:
            walk, spool = await feed.read_new(self._client_for(token).read_audit_trail, start,
                                              self.options.page_size, self._stop, self.options.lookback)
        except TfeError as exc:
            if exc.status == 401:
                await self._token_refused(token, origin)
            else:
                await self._failed(_describe(exc))
            return
        except FeedError as exc:
            await self._failed(Problem(str(exc), "malformed"))
            return
        except Exception as exc:  # pylint: disable=broad-except  # the source keeps polling, and says why it could not
            await self._failed(Problem("reading the audit trail failed unexpectedly (%s); the source goes on polling"
                                       % type(exc).__name__, "internal"))
            return
        with spool:
            self.stale_token = None
            await self._recovered()
            await self._gap(start, walk)
            await self._silence(start, walk)
            await self._emit(spool, walk)

    def _event(self, key, line):
        """One audit event for the queue: censored, made inert, and the exact original beside it when that
        changed it, in a form no template engine reads. An event that cannot be read comes as the feed gives it
        (``tfe_audit_unreadable``: its bytes base64-encoded, and why)."""
        try:
            if key[0] is None:
                return inert(self._unreadable(json.loads(line.decode("utf-8"))))[0]
            text = self.censor.json_text(line.decode("utf-8"))
            audit, changed = inert_json(text)
        except Exception as exc:  # pylint: disable=broad-except  # delivered as it came, never dropped
            reason = "the source could not make it into an event (%s)" % type(exc).__name__
            wrapper = json.loads(_feed.unreadable_event(self.censor.raw(line), line, reason)[1])
            return inert(wrapper)[0]
        event = {"tfe_audit": audit}
        if changed:
            event["tfe_audit_original"] = base64.b64encode(text.encode("utf-8")).decode("ascii")
        return event

    def _unreadable(self, wrapper):
        """An event that cannot be read, the known secrets masked in its bytes too (``masked: true`` then)."""
        inner = wrapper[_feed.UNREADABLE]
        raw = base64.b64decode(inner["base64"])
        masked = self.censor.raw(raw)
        if masked != raw:
            inner.update(base64=base64.b64encode(masked).decode("ascii"), masked=True)
        inner["reason"] = self.censor.text(inner["reason"])
        return wrapper

    async def _emit(self, spool, walk):
        last_save, count = self._clock(), 0
        # emit() moves the position's emitted past each event as it yields it, before the put: a put cancelled
        # while waiting for room puts nothing, but then the source is ending and emitted no longer matters.
        for key, line in self.position.emit(spool, walk):
            await self.delivery.put(self._event(key, line), key)
            self.position.record(self.delivery.taken())
            count += 1
            if self._clock() - last_save >= SAVE_EVERY:
                await self._save()
                last_save = self._clock()
        if self.position.ahead:
            await self._ahead(self.position.ahead)
        if count:
            logger.debug("emitted %d audit event(s), now at %s", count, self.position.emitted.newest)
            # A rulebook stopped by a signal the JVM handles exits at once, without cancelling its sources: the
            # state written after a poll should hold every event of it.
            await self.delivery.wait_taken(SETTLE_LIMIT)
        await self._save()

    async def _save(self):
        self.position.record(self.delivery.taken())
        problem = self.position.save()
        if problem is not None:
            await self._failed(problem, channel="state")
        elif "state" in self.outages and not self.position.unsaved:
            await self._recovered(channel="state")

    # -- the loop ------------------------------------------------------------------------------

    def _delay(self, started):
        outage = self.outages.get("read")
        if outage is not None:  # back off from the end of the failed poll: 1, 2, 4 ... up to interval
            return min(self.options.interval, 2.0 ** min(outage["failures"] - 1, 16))
        return max(0.0, started + self.options.interval - self._clock())

    async def _wait(self, started):
        deadline = self._clock() + self._delay(started)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            if self.stale_token is None:
                await asyncio.sleep(remaining)
                return
            await asyncio.sleep(min(remaining, STALE_CHECK_EVERY))
            try:
                token = self.options.tokens.read()[0]
            except Problem:
                continue
            if token and token != self.stale_token:
                return  # a new token: poll now

    def _announce(self):
        options = self.options
        logger.info("reading the audit trail at %s every %ss, from %s%s; the engine's intake known by %s",
                    options.connection.base_url, options.interval,
                    "after " + self.position.timestamp if self.position.timestamp else "the oldest event kept",
                    ", state in %s" % options.state_file if options.state_file else "", self.delivery.mode)
        if self.delivery.feedback_queue is None and not self.delivery.depth_known:
            logger.warning("the depth of the queue ansible-rulebook gave the source cannot be read: state_file records "
                           "nothing. Give the source feedback: true and run ansible-rulebook with --persistence-id.")
        if options.feedback and options.feedback_queue is None:
            logger.warning("feedback is true, but ansible-rulebook handed the source no feedback queue (it does with "
                           "--persistence-id): what the engine took is inferred from the depth of the queue.")
        if options.token_given:
            logger.warning("the token argument is set: ansible-rulebook prints the arguments of its sources at -vv, "
                           "this token included. Give it in token_file, or in the environment variable "
                           "TFE_AUDIT_TRAIL_TOKEN, instead.")
        for warning in options.connection.warnings:  # plain http that allow_insecure_http let through
            logger.warning("%s", warning)

    async def run(self):
        """Poll every ``interval`` until cancelled; the state is written when cancelled."""
        log_filter = self.censor.log_filter()
        logger.addFilter(log_filter)
        self._announce()
        self.delivery.start()
        try:
            await self._save()
            while True:
                started = self._clock()
                await self.poll()
                await self._wait(started)
        except KeyboardInterrupt:
            # ansible-rulebook turns SIGINT and SIGTERM into KeyboardInterrupt wherever the main thread is. Landing
            # here, it would be taken for this source ending, and the rulebook would wait 60 s for pending work:
            # hand it back to the event loop, as if it had arrived while the loop waited.
            asyncio.get_running_loop().call_soon(_interrupt)
            raise asyncio.CancelledError() from None
        finally:  # cancelled (the rulebook stops): record what was taken; never a traceback from here
            self._stop.set()
            self.delivery.stop()
            self.position.record(self.delivery.taken())
            problem = self.position.save()
            if problem is not None:
                logger.error("%s", problem.message)
            if self._client is not None:
                self._client.session.close()
            logger.removeFilter(log_filter)
