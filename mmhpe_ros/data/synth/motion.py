"""Procedural motion of the 27 MM-Fi actions on the 17-joint skeleton, as a function of time.

A pose is a handful of angles (trunk yaw/pitch/roll, shoulder flexion/abduction, elbow, hip
flexion/abduction, knee), a pelvis shift and a jump height. Each action maps a cyclic activation
``s(t) = (1 - cos(2 pi f t + phase)) / 2`` in [0, 1] to those angles; forward kinematics on the
subject's bone lengths gives the joints, and the lower ankle is put on the floor.

Joints are given in the rig's base frame ``base_link`` (docs/synth.md; REP 103: x forward from the
rig, y left, z up, metres, origin on the floor below the rig). The body's own frame has x forward
(the way the person faces), y to the person's left, z up; a :class:`Placement` puts it in
base_link: anywhere in the region 1-4 m in front of the rig, +-1.5 m sideways, facing any way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mmhpe_ros.geometry.transforms import RigidTransform
from mmhpe_ros.modalities import ACTION_NAMES, ACTIONS
from mmhpe_ros.skeleton import JOINT_INDEX, NUM_JOINTS

ANKLE_HEIGHT = 0.08  # ankle joint above the floor when standing, metres (for a 1.75 m person)
REFERENCE_HEIGHT = 1.75
# Bone lengths of the 1.75 m reference body, metres.
REFERENCE_BONES: dict[str, float] = {
    "hip_width": 0.10, "thigh": 0.43, "shank": 0.42, "spine": 0.23, "chest": 0.28, "neck": 0.16,
    "head": 0.12, "shoulder_width": 0.18, "shoulder_drop": 0.02, "upper_arm": 0.28, "forearm": 0.26,
}
PARAMETERS: tuple[str, ...] = (
    "trunk_yaw", "trunk_pitch", "trunk_roll", "shift_x", "shift_y", "jump",
    "l_shoulder_flex", "l_shoulder_abd", "l_elbow", "r_shoulder_flex", "r_shoulder_abd", "r_elbow",
    "l_hip_flex", "l_hip_abd", "l_knee", "r_hip_flex", "r_hip_abd", "r_knee",
)
# Rest-pose angles (radians): arms hang slightly away from the body, elbows and knees slightly bent.
REST: dict[str, float] = {"l_shoulder_abd": 0.12, "r_shoulder_abd": 0.12, "l_elbow": 0.15,
                          "r_elbow": 0.15, "l_knee": 0.05, "r_knee": 0.05}

Pose = dict[str, np.ndarray]
ActionFn = Callable[[np.ndarray, np.ndarray], Pose]  # (activation s, phase angle) -> parameters


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


# One function per left/symmetric action; right-side actions are their mirror images.
_LEFT_ACTIONS: dict[str, ActionFn] = {
    "A01": lambda s, p: {"l_shoulder_flex": 2.9 * s, "r_shoulder_flex": 2.9 * s, "trunk_pitch": -0.12 * s},
    "A02": lambda s, p: {"l_shoulder_flex": 1.5 * (1 - s) + 0.1, "r_shoulder_flex": 1.5 * (1 - s) + 0.1,
                         "l_shoulder_abd": 1.5 * s, "r_shoulder_abd": 1.5 * s,
                         "l_elbow": 0.3 * (1 - s), "r_elbow": 0.3 * (1 - s)},
    "A03": lambda s, p: {"l_shoulder_abd": 0.3 + 2.5 * s, "r_shoulder_abd": 0.3 + 2.5 * s,
                         "l_elbow": 1.2 * (1 - s), "r_elbow": 1.2 * (1 - s)},
    "A04": lambda s, p: {"trunk_yaw": 0.8 * s, "l_shoulder_abd": 1.2 * s, "r_shoulder_flex": 1.2 * s,
                         "l_elbow": 1.0 * s, "r_elbow": 1.0 * s},
    "A06": lambda s, p: {"l_hip_flex": 1.0 * _pos(np.sin(p)), "r_hip_flex": 1.0 * _pos(-np.sin(p)),
                         "l_knee": 1.6 * _pos(np.sin(p)), "r_knee": 1.6 * _pos(-np.sin(p)),
                         "l_shoulder_flex": -0.5 * np.sin(p), "r_shoulder_flex": 0.5 * np.sin(p),
                         "l_elbow": 0.6 + 0 * p, "r_elbow": 0.6 + 0 * p},
    "A07": lambda s, p: {"l_shoulder_abd": 1.5 * s, "l_shoulder_flex": 0.3 * s, "l_hip_abd": 0.55 * s,
                         "trunk_roll": -0.1 * s},
    "A09": lambda s, p: {"shift_x": 0.35 * s, "l_hip_flex": 1.1 * s, "l_knee": 1.2 * s,
                         "r_hip_flex": -0.45 * s, "r_knee": 0.9 * s, "trunk_pitch": 0.1 * s},
    "A11": lambda s, p: {"l_shoulder_flex": 1.45 + 0 * s, "r_shoulder_flex": 1.45 + 0 * s,
                         "l_elbow": 2.1 * (1 - s), "r_elbow": 2.1 * (1 - s)},
    "A12": lambda s, p: {"l_hip_flex": 1.5 * s, "r_hip_flex": 1.5 * s, "l_knee": 2.2 * s, "r_knee": 2.2 * s,
                         "trunk_pitch": 0.45 * s, "l_shoulder_flex": 1.4 * s, "r_shoulder_flex": 1.4 * s},
    "A13": lambda s, p: {"l_shoulder_flex": 2.9 * s, "l_elbow": 0.2 * (1 - s)},
    "A15": lambda s, p: {"shift_y": 0.3 * s, "l_hip_abd": 0.6 * s, "l_hip_flex": 0.7 * s, "l_knee": 1.3 * s,
                         "r_hip_abd": -0.1 * s, "trunk_roll": 0.15 * s, "trunk_pitch": 0.2 * s},
    "A17": lambda s, p: {"l_shoulder_abd": 0.3 + 1.9 * s + 0.35 * s * np.sin(3 * p),
                         "l_shoulder_flex": 0.5 * s, "l_elbow": 0.4 + 0.9 * s * (1 + np.sin(3 * p + 1)) / 2},
    "A19": lambda s, p: {"trunk_pitch": 1.1 * s, "l_hip_flex": 0.7 * s, "r_hip_flex": 0.7 * s,
                         "l_knee": 1.2 * s, "r_knee": 1.2 * s, "l_shoulder_flex": 1.3 * s,
                         "r_shoulder_flex": 1.3 * s},
    "A20": lambda s, p: {"trunk_yaw": 0.7 * s - 0.25, "r_shoulder_flex": 2.6 * s + 0.2 * (1 - s),
                         "r_shoulder_abd": 0.8 * (1 - s), "r_elbow": 1.6 * (1 - s) + 0.2,
                         "l_shoulder_abd": 0.5 * s},
    "A22": lambda s, p: {"l_hip_flex": 1.0 * s, "l_hip_abd": 0.7 * s, "l_knee": 1.4 * s * (1 - s) * 3,
                         "trunk_roll": -0.2 * s, "r_shoulder_abd": 0.5 * s, "l_shoulder_abd": 0.3 * s},
    "A24": lambda s, p: {"trunk_roll": 0.45 * s, "r_shoulder_abd": 0.3 + 2.5 * s, "l_shoulder_abd": 0.2 * s,
                         "r_elbow": 0.5 * s, "shift_y": -0.05 * s},
    "A26": lambda s, p: {"jump": 0.22 * _pos(np.sin(p)) ** 2, "l_knee": 0.7 * _pos(-np.sin(p)),
                         "r_knee": 0.7 * _pos(-np.sin(p)), "l_hip_flex": 0.5 * _pos(-np.sin(p)),
                         "r_hip_flex": 0.5 * _pos(-np.sin(p)), "l_shoulder_flex": 1.0 + 1.6 * _pos(np.sin(p)),
                         "r_shoulder_flex": 1.0 + 1.6 * _pos(np.sin(p)),
                         "trunk_pitch": 0.3 * _pos(-np.sin(p))},
    "A27": lambda s, p: {"trunk_pitch": 0.95 * s, "l_hip_flex": 0.1 * s, "r_hip_flex": 0.1 * s},
}
# Right-side action -> the left-side action it mirrors.
_MIRRORED: dict[str, str] = {"A05": "A04", "A08": "A07", "A10": "A09", "A14": "A13", "A16": "A15",
                             "A18": "A17", "A21": "A20", "A23": "A22", "A25": "A24"}
_NEGATED_WHEN_MIRRORED = ("trunk_yaw", "trunk_roll", "shift_y")


def _mirror(pose: Pose) -> Pose:
    """The same movement with left and right exchanged."""
    mirrored: Pose = {}
    for name, value in pose.items():
        if name.startswith(("l_", "r_")):
            name = ("r_" if name[0] == "l" else "l_") + name[2:]
        mirrored[name] = -value if name in _NEGATED_WHEN_MIRRORED else value
    return mirrored


def action_parameters(action: str, activation: np.ndarray, phase: np.ndarray) -> Pose:
    """Pose parameters of ``action`` (an MM-Fi action ``A01``..``A27``) at each activation."""
    if action in _LEFT_ACTIONS:
        pose = _LEFT_ACTIONS[action](activation, phase)
    elif action in _MIRRORED:
        pose = _mirror(_LEFT_ACTIONS[_MIRRORED[action]](activation, phase))
    else:
        raise ValueError(f"unknown MM-Fi action {action!r}; expected one of {ACTIONS[0]}..{ACTIONS[-1]}")
    unknown = set(pose) - set(PARAMETERS)
    assert not unknown, f"{action} ({ACTION_NAMES[action]}) sets unknown parameters {unknown}"
    zeros = np.zeros_like(activation)
    return {name: zeros + REST.get(name, 0.0) + pose.get(name, 0.0) for name in PARAMETERS}


@dataclass(frozen=True)
class Body:
    """One subject: size, how fast and how wide they move."""

    bones: dict[str, float]  # REFERENCE_BONES keys, metres
    tempo: float  # action cycles per second
    amplitude: float  # scale of every action's angles


def subject_body(subject_number: int, seed: int) -> Body:
    """The body of subject ``subject_number`` (1..40): deterministic for ``seed``."""
    rng = np.random.default_rng([seed, 1, subject_number])
    scale = rng.uniform(1.55, 1.92) / REFERENCE_HEIGHT
    bones = {k: float(v * scale * rng.uniform(0.95, 1.05)) for k, v in REFERENCE_BONES.items()}
    return Body(bones, float(rng.uniform(0.18, 0.32)), float(rng.uniform(0.8, 1.1)))


# Where a sequence's person stands (base_link, metres) and which way they face (uniform ranges).
PLACEMENT_X_M = (1.0, 4.0)
PLACEMENT_Y_M = (-1.5, 1.5)


@dataclass(frozen=True)
class Placement:
    """Where the person stands for a whole sequence: the body frame's origin (the floor below the
    pelvis at rest) at (x, y) in base_link, and ``heading``, the yaw (rad) of the way the person
    faces (0: facing +x, away from the rig; pi: facing the rig)."""

    x: float
    y: float
    heading: float

    def transform(self) -> RigidTransform:
        """``T_base_body``: body-frame points -> base_link."""
        return RigidTransform.about_z(self.heading, (self.x, self.y, 0.0))


NOMINAL_PLACEMENT = Placement(3.0, 0.0, float(np.pi))  # 3 m in front of the rig, facing it


def draw_placement(rng: np.random.Generator) -> Placement:
    """A placement anywhere in the region: x 1-4 m, y +-1.5 m, any heading."""
    return Placement(float(rng.uniform(*PLACEMENT_X_M)), float(rng.uniform(*PLACEMENT_Y_M)),
                     float(rng.uniform(0.0, 2 * np.pi)))


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rotate(rotations: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations applied to (T, 3) vectors."""
    return np.einsum("tij,tj->ti", rotations, vectors)


