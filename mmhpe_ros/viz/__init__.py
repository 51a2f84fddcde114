"""Seeing the output: skeleton pictures (`mmhpe-ros render`) and the Foxglove live view's channels.

Plain numpy, matplotlib and rosbags; no rclpy (the Foxglove bridge node is nodes/foxglove_bridge.py).
"""
