"""One queue for all model work on a server: one job at a time, first come, first served.

Every browser session of a classroom server runs its forwards in its own thread, and each forward uses all of
torch's threads: two at once on a 2-core machine fight over the cores and both finish later than one after the other
would. So model work runs through `COMPUTE.slot()`; a session that must wait learns how many jobs are ahead of it.
Long jobs (training) take the slot one step at a time, so other sessions' forwards slip in between. Nothing here
changes a process-wide setting such as torch's thread count.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ComputeQueue:
    def __init__(self):
        self._changed = threading.Condition()
        self._waiting: deque[object] = deque()  # tickets in arrival order
        self._owner: int | None = None  # thread id of the job running now
        self._depth = 0  # nested slots of that thread (a page's trace reading a layer inside its own job)
        self._local = threading.local()  # per thread: who to tell about waiting (see report_waits)

    def report_waits(self, on_wait: Callable[[int], None] | None) -> None:
        """Calls `on_wait(jobs ahead)` from this thread's later waits (0 once its turn has come), e.g. to show a
        session that it is queued, without every caller of slot() having to know the page."""
        self._local.on_wait = on_wait

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
        """Hold the compute slot for the block. While others are ahead, `on_wait(jobs ahead)` is called about twice
        a second from this thread (e.g. to show "queued" on the page). Re-entrant within one thread."""
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
                nested = True
            else:
                nested = False
                ticket = object()
                self._waiting.append(ticket)
        if not nested:
            self._wait_for_turn(ticket, me, on_wait or getattr(self._local, "on_wait", None))
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._changed.notify_all()

    def _wait_for_turn(self, ticket: object, me: int, on_wait) -> None:
        told = 0  # jobs ahead, as last told to on_wait
        try:
            while True:
                with self._changed:
                    if self._is_turn(ticket):
                        self._waiting.popleft()
                        self._owner, self._depth = me, 1
                        break
                    ahead = self._waiting.index(ticket) + (self._owner is not None)
                if on_wait is not None and ahead != told:
                    on_wait(ahead)  # outside the lock: it may draw on a page, which takes time
                    told = ahead
                with self._changed:
                    if not self._is_turn(ticket):
                        self._changed.wait(0.5)
        except BaseException:  # a rerun or a closed session stops the wait: give the place up
            with self._changed:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._changed.notify_all()
            raise
        if told:
            on_wait(0)

    def _is_turn(self, ticket: object) -> bool:
        return self._owner is None and self._waiting[0] is ticket

    def jobs(self) -> int:
        """Jobs running or waiting now."""
        with self._changed:
            return len(self._waiting) + (self._owner is not None)


COMPUTE = ComputeQueue()  # the server's one queue
