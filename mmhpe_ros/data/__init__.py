"""Data: the MM-Fi reader, the MM-Fi-format generator, rosbag2 conversion and datasets."""
