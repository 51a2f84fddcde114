"""The MM-Fi-format generator behind `mmhpe-ros synth` (docs/synth.md).

motion (the 27 actions on the skeleton) -> scene (per-environment sensors, room, noise) ->
sensor models (camera, lidar, mmwave, wifi; body surface in surface) -> sequence (one subject x
action, seeded per sequence) -> writer (the MM-Fi tree) -> command (the CLI). person_image renders
camera images of the person in the room (docs/camera.md; `mmhpe-ros synth-bag`, docs/bags.md).
"""
