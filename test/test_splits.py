"""Protocols and settings are those of the MM-Fi toolbox (P1/P2/P3 x S1/S2/S3)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from mmhpe_ros.data import splits
from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.modalities import ACTIONS, SUBJECTS, environment_of


def key(subject: str, action: str) -> SequenceKey:
    return SequenceKey(environment_of(subject), subject, action)


def legacy_random_split(actions, seed):
    """The toolbox's S1 loop: global legacy seed, reseeded seed, seed+1, ... per action."""
    state = np.random.get_state()
    try:
        table = {}
        for action in actions:
            np.random.seed(seed)
            order = np.random.permutation(len(SUBJECTS))
            cut = int(np.floor(0.8 * len(SUBJECTS)))
            table[action] = ([SUBJECTS[i] for i in order[:cut]], [SUBJECTS[i] for i in order[cut:]])
            seed += 1
        return table
    finally:
        np.random.set_state(state)


def test_protocols_partition_the_27_actions():
    p1, p2 = splits.protocol_actions("P1"), splits.protocol_actions("P2")
    assert len(p1) == 14 and len(p2) == 13
    assert not set(p1) & set(p2)
    assert sorted(p1 + p2) == list(ACTIONS) == list(splits.protocol_actions("P3"))
    assert p1[:4] == ("A02", "A03", "A04", "A05") and p2[:2] == ("A01", "A06")
    assert splits.protocol_actions("p1") == p1
    with pytest.raises(ValueError, match="unknown protocol"):
        splits.protocol_actions("P4")


@pytest.mark.parametrize("protocol", ["P1", "P2", "P3"])
@pytest.mark.parametrize("seed", [0, 7])
def test_s1_equals_the_legacy_global_seed(protocol, seed):
    before = np.random.get_state()[1].copy()
    legacy = legacy_random_split(splits.protocol_actions(protocol), seed)
    for action, (train, val) in legacy.items():
        ours = splits.split_subjects(protocol, "S1", action, seed)
        assert ours == {"train": tuple(sorted(train)), "val": tuple(sorted(val))}
        assert all(splits.split_of(key(s, action), protocol, "S1", seed) == "train" for s in train)
        assert all(splits.split_of(key(s, action), protocol, "S1", seed) == "val" for s in val)
    assert np.array_equal(np.random.get_state()[1], before)  # the global generator is untouched


def test_s1_depends_on_the_action_position_in_the_protocol():
    p1_first = splits.split_subjects("P1", "S1", "A02")  # first of P1: seed 0
    p3_second = splits.split_subjects("P3", "S1", "A02")  # second of P3: seed 1
    assert p1_first != p3_second
    assert p1_first == splits.split_subjects("P3", "S1", "A01")
    assert all(len(splits.split_subjects("P3", "S1", a)["val"]) == 8 for a in ACTIONS)


def test_s2_cross_subject():
    val = {s for s in SUBJECTS if splits.split_of(key(s, "A01"), "P2", "S2") == "val"}
    assert val == {"S05", "S10", "S15", "S20", "S25", "S30", "S35", "S40"}
    assert splits.split_of(key("S01", "A01"), "P2", "S2") == "train"


def test_s3_cross_environment():
    for subject in SUBJECTS:
        want = "val" if environment_of(subject) == "E04" else "train"
        assert splits.split_of(key(subject, "A27"), "P1", "S3") == want
    assert splits.split_of(key("S31", "A27"), "P1", "S3") == "val"
    assert splits.split_of(key("S30", "A27"), "P1", "S3") == "train"


def test_actions_outside_the_protocol_have_no_split():
    assert splits.split_of(key("S01", "A01"), "P1", "S2") is None
    assert splits.split_of(key("S01", "A02"), "P2", "S3") is None
    with pytest.raises(ValueError, match="unknown setting"):
        splits.split_of(key("S01", "A02"), "P1", "S4")


@pytest.mark.parametrize("setting", ["S1", "S2", "S3"])
def test_split_sequences_filters_and_namer_agree(setting):
    table = splits.split_sequences("P1", setting)
    assert not set(table["train"]) & set(table["val"])
    assert len(table["train"]) + len(table["val"]) == 14 * 40
    is_val = splits.split_filter("P1", setting, "val")
    namer = splits.split_namer("P1", setting)
    assert all(is_val(k) and namer(k) == "val" for k in table["val"])
    assert not any(is_val(k) for k in table["train"])
    assert pickle.loads(pickle.dumps(is_val))(table["val"][0])  # picklable for DataLoader workers
    with pytest.raises(ValueError, match="unknown split"):
        splits.split_filter("P1", setting, "test")
