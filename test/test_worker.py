"""Background worker: runs items in order, drops the oldest when behind, survives errors."""
import threading

import pytest

from mmhpe_ros.runtime.worker import LatestWorker


def test_runs_every_item_in_order_when_keeping_up():
    done = []
    worker = LatestWorker(done.append, max_pending=100)
    for i in range(50):
        worker.submit(i)
    assert worker.join_idle(timeout=5)
    worker.close()
    assert done == list(range(50)) and worker.dropped == 0


def test_drops_oldest_waiting_items_when_behind():
    gate, done = threading.Event(), []

    def work(item):
        gate.wait(5)
        done.append(item)

    worker = LatestWorker(work, max_pending=2)
    worker.submit(0)
    while not worker._busy:  # item 0 is being worked on
        threading.Event().wait(0.001)
    for i in range(1, 6):
        worker.submit(i)
    gate.set()
    assert worker.join_idle(timeout=5)
    worker.close()
    assert done == [0, 4, 5] and worker.dropped == 3


def test_errors_are_reported_and_work_continues():
    errors, done = [], []

    def work(item):
        if item == 1:
            raise ValueError("bad item")
        done.append(item)

    worker = LatestWorker(work, max_pending=10, on_error=lambda item, e: errors.append((item, str(e))))
    for i in range(3):
        worker.submit(i)
    assert worker.join_idle(timeout=5)
    worker.close()
    assert done == [0, 2] and errors == [(1, "bad item")]
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(4)
