"""A background worker with a small bounded queue: slow work never blocks the producer.

The fusion node submits each synchronised set here, so model inference runs outside any lock the
subscription callbacks need. When inference falls behind, the oldest waiting item is dropped and
counted (newest data wins, as a real-time consumer wants).
"""
from __future__ import annotations

import threading
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
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self._work, self._on_error = work, on_error
        self._queue: deque[T] = deque()
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self.dropped = 0
        self.done = 0
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
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                item = self._take()
                self._busy = True
            try:
                self._work(item)
            except Exception as error:  # keep serving; the owner decides how to report
                if self._on_error is not None:
                    self._on_error(item, error)
            finally:
                with self._cond:
                    self._busy = False
                    self.done += 1
                    self._cond.notify_all()

    def _take(self):
        """The next unit of work (called with the lock held, queue not empty)."""
        return self._queue.popleft()


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
