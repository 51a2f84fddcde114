"""Bag replay scheduling: original timing scaled by a rate, start offset, loop, pause/resume.

No ROS here: :class:`BagPlayer` reads ``(topic, bag time, bytes)`` messages from a callable and
hands each to a ``publish`` callable at its due wall time; the replayer node supplies a rosbags
reader and rclpy publishers. :class:`ReplayClock` is the time arithmetic both use (and /clock).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

NS_PER_S = 1_000_000_000

Message = tuple[str, int, bytes]  # topic, bag time (ns), serialized message (CDR)


class ReplayClock:
    """Maps bag time to wall time for a player running at ``rate`` x real time, pausable.

    Anchored by :meth:`start` (bag time ``b0`` plays at wall time ``w0``); rate changes and pauses
    re-anchor so that bag time stays continuous. Not thread-safe on its own: the player locks.
    """

    def __init__(self, rate: float = 1.0) -> None:
        self._rate = _check_rate(rate)
        self._bag0 = 0
        self._wall0 = 0
        self._paused_at: int | None = None  # bag time frozen while paused

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def start(self, bag_ns: int, wall_ns: int) -> None:
        """Bag time ``bag_ns`` plays at wall time ``wall_ns`` (a pause stays in effect)."""
        self._bag0, self._wall0 = bag_ns, wall_ns
        if self._paused_at is not None:
            self._paused_at = bag_ns

    def bag_time(self, wall_ns: int) -> int:
        """Bag time being played at ``wall_ns`` (frozen while paused)."""
        if self._paused_at is not None:
            return self._paused_at
        return self._bag0 + round((wall_ns - self._wall0) * self._rate)

    def wall_time(self, bag_ns: int) -> int | None:
        """Wall time at which bag time ``bag_ns`` is due; None while paused."""
        if self._paused_at is not None:
            return None
        return self._wall0 + round((bag_ns - self._bag0) / self._rate)

    def set_rate(self, rate: float, wall_ns: int) -> None:
        rate = _check_rate(rate)
        if self._paused_at is None:
            self._bag0, self._wall0 = self.bag_time(wall_ns), wall_ns
        self._rate = rate

    def pause(self, wall_ns: int) -> None:
        if self._paused_at is None:
            self._paused_at = self.bag_time(wall_ns)

    def resume(self, wall_ns: int) -> None:
        if self._paused_at is not None:
            self._bag0, self._wall0 = self._paused_at, wall_ns
            self._paused_at = None


class BagPlayer:
    """Publishes a bag's messages at their original times (scaled), optionally looping.

    ``read(from_ns)`` yields the messages with bag time >= ``from_ns`` in time order;
    ``start_ns``/``end_ns`` are the bag's first and last message times. Playback starts at
    ``start_ns + start_offset_s``; with ``loop`` it restarts there after the last message, and
    original stamps are kept (so stamps and /clock jump back, as with ``ros2 bag play --loop``).
    :meth:`run` blocks until the end (or :meth:`stop`); the other methods are thread-safe.
    """

    def __init__(
        self,
        read: Callable[[int], Iterable[Message]],
        start_ns: int,
        end_ns: int,
        publish: Callable[[str, bytes], None],
        *,
        rate: float = 1.0,
        start_offset_s: float = 0.0,
        loop: bool = False,
        paused: bool = False,
        now_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if end_ns < start_ns:
            raise ValueError(f"bag end {end_ns} ns is before its start {start_ns} ns")
        offset_ns = round(start_offset_s * NS_PER_S)
        if not 0 <= offset_ns <= end_ns - start_ns:
            raise ValueError(
                f"start_offset {start_offset_s} s is outside the bag's {(end_ns - start_ns) / NS_PER_S:.3f} s"
            )
        self._read, self._publish, self._now = read, publish, now_ns
        self.first_ns = start_ns + offset_ns
        self.end_ns = end_ns
        self.loop = loop
        self.clock = ReplayClock(rate)
        self.clock.start(self.first_ns, now_ns())
        if paused:
            self.clock.pause(now_ns())
        self.published = 0
        self.loops = 0  # completed passes through the bag
        self._stopped = False
        self._cond = threading.Condition()

    def run(self) -> None:
        """Play until the end of the bag (forever with ``loop``) or until :meth:`stop`."""
        while True:
            with self._cond:
                self.clock.start(self.first_ns, self._now())
            for topic, stamp_ns, data in self._read(self.first_ns):
                if not self._wait_until_due(stamp_ns):
                    return
                self._publish(topic, data)
                self.published += 1
            self.loops += 1
            if not self.loop or self._stopped:
                return

    def bag_now(self) -> int:
        """The bag time being played now (for /clock)."""
        with self._cond:
            return self.clock.bag_time(self._now())

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self.clock.pause(self._now())
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self.clock.resume(self._now())
            self._cond.notify_all()

    def set_rate(self, rate: float) -> None:
        with self._cond:
            self.clock.set_rate(rate, self._now())
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _wait_until_due(self, stamp_ns: int) -> bool:
        """Sleep until ``stamp_ns`` is due (waking on pause, rate change, stop); False if stopped."""
        with self._cond:
            while not self._stopped:
                due = self.clock.wall_time(stamp_ns)
                if due is None:  # paused
                    self._cond.wait()
                    continue
                delay_ns = due - self._now()
                if delay_ns <= 0:
                    return True
                self._cond.wait(delay_ns / NS_PER_S)
            return False


def _check_rate(rate: float) -> float:
    if not rate > 0:
        raise ValueError(f"replay rate must be > 0, got {rate}")
    return float(rate)
