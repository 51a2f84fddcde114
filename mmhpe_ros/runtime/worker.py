"""A background worker with a small bounded queue: slow work never blocks the producer.

The fusion node submits each synchronised set here, so model inference runs outside any lock the
subscription callbacks need. When inference falls behind, the oldest waiting item is dropped and
counted (newest data wins, as a real-time consumer wants).

:meth:`LatestWorker.run_or_submit` saves the hand-over to the worker thread (a wake-up and a wait
for Python's GIL, ~0.4 ms in the node graph) when there is no load: it runs the item on the calling
thread if nothing is queued or running and items arrive at least ``inline_factor`` work times
apart. Under load items queue as with :meth:`~LatestWorker.submit`, so a batch worker still
batches them.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class LatestWorker(Generic[T]):
    """Runs ``work(item)`` on one thread for each submitted item, keeping at most ``max_pending``.

    ``on_error(item, exception)`` is called if ``work`` raises; the worker keeps going.
    """

    def __init__(
        self,
        work: Callable[[T], None],
        *,
        max_pending: int = 2,
        on_error: Callable[[T, BaseException], None] | None = None,
        name: str = "worker",
        inline_factor: float = 2.0,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if not inline_factor >= 0:
            raise ValueError(f"inline_factor must be >= 0, got {inline_factor}")
        self._work, self._on_error = work, on_error
        self._queue: deque[T] = deque()
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self.inline_factor = inline_factor
        self._work_s = 0.0  # moving average of one call of ``work``
        self._last_offer: float | None = None  # perf_counter of the last run_or_submit
        self.dropped = 0
        self.done = 0
        self.inline = 0  # items run_or_submit ran on the caller's thread
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("worker is closed")
            if len(self._queue) >= self._max_pending:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(item)
            self._cond.notify()

    def run_or_submit(self, item: T) -> bool:
        """Run ``item`` on the calling thread and return True when the worker is idle and the
        previous offer came at least ``inline_factor`` x the average work time ago (no load);
        otherwise :meth:`submit` it and return False. Calls must come from one thread at a time.
        """
        now = time.perf_counter()
        quiet = self._last_offer is None or now - self._last_offer >= self.inline_factor * self._work_s
        self._last_offer = now
        with self._cond:
            run_here = quiet and self.inline_factor > 0 and not (self._closed or self._queue or self._busy)
            if run_here:
                self._busy = True
        if not run_here:
            self.submit(item)
            return False
        self.inline += 1
        self._call(self._unit(item))
        return True

    def join_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted item has been handled; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the current item, drop the rest, stop the thread."""
        with self._cond:
            self._closed = True
            self.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: (self._queue and not self._busy) or self._closed)
                if self._closed:
                    return
                item = self._take()
                self._busy = True
            self._call(item)

    def _call(self, unit) -> None:
        """``work(unit)`` (the caller has set ``_busy``), then mark the worker idle."""
        start = time.perf_counter()
        try:
            self._work(unit)
        except Exception as error:  # keep serving; the owner decides how to report
            if self._on_error is not None:
                self._on_error(unit, error)
        finally:
            elapsed = time.perf_counter() - start
            with self._cond:
                self._work_s = elapsed if not self.done else 0.8 * self._work_s + 0.2 * elapsed
                self._busy = False
                self.done += 1
                self._cond.notify_all()

    def _take(self):
        """The next unit of work (called with the lock held, queue not empty)."""
        return self._queue.popleft()

    def _unit(self, item: T):
        """The unit of work of one item run outside the queue."""
        return item


class LatestBatchWorker(LatestWorker[T]):
    """A :class:`LatestWorker` whose ``work`` gets every waiting item at once, as a list.

    For work that is cheaper per item in batches (model inference): when it falls behind, the
    backlog (at most ``max_pending`` items) is handled in one call rather than dropped.
    ``on_error`` receives that list. ``done`` counts calls.
    """

    def _take(self):
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def _unit(self, item: T):
        return [item]
