"""ROS 2 parameter files read without ROS: node sections, wildcard, namespaces, nesting."""
import pytest

from mmhpe_ros.runtime.params_file import load_parameter_file, parameters_for


def test_sections_wildcard_and_nesting(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: true\n    rate: 1.0\n"
        "fusion_node:\n  ros__parameters:\n    slop: 0.05\n    rate: 2.0\n    roi: {lower: [0.0, 1.0, 2.0]}\n"
        "/robot/lidar_node:\n  ros__parameters:\n    voxel: 0.1\n"
    )
    nodes = load_parameter_file(path)
    assert nodes["fusion_node"]["roi.lower"] == [0.0, 1.0, 2.0]
    fusion = parameters_for(nodes, "fusion_node")
    assert fusion == {"use_sim_time": True, "rate": 2.0, "slop": 0.05, "roi.lower": [0.0, 1.0, 2.0]}
    assert parameters_for(nodes, "lidar_node", "/robot") == {"use_sim_time": True, "rate": 1.0, "voxel": 0.1}
    assert "voxel" not in parameters_for(nodes, "lidar_node", "/other")


@pytest.mark.parametrize("text", ["- a\n- b\n", "node:\n  params: {}\n", "node:\n  ros__parameters: 3\n", "a: [\n"])
def test_malformed_files_name_the_file(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="bad.yaml"):
        load_parameter_file(path)
