"""The gap between BlazePose keypoints and MM-Fi-style 2D keypoints, on rendered generated people.

The generated data has no images, so each frame of a generated sequence is rendered
(``data/synth/person_image.py``: z-buffered spheres of the body in its room, through the scene's
camera) and BlazePose (``runtime/pose2d.KeypointDetector``, tracking mode as the camera node runs
it, one detector per sequence) runs on it. Its keypoints are compared with the generator's for
the same frames: the ideal MM-Fi-style keypoints (``camera.coco_points`` projected, no detector
noise) and the generator's keypoints (those plus its modelled detector noise, what the model was
trained on).

Frames count when the person is in view: at least 13 of the 17 true keypoints inside the image.
Errors use the keypoints whose true position is inside the image. Offsets are in the person's
image axes, in % of the torso length (mid-hip to mid-shoulder in the image): ``along`` towards
the head, ``out`` away from the body's midline (for the nose and eyes/ears: towards the person's
left); the median over frames is the systematic part of the gap.

Prints one ``name value`` line per figure:
  blazepose_gap_sequences / _frames_in_view          what was measured
  blazepose_gap_detection_rate                       detected frames / frames in view
  blazepose_gap_detection_rate_facing / _away        people facing the camera (< 90 deg) / away
  blazepose_gap_swapped_frames_pct                   detections with left and right exchanged
  blazepose_gap_error_median_px / _p90_px            BlazePose vs the ideal keypoints, all keypoints
  blazepose_gap_generator_noise_median_px / _p90_px  the generator's keypoints vs the ideal ones
  blazepose_gap_vs_generator_median_px / _p90_px     BlazePose vs the generator's keypoints
  blazepose_gap_<keypoint>_median_px / _p90_px       per keypoint, vs the ideal keypoints
  blazepose_gap_<keypoint>_along_pct / _out_pct      per keypoint, median offset (systematic)
  blazepose_score_in_image_mean / _off_image_mean    BlazePose's visibility of keypoints whose true
                                                     position is inside / outside the image
  blazepose_gap_render_ms / _detect_ms               per frame, this machine

Usage: .venv/bin/python bench/bench_blazepose_gap.py [--subjects 40] [--actions 2] [--frames 8] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mmhpe_ros.data.synth.camera import coco_points, project
from mmhpe_ros.data.synth.person_image import Appearance, PersonRenderer
from mmhpe_ros.data.synth.sequence import simulate_sequence
from mmhpe_ros.modalities import ACTIONS, SUBJECTS
from mmhpe_ros.skeleton import KEYPOINT_INDEX, KEYPOINTS_2D

MIN_IN_VIEW = 13
LEFT = [i for i, n in enumerate(KEYPOINTS_2D) if n.startswith("left_")]
RIGHT = [KEYPOINT_INDEX["right_" + KEYPOINTS_2D[i][5:]] for i in LEFT]
SWAP = np.arange(len(KEYPOINTS_2D))
SWAP[LEFT], SWAP[RIGHT] = RIGHT, LEFT
OUTWARD = np.array([1.0 if n.startswith("left_") else -1.0 if n.startswith("right_") else 1.0 for n in KEYPOINTS_2D])


def _mid(points: np.ndarray, a: str, b: str) -> np.ndarray:
    return 0.5 * (points[..., KEYPOINT_INDEX[a], :] + points[..., KEYPOINT_INDEX[b], :])


def body_offsets(detected: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(17, 2) offsets (along, out) of ``detected`` from ``true`` keypoints in % of the torso length."""
    hip, shoulder = _mid(true, "left_hip", "right_hip"), _mid(true, "left_shoulder", "right_shoulder")
    torso = np.linalg.norm(shoulder - hip)
    up = (shoulder - hip) / torso
    across = np.array([-up[1], up[0]])
    if across @ (true[KEYPOINT_INDEX["left_shoulder"]] - true[KEYPOINT_INDEX["right_shoulder"]]) < 0:
        across = -across  # towards the person's left in the image
    offset = detected - true
    return 100.0 * np.column_stack([offset @ up, (offset @ across) * OUTWARD]) / torso


