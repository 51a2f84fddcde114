"""Sensor geometry: rigid transforms, the rig's calibration, background models, person localisation.

No rclpy here: nodes, training and the generator share these functions.
"""
