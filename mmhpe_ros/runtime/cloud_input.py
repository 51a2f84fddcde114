"""A point-cloud sensor's PointCloud2 messages -> rows of our columns, merged over the last frames.

What the lidar and mmwave nodes run on every message before stage 1 (:mod:`mmhpe_ros.model.observe`):
the driver's fields and axes mapped onto ours (:mod:`.cloud_layout`), then, for a radar that
publishes one small cloud per radar frame, the last few frames merged into one
(:mod:`.cloud_window`). Points stay in the sensor's frame (the message's ``frame_id``) and keep
NaN rows (an organised cloud's missing returns); cleaning and the transform into the base frame
come after. No rclpy: a node declares :data:`INPUT_PARAMETERS` and builds one with
:meth:`CloudInput.from_parameters`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.cloud_layout import LAYOUT_PARAMETERS, OUR_FIELDS, CloudLayout, layout_from_parameters
from mmhpe_ros.runtime.cloud_window import WINDOW_PARAMETERS, CloudWindow, MergedCloud

# Every parameter of a cloud input: name, default, description.
INPUT_PARAMETERS = LAYOUT_PARAMETERS + WINDOW_PARAMETERS


@dataclass
class CloudInput:
    """Reads ``columns`` (ours, e.g. ``modalities.MMWAVE_FIELDS``) from each message through
    ``layout`` and merges them through ``window``."""

    columns: tuple[str, ...]
    layout: CloudLayout = field(default_factory=CloudLayout)
    window: CloudWindow = field(default_factory=CloudWindow)

    def __post_init__(self) -> None:
        self.columns = tuple(self.columns)
        unknown = [c for c in self.columns if c not in OUR_FIELDS]
        if unknown:
            raise ValueError(f"columns {unknown} are not ours; ours are {list(OUR_FIELDS)}")

    @classmethod
    def from_parameters(cls, columns: Sequence[str], **parameters: Any) -> "CloudInput":
        """From the values of :data:`INPUT_PARAMETERS` (missing ones take their defaults);
        ValueError naming the parameter that is wrong."""
        layout_names = {name for name, _, _ in LAYOUT_PARAMETERS}
        window_names = {name for name, _, _ in WINDOW_PARAMETERS}
        unknown = sorted(set(parameters) - layout_names - window_names)
        if unknown:
            raise ValueError(f"unknown cloud input parameters {unknown}")
        layout = layout_from_parameters(**{k: v for k, v in parameters.items() if k in layout_names})
        window = CloudWindow.from_parameters(**{k: v for k, v in parameters.items() if k in window_names})
        return cls(tuple(columns), layout, window)

    def read(self, msg: Any) -> MergedCloud | None:
        """The (N, len(columns)) float64 rows of the window this message ends, stamped with its
        stamp and frame id; None when it ends none (a late or repeated radar frame). The rows may be
        a read-only view of the message's buffer: copy before changing them.

        Raises :class:`~mmhpe_ros.runtime.codecs.CodecError` for a message that cannot be read.
        """
        points = self.layout.read(msg, self.columns)
        stamp_ns, frame_id = codecs.header_stamp_ns(msg), msg.header.frame_id
        if self.window.passes_through:
            return MergedCloud(stamp_ns, frame_id, points, 1, stamp_ns)
        return self.window.add(stamp_ns, points, frame_id)
