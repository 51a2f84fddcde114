"""`mmhpe-ros`: one command, one subcommand per job.

Each subcommand lives in its own module exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Those modules import heavy libraries (torch, rclpy) inside ``run`` only,
so ``mmhpe-ros --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module implementing it
COMMANDS: dict[str, str] = {
    "synth": "mmhpe_ros.data.synth.command",
    "synth-bag": "mmhpe_ros.data.driver_bag_command",
    "convert": "mmhpe_ros.data.convert_command",
    "train": "mmhpe_ros.train.command",
    "evaluate": "mmhpe_ros.train.evaluate_command",
    "benchmark": "mmhpe_ros.train.benchmark_command",
    "plot": "mmhpe_ros.train.plot_command",
    "run": "mmhpe_ros.nodes.run_command",
    "render": "mmhpe_ros.viz.render_command",
    "calibrate": "mmhpe_ros.geometry.calibrate_command",
    "background": "mmhpe_ros.geometry.background_command",
    "csi-bridge": "mmhpe_ros.nodes.csi_bridge_command",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, unless it is None, the option is a switch that turns something
    off (its "default: True" would read as "off by default"), or the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action, argparse._StoreFalseAction) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mmhpe-ros",
        description="Balanced multi-modal 3D human pose estimation: MM-Fi data, training, ROS 2 graph.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__, formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
