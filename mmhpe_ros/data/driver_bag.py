"""A rosbag2 bag of one generated sequence as real drivers would record it (``mmhpe-ros synth-bag``).

Unlike ``mmhpe-ros convert`` (MM-Fi's 10 Hz frames, every modality on one grid), each sensor
here has its own clock, rate and message layout, as its driver publishes it:

* **radar** ``/radar/points``: one small cloud per radar frame at ``radar_rate_hz`` (20 Hz),
  the TI mmWave ROS 2 driver's PointCloud2 (PCL point: FLOAT32 x, y, z at 0, 4, 8, intensity at
  16, velocity at 20, point_step 32), stamped like the driver (at parse time: a few ms of
  jitter). Each radar frame keeps every detection of the generator's radar model with
  probability ``10 / radar_rate_hz``, so the frames of one 100 ms pose frame hold what one MM-Fi
  frame holds.
* **LiDAR** ``/lidar/points``: a full 360 degree scan (:data:`~synth.lidar.FULL_SCAN`, 32 beams x
  1024 columns, every room return) at ``lidar_rate_hz`` (10 Hz) in the LiDAR's own frame, as an
  organised cloud with NaN where a ray returned nothing: ouster-ros's ``original`` point (48
  bytes: x, y, z, intensity, t, reflectivity, ring, ambient, range; height = beams) or
  velodyne_pointcloud's XYZIRT (22 bytes packed: x, y, z, intensity, ring, time; width = lasers,
  one row per firing). The person's pose is that of the scan's stamp (no motion within a scan).
* **camera** at ``camera_rate_hz`` (30 Hz): images rendered by :mod:`synth.person_image` as
  ``/camera/image_raw/compressed`` (JPEG, what image_transport records) or ``/camera/image_raw``
  (rgb8), and/or the generator's keypoints on ``/camera/keypoints``; ``/camera/camera_info``
  with every image (or keypoint set).
* **WiFi** ``/wifi/csi``: CSI packets at irregular times (instantaneous rate uniform in
  ``csi_rate_hz``, e.g. 50-150 Hz) in a non-MM-Fi hardware layout (default ESP32 HT20: 1 antenna
  x 52 subcarriers), complex I/Q (``complex64``, as ``mmhpe-ros csi-bridge`` publishes) or
  amplitude/phase (``64FC2``).
* ``/mmfi/ground_truth`` (PoseArray, base_link) at 10 Hz and ``/mmfi/sequence`` at the start, for
  MPJPE; ``/tf_static`` at the start with the rig's extrinsics (tf2_msgs/TFMessage, offered
  transient local); the calibration file's text in the metadata (``custom_data``
  ``mmhpe_ros.calibration.<environment>``, as ``convert`` stores it) and what this bag holds
  (``mmhpe_ros.driver_bag``: rates, layouts, CSI subcarriers) as YAML.

The person and the room are those of ``simulate_sequence(subject, action, frames, seed)`` (same
placement, body, motion), so the ground truth equals the generated tree's at the 10 Hz stamps.
Message headers are stamped with the sensor's time; the bag's log time equals the stamp.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import yaml

from mmhpe_ros.data import bag_format as fmt
from mmhpe_ros.data.driver_bag_spec import CSI_ANTENNAS, CSI_LAYOUTS, DriverBagSpec
from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.data.synth.camera import camera_keypoints
from mmhpe_ros.data.synth.lidar import FULL_SCAN, LidarSpec, ScanGrid, lidar_points, room_distances, scan_grid
from mmhpe_ros.data.synth.mmwave import mmwave_points
from mmhpe_ros.data.synth.motion import Motion, Placement, sequence_motion, subject_body
from mmhpe_ros.data.synth.scene import Scene
from mmhpe_ros.data.synth.sequence import _streams, simulate_sequence
from mmhpe_ros.data.synth.wifi import csi_packets
from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.modalities import FRAME_IDS, FRAME_RATE_HZ, TOPICS
from mmhpe_ros.runtime import codecs

NS_PER_S = 1_000_000_000
START_NS = fmt.FIRST_SEQUENCE_NS
DRIVER_BAG_KEY = "mmhpe_ros.driver_bag"  # custom_data: YAML of DriverBagSpec and the CSI layout
# Sensors are not synchronised: each stream starts at its own offset (ns) after the sequence start.
PHASE_NS = {"lidar": 0, "camera": 11_000_000, "radar": 23_000_000, "csi": 3_000_000}
RADAR_JITTER_NS = 1_500_000  # the TI driver stamps with its receive time
JPEG_QUALITY = 90

# Point layouts as the drivers' PCL point types lay them out: (name, offset, PointField datatype).
FLOAT32, UINT16, UINT32 = 7, 4, 6
TI_MMWAVE_POINT = ((("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 16, FLOAT32),
                    ("velocity", 20, FLOAT32)), 32)
OUSTER_POINT = ((("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 16, FLOAT32),
                 ("t", 20, UINT32), ("reflectivity", 24, UINT16), ("ring", 26, UINT16), ("ambient", 28, UINT16),
                 ("range", 32, UINT32)), 48)
VELODYNE_POINT = ((("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 12, FLOAT32),
                   ("ring", 16, UINT16), ("time", 18, FLOAT32)), 22)

TOPIC_RADAR = "/" + TOPICS.mmwave_points
TOPIC_LIDAR = "/" + TOPICS.lidar_points
TOPIC_IMAGE = "/" + TOPICS.camera_image
TOPIC_IMAGE_COMPRESSED = TOPIC_IMAGE + "/compressed"
TOPIC_CAMERA_INFO = "/" + TOPICS.camera_info
TOPIC_KEYPOINTS = "/" + TOPICS.camera_keypoints
TOPIC_CSI = "/" + TOPICS.wifi_csi
TOPIC_TF_STATIC = "/tf_static"


@dataclass
class DriverBagSummary:
    """What was written: messages per topic, the bag's directory and its size in bytes."""

    path: Path
    messages: dict[str, int] = field(default_factory=dict)
    bytes: int = 0


