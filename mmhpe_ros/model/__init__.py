"""The multi-modal pose model: encoders, fusion, head, checkpoints, balanced-learning tools."""
