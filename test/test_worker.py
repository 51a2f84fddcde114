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


def test_run_or_submit_runs_on_the_callers_thread_without_load():
    threads = []
    worker = LatestWorker(lambda item: threads.append(threading.get_ident()), max_pending=10, inline_factor=2.0)
    assert worker.run_or_submit(0) is True  # first offer, idle worker
    threading.Event().wait(0.01)  # far more than 2 x the (microsecond) work time
    assert worker.run_or_submit(1) is True
    worker.close()
    assert threads == [threading.get_ident()] * 2 and worker.inline == 2


def test_run_or_submit_queues_under_load_so_batches_still_form():
    from mmhpe_ros.runtime.worker import LatestBatchWorker

    batches = []

    def work(batch):
        threading.Event().wait(0.02)  # 20 ms of "inference"
        batches.append((list(batch), threading.get_ident()))

    worker = LatestBatchWorker(work, max_pending=10, inline_factor=2.0)
    assert worker.run_or_submit(0) is True  # ran here (20 ms): the average work time is now 20 ms
    offered = [worker.run_or_submit(item) for item in range(1, 6)]  # back to back: load
    assert worker.join_idle(timeout=5)
    worker.close()
    assert offered == [False] * 5
    assert batches[0] == ([0], threading.get_ident())
    later = [item for batch, thread in batches[1:] for item in batch]
    assert later == [1, 2, 3, 4, 5] and len(batches) < 6  # in order, and at least two shared a batch
    assert all(thread != threading.get_ident() for _, thread in batches[1:])


def test_run_or_submit_never_overlaps_a_running_item_and_zero_turns_it_off():
    gate, running, overlaps = threading.Event(), [], []

    def work(item):
        overlaps.append(len(running))
        running.append(item)
        gate.wait(5)
        running.remove(item)

    worker = LatestWorker(work, max_pending=10, inline_factor=2.0)
    worker.submit(0)
    while not worker._busy:
        threading.Event().wait(0.001)
    assert worker.run_or_submit(1) is False  # busy: queued, not run beside item 0
    gate.set()
    assert worker.join_idle(timeout=5)
    worker.close()
    assert overlaps == [0, 0]
    never = LatestWorker(lambda item: None, inline_factor=0)
    assert never.run_or_submit(0) is False
    assert never.join_idle(timeout=5)
    never.close()
    with pytest.raises(ValueError, match="inline_factor"):
        LatestWorker(lambda item: None, inline_factor=-1)
