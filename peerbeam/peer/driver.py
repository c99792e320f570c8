"""The loop every Python driver runs around a session machine.

Events are fed one at a time, in the order they happened, never from inside another
event's handling (a machine is not re-entrant); each gets the event loop's clock as `at`.
Results a driver has at once (a MAC checked, a chunk hashed) go to the front of the
queue, so that they reach the machine before anything that arrived meanwhile
(docs/protocol.md §14.0). The machine's one wake-up timer lives here too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

from ..transfer.machine import Action, Event, Machine

log = logging.getLogger(__name__)


class MachineDriver:
    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.loop = asyncio.get_running_loop()
        self._queue: deque[tuple[Event, Any]] = deque()
        self._feeding = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: set when the driver cannot go on (a bug, or the machine ended)
        self.stopped: asyncio.Future[None] = self.loop.create_future()

    def feed(self, event: Event, payload: Any = None, first: bool = False) -> None:
        """Hand an event to the machine (now, or right after the one being handled)."""
        event["at"] = self.loop.time()
        if first:
            self._queue.appendleft((event, payload))
        else:
            self._queue.append((event, payload))
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._queue:
                queued, data = self._queue.popleft()
                actions = self.machine.handle(queued)
                self.carry_out(queued, data, actions)
        except Exception as error:  # noqa: BLE001 - a bug must end the run, not hang it
            log.exception("session machine or driver failed")
            self._queue.clear()
            self.fail(error)
        finally:
            self._feeding = False

    def carry_out(self, event: Event, payload: Any, actions: list[Action]) -> None:
        for action in actions:
            handler = getattr(self, f"do_{action['type']}", None)
            if handler is None:
                raise NotImplementedError(f"{type(self).__name__} cannot {action['type']}")
            handler(action)

    def fail(self, error: BaseException) -> None:
        if not self.stopped.done():
            self.stopped.set_exception(error)

    def do_wake(self, action: Action) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(action["at"], self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.feed({"type": "tick"})

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work beside the machine; keep a reference; a crash ends the run."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            log.error("driver task failed", exc_info=error)
            self.fail(error)

    async def shut_down(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
