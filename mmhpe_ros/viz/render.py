"""Skeleton pictures: the predicted skeleton beside the ground truth, the LiDAR and radar points, the
camera keypoints, and the frame's MPJPE in the caption; PNG frames and an animated GIF.

matplotlib's Agg canvas (no screen), a fresh figure per frame, the axes at fixed places in it, so
a frame's picture depends only on the frame and the :class:`View`. The 3D axes are the skeleton's
frame (REP-103: x forward, y left, z up), seen from the sensors' side.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmhpe_ros.modalities import IMAGE_HEIGHT, IMAGE_WIDTH
from mmhpe_ros.skeleton import BONES, BONES_2D
from mmhpe_ros.viz.sources import RenderFrame

PREDICTED_COLOR = "#e4572e"
GROUND_TRUTH_COLOR = "#7fb2f0"
POINT_COLORS = {"lidar": "#8a8a8a", "radar": "#8e44ad"}
POINT_SIZES = {"lidar": 2.0, "radar": 9.0}  # marker area, points^2
KEYPOINT_COLOR = "#2a9d4b"
DPI = 100
FIGURE_SIZE = {True: (8.8, 4.2), False: (5.0, 4.2)}  # inches, with / without the camera panel
AXES_3D = {True: (0.0, 0.07, 0.57, 0.93), False: (0.0, 0.07, 1.0, 0.93)}  # left, bottom, width, height (figure fraction)
AXES_CAMERA = (0.62, 0.2, 0.35, 0.64)
SKELETON_LABEL = "skeleton"  # the 3D axes' label (Figure.axes order aside, how to find them)
CAMERA_LABEL = "camera"


@dataclass(frozen=True)
class View:
    """The 3D axes' cube (``center`` +- ``half_size`` metres on each axis) and viewing angles (degrees)."""

    center: tuple[float, float, float]
    half_size: float = 1.0
    elev: float = 12.0
    azim: float = -155.0  # from the sensors' side (-x of the person), a little to its right

    @classmethod
    def fit(cls, frames: Sequence[RenderFrame], margin: float = 0.15) -> "View":
        """One view for all ``frames``: the cube around the median skeleton centre, large enough for
        every skeleton (at least 1 m each side of the centre)."""
        skeletons = [s for f in frames for s in (f.ground_truth, f.predicted) if s is not None]
        if not skeletons:
            return cls((0.0, 0.0, 1.0))
        stacked = np.stack(skeletons)
        centres = (stacked.min(axis=1) + stacked.max(axis=1)) / 2.0
        center = np.median(centres, axis=0)
        reach = float(np.abs(stacked - center).max()) + margin
        return cls(tuple(float(v) for v in center), max(1.0, reach))

    def limits(self) -> np.ndarray:
        """(3, 2) lower and upper bound of x, y, z."""
        c = np.asarray(self.center)
        return np.stack([c - self.half_size, c + self.half_size], axis=1)


