"""WiFi-alone MPJPE of a model trained on MM-Fi-layout CSI, fed other CSI hardware layouts (mapped
by the wifi node's resampler) and windows with a missing packet.

The validation sequences of a generated tree's split (``--subjects``, ``--actions``, ``--frames``,
``--seed`` as the tree was made with ``mmhpe-ros synth``) are simulated again with the
generator's own scene, placement and motion; their CSI is then made in each layout:

  mmfi              3 x 114 at 100 Hz on the frame grid: the tree's own CSI (data/synth/wifi.py)
  mmfi_missing1     the same, one packet of each window (chosen at random) NaN: filled and masked
  mmfi_missing1_unfilled  the same windows prepared as before gaps were filled: the missing
                    packet's amplitude 0 before the min-max normalisation, phase 0, mask all 1
  intel5300         3 x 30 grouped subcarriers (20 MHz), packets every 10 ms +- 2 ms
  esp32_<mapping>   1 x 52 (ESP32 HT20) at irregular 50-150 Hz (gaps uniform in 6.7-20 ms), with
                    the node's subcarrier_mapping "frequency" or "stretch"

Every non-MM-Fi stream goes through runtime.sensors.CsiProcessor exactly as the wifi node runs it
(CsiLayoutMapper + CsiWindowAssembler on the packets' stamps), then the model with only WiFi
present.

CSI cannot place a person, so the model's WiFi-alone joints are in a body frame found by the
other modalities: as ``mmhpe-ros evaluate``'s subset rows do (train/evaluate.py), each frame's
body frame is the one fused from all four modalities of the same frame
(model.inputs.prepare_inputs with the environment's rig: its calibration and LiDAR background),
the model sees only the WiFi input (the others masked absent), and the error is against the
ground truth in that body frame (the same MPJPE as in base_link: no root alignment). So the
figures measure the root-relative pose from CSI, placed at the other sensors' root; frames where
nobody was found are left out (``wifi_frames_no_person``).

Prints ``wifi_mpjpe_mm_<layout> X`` per layout (over the frames that got a window),
``wifi_windows_<layout> N``, ``wifi_missing1_ratio X`` (mmfi_missing1 / mmfi),
``wifi_missing1_unfilled_ratio X``, and how far a missing packet moves the predictions
(``wifi_mmfi_missing1_shift_mm``, ``wifi_mmfi_missing1_unfilled_shift_mm``: MPJPE between the
predictions with and without it) against their spread (``wifi_prediction_spread_mm``: MPJPE of the
complete-window predictions to their mean, body frame) and what knowing no CSI at all gives
(``wifi_mean_pose_mpjpe_mm``: every frame predicted as the mean ground-truth pose, in the body
frame, of the frames scored: an oracle constant).

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_csi_layout.py [--model M] \\
           [--subjects S05,S10,S15,S20,S25,S30,S35,S40] [--actions P1] [--frames 10]
"""
from __future__ import annotations

import argparse
import dataclasses
from functools import lru_cache

import numpy as np
import torch

from mmhpe_ros.data.splits import protocol_actions
from mmhpe_ros.data.synth.motion import sequence_motion, subject_body
from mmhpe_ros.data.synth.sequence import STREAMS, SequenceData, simulate_sequence
from mmhpe_ros.data.synth.wifi import csi_packets
from mmhpe_ros.data.synth.writer import empty_room_background
from mmhpe_ros.metrics import mpjpe
from mmhpe_ros.model.body import BodyFrame
from mmhpe_ros.model.checkpoint import load_model
from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.inputs import (
    WIFI_MASK,
    absent_modality,
    normalise_csi_amplitude,
    prepare_csi,
    prepare_inputs,
    sanitise_csi_phase,
)
from mmhpe_ros.model.observe import Rig
from mmhpe_ros.modalities import ACTIONS, FRAME_RATE_HZ, MODALITIES
from mmhpe_ros.resources import default_model_path
from mmhpe_ros.runtime.csi_layout import CsiLayoutMapper, layout_indices
from mmhpe_ros.runtime.csi_window import CsiWindowAssembler
from mmhpe_ros.runtime.sensors import CsiProcessor
from mmhpe_ros.runtime import codecs

START_NS = 1_000_000_000  # frame f of a sequence is stamped START_NS + f * 100 ms
LEAD_S = 0.2  # packets start this long before the first frame, as a running stream would
TYPES = codecs.rosbags_types()


