# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the rule engine has taken of the events the source put on its queue. Two ways to know, chosen at start:

* **Acknowledgements** (the rulebook gives the source ``feedback: true`` and ansible-rulebook runs with
  ``--persistence-id``): ansible-rulebook hands the source ``eda_feedback_queue`` and puts each of the source's
  events on it once the rule engine has received it (``lang.post``), whether a rule matched or not. An event is
  taken when it is acknowledged. The engine takes events in the order they were put and acknowledges nothing it
  failed to post, so an acknowledgement of a later event settles the ones before it as well.
* **The depth of the queue** (otherwise): ansible-rulebook gives a source a queue that holds one event (its
  ``FilteredQueue`` keeps an ``asyncio.Queue(1)`` as ``.queue``). The queue is FIFO and holds ``n`` items, the last
  ``n`` put by anyone, so every event of ours put before our last ``n`` has left it. ansible-rulebook 1.3.2 hands
  an event to the rule engine in the same step as it takes it from the queue. A queue whose depth cannot be read
  lets nothing count as taken.

Private to the collection (leading underscore): free to change between releases.
"""

from __future__ import annotations

import asyncio
import collections
import time


class Delivery:
    """Puts events on the engine's queue and says which of them the engine has taken since it was last asked."""

    def __init__(self, queue, feedback_queue=None, clock=time.monotonic):
        self.queue = queue
        self.feedback_queue = feedback_queue
        self._clock = clock
        self._pending = collections.deque()  # (event, key) put and not yet taken, oldest first
        self._taken = []                     # keys taken since the last call of taken()
        self._listener = None

    @property
    def mode(self):
        return "acknowledgements" if self.feedback_queue is not None else "queue depth"

    def start(self):
        """Begin to read acknowledgements (the engine waits until each is read: the reader runs all the time)."""
        if self.feedback_queue is not None and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def stop(self):
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None

    async def put(self, event, key=None):
        """Put ``event`` on the queue; ``key`` comes back from :meth:`taken` once the engine has it. A put that
        is cancelled while it waits for room put nothing, so nothing is pending for it."""
        await self.queue.put(event)
        self._pending.append((event, key))

    def taken(self):
        """The keys of the events the engine has taken since the last call, oldest first."""
        if self.feedback_queue is None:
            self._settle(len(self._pending) - self._queued())
        keys, self._taken = self._taken, []
        return keys

    @property
    def pending(self):
        """Whether an event put is not known to be taken yet."""
        if self.feedback_queue is None:
            self._settle(len(self._pending) - self._queued())
        return bool(self._pending)

    async def wait_taken(self, limit):
        """Wait (at most ``limit`` seconds) until the engine has taken every event put."""
        deadline = self._clock() + limit
        while self.pending and self._clock() < deadline:
            await asyncio.sleep(0.01)

    def _settle(self, count):
        for dummy in range(max(0, min(count, len(self._pending)))):
            self._taken.append(self._pending.popleft()[1])

    def _queued(self):
        """How many items the queue holds now; all that were put when it cannot tell (nothing is then taken)."""
        inner = self.queue if hasattr(self.queue, "qsize") else getattr(self.queue, "queue", None)
        try:
            return max(0, int(inner.qsize()))
        except (AttributeError, TypeError, ValueError):
            return len(self._pending)

    @property
    def depth_known(self):
        """Whether the queue's depth can be read (ansible-rulebook's FilteredQueue keeps its queue as ``.queue``)."""
        inner = self.queue if hasattr(self.queue, "qsize") else getattr(self.queue, "queue", None)
        return callable(getattr(inner, "qsize", None))

    async def _listen(self):
        while True:
            acknowledged = await self.feedback_queue.get()
            # ansible-rulebook acknowledges the very dict that was put; a filter of the rulebook may have put a
            # copy instead, and then the acknowledgement is the oldest event's (the engine keeps the order).
            position = next((index for index, (event, dummy) in enumerate(self._pending) if event is acknowledged), 0)
            self._settle(position + 1)