def draw_frame(frame: RenderFrame, view: View) -> Any:
    """A matplotlib Figure (Agg canvas) of one frame; its 3D axes carry the label :data:`SKELETON_LABEL`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    camera = frame.keypoints is not None
    fig = Figure(figsize=FIGURE_SIZE[camera], dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(AXES_3D[camera], projection="3d", label=SKELETON_LABEL)
    ax.computed_zorder = False  # draw order = zorder: points, ground truth, prediction on top
    limits = view.limits()
    handles = []
    for zorder, (name, points) in enumerate(sorted(frame.points.items()), start=1):
        inside = points[((points >= limits[:, 0]) & (points <= limits[:, 1])).all(axis=1)]
        color = POINT_COLORS.get(name, "#555555")
        ax.scatter(*inside.T, s=POINT_SIZES.get(name, 4.0), c=color, alpha=0.6, linewidths=0, depthshade=False,
                   zorder=zorder)
        handles.append(Line2D([], [], ls="", marker="o", ms=4, color=color, label=f"{name} ({len(inside)} points)"))
    for zorder, joints, color, name, size, width in (  # the truth wide underneath, the prediction on top
            (10, frame.ground_truth, GROUND_TRUTH_COLOR, "ground truth", 40.0, 5.0),
            (20, frame.predicted, PREDICTED_COLOR, "predicted", 18.0, 2.0)):
        if joints is None:
            continue
        segments = np.stack([joints[[parent, child]] for parent, child in BONES])
        ax.add_collection3d(Line3DCollection(segments, colors=color, linewidths=width, zorder=zorder))
        ax.scatter(*joints.T, s=size, c=color, depthshade=False, linewidths=0, zorder=zorder + 1)
        handles.append(Line2D([], [], color=color, lw=width, marker="o", ms=width + 2, label=name))
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_zlim(*limits[2])
    ax.set_box_aspect((1.0, 1.0, 1.0), zoom=1.2)
    ax.view_init(elev=view.elev, azim=view.azim)
    ax.set_xlabel("x (m)", fontsize=7, labelpad=-8)
    ax.set_ylabel("y (m)", fontsize=7, labelpad=-8)
    ax.set_zlabel("z (m)", fontsize=7, labelpad=-8)
    ax.tick_params(labelsize=6, pad=-3)
    ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False)
    if camera:
        _draw_keypoints(fig, frame.keypoints)
    mpjpe = frame.mpjpe_mm
    caption = frame.label + ("" if mpjpe is None else f"    MPJPE {mpjpe:.1f} mm")
    fig.text(0.5, 0.025, caption, ha="center", fontsize=10)
    return fig


def _draw_keypoints(fig: Any, keypoints: np.ndarray) -> None:
    """The camera's 2D keypoints on the image plane (pixels, y down)."""
    ax = fig.add_axes(AXES_CAMERA, label=CAMERA_LABEL)
    finite = np.isfinite(keypoints).all(axis=1)
    for a, b in BONES_2D:
        if a < len(keypoints) and b < len(keypoints) and finite[a] and finite[b]:
            ax.plot(keypoints[[a, b], 0], keypoints[[a, b], 1], color=KEYPOINT_COLOR, lw=1.8)
    ax.scatter(keypoints[finite, 0], keypoints[finite, 1], s=12, c=KEYPOINT_COLOR, zorder=3)
    ax.set_xlim(0, IMAGE_WIDTH)
    ax.set_ylim(IMAGE_HEIGHT, 0)
    ax.set_aspect("equal")
    ax.set_facecolor("#f3f3f3")
    ax.tick_params(labelsize=6)
    ax.set_title("camera keypoints (input), pixels", fontsize=8)


def figure_rgb(fig: Any) -> np.ndarray:
    """The drawn figure as an (H, W, 3) uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


@dataclass(frozen=True)
class Rendered:
    """What :func:`render` wrote and how long it took."""

    pictures: list[Path]
    gif: Path | None
    seconds: float
    mpjpe_mm: list[float]  # of the frames that have one


def render(frames: Sequence[RenderFrame], out_dir: str | Path, *, name: str = "skeleton", fps: float = 10.0,
           gif: bool = True, view: View | None = None, progress: bool = True) -> Rendered:
    """Write ``out_dir/<name>_NNNN.png`` for each frame and, with ``gif`` and more than one frame,
    ``out_dir/<name>.gif`` at ``fps``; earlier pictures of that name in ``out_dir`` are replaced."""
    from PIL import Image

    from mmhpe_ros.progress import progress_bar

    if not frames:
        raise ValueError("nothing to render: no frames")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{name}_[0-9][0-9][0-9][0-9].png"):
        stale.unlink()
    view = view or View.fit(frames)
    pictures, palette_frames = [], []
    for number, frame in enumerate(progress_bar(frames, enabled=progress, desc="render", unit="frame")):
        fig = draw_frame(frame, view)
        rgb = figure_rgb(fig)
        fig.clear()
        path = out / f"{name}_{number:04d}.png"
        Image.fromarray(rgb).save(path)
        pictures.append(path)
        if gif and len(frames) > 1:
            palette_frames.append(Image.fromarray(rgb).quantize(colors=128, method=Image.Quantize.MEDIANCUT,
                                                                dither=Image.Dither.NONE))
    gif_path = None
    if palette_frames:
        gif_path = out / f"{name}.gif"
        palette_frames[0].save(gif_path, save_all=True, append_images=palette_frames[1:], loop=0,
                               duration=round(1000.0 / fps), disposal=1)
    errors = [m for m in (f.mpjpe_mm for f in frames) if m is not None]
    return Rendered(pictures, gif_path, time.perf_counter() - start, errors)