@dataclass
class _Sequence:
    """The simulated world of the bag: the scene, its calibration, the person's motion."""

    scene: Scene
    calibration: Calibration
    motion: Motion
    environment: str


def _world(spec: DriverBagSpec) -> _Sequence:
    """The scene, calibration and motion of ``simulate_sequence(subject, action, ..., seed)``."""
    sequence = simulate_sequence(spec.subject, spec.action, 1, spec.seed)
    placement = Placement(*spec.placement) if spec.placement else sequence.placement
    rng = _streams(spec.seed, spec.subject, spec.action)  # the sequence's own motion stream
    motion = sequence_motion(subject_body(int(spec.subject[1:]), spec.seed), spec.action, rng["motion"], placement)
    return _Sequence(sequence.scene, sequence.calibration, motion, sequence.key.environment)


def stream_times(spec: DriverBagSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Stamps (ns) of every stream within ``seconds`` of the start (START_NS)."""
    end = START_NS + round(spec.seconds * NS_PER_S)

    def regular(rate: float, phase: int) -> np.ndarray:
        times = START_NS + phase + np.round(np.arange(0, spec.seconds * rate) * NS_PER_S / rate).astype(np.int64)
        return times[times < end]

    radar = regular(spec.radar_rate_hz, PHASE_NS["radar"])
    bound = min(3 * RADAR_JITTER_NS, NS_PER_S / spec.radar_rate_hz / 4)  # jitter never reorders frames
    radar = radar + np.round(np.clip(rng.normal(0, RADAR_JITTER_NS, len(radar)), -bound, bound)).astype(np.int64)
    low, high = spec.csi_rate_hz
    count = int(spec.seconds * high) + 2
    periods = NS_PER_S / rng.uniform(low, high, count)
    csi = START_NS + PHASE_NS["csi"] + np.round(np.cumsum(periods) - periods[0]).astype(np.int64)
    return {
        "ground_truth": regular(FRAME_RATE_HZ, 0),
        "lidar": regular(spec.lidar_rate_hz, PHASE_NS["lidar"]),
        "camera": regular(spec.camera_rate_hz, PHASE_NS["camera"]),
        "radar": radar[radar < end],
        "csi": csi[csi < end],
    }


def _seconds(stamps: np.ndarray) -> np.ndarray:
    return (np.asarray(stamps) - START_NS) / NS_PER_S


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def _layout_dtype(layout: tuple[tuple[tuple[str, int, int], ...], int]) -> np.dtype:
    fields, step = layout
    formats = [codecs.POINT_FIELD_DTYPES[d].newbyteorder("<") for _, _, d in fields]
    return np.dtype({"names": [n for n, _, _ in fields], "formats": formats,
                     "offsets": [o for _, o, _ in fields], "itemsize": step})


def driver_cloud(types: codecs.MessageTypes, header: Any, layout: tuple, points: np.ndarray,
                 height: int = 1) -> Any:
    """A PointCloud2 with ``layout``'s fields at its offsets (padding bytes 0), ``points`` a
    structured array of ``height`` x width points in row order; ``is_dense`` false when any x, y
    or z is NaN."""
    fields, step = layout
    packed = np.zeros(len(points), dtype=_layout_dtype(layout))
    for name in packed.dtype.names:
        packed[name] = points[name]
    width = len(points) // height
    dense = bool(np.isfinite(np.stack([points[a] for a in "xyz"])).all())
    return types.PointCloud2(
        header=header, height=height, width=width, is_bigendian=False, point_step=step,
        row_step=step * width, is_dense=dense,
        fields=[types.PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        data=types.uint8_sequence(packed.view(np.uint8)),
    )


def radar_frame(scene: Scene, motion: Motion, stamp_s: float, keep: float,
                rng: np.random.Generator) -> np.ndarray:
    """One radar frame's detections (N, 5) x, y, z, velocity, intensity in the radar frame: the
    generator's radar model at ``stamp_s``, each detection kept with probability ``keep``."""
    times = np.array([stamp_s])
    points, _ = mmwave_points(scene, motion.joints(times)[0], motion.velocities(times)[0], rng)
    return points[rng.random(len(points)) < keep]


def ti_radar_points(points: np.ndarray) -> np.ndarray:
    """(N, 5) x, y, z, velocity, intensity -> the TI driver's point fields (structured)."""
    out = np.zeros(len(points), dtype=_layout_dtype(TI_MMWAVE_POINT))
    for column, name in enumerate(("x", "y", "z", "velocity", "intensity")):
        out[name] = points[:, column]
    return out


def ray_index(points: np.ndarray, spec: LidarSpec) -> tuple[np.ndarray, np.ndarray]:
    """(ring, column) of the scan-grid ray each point (N, 3) lies on (:func:`synth.lidar.scan_grid`:
    ring 0 = top beam, column 0 = the first azimuth of the spec)."""
    distance = np.linalg.norm(points, axis=1)
    elevation = np.arcsin(np.clip(points[:, 2] / distance, -1.0, 1.0))
    azimuth = np.arctan2(points[:, 1], points[:, 0])
    top, bottom = np.deg2rad(spec.elevation_deg[1]), np.deg2rad(spec.elevation_deg[0])
    ring = np.round((top - elevation) / ((top - bottom) / (spec.rings - 1))).astype(np.int64)
    step = 2 * np.pi / spec.columns
    column = np.round((azimuth - np.deg2rad(spec.azimuth_deg[0])) / step).astype(np.int64) % spec.columns
    return ring, column


def organised_scan(points: np.ndarray, on_person: np.ndarray, spec: LidarSpec, driver: str,
                   scan_period_s: float) -> tuple[np.ndarray, int]:
    """One full scan's returns (N, 3) as the driver's organised point grid (structured, row order)
    and its height: NaN x, y, z (and intensity) where a ray returned nothing.

    ouster: rows = beams (top first), columns clockwise from behind the sensor (azimuth 180 deg);
    velodyne: rows = firings (the same clockwise order), columns = lasers (ring 0 = lowest)."""
    ring, column = ray_index(points, spec)
    clockwise = (spec.columns - column) % spec.columns  # grid column 0 is azimuth -180 = 180 deg
    distance = np.linalg.norm(points, axis=1)
    reflectivity = np.where(on_person, 40.0, 80.0)
    signal = np.clip(3000.0 * reflectivity / np.maximum(distance, 0.3) ** 2, 0, 65535)
    if driver == "ouster":
        grid = np.zeros((spec.rings, spec.columns), dtype=_layout_dtype(OUSTER_POINT))
        grid["x"] = grid["y"] = grid["z"] = np.nan
        grid["ring"] = np.arange(spec.rings)[:, None]
        grid["t"] = np.round(np.arange(spec.columns) * scan_period_s * NS_PER_S / spec.columns)[None, :]
        cell = grid[ring, clockwise]
        for axis, name in enumerate("xyz"):
            cell[name] = points[:, axis]
        cell["intensity"], cell["reflectivity"] = signal, reflectivity
        cell["range"] = np.round(distance * 1000.0)
        cell["ambient"] = 50
        grid[ring, clockwise] = cell
        return grid.reshape(-1), spec.rings
    grid = np.zeros((spec.columns, spec.rings), dtype=_layout_dtype(VELODYNE_POINT))
    grid["x"] = grid["y"] = grid["z"] = grid["intensity"] = np.nan
    laser = spec.rings - 1 - ring  # ring 0: the lowest laser
    grid["ring"] = np.arange(spec.rings)[None, :]
    grid["time"] = (np.arange(spec.columns) * scan_period_s / spec.columns)[:, None]
    cell = grid[clockwise, laser]
    for axis, name in enumerate("xyz"):
        cell[name] = points[:, axis]
    cell["intensity"] = reflectivity
    grid[clockwise, laser] = cell
    return grid.reshape(-1), spec.columns


def csi_image(types: codecs.MessageTypes, header: Any, amplitude: np.ndarray, phase: np.ndarray,
              encoding: str) -> Any:
    """One CSI packet (antennas, subcarriers) as the wifi/csi Image: ``amplitude_phase`` (64FC2,
    dB and rad) or ``iq`` (complex64: channels real, imaginary of ``10^(dB/20) e^(i phase)``)."""
    if encoding == "amplitude_phase":
        return codecs.create_csi_packet(types, header, amplitude, phase)
    with np.errstate(over="ignore"):
        iq = (10.0 ** (amplitude / 20.0) * np.exp(1j * phase)).astype(np.complex64)
    pixels = np.ascontiguousarray(np.stack([iq.real, iq.imag], axis=-1).astype("<f4"))
    height, width = iq.shape
    return types.Image(header=header, height=height, width=width, encoding="complex64", is_bigendian=0,
                       step=width * 8, data=types.uint8_sequence(pixels.reshape(-1).view(np.uint8)))


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image as PilImage

    buffer = io.BytesIO()
    PilImage.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def tf_static_message(typestore: Any, stamp_ns: int, calibration: Calibration) -> Any:
    """tf2_msgs/TFMessage with ``base_frame -> sensor frame`` for every extrinsic of ``calibration``."""
    types = typestore.types
    transforms = []
    for frame, transform in sorted(calibration.extrinsics.items()):
        x, y, z, w = _quaternion(transform.rotation)
        transforms.append(types["geometry_msgs/msg/TransformStamped"](
            header=types["std_msgs/msg/Header"](stamp=codecs.ns_to_stamp(codecs.rosbags_types(typestore), stamp_ns),
                                                frame_id=calibration.base_frame),
            child_frame_id=frame,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](**dict(zip("xyz", map(float, transform.translation)))),
                rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))))
    return types["tf2_msgs/msg/TFMessage"](transforms=transforms)


