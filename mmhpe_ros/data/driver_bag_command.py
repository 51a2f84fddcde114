"""Write a rosbag2 bag of one generated sequence as real sensor drivers would record it.

Each sensor at its own rate and in its driver's message layout: radar frames at 20 Hz as the TI
mmWave ROS 2 driver publishes them (small clouds: x, y, z, intensity, velocity), a full 360 degree
LiDAR scan at 10 Hz in the LiDAR's frame as an organised cloud with NaN for missing returns
(ouster-ros or velodyne_pointcloud layout), camera images at 30 Hz rendered from the generated
person (JPEG CompressedImage, or raw) with CameraInfo, WiFi CSI at an irregular 50-150 Hz in
another hardware's layout (ESP32: 1 antenna x 52 subcarriers, complex I/Q), the ground truth at
10 Hz, /tf_static and the calibration in the bag's metadata. The same person, room and motion as
`mmhpe-ros synth` generates for that subject and action. Details: docs/bags.md, "Driver-shaped bags".

Example: mmhpe-ros synth-bag bags/driver_S01_A13 --subject S01 --action A13 --seconds 10
"""
from __future__ import annotations

import argparse
import sys
import time

HELP = "write a bag of a generated sequence as sensor drivers publish it (own rates, layouts, frames)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros synth-bag`."""
    from mmhpe_ros.data.driver_bag_spec import (
        CAMERA_OUTPUTS, CSI_ENCODINGS, CSI_LAYOUTS, IMAGE_FORMATS, LIDAR_DRIVERS, DriverBagSpec,
    )

    defaults = DriverBagSpec()
    parser.add_argument("out", metavar="OUT", help="bag directory to write (must not exist unless --overwrite)")
    parser.add_argument("--subject", default=defaults.subject, help="subject S01..S40 (its environment follows)")
    parser.add_argument("--action", default=defaults.action, help="action A01..A27")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="length of the recording")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="generator seed (as `mmhpe-ros synth --seed`)")
    parser.add_argument("--radar-rate", type=float, default=defaults.radar_rate_hz, help="radar frames per second")
    parser.add_argument("--lidar-rate", type=float, default=defaults.lidar_rate_hz, help="LiDAR scans per second")
    parser.add_argument("--lidar-driver", choices=LIDAR_DRIVERS, default=defaults.lidar_driver,
                        help="point layout of the LiDAR cloud")
    parser.add_argument("--camera-rate", type=float, default=defaults.camera_rate_hz, help="camera frames per second")
    parser.add_argument("--camera", choices=CAMERA_OUTPUTS, default=defaults.camera,
                        help="images (rendered), the generator's keypoints, or both")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default=defaults.image_format,
                        help="jpeg: sensor_msgs/CompressedImage on camera/image_raw/compressed; raw: rgb8 Image")
    parser.add_argument("--csi-layout", choices=sorted(CSI_LAYOUTS), default=defaults.csi_layout,
                        help="CSI hardware layout (antennas x subcarriers)")
    parser.add_argument("--csi-rate", type=float, nargs=2, metavar=("LOW", "HIGH"), default=list(defaults.csi_rate_hz),
                        help="CSI packets arrive at a rate drawn uniformly in LOW..HIGH Hz, packet by packet")
    parser.add_argument("--csi-encoding", choices=CSI_ENCODINGS, default=defaults.csi_encoding,
                        help="iq: complex64 (as csi-bridge publishes); amplitude_phase: 64FC2 (dB, rad)")
    parser.add_argument("--placement", type=float, nargs=3, metavar=("X", "Y", "HEADING"), default=None,
                        help="where the person stands (m, base_link) and faces (rad; pi faces the rig); "
                             "default: where `mmhpe-ros synth` places this sequence")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it is a bag")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Check the options, write the bag with :func:`driver_bag.write_driver_bag`, print a summary."""
    from mmhpe_ros.data.driver_bag import write_driver_bag
    from mmhpe_ros.data.driver_bag_spec import DriverBagSpec
    from mmhpe_ros.modalities import ACTIONS, SUBJECTS

    if args.subject not in SUBJECTS or args.action not in ACTIONS:
        return _error(f"--subject must be one of S01..S40 and --action one of A01..A27, "
                      f"got {args.subject} {args.action}")
    try:
        spec = DriverBagSpec(
            subject=args.subject, action=args.action, seconds=args.seconds, seed=args.seed,
            radar_rate_hz=args.radar_rate, lidar_rate_hz=args.lidar_rate, lidar_driver=args.lidar_driver,
            camera_rate_hz=args.camera_rate, camera=args.camera, image_format=args.image_format,
            csi_layout=args.csi_layout, csi_rate_hz=tuple(args.csi_rate), csi_encoding=args.csi_encoding,
            placement=tuple(args.placement) if args.placement else None)
    except ValueError as error:
        return _error(str(error))
    start = time.perf_counter()
    try:
        summary = write_driver_bag(args.out, spec, overwrite=args.overwrite, progress=args.progress)
    except FileExistsError as error:
        return _error(str(error))
    seconds = time.perf_counter() - start
    topics = ", ".join(f"{topic} {count}" for topic, count in sorted(summary.messages.items()))
    print(f"wrote {sum(summary.messages.values())} messages ({topics}), {summary.bytes / 1e6:.1f} MB "
          f"to {summary.path} in {seconds:.1f} s")
    return 0


def _error(message: str) -> int:
    print(f"mmhpe-ros synth-bag: {message}", file=sys.stderr)
    return 2