def facing_camera(joints: np.ndarray, camera_position: np.ndarray) -> bool:
    """Whether the person's chest faces the camera (horizontal angle < 90 degrees)."""
    from mmhpe_ros.skeleton import JOINT_INDEX

    left = joints[JOINT_INDEX["left_shoulder"]] - joints[JOINT_INDEX["right_shoulder"]]
    up = joints[JOINT_INDEX["thorax"]] - joints[JOINT_INDEX["pelvis"]]
    forward = np.cross(left, up)
    return bool(forward[:2] @ (camera_position - joints[JOINT_INDEX["pelvis"]])[:2] > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40, help="subjects S01.. (all four environments at 40)")
    parser.add_argument("--actions", type=int, default=2, help="actions per subject (spread over A01..A27)")
    parser.add_argument("--frames", type=int, default=8, help="consecutive 10 Hz frames per sequence")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--cores", type=int, default=1, help="pin the process to this many cores")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    from mmhpe_ros.runtime.pose2d import KeypointDetector

    renderers: dict[str, PersonRenderer] = {}
    errors, generator_noise, vs_generator, offsets = [], [], [], []
    in_image_scores, off_image_scores = [], []
    counts = {"sequences": 0, "in_view": 0, "detected": 0, "swapped": 0}
    by_facing = {True: [0, 0], False: [0, 0]}  # in view, detected
    render_s = detect_s = 0.0
    for number, subject in enumerate(SUBJECTS[:args.subjects]):
        for a in range(args.actions):
            action = ACTIONS[(number * 7 + a * 13) % len(ACTIONS)]
            seq = simulate_sequence(subject, action, args.frames, args.seed)
            renderer = renderers.setdefault(seq.key.environment, PersonRenderer(seq.scene, seed=args.seed))
            appearance = Appearance.of_subject(int(subject[1:]), args.seed)
            true, depth = project(seq.scene, coco_points(seq.joints))
            camera_position = seq.scene.camera_optical().translation
            counts["sequences"] += 1
            with KeypointDetector() as detector:  # tracking mode, as the camera node runs it
                for f in range(args.frames):
                    start = time.perf_counter()
                    image = renderer.render(seq.joints[f], appearance)
                    render_s += time.perf_counter() - start
                    start = time.perf_counter()
                    keypoints = detector.detect(image)
                    detect_s += time.perf_counter() - start
                    inside = seq.scene.intrinsics.inside(true[f]) & (depth[f] > 0.1)
                    if inside.sum() < MIN_IN_VIEW:
                        continue
                    facing = facing_camera(seq.joints[f], camera_position)
                    counts["in_view"] += 1
                    by_facing[facing][0] += 1
                    reported = np.isfinite(seq.rgb[f]).all(axis=1) & inside
                    generator_noise.append(np.linalg.norm(seq.rgb[f] - true[f], axis=1)[reported])
                    if keypoints is None:
                        continue
                    counts["detected"] += 1
                    by_facing[facing][1] += 1
                    uv = keypoints[:, :2]
                    error = np.linalg.norm(uv - true[f], axis=1)
                    swapped_error = np.linalg.norm(uv[SWAP] - true[f], axis=1)
                    counts["swapped"] += bool(swapped_error[inside].mean() < 0.5 * error[inside].mean())
                    errors.append(np.where(inside, error, np.nan))
                    vs_generator.append(np.linalg.norm(uv - seq.rgb[f], axis=1)[reported])
                    offsets.append(np.where(inside[:, None], body_offsets(uv, true[f]), np.nan))
                    in_image_scores.append(keypoints[inside, 2])
                    off_image_scores.append(keypoints[~inside, 2])
    frames = args.subjects * args.actions * args.frames
    in_view = max(counts["in_view"], 1)
    print(f"blazepose_gap_sequences {counts['sequences']}")
    print(f"blazepose_gap_frames_in_view {counts['in_view']}")
    print(f"blazepose_gap_detection_rate {counts['detected'] / in_view:.3f}")
    for facing, name in ((True, "facing"), (False, "away")):
        seen, found = by_facing[facing]
        print(f"blazepose_gap_detection_rate_{name} {found / max(seen, 1):.3f}")
    print(f"blazepose_gap_swapped_frames_pct {100 * counts['swapped'] / max(counts['detected'], 1):.1f}")
    error = np.array(errors).reshape(-1, len(KEYPOINTS_2D))
    for name, values in (("error", error.ravel()), ("generator_noise", np.concatenate(generator_noise)),
                         ("vs_generator", np.concatenate(vs_generator) if vs_generator else np.empty(0))):
        values = values[np.isfinite(values)]
        print(f"blazepose_gap_{name}_median_px {np.median(values):.1f}")
        print(f"blazepose_gap_{name}_p90_px {np.percentile(values, 90):.1f}")
    offset = np.array(offsets).reshape(-1, len(KEYPOINTS_2D), 2)
    for k, name in enumerate(KEYPOINTS_2D):
        values = error[:, k][np.isfinite(error[:, k])]
        print(f"blazepose_gap_{name}_median_px {np.median(values):.1f}")
        print(f"blazepose_gap_{name}_p90_px {np.percentile(values, 90):.1f}")
        print(f"blazepose_gap_{name}_along_pct {np.nanmedian(offset[:, k, 0]):.1f}")
        print(f"blazepose_gap_{name}_out_pct {np.nanmedian(offset[:, k, 1]):.1f}")
    off_image = np.concatenate(off_image_scores)
    print(f"blazepose_score_in_image_mean {np.concatenate(in_image_scores).mean():.3f}")
    print(f"blazepose_score_off_image_mean {off_image.mean() if off_image.size else float('nan'):.3f}")
    print(f"blazepose_gap_render_ms {1000 * render_s / frames:.1f}")
    print(f"blazepose_gap_detect_ms {1000 * detect_s / frames:.1f}")


if __name__ == "__main__":
    main()
