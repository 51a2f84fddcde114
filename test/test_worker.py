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


def test_run_here_if_idle_runs_in_the_caller_only_when_nothing_waits():
    import threading
    import time

    from mmhpe_ros.runtime.worker import LatestBatchWorker

    gate, calls = threading.Event(), []

    def work(batch):
        calls.append((threading.current_thread().name, list(batch)))
        if batch == [1]:
            gate.wait(5)

    worker = LatestBatchWorker(work, max_pending=4, name="inference")
    assert worker.run_here_if_idle(0)  # idle: done here, at once
    assert calls == [(threading.current_thread().name, [0])]
    worker.submit(1)  # the worker thread takes it and blocks on the gate
    while not worker._busy:
        time.sleep(0.001)
    assert not worker.run_here_if_idle(2)  # busy: the caller must submit instead
    worker.submit(2)
    gate.set()
    assert worker.join_idle(5)
    assert calls[1:] == [("inference", [1]), ("inference", [2])] and worker.done == 3
    errors = []
    failing = LatestBatchWorker(lambda batch: 1 / 0, on_error=lambda batch, e: errors.append((batch, type(e))))
    assert failing.run_here_if_idle(7) and errors == [([7], ZeroDivisionError)]
    assert failing.join_idle(1)  # idle again after the error
    worker.close()
    failing.close()
