"""Diagnostics content as plain data: per-stream rate, age and counters, turned into statuses.

Nodes keep a :class:`StreamMonitor` per input, and every second turn what they know into
:class:`Status` entries, which ``nodes/messages.py`` copies into diagnostic_msgs/DiagnosticArray.
Times are the node's clock in nanoseconds (simulated time when replaying with use_sim_time).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping

NS_PER_S = 1e9


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Status:
    """One diagnostic_msgs/DiagnosticStatus: values are shown as key/value strings."""

    name: str
    level: Level
    message: str
    hardware_id: str = ""
    values: Mapping[str, str] = field(default_factory=dict)


class StreamMonitor:
    """Arrivals of one stream: rate over the last ``window_s`` seconds, age of the newest stamp.

    If the clock jumps backwards (a looping bag driving simulated time), the history restarts.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self._window_ns = int(window_s * NS_PER_S)
        self._arrivals: deque[int] = deque()
        self.count = 0
        self.last_stamp_ns: int | None = None

    def arrived(self, now_ns: int, stamp_ns: int) -> None:
        """A message with header stamp ``stamp_ns`` arrived at ``now_ns``."""
        if self._arrivals and now_ns < self._arrivals[-1]:
            self._arrivals.clear()
        self._arrivals.append(now_ns)
        self._trim(now_ns)
        self.count += 1
        self.last_stamp_ns = stamp_ns

    def rate_hz(self, now_ns: int) -> float:
        """Arrivals per second over the window (0 when fewer than two in it)."""
        self._trim(now_ns)
        if len(self._arrivals) < 2:
            return 0.0
        span = self._arrivals[-1] - self._arrivals[0]
        return (len(self._arrivals) - 1) * NS_PER_S / span if span > 0 else 0.0

    def age_s(self, now_ns: int) -> float | None:
        """Seconds from the newest message's stamp to ``now_ns``; None before the first message."""
        if self.last_stamp_ns is None:
            return None
        return (now_ns - self.last_stamp_ns) / NS_PER_S

    def _trim(self, now_ns: int) -> None:
        while self._arrivals and (now_ns - self._arrivals[0] > self._window_ns or now_ns < self._arrivals[0]):
            self._arrivals.popleft()


def stream_status(
    name: str,
    monitor: StreamMonitor,
    now_ns: int,
    *,
    stale_after_s: float,
    counters: Mapping[str, int | float] | None = None,
    hardware_id: str = "",
) -> Status:
    """Status of a stream: STALE if nothing ever came or nothing for ``stale_after_s``, else OK.

    Values: rate_hz, age_s (newest stamp to now), received, then ``counters`` (e.g. drops).
    """
    rate = monitor.rate_hz(now_ns)
    age = monitor.age_s(now_ns)
    values = {"rate_hz": f"{rate:.2f}", "age_s": "n/a" if age is None else f"{age:.3f}", "received": str(monitor.count)}
    values.update({key: _format(value) for key, value in (counters or {}).items()})
    if age is None:
        return Status(name, Level.STALE, "no messages yet", hardware_id, values)
    if age > stale_after_s:
        return Status(name, Level.STALE, f"no message for {age:.1f} s", hardware_id, values)
    return Status(name, Level.OK, f"{rate:.1f} Hz", hardware_id, values)


def _format(value: int | float) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