def _quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    from scipy.spatial.transform import Rotation

    return tuple(float(v) for v in Rotation.from_matrix(rotation).as_quat())  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _transient_local() -> list[Any]:
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    unspecified = QosTime(0, 0)
    return [Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                unspecified, unspecified, QosLiveliness.AUTOMATIC, unspecified, False)]


class _Generator:
    """Makes each stream's messages on demand, in the streams' own time order."""

    def __init__(self, spec: DriverBagSpec, world: _Sequence, typestore: Any) -> None:
        self.spec, self.world, self.typestore = spec, world, typestore
        self.types = codecs.rosbags_types(typestore)
        number = (int(spec.subject[1:]), int(spec.action[1:]))
        self.rng = {name: np.random.default_rng([spec.seed, 21, *number, i])
                    for i, name in enumerate(("times", "radar", "lidar", "camera", "csi", "image"))}
        self.times = stream_times(spec, self.rng["times"])
        scene = world.scene
        self.grid: ScanGrid = scan_grid(scene.lidar, FULL_SCAN)
        self.room = room_distances(scene, self.grid)
        self.intrinsics = scene.intrinsics
        self._renderer: Any = None
        self._appearance: Any = None
        self._keypoints: np.ndarray | None = None
        self._csi_packets: tuple[np.ndarray, np.ndarray] | None = None

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        return codecs.make_header(self.types, int(stamp_ns), frame_id)

    def events(self) -> list[tuple[int, int, str, int]]:
        """(stamp, order within a stamp, stream, index) of every message, in writing order."""
        order = {"start": 0, "ground_truth": 1, "lidar": 2, "camera": 3, "radar": 4, "csi": 5}
        events = [(START_NS, 0, "start", 0)]
        for stream, stamps in self.times.items():
            events += [(int(t), order[stream], stream, i) for i, t in enumerate(stamps)]
        return sorted(events)

    def messages(self, stream: str, index: int) -> Iterator[tuple[str, str, Any]]:
        """(topic, message type, message) of one event."""
        stamp = int(self.times[stream][index]) if stream != "start" else START_NS
        yield from getattr(self, f"_{stream}")(stamp, index)

    def _start(self, stamp: int, index: int) -> Iterator[tuple[str, str, Any]]:
        key = SequenceKey(self.world.environment, self.spec.subject, self.spec.action)
        yield fmt.SEQUENCE_STREAM.topic, fmt.SEQUENCE_STREAM.msgtype, fmt.sequence_message(self.types, key)
        yield TOPIC_TF_STATIC, "tf2_msgs/msg/TFMessage", tf_static_message(self.typestore, stamp, self.world.calibration)

    def _ground_truth(self, stamp: int, index: int) -> Iterator[tuple[str, str, Any]]:
        joints = self.world.motion.joints(_seconds([stamp]))[0]
        stream = fmt.GROUND_TRUTH_STREAM
        yield stream.topic, stream.msgtype, codecs.create_pose_array(self.types, self.header(stamp, stream.frame_id), joints)

    def _lidar(self, stamp: int, index: int) -> Iterator[tuple[str, str, Any]]:
        joints = self.world.motion.joints(_seconds([stamp]))[0]
        points, on_person = lidar_points(self.world.scene, joints, self.rng["lidar"], self.grid, self.room, FULL_SCAN)
        layout = OUSTER_POINT if self.spec.lidar_driver == "ouster" else VELODYNE_POINT
        grid, height = organised_scan(points, on_person, FULL_SCAN, self.spec.lidar_driver, 1.0 / self.spec.lidar_rate_hz)
        yield TOPIC_LIDAR, fmt.POINT_CLOUD2, driver_cloud(self.types, self.header(stamp, FRAME_IDS["lidar"]), layout,
                                                          grid, height)

    def _radar(self, stamp: int, index: int) -> Iterator[tuple[str, str, Any]]:
        keep = min(1.0, FRAME_RATE_HZ / self.spec.radar_rate_hz)
        points = radar_frame(self.world.scene, self.world.motion, float(_seconds([stamp])[0]), keep, self.rng["radar"])
        yield TOPIC_RADAR, fmt.POINT_CLOUD2, driver_cloud(self.types, self.header(stamp, FRAME_IDS["mmwave"]),
                                                          TI_MMWAVE_POINT, ti_radar_points(points))

    def _camera(self, stamp: int, index: int) -> Iterator[tuple[str, str, Any]]:
        header = self.header(stamp, FRAME_IDS["rgb"])
        joints = self.world.motion.joints(_seconds([stamp]))
        if self.spec.camera in ("images", "both"):
            rgb = self._renderer_for().render(joints[0], self._appearance)
            if self.spec.image_format == "jpeg":
                image = self.typestore.types["sensor_msgs/msg/CompressedImage"](
                    header=header, format="rgb8; jpeg compressed bgr8",
                    data=np.frombuffer(_jpeg(rgb), dtype=np.uint8).copy())
                yield TOPIC_IMAGE_COMPRESSED, "sensor_msgs/msg/CompressedImage", image
            else:
                image = self.types.Image(header=header, height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                                         is_bigendian=0, step=rgb.shape[1] * 3,
                                         data=self.types.uint8_sequence(rgb.reshape(-1)))
                yield TOPIC_IMAGE, "sensor_msgs/msg/Image", image
        if self.spec.camera in ("keypoints", "both"):
            keypoints = self._keypoints_at(index)
            yield TOPIC_KEYPOINTS, fmt.POINT_CLOUD2, fmt.encode_points(self.types, header, "rgb", keypoints)
        yield TOPIC_CAMERA_INFO, fmt.CAMERA_INFO_STREAM.msgtype, fmt.camera_info_message(self.typestore, header,
                                                                                         self.intrinsics)

    def _renderer_for(self) -> Any:
        if self._renderer is None:
            from mmhpe_ros.data.synth.person_image import Appearance, PersonRenderer

            self._renderer = PersonRenderer(self.world.scene, seed=self.spec.seed)
            self._appearance = Appearance.of_subject(int(self.spec.subject[1:]), self.spec.seed)
        return self._renderer

    def _keypoints_at(self, index: int) -> np.ndarray:
        if self._keypoints is None:
            times = _seconds(self.times["camera"])
            motion = self.world.motion
            self._keypoints = camera_keypoints(self.world.scene, motion.joints(times), motion.velocities(times),
                                               self.rng["camera"])
        return self._keypoints[index]

    def _csi(self, stamp: int, index: int) -> Iterator[tuple[str, str, Any]]:
        if self._csi_packets is None:
            indices = np.array(CSI_LAYOUTS[self.spec.csi_layout], dtype=np.float64)
            joints = self.world.motion.joints(_seconds(self.times["csi"]))
            self._csi_packets = csi_packets(self.world.scene, joints, self.rng["csi"], subcarriers=indices,
                                    antennas=CSI_ANTENNAS[self.spec.csi_layout])
        amplitude, phase = self._csi_packets
        message = csi_image(self.types, self.header(stamp, FRAME_IDS["wifi"]), amplitude[index], phase[index],
                            self.spec.csi_encoding)
        yield TOPIC_CSI, "sensor_msgs/msg/Image", message


