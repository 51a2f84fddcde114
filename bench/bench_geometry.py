"""The geometry-aware pipeline against the real world's perturbations, on generated data with known
extrinsics (issue 12's check). Fixed seed; prints one `name value` line per figure.

The same sequences (the cross-subject validation subjects S05, S10, ..., S40, so people the
model never saw, in all four rooms) are simulated once per condition, each condition changing one
thing against `nominal` (the person 2.5 m in front of the rig facing it, each room's own rig):

  mount_height_up / mount_height_down   every sensor mounted 0.3 m higher / lower
  mount_yaw_left / mount_yaw_right      every sensor turned 30 deg left / right
  distance_1m / distance_4m             the person 1 m / 4 m in front (nominal: 2.5 m)
  side_left / side_right                the person 1.5 m to the left / right, 2.5 m in front
  any_heading                           the person facing any direction
  dense_room                            a 360 deg LiDAR scan with every room return (>= 20k room points)
  csi_packet_lost                       one CSI packet in ten missing

then each frame goes through the pipeline the nodes run (model/observe.py with the rig's
calibration and the room's background model, model/body.py, the model) and the skeleton (joints +
root) is scored against the ground truth: MPJPE (mm) without alignment over the frames where a
person was found, and the fraction of frames where one was. The same conditions are then run
without calibration given (every sensor frame taken to be the base frame), so the docs can say
what calibration buys. Then 100 frames of empty rooms (skeletons published there are false
alarms), and the LiDAR localisation of a 130k-point scan (a 128-beam 360 deg scan of a room with
a person) against the model's forward pass, both p50 on one core, in the same run.

Lines (among others): geometry_nominal_mpjpe_mm, geometry_worst_mpjpe_ratio (worst condition /
nominal; goal <= 1.10), empty_scene_skeletons (goal 0 of 100), localise_130k_points_ms,
localise_to_forward_ratio (goal <= 1.0).

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_geometry.py [--model M] [--frames 10] [--actions A02,A13,A17,A27]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

SUBJECTS = ("S05", "S10", "S15", "S20", "S25", "S30", "S35", "S40")  # S2's validation subjects
RIG_FRAMES = ("camera_optical", "lidar", "radar", "wifi")
SEED = 11


@dataclass(frozen=True)
class Condition:
    name: str
    placement: tuple[float, float, float | None] = (2.5, 0.0, np.pi)  # x, y, heading (None: any)
    mounts: dict | None = None
    dense_room: bool = False
    csi_packet_lost: bool = False


def conditions() -> list[Condition]:
    from mmhpe_ros.data.synth.scene import MountChange

    def every(**change: float) -> dict:
        return {frame: MountChange(**change) for frame in RIG_FRAMES}

    return [
        Condition("nominal"),
        Condition("mount_height_up", mounts=every(height=0.3)),
        Condition("mount_height_down", mounts=every(height=-0.3)),
        Condition("mount_yaw_left", mounts=every(yaw=np.deg2rad(30.0))),
        Condition("mount_yaw_right", mounts=every(yaw=np.deg2rad(-30.0))),
        Condition("distance_1m", placement=(1.0, 0.0, np.pi)),
        Condition("distance_4m", placement=(4.0, 0.0, np.pi)),
        Condition("side_left", placement=(2.5, 1.5, np.pi)),
        Condition("side_right", placement=(2.5, -1.5, np.pi)),
        Condition("any_heading", placement=(2.5, 0.0, None)),
        Condition("dense_room", dense_room=True),
        Condition("csi_packet_lost", csi_packet_lost=True),
    ]


def simulate(condition: Condition, actions: list[str], frames: int) -> list:
    """(SequenceData, background model) of every subject x action under ``condition``."""
    from mmhpe_ros.data.synth.lidar import FULL_SCAN, SECTOR_SCAN
    from mmhpe_ros.data.synth.motion import Placement
    from mmhpe_ros.data.synth.sequence import simulate_sequence
    from mmhpe_ros.data.synth.writer import empty_room_background
    from mmhpe_ros.modalities import environment_of

    rng = np.random.default_rng(SEED)
    backgrounds: dict[str, object] = {}
    out = []
    for subject in SUBJECTS:
        environment = environment_of(subject)
        if environment not in backgrounds:
            backgrounds[environment] = empty_room_background(
                environment, SEED, "full" if condition.dense_room else "sector", condition.mounts)
        for action in actions:
            x, y, heading = condition.placement
            heading = rng.uniform(-np.pi, np.pi) if heading is None else heading
            data = simulate_sequence(subject, action, frames, SEED, placement=Placement(x, y, heading),
                                     mounts=condition.mounts, lidar=FULL_SCAN if condition.dense_room else SECTOR_SCAN)
            out.append((data, backgrounds[environment]))
    return out


def frame_data(data, index: int, csi_packet_lost: bool) -> dict[str, np.ndarray]:
    csi = np.stack([data.csi_amplitude[index], data.csi_phase[index]])
    if csi_packet_lost:
        csi = csi.copy()
        csi[..., index % csi.shape[-1]] = np.nan  # one packet of ten, a different one each frame
    return {"rgb": data.rgb[index], "lidar": data.lidar[index], "mmwave": data.mmwave[index], "wifi": csi}


def run_pipeline(model, sequences, calibrated: bool, csi_packet_lost: bool) -> tuple[float, float, int]:
    """(MPJPE mm over frames with a person found, fraction found, frames) of ``sequences``."""
    import torch

    from mmhpe_ros.geometry.calibration import Calibration
    from mmhpe_ros.geometry.transforms import RigidTransform
    from mmhpe_ros.metrics import mpjpe
    from mmhpe_ros.model.body import model_inputs
    from mmhpe_ros.model.observe import Rig, observe

    config = model.config
    observations, truths = [], []
    for data, background in sequences:
        calibration = data.calibration if calibrated else Calibration(
            extrinsics={frame: RigidTransform.identity() for frame in RIG_FRAMES})
        rig = Rig(calibration, background if calibrated else None)
        for index in range(data.num_frames):
            observations.append(observe(frame_data(data, index, csi_packet_lost), rig, config))
            truths.append(data.joints[index])
    batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    inputs, body = model_inputs(batch, config)
    with torch.inference_mode():
        relative = model({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}).double().numpy()
    joints = body.to_base(relative)
    truth = np.array(truths)
    found = body.person
    error = mpjpe(joints[found], truth[found]) if found.any() else float("nan")
    return error, float(found.mean()), len(found)


def empty_scene_skeletons(model, frames: int = 100) -> int:
    """Frames of empty rooms (all four environments) in which the pipeline finds a person."""
    from mmhpe_ros.data.synth.sequence import simulate_sequence
    from mmhpe_ros.data.synth.writer import empty_room_background
    from mmhpe_ros.model.body import model_inputs
    from mmhpe_ros.model.observe import Rig, observe

    observations = []
    for number, subject in enumerate(("S01", "S11", "S21", "S31")):
        count = frames // 4 + (number < frames % 4)
        empty = simulate_sequence(subject, "A02", count, SEED + 1, person=False)
        rig = Rig(empty.calibration, empty_room_background(empty.key.environment, SEED + 1))
        observations += [observe(frame_data(empty, i, False), rig, model.config) for i in range(count)]
    batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    _, body = model_inputs(batch, model.config)
    return int(body.person.sum())


def localisation_speed(model, repeats: int) -> tuple[float, float, int]:
    """(localisation p50 ms, model forward p50 ms, points) on a 130k-point scan, interleaved."""
    import torch

    from mmhpe_ros.data.synth.lidar import LidarSpec
    from mmhpe_ros.data.synth.motion import Placement
    from mmhpe_ros.data.synth.sequence import simulate_sequence
    from mmhpe_ros.geometry.background import BackgroundModel
    from mmhpe_ros.geometry.localise import LidarLocaliser, LidarSettings
    from mmhpe_ros.model.body import model_inputs
    from mmhpe_ros.model.observe import Rig, observe

    spec = LidarSpec(rings=128, azimuth_deg=(-180.0, 180.0), keep_room=True)
    scan = simulate_sequence("S05", "A13", 1, SEED, placement=Placement(2.5, 0.3, np.pi), lidar=spec)
    empty = simulate_sequence("S05", "A13", 3, SEED, person=False, lidar=spec)
    to_base = scan.calibration.to_base("lidar")
    floor = scan.calibration.ground_height + LidarSettings().ground_clearance
    background = BackgroundModel.build([p[p[:, 2] > floor] for p in (to_base.apply(c) for c in empty.lidar)])
    cloud = scan.lidar[0].astype(np.float32)
    localiser = LidarLocaliser(LidarSettings(), scan.calibration.ground_height, background)
    rig = Rig(scan.calibration, background)
    sample = {key: v[None] for key, v in observe(frame_data(scan, 0, False), rig, model.config).items()}
    inputs, _ = model_inputs(sample, model.config)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
    localise, forward = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        person = localiser.localise(to_base.apply(cloud))
        localise.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.inference_mode():
            model(tensors)
        forward.append(time.perf_counter() - start)
    assert person is not None, "the person in the 130k-point scan was not found"
    return float(np.median(localise) * 1e3), float(np.median(forward) * 1e3), len(cloud)


def main() -> None:
    import torch

    from mmhpe_ros.model.checkpoint import load_model
    from mmhpe_ros.resources import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model weights (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=10, help="frames per sequence")
    parser.add_argument("--actions", default="A02,A13,A17,A27", help="actions of every subject")
    parser.add_argument("--repeats", type=int, default=60, help="timed runs of localisation and forward")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.model or default_model_path())
    model.eval()
    actions = args.actions.split(",")
    results: dict[str, tuple[float, float, int]] = {}
    uncalibrated: dict[str, tuple[float, float, int]] = {}
    for condition in conditions():
        sequences = simulate(condition, actions, args.frames)
        results[condition.name] = run_pipeline(model, sequences, True, condition.csi_packet_lost)
        uncalibrated[condition.name] = run_pipeline(model, sequences, False, condition.csi_packet_lost)
    nominal = results["nominal"][0]
    print(f"geometry_frames_per_condition {results['nominal'][2]}")
    print(f"geometry_nominal_mpjpe_mm {nominal:.1f}")
    for name, (error, found, _) in results.items():
        if name != "nominal":
            print(f"geometry_{name}_mpjpe_mm {error:.1f}")
        print(f"geometry_{name}_found_fraction {found:.3f}")
    worst = max((name for name in results if name != "nominal"), key=lambda n: results[n][0])
    print(f"geometry_worst_condition {worst}")
    print(f"geometry_worst_mpjpe_ratio {results[worst][0] / nominal:.3f}")
    for name, (error, found, _) in uncalibrated.items():
        print(f"geometry_uncalibrated_{name}_mpjpe_mm {error:.1f}")
        print(f"geometry_uncalibrated_{name}_found_fraction {found:.3f}")
    print(f"empty_scene_skeletons {empty_scene_skeletons(model)}")
    localise_ms, forward_ms, points = localisation_speed(model, args.repeats)
    print(f"localise_scan_points {points}")
    print(f"localise_130k_points_ms {localise_ms:.2f}")
    print(f"model_forward_ms {forward_ms:.2f}")
    print(f"localise_to_forward_ratio {localise_ms / forward_ms:.3f}")


if __name__ == "__main__":
    main()
