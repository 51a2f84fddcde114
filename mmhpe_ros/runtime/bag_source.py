"""Raw messages of a rosbag2 bag (directory or bare .mcap file) in time order, for replay.

Serialized bytes are handed on untouched (CDR, as rclpy's ``Publisher.publish(bytes)`` takes
them), so replay costs no deserialisation. Uses the ``rosbags`` library, not rosbag2_py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from mmhpe_ros.runtime.limits import DEFAULT_BAG_LIMITS, BagLimits, check_bag, check_message
from mmhpe_ros.runtime.replay import Message


class BagSource:
    """An open bag: its topics and types, time span, and a time-ordered raw message reader.

    The bag is checked against ``limits`` before it is opened (record and chunk sizes) and each
    message as it is read (:mod:`mmhpe_ros.runtime.limits`); a violation raises ``LimitError``.
    """

    def __init__(self, path: str | Path, limits: BagLimits = DEFAULT_BAG_LIMITS) -> None:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag {self.path} does not exist")
        self.limits = limits
        check_bag(self.path, limits)
        self._reader = AnyReader([self.path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        try:
            self._reader.open()
        except Exception as error:  # rosbags raises its own error types per storage
            raise ValueError(f"cannot open bag {self.path}: {error}") from error
        if not self._reader.connections:
            raise ValueError(f"bag {self.path} has no messages")
        self.topics: dict[str, str] = {c.topic: c.msgtype for c in self._reader.connections}
        self.start_ns: int = self._reader.start_time
        self.end_ns: int = self._reader.end_time - 1  # rosbags' end_time is one past the last message
        self.message_count: int = self._reader.message_count

    def read(self, from_ns: int = 0) -> Iterator[Message]:
        """``(topic, bag time ns, CDR bytes)`` for every message at or after ``from_ns``."""
        for connection, stamp_ns, data in self._reader.messages(start=from_ns):
            check_message(self.path, connection.topic, connection.msgtype, len(data), self.limits)
            yield connection.topic, stamp_ns, bytes(data)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "BagSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