def _packet_times(frames: int, rng: np.random.Generator, low_hz: float, high_hz: float) -> np.ndarray:
    end = frames / FRAME_RATE_HZ + 0.05
    gaps = rng.uniform(1.0 / high_hz, 1.0 / low_hz, size=int((end + LEAD_S) * high_hz) + 10)
    times = -LEAD_S + np.cumsum(gaps)
    return times[times < end]


def _windows(processor: CsiProcessor, times: np.ndarray, amplitude: np.ndarray, phase: np.ndarray,
             frames: int) -> dict[int, dict[str, np.ndarray]]:
    """Frame index -> prepared wifi arrays, from packets at ``times`` through the node's processor."""
    out: dict[int, dict[str, np.ndarray]] = {}
    features = []
    for t, a, p in zip(times, amplitude, phase):
        header = codecs.make_header(TYPES, START_NS + int(round(t * 1e9)), "wifi")
        features += processor.process(codecs.create_csi_packet(TYPES, header, a, p))
    features += processor.flush()
    for f in features:
        frame, rest = divmod(f.stamp_ns - START_NS, round(1e9 / FRAME_RATE_HZ))
        if f.present and rest == 0 and 0 <= frame < frames:
            out[frame] = f.arrays
    return out


def _unfilled(csi: np.ndarray, config) -> dict[str, np.ndarray]:
    """The wifi input as model/inputs.py made it before missing packets were filled (issue 12)."""
    amplitude = normalise_csi_amplitude(csi[0])  # a whole-NaN packet: its mean is NaN -> 0
    phase = sanitise_csi_phase(csi[1]) * config.csi_phase_scale
    return {"wifi": np.stack([amplitude, phase]).astype(np.float32), WIFI_MASK: np.ones(csi.shape[-1], bool)}


