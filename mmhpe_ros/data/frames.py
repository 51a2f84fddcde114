"""The raw frame: what every frame source (MM-Fi tree, bag) yields, before any model preprocessing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

import numpy as np


@dataclass(frozen=True, order=True)
class SequenceKey:
    """One MM-Fi sequence: a subject performing an action in an environment."""

    environment: str  # "E01".."E04"
    subject: str  # "S01".."S40"
    action: str  # "A01".."A27"

    def __str__(self) -> str:
        return f"{self.environment}/{self.subject}/{self.action}"

    @classmethod
    def parse(cls, text: str) -> "SequenceKey":
        """Inverse of ``str()``: ``"E01/S01/A01"``."""
        parts = text.strip("/").split("/")
        if len(parts) != 3:
            raise ValueError(f"expected 'Exx/Syy/Azz', got {text!r}")
        return cls(*parts)


@dataclass
class Frame:
    """One synchronised MM-Fi frame, arrays exactly as stored in the dataset files.

    ``data`` maps modality name to its raw array:
    rgb/infra1/infra2 (17, 2) keypoints in pixels; lidar (N, 3) float64; mmwave (N, 5) float64
    (x, y, z, doppler, intensity); wifi (2, 3, 114, 10): [CSIamp, CSIphase]; depth (H, W) uint16 mm.
    ``joints`` is the ground truth (17, 3) in metres (skeleton.JOINTS order).
    """

    key: SequenceKey
    index: int  # 0-based; MM-Fi file frame{index + 1:03d}
    joints: np.ndarray
    data: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def stamp_ns(self) -> int:
        """Time of the frame from the start of its sequence, at MM-Fi's frame rate."""
        from mmhpe_ros.modalities import FRAME_RATE_HZ

        return int(round(self.index * 1e9 / FRAME_RATE_HZ))


class FrameSource(Protocol):
    """Anything indexable that yields frames: the MM-Fi reader and the bag dataset."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Frame: ...

    def __iter__(self) -> Iterator[Frame]: ...