def _limb(flex: np.ndarray, abd: np.ndarray, side: float) -> np.ndarray:
    """Direction of a limb hanging down, raised forward by ``flex`` and sideways by ``abd``."""
    return np.stack([np.sin(flex) * np.cos(abd), side * np.sin(abd), -np.cos(flex) * np.cos(abd)], -1)


def _bend(direction: np.ndarray, toward: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``direction`` turned by ``angle`` toward ``toward`` (both (T, 3); the part of ``toward``
    along ``direction`` is removed first)."""
    normal = toward - (toward * direction).sum(-1, keepdims=True) * direction
    fallback = np.broadcast_to(np.array([0.0, 0.0, 1.0]), normal.shape)
    degenerate = np.linalg.norm(normal, axis=-1, keepdims=True) < 1e-6
    normal = _unit(np.where(degenerate, fallback, normal))
    return np.cos(angle)[:, None] * direction + np.sin(angle)[:, None] * normal


def forward_kinematics(body: Body, params: Pose) -> np.ndarray:
    """Joints (T, 17, 3) in the body frame (pelvis above the origin, standing on z = 0)."""
    b = body.bones
    t = len(params["trunk_yaw"])
    j = {}
    x, y, z = np.eye(3)
    ankle_height = ANKLE_HEIGHT * b["thigh"] / REFERENCE_BONES["thigh"]
    leg_length = b["thigh"] + b["shank"] + ankle_height
    pelvis = np.zeros((t, 3))
    pelvis[:, 0], pelvis[:, 1], pelvis[:, 2] = params["shift_x"], params["shift_y"], leg_length
    hips_turn = _rot_z(0.3 * params["trunk_yaw"])
    trunk = _rot_z(params["trunk_yaw"]) @ _rot_y(params["trunk_pitch"]) @ _rot_x(-params["trunk_roll"])
    j["pelvis"] = pelvis
    for side, sign in (("l", 1.0), ("r", -1.0)):
        prefix = "left" if side == "l" else "right"
        hip = pelvis + hips_turn @ (sign * b["hip_width"] * y)
        thigh = _rotate(hips_turn, _limb(params[f"{side}_hip_flex"], params[f"{side}_hip_abd"], sign))
        back = -(hips_turn @ x)
        knee = hip + b["thigh"] * thigh
        shank = _bend(thigh, back, params[f"{side}_knee"])
        j[f"{prefix}_hip"], j[f"{prefix}_knee"] = hip, knee
        j[f"{prefix}_ankle"] = knee + b["shank"] * shank
    j["spine"] = pelvis + trunk @ (b["spine"] * z)
    j["thorax"] = j["spine"] + trunk @ (b["chest"] * z)
    j["neck"] = j["thorax"] + trunk @ (b["neck"] * _unit(np.array([0.25, 0.0, 1.0])))
    j["head"] = j["neck"] + trunk @ (b["head"] * _unit(np.array([-0.2, 0.0, 1.0])))
    forward_up = trunk @ _unit(np.array([1.0, 0.0, 0.4]))
    for side, sign in (("l", 1.0), ("r", -1.0)):
        prefix = "left" if side == "l" else "right"
        shoulder = j["thorax"] + trunk @ (sign * b["shoulder_width"] * y - b["shoulder_drop"] * z)
        upper = _rotate(trunk, _limb(params[f"{side}_shoulder_flex"], params[f"{side}_shoulder_abd"], sign))
        elbow = shoulder + b["upper_arm"] * upper
        j[f"{prefix}_shoulder"], j[f"{prefix}_elbow"] = shoulder, elbow
        j[f"{prefix}_wrist"] = elbow + b["forearm"] * _bend(upper, forward_up, params[f"{side}_elbow"])
    joints = np.stack([j[name] for name in JOINT_INDEX], axis=1)
    ankles = joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 2].min(axis=1)
    joints[:, :, 2] += (ankle_height - ankles + params["jump"])[:, None]
    assert joints.shape == (t, NUM_JOINTS, 3)
    return joints


@dataclass(frozen=True)
class Motion:
    """One subject performing one action at a placement: joints at any time, base_link."""

    body: Body
    action: str
    phase: float  # radians at t = 0
    tempo: float  # cycles per second
    sway: np.ndarray  # (K, 4): amplitude, angular frequency, phase, parameter index of small random motion
    placement: Placement = NOMINAL_PLACEMENT

    def parameters(self, times: np.ndarray) -> Pose:
        angle = 2 * np.pi * self.tempo * np.asarray(times, dtype=np.float64) + self.phase
        activation = 0.5 * (1.0 - np.cos(angle))
        params = action_parameters(self.action, activation, angle)
        for name in PARAMETERS:
            if name not in ("shift_x", "shift_y", "jump"):
                params[name] = params[name] * self.body.amplitude
        for amplitude, frequency, phase, index in self.sway:
            name = PARAMETERS[int(index)]
            params[name] = params[name] + amplitude * np.sin(frequency * times + phase)
        return params

    def joints(self, times: np.ndarray) -> np.ndarray:
        """(T, 17, 3) joints in metres, base_link, at ``times`` (seconds from the start)."""
        local = forward_kinematics(self.body, self.parameters(np.asarray(times, dtype=np.float64)))
        return self.placement.transform().apply(local)

    def velocities(self, times: np.ndarray, step: float = 1e-3) -> np.ndarray:
        """(T, 17, 3) joint velocities in m/s (central differences of :meth:`joints`)."""
        times = np.asarray(times, dtype=np.float64)
        return (self.joints(times + step) - self.joints(times - step)) / (2 * step)


def sequence_motion(body: Body, action: str, rng: np.random.Generator,
                    placement: Placement = NOMINAL_PLACEMENT) -> Motion:
    """The motion of ``body`` doing ``action`` at ``placement``, its phase, tempo and sway drawn from ``rng``."""
    if action not in ACTION_NAMES:
        raise ValueError(f"unknown MM-Fi action {action!r}; expected one of {ACTIONS[0]}..{ACTIONS[-1]}")
    count = 6
    sway = np.column_stack([
        rng.uniform(0.01, 0.05, count), rng.uniform(0.5, 3.0, count), rng.uniform(0, 2 * np.pi, count),
        rng.choice([i for i, n in enumerate(PARAMETERS) if n != "jump"], count),
    ])
    phase, tempo = float(rng.uniform(0, 2 * np.pi)), body.tempo * float(rng.uniform(0.85, 1.15))
    return Motion(body, action, phase, tempo, sway, placement)
