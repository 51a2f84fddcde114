"""Write mmhpe_ros/sample/sample.mcap: a short generated MM-Fi sequence as a rosbag2 MCAP bag.

    .venv/bin/python mmhpe_ros/sample/make_sample.py [--frames 50] [--subject S01] [--action A13] [--seed 7]

The same two commands a user runs, in a temporary folder:

    mmhpe-ros synth TMP/tree --subjects S01 --actions A13 --frames 50 --seed 7
    mmhpe-ros convert TMP/tree TMP/bags

(the MM-Fi-format generator the shipped model is trained on, then the converter of every bag of
this package). The bag stores its rig's calibration; config/calibration.yaml, the default rig of
the launch file, gets the same values. Both are deterministic, so the bytes are reproducible. The bag's .mcap file becomes
``sample.mcap`` and its metadata.yaml is kept beside it, so ``mmhpe_ros/sample/`` is itself a
rosbag2 bag directory (``BagDataset``, ``ros2 bag play``) and ``sample.mcap`` a bare MCAP file
(the replayer, ``mmhpe-ros run``).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from mmhpe_ros.cli import main as mmhpe_ros

HERE = Path(__file__).resolve().parent
CALIBRATION = HERE.parents[1] / "config" / "calibration.yaml"  # the default rig: the sample's
SAMPLE_RIG_NOTE = [
    "# The values below are the rig of the bundled sample bag (mmhpe_ros/sample/make_sample.py writes them).",
    "# On your robot, replace them with your sensors' poses (docs/calibrating.md) or publish them on TF.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--subject", default="S01")
    parser.add_argument("--action", default="A13")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = HERE / "sample.mcap"
    with tempfile.TemporaryDirectory() as tmp:
        tree, bags = Path(tmp) / "tree", Path(tmp) / "bags"
        if mmhpe_ros(["synth", str(tree), "--subjects", args.subject, "--actions", args.action,
                      "--frames", str(args.frames), "--seed", str(args.seed)]):
            raise SystemExit("mmhpe-ros synth failed")
        if mmhpe_ros(["convert", str(tree), str(bags)]):
            raise SystemExit("mmhpe-ros convert failed")
        calibration = CALIBRATION.read_text().splitlines()[0]  # keep the file's own header line
        rig = (tree / "calibration" / "E01.yaml").read_text().splitlines()
        CALIBRATION.write_text("\n".join([calibration, *SAMPLE_RIG_NOTE, *[line for line in rig if not line.startswith("#")]]) + "\n")
        (bag,) = [p.parent for p in bags.rglob("metadata.yaml")]
        (mcap,) = bag.glob("*.mcap")
        out.write_bytes(mcap.read_bytes())
        metadata = yaml.safe_load((bag / "metadata.yaml").read_text())
    info = metadata["rosbag2_bagfile_information"]
    info["relative_file_paths"] = [out.name]
    for entry in info["files"]:
        entry["path"] = out.name
    (HERE / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    print(f"{out}: {args.frames} frames of {args.subject} {args.action}, {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
