"""The one ``main()`` body every node executable shares, and the executors of `mmhpe-ros run`.

A node process is the plain rclpy idiom: ``rclpy.init()``, ``rclpy.spin(node)`` until Ctrl-C,
SIGTERM or an external shutdown (``KeyboardInterrupt`` / ``ExternalShutdownException``), then
``destroy_node()`` and ``rclpy.try_shutdown()``, then ``os._exit``; it also stops when its parent
(ros2 launch) ends without stopping it (:func:`end_with_parent`). That clean-up is bounded
(:func:`bounded_cleanup`): a stop signal more than ``STOP_GRACE_S`` after it began ends the
process at once, and after ``cleanup_timeout_s()`` (``$MMHPE_ROS_CLEANUP_TIMEOUT_S``, default
5 s) the process ends whatever it is stuck in (DDS clean-up has been seen to hang for minutes
with SIGINT and SIGTERM ignored).

`mmhpe-ros run` composes the nodes in one process, one executor per node in a thread of its own
(run_command.GraphSpinner): rclpy's EventsExecutor where rclpy has it (Kilted and later), else its
SingleThreadedExecutor; ``--executor`` or ``$MMHPE_ROS_EXECUTOR`` choose.
"""
from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from rclpy.node import Node

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; what ros2 launch sends after SIGINT
EXECUTORS = ("events", "single")
EXECUTOR_ENV = "MMHPE_ROS_EXECUTOR"
CLEANUP_TIMEOUT_ENV = "MMHPE_ROS_CLEANUP_TIMEOUT_S"
CLEANUP_TIMEOUT_S = 5.0  # ros2 launch sends SIGTERM 5 s after SIGINT, SIGKILL 5 s later
STOP_GRACE_S = 1.0  # a stop signal sooner than this after the clean-up began is the same request again
PR_SET_PDEATHSIG = 1  # linux/prctl.h
SPIN_PERIOD_S = 0.1  # how long one spin_once() may wait, so a stop request is seen this soon


def cleanup_timeout_s() -> float:
    """``$MMHPE_ROS_CLEANUP_TIMEOUT_S`` if set (> 0), else ``CLEANUP_TIMEOUT_S``."""
    try:
        value = float(os.environ.get(CLEANUP_TIMEOUT_ENV, CLEANUP_TIMEOUT_S))
    except ValueError:
        return CLEANUP_TIMEOUT_S
    return value if value > 0 else CLEANUP_TIMEOUT_S


@contextmanager
def bounded_cleanup(timeout_s: float | None = None, grace_s: float = STOP_GRACE_S) -> Iterator[None]:
    """A clean-up that cannot keep the process alive: a SIGINT/SIGTERM more than ``grace_s`` after
    it began exits at once (``os._exit(128 + signal)``; sooner it is the same Ctrl-C again, as a
    terminal and ros2 launch both send one), and after ``timeout_s`` faulthandler's watchdog (a C
    thread: it works while the main thread is stuck in C code holding the GIL) prints every
    thread's stack and exits with status 1. Main thread only."""
    timeout_s = cleanup_timeout_s() if timeout_s is None else timeout_s
    began = time.monotonic()

    def on_stop_signal(signum: int, frame: Any) -> None:
        if time.monotonic() - began > grace_s:
            os.write(2, f"clean-up interrupted by signal {signum}: exiting now\n".encode())
            os._exit(128 + signum)

    previous = {signum: signal.signal(signum, on_stop_signal) for signum in STOP_SIGNALS}
    faulthandler.dump_traceback_later(timeout_s, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        for signum, handler in previous.items():
            if signal.getsignal(signum) is on_stop_signal:  # rclpy's shutdown may have restored its own
                signal.signal(signum, handler)


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None, *, exit_process: bool = True) -> int:
    """Run one node until Ctrl-C, SIGTERM or an external shutdown, then destroy it and shut rclpy
    down within :func:`bounded_cleanup`'s bounds; then end the process (``exit_process``) with
    ``os._exit``: 0, or 1 if the node failed (its traceback printed). Interpreter shutdown is
    skipped: it ran library exit handlers that were seen to hang for more than 5 s after a clean
    ``destroy_node()``. Returns the status instead without ``exit_process``.

    ``rclpy.init()``/``try_shutdown()`` rather than ``with rclpy.init()``, which Humble and Jazzy
    lack.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    code = 0
    node: Node | None = None
    end_with_parent()
    try:
        try:
            rclpy.init(args=args)
            executor = SingleThreadedExecutor()  # before the node: a Ctrl-C once it is up cannot cut this short
            node = make_node()
            rclpy.spin(node, executor)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:  # noqa: BLE001 - reported, then the clean-up still runs
            # A stop signal shuts the context down under a message being taken: rclpy's take then
            # raises (e.g. RuntimeError "Unable to convert call argument") instead of
            # ExternalShutdownException. After a shutdown that is a clean stop, not a failure.
            if rclpy.ok():
                traceback.print_exc()
                code = 1
        with bounded_cleanup():
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    except KeyboardInterrupt:  # a second Ctrl-C before the clean-up's own handlers were in place
        pass
    if exit_process:
        exit_now(code)
    return code


def end_with_parent(signum: int = signal.SIGTERM) -> None:
    """Have Linux send ``signum`` to this process when its parent ends (``prctl(PR_SET_PDEATHSIG)``).

    ros2 launch stopped with SIGTERM or SIGKILL, or crashing, leaves its processes running (launch
    itself warns "using SIGTERM can result in orphaned processes"); with this a node then stops as
    on SIGTERM. The signal follows the end of the parent's thread that started this process: the
    main thread for ros2 launch, ros2 run and `mmhpe-ros run --processes`. Nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the request was in place
        os.kill(os.getpid(), signum)


def exit_now(code: int) -> None:
    """Flush Python's and C's output buffers, then end the process at once (no exit handlers)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
    os._exit(code)


# -- executors of the composed graph (`mmhpe-ros run`) ------------------------------------------

def events_executor_available() -> bool:
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401
    except ImportError:
        return False
    return True


def executor_kind(requested: str | None = None) -> str:
    """``requested``, else ``$MMHPE_ROS_EXECUTOR``, else ``events`` where rclpy has it, else ``single``.

    ValueError for an unknown kind, or for ``events`` on an rclpy without it.
    """
    kind = requested or os.environ.get(EXECUTOR_ENV) or ("events" if events_executor_available() else "single")
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r} (from {'--executor' if requested else EXECUTOR_ENV}); "
                         f"choose one of {', '.join(EXECUTORS)}")
    if kind == "events" and not events_executor_available():
        raise ValueError("this rclpy has no EventsExecutor (ROS 2 Kilted or later); use the 'single' executor")
    return kind


def make_executor(kind: str | None = None) -> Any:
    """A new executor of :func:`executor_kind` (``kind``)."""
    if executor_kind(kind) == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor()


def spin_until(executor: Any, stop: Callable[[], bool]) -> None:
    """Run the executor's callbacks until ``stop()`` is true or rclpy's context has shut down.

    ``spin_once`` in a loop rather than ``spin()``: rclpy 9.1.2's ``EventsExecutor.spin()`` keeps
    the GIL and runs no callbacks (measured: a 100 Hz timer never fired, other threads stalled).
    """
    while not stop() and executor.context.ok():
        executor.spin_once(timeout_sec=SPIN_PERIOD_S)
