"""Executors and the one ``main()`` body every node executable shares: init, spin, clean shutdown.

The executor is rclpy's EventsExecutor where rclpy has it (Kilted and later), else its
SingleThreadedExecutor. The events executor dispatches from C++ with no wait set to rebuild per
callback: the WiFi node's 1,000 CSI packets/s at x10 replay then leave time for the rest of a
one-process graph (docs/nodes.md, Measured). ``$MMHPE_ROS_EXECUTOR`` (``events`` or ``single``)
or ``mmhpe-ros run --executor`` choose one.
"""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from rclpy.node import Node

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; what ros2 launch sends after SIGINT
EXECUTORS = ("events", "single")
EXECUTOR_ENV = "MMHPE_ROS_EXECUTOR"
SPIN_PERIOD_S = 0.1  # how long one spin_once() may wait, so a stop request is seen this soon


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


def init_without_signal_handlers(args: list[str] | None = None) -> None:
    """``rclpy.init()`` without rclpy's SIGINT/SIGTERM handlers, which shut the context down under
    callbacks still running (each then fails to publish, and the events executor logs it as FATAL).
    The caller stops the executors first, then shuts rclpy down."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)


@contextmanager
def stop_signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while a graph shuts down, so that another Ctrl-C cannot cut the
    clean-up short (an executor destroyed while it spins aborts the process). Every step of the
    clean-up has a timeout. Main thread only."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StopRequest:
    """Set by SIGINT or SIGTERM, which then interrupt nothing: the spin loop sees it after the running
    callback. A signal more than ``FORCE_AFTER_S`` after the first raises KeyboardInterrupt, for a
    node stuck in a callback; sooner it is the same request again (Ctrl-C reaches every process of
    the terminal's group, and ros2 launch or `mmhpe-ros run --processes` send SIGINT as well)."""

    FORCE_AFTER_S = 2.0

    def __init__(self) -> None:
        self.requested_at: float | None = None
        self.wake: Callable[[], None] | None = None  # the executor's, so it stops waiting at once
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def _on_signal(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.requested_at is not None:
            if now - self.requested_at > self.FORCE_AFTER_S:
                raise KeyboardInterrupt
            return
        self.requested_at = now
        if self.wake is not None:
            self.wake()


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Run one node until Ctrl-C, SIGTERM or an external shutdown, then destroy it and shut rclpy down.

    ``rclpy.init()``/``try_shutdown()`` rather than ``with rclpy.init()``, which Humble and Jazzy
    lack.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException

    try:
        kind = executor_kind()
    except ValueError as error:
        raise SystemExit(f"{getattr(make_node, '__name__', 'node')}: {error}") from None
    init_without_signal_handlers(args)
    stop = StopRequest()
    node: Node | None = None
    executor: Any = None
    try:
        executor = make_executor(kind)
        stop.wake = executor.wake
        node = make_node()
        executor.add_node(node)
        spin_until(executor, lambda: stop.requested)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():  # a real error; not a callback cut short by an external shutdown
            raise
    finally:
        with stop_signals_ignored():
            if executor is not None:
                executor.shutdown()
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
