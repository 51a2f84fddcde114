"""Publish CSI from a WiFi CSI tool on ``wifi/csi``: a log file at its own timing, a log being
written, UDP datagrams or stdin (Atheros CSI Tool, Linux 802.11n CSI Tool for Intel 5300,
ESP32-CSI-Tool; parsed with csiread, ``pip install .[wifi]``).

Examples:
  mmhpe-ros csi-bridge capture.dat --tool atheros              # a log, at its own pace
  mmhpe-ros csi-bridge capture.dat --tool intel --follow       # what log_to_file appends from now on
  mmhpe-ros csi-bridge 5500 --tool atheros --udp               # datagrams on UDP port 5500
  idf.py monitor | mmhpe-ros csi-bridge - --tool esp32         # ESP32-CSI-Tool's serial output

Then run the wifi node with the layout the bridge prints (e.g. csi_layout:=esp32_ht20).
"""
from __future__ import annotations

import argparse

from mmhpe_ros.runtime.csi_bridge import TOOLS

HELP = "publish CSI from a WiFi CSI tool (log file, growing log, UDP, stdin) on wifi/csi"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `mmhpe-ros csi-bridge`."""
    parser.add_argument("source", help="log file; with --udp the port; '-' for stdin")
    parser.add_argument("--tool", choices=TOOLS, required=True, help="the CSI tool that writes the source")
    live = parser.add_mutually_exclusive_group()
    live.add_argument("--follow", action="store_true", help="read what is appended to the log from now on "
                      "(stamped with the receive time)")
    live.add_argument("--udp", action="store_true", help="receive one record per UDP datagram on port SOURCE")
    parser.add_argument("--udp-host", default="0.0.0.0", help="address to bind with --udp")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed of a log (0: as fast as possible)")
    parser.add_argument("--loop", action="store_true", help="replay the log in a loop")
    parser.add_argument("--tones", type=int, choices=(56, 114), default=114, help="atheros: subcarriers per packet")
    parser.add_argument("--tx-stream", type=int, default=0, help="the transmit stream whose antennas are published")
    parser.add_argument("--frame-id", default="wifi", help="frame id of the packets")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.parameter import Parameter

    from mmhpe_ros.nodes.csi_bridge import CsiBridgeNode
    from mmhpe_ros.runtime.csi_bridge import CsiLogError

    mode = "stdin" if args.source == "-" else "udp" if args.udp else "follow" if args.follow else "file"
    values = {"source": "" if mode == "stdin" else args.source, "tool": args.tool, "mode": mode,
              "rate": float(args.rate), "loop": bool(args.loop), "tones": int(args.tones),
              "tx_stream": int(args.tx_stream), "udp_host": args.udp_host, "frame_id": args.frame_id}
    rclpy.init()
    node = CsiBridgeNode(parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    try:
        published = node.run(args.duration)
        print(f"published {published} CSI packets ({node.layout})")
        return 0
    except CsiLogError as error:
        print(f"csi-bridge: {error}")
        return 1
    except KeyboardInterrupt:
        print(f"published {node.published} CSI packets ({node.layout})")
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