def _predict(model, config, wifi: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Body-frame joints (N, 17, 3) from prepared wifi arrays, WiFi alone (the others absent)."""
    batch: dict[str, list[np.ndarray]] = {}
    for arrays in wifi:
        sample = {m: v for modality in config.modalities if modality != "wifi"
                  for m, v in absent_modality(modality, config).items()}
        sample.update({k: arrays[k] for k in ("wifi", WIFI_MASK)})
        for key, value in sample.items():
            batch.setdefault(key, []).append(value)
    inputs = {k: torch.from_numpy(np.stack(v)) for k, v in batch.items()}
    present = model.presence_mask(["wifi"], len(wifi))
    with torch.inference_mode():
        return model(inputs, present).numpy()


@lru_cache(maxsize=4)
def _background(environment: str, seed: int):
    """The LiDAR background a generated tree stores for ``environment`` (`mmhpe-ros synth`)."""
    return empty_room_background(environment, seed)


def _body_frames(data: SequenceData, seed: int, config: ModelConfig) -> BodyFrame:
    """Each frame's body frame fused from all four modalities, as evaluation's subset rows use it."""
    rig = Rig(data.calibration, _background(data.key.environment, seed))
    rows = []
    for f in range(data.num_frames):
        raw = {"rgb": data.rgb[f], "lidar": data.lidar[f], "mmwave": data.mmwave[f],
               "wifi": np.stack([data.csi_amplitude[f], data.csi_phase[f]])}
        rows.append(prepare_inputs(raw, rig, config)[1])
    return BodyFrame(*(np.concatenate([getattr(b, k) for b in rows]) for k in ("root", "yaw", "person")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model weights (.safetensors, card beside); "
                        "default: the shipped model")
    parser.add_argument("--subjects", default="S05,S10,S15,S20,S25,S30,S35,S40", help="comma-separated")
    parser.add_argument("--actions", default="P1", help="comma-separated, or a protocol P1/P2/P3")
    parser.add_argument("--frames", type=int, default=10, help="frames per sequence")
    parser.add_argument("--seed", type=int, default=0, help="the tree's synth seed")
    parser.add_argument("--mapping-seed", type=int, default=1, help="seed of packet times and missing packets")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.model or default_model_path())
    config = model.config
    if "wifi" not in config.modalities:
        raise SystemExit(f"the model has no wifi input (modalities {config.modalities})")
    # the body frame from every modality, whatever the model fuses (its point counts kept)
    localising = dataclasses.replace(config, modalities=MODALITIES)
    actions = protocol_actions(args.actions) if args.actions in ("P1", "P2", "P3") else args.actions.split(",")
    assert all(a in ACTIONS for a in actions), actions
    rng = np.random.default_rng(args.mapping_seed)
    predictions: dict[str, list[np.ndarray]] = {}
    truths: dict[str, list[np.ndarray]] = {}
    windows: dict[str, int] = {}
    no_person = 0

    def add(name: str, frames: list[int], prepared: list[dict[str, np.ndarray]], body: BodyFrame,
            joints: np.ndarray) -> None:
        kept = [i for i, f in enumerate(frames) if body.person[f]]
        if kept:
            frames = [frames[i] for i in kept]
            predictions.setdefault(name, []).append(_predict(model, config, [prepared[i] for i in kept]))
            rows = BodyFrame(body.root[frames], body.yaw[frames], body.person[frames])
            truths.setdefault(name, []).append(rows.to_body(joints[frames]))
        windows[name] = windows.get(name, 0) + len(kept)

    for subject in args.subjects.split(","):
        for action in actions:
            data = simulate_sequence(subject, action, args.frames, args.seed)
            body = _body_frames(data, args.seed, localising)
            no_person += int((~body.person).sum())
            frames = list(range(data.num_frames))
            csi = np.stack([data.csi_amplitude, data.csi_phase], axis=1)  # (F, 2, 3, 114, 10)
            add("mmfi", frames, [prepare_csi(c, config)[0] for c in csi], body, data.joints)
            holed = csi.copy()
            for f in frames:
                holed[f, ..., rng.integers(0, 10)] = np.nan
            add("mmfi_missing1", frames, [prepare_csi(c, config)[0] for c in holed], body, data.joints)
            add("mmfi_missing1_unfilled", frames, [_unfilled(c, config) for c in holed], body, data.joints)
            # the same person, place, scene and motion, another CSI receiver
            motion_rng = np.random.default_rng([args.seed, 3, int(subject[1:]), int(action[1:]),
                                                STREAMS.index("motion")])
            motion = sequence_motion(subject_body(int(subject[1:]), args.seed), action, motion_rng, data.placement)
            if not np.allclose(motion.joints(np.arange(args.frames) / FRAME_RATE_HZ), data.joints):
                raise SystemExit(f"{subject} {action}: the motion rebuilt here differs from simulate_sequence's")
            layouts = {
                "intel5300": ("intel5300", 3, _packet_times(args.frames, rng, 1 / 0.012, 1 / 0.008), "frequency"),
                "esp32_frequency": ("esp32_ht20", 1, _packet_times(args.frames, rng, 50.0, 150.0), "frequency"),
                "esp32_stretch": ("esp32_ht20", 1, _packet_times(args.frames, rng, 50.0, 150.0), "stretch"),
            }
            for name, (layout, antennas, times, mapping) in layouts.items():
                amplitude, phase = csi_packets(data.scene, motion.joints(times), rng, layout_indices(layout), antennas)
                processor = CsiProcessor(config, CsiWindowAssembler(), CsiLayoutMapper(layout, mapping))
                prepared = _windows(processor, times, amplitude, phase, args.frames)
                got = sorted(prepared)
                add(name, got, [prepared[f] for f in got], body, data.joints)

    print(f"wifi_frames_no_person {no_person}")
    errors = {}
    for name in predictions:
        errors[name] = mpjpe(np.concatenate(predictions[name]), np.concatenate(truths[name]))
        print(f"wifi_mpjpe_mm_{name} {errors[name]:.1f}")
        print(f"wifi_windows_{name} {windows[name]}")
    print(f"wifi_missing1_ratio {errors['mmfi_missing1'] / errors['mmfi']:.3f}")
    print(f"wifi_missing1_unfilled_ratio {errors['mmfi_missing1_unfilled'] / errors['mmfi']:.3f}")
    # How far a missing packet moves the prediction, against how far predictions spread at all.
    complete = np.concatenate(predictions["mmfi"])
    truth = np.concatenate(truths["mmfi"])
    print(f"wifi_mean_pose_mpjpe_mm {mpjpe(np.broadcast_to(truth.mean(0), truth.shape), truth):.1f}")
    print(f"wifi_prediction_spread_mm {mpjpe(complete, np.broadcast_to(complete.mean(0), complete.shape)):.1f}")
    for name in ("mmfi_missing1", "mmfi_missing1_unfilled"):
        print(f"wifi_{name}_shift_mm {mpjpe(np.concatenate(predictions[name]), complete):.1f}")


if __name__ == "__main__":
    main()
