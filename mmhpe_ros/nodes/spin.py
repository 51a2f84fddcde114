"""The one ``main()`` body every node executable shares: init, spin, clean shutdown."""
from __future__ import annotations

from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Run one node until Ctrl-C or an external shutdown, then destroy it and shut rclpy down.

    ``rclpy.init()``/``try_shutdown()`` rather than ``with rclpy.init()``, which Humble and Jazzy
    lack.
    """
    rclpy.init(args=args)
    node: Node | None = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():  # a real error; not a callback cut short by Ctrl-C shutting the context down
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