def bag_description(spec: DriverBagSpec) -> dict[str, Any]:
    """What the ``mmhpe_ros.driver_bag`` metadata entry says: the spec, the layouts, the CSI
    subcarriers and antennas (an Image has no field for them)."""
    description = asdict(spec)
    description["csi_rate_hz"] = list(spec.csi_rate_hz)
    description["placement"] = list(spec.placement) if spec.placement else None
    description.update(radar_layout="ti_mmwave", lidar_layout=spec.lidar_driver, lidar_scan="full",
                       csi_subcarriers=list(CSI_LAYOUTS[spec.csi_layout]), csi_antennas=CSI_ANTENNAS[spec.csi_layout])
    return description


def write_driver_bag(out: str | Path, spec: DriverBagSpec = DriverBagSpec(), overwrite: bool = False,
                     progress: bool = True) -> DriverBagSummary:
    """Write the driver-shaped bag of ``spec`` to the directory ``out`` (must not exist unless
    ``overwrite`` and it is a bag); a failure leaves no partial bag."""
    import shutil

    from rosbags.rosbag2 import StoragePlugin, Writer

    from mmhpe_ros.data.bags import JOINTS_DTYPE_KEY, _typestore
    from mmhpe_ros.geometry.calibration import write_calibration
    from mmhpe_ros.progress import progress_bar

    out = Path(out)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
        if not (out / "metadata.yaml").is_file():
            raise FileExistsError(f"{out} is not a rosbag2 bag; not removing it")
        shutil.rmtree(out)
    typestore = _typestore()
    world = _world(spec)
    generator = _Generator(spec, world, typestore)
    summary = DriverBagSummary(out)
    writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    connections: dict[str, Any] = {}
    try:
        events = generator.events()
        for stamp, _, stream, index in progress_bar(events, enabled=progress, desc="synth-bag", unit="msg"):
            for topic, msgtype, msg in generator.messages(stream, index):
                if topic not in connections:
                    qos = _transient_local() if topic in (TOPIC_TF_STATIC, fmt.SEQUENCE_STREAM.topic) else []
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore,
                                                               offered_qos_profiles=qos)
                writer.write(connections[topic], stamp, typestore.serialize_cdr(msg, msgtype))
                summary.messages[topic] = summary.messages.get(topic, 0) + 1
        calibration_text = _calibration_text(world.calibration, write_calibration)
        writer.set_custom_data(fmt.CALIBRATION_KEY + world.environment, calibration_text)
        writer.set_custom_data(DRIVER_BAG_KEY, yaml.safe_dump(bag_description(spec), sort_keys=False))
        writer.set_custom_data(JOINTS_DTYPE_KEY, np.dtype(np.float64).str)
        writer.close()
    except BaseException:
        writer.close()
        shutil.rmtree(out, ignore_errors=True)
        raise
    summary.bytes = sum(p.stat().st_size for p in out.iterdir())
    return summary


def _calibration_text(calibration: Calibration, write: Callable[..., Path]) -> str:
    """The calibration file's text, as ``mmhpe-ros synth`` writes it beside a tree."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return write(Path(folder) / "calibration.yaml", calibration,
                     comment=calibration.source).read_text(encoding="utf-8")
