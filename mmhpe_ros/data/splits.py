"""MM-Fi benchmark splits: protocols P1/P2/P3 (action subsets) x settings S1/S2/S3 (train/val).

As the MM-Fi toolbox defines them (``/work/shared/docs/mmfi.md``):

- P1 daily actions, P2 rehabilitation actions, P3 all 27 actions.
- S1 random split: for the ``i``-th action of the protocol (protocol order), the 40 subjects are
  permuted by numpy's legacy generator seeded ``seed + i``; the first ``floor(0.8 * 40) = 32``
  train, the rest validate. ``np.random.RandomState(s)`` gives the same permutation as
  ``np.random.seed(s); np.random.permutation(40)`` without touching the global state.
- S2 cross-subject: S05, S10, ..., S40 validate, the other 32 train.
- S3 cross-environment: E01-E03 (S01-S30) train, E04 (S31-S40) validates.

Training decisions (contribution assessment, checkpoint choice, tuning, a model card's expected
errors) never look at the validation split: they use a held-out part of the TRAINING sequences,
:func:`holdout_sequences` (ours; the MM-Fi toolbox has no such split).
"""
from __future__ import annotations

from functools import lru_cache, partial
from typing import Callable, Iterable

import numpy as np

from mmhpe_ros.data.frames import SequenceKey
from mmhpe_ros.modalities import ACTIONS, SUBJECTS, environment_of

PROTOCOLS: dict[str, tuple[str, ...]] = {
    "P1": ("A02", "A03", "A04", "A05", "A13", "A14", "A17", "A18", "A19", "A20", "A21", "A22",
           "A23", "A27"),  # daily actions
    "P2": ("A01", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A15", "A16", "A24", "A25",
           "A26"),  # rehabilitation actions
    "P3": ACTIONS,  # all actions
}
SETTINGS: dict[str, str] = {
    "S1": "random split of subjects, per action",
    "S2": "cross-subject",
    "S3": "cross-environment",
}
SPLITS: tuple[str, ...] = ("train", "val")
S1_TRAIN_RATIO = 0.8
S2_VAL_SUBJECTS: tuple[str, ...] = tuple(f"S{n:02d}" for n in range(5, 41, 5))
S3_TRAIN_ENVIRONMENTS: tuple[str, ...] = ("E01", "E02", "E03")
S3_VAL_ENVIRONMENTS: tuple[str, ...] = ("E04",)

SplitName = Callable[[SequenceKey], "str | None"]


def _protocol(protocol: str) -> str:
    name = protocol.upper()
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    return name


def _setting(setting: str) -> str:
    name = setting.upper()
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; expected one of {', '.join(SETTINGS)}")
    return name


def protocol_actions(protocol: str) -> tuple[str, ...]:
    """Actions of ``protocol`` ("P1", "P2" or "P3"), in the toolbox's order."""
    return PROTOCOLS[_protocol(protocol)]


@lru_cache(maxsize=None)
def random_split(action_number: int, seed: int = 0) -> tuple[frozenset[str], frozenset[str]]:
    """S1 (train, val) subjects of the ``action_number``-th (0-based) action of a protocol."""
    order = np.random.RandomState(seed + action_number).permutation(len(SUBJECTS))
    cut = int(np.floor(S1_TRAIN_RATIO * len(SUBJECTS)))
    return (frozenset(SUBJECTS[i] for i in order[:cut]), frozenset(SUBJECTS[i] for i in order[cut:]))


@lru_cache(maxsize=None)
def _split_sets(protocol: str, setting: str, action: str, seed: int) -> tuple[frozenset[str], frozenset[str]]:
    """(train, val) subjects of one action; both empty if the action is not in the protocol."""
    actions = protocol_actions(protocol)
    setting = _setting(setting)
    if action not in actions:
        return frozenset(), frozenset()
    if setting == "S1":
        return random_split(actions.index(action), seed)
    if setting == "S2":
        val = frozenset(S2_VAL_SUBJECTS)
        return frozenset(SUBJECTS) - val, val
    return (frozenset(s for s in SUBJECTS if environment_of(s) in S3_TRAIN_ENVIRONMENTS),
            frozenset(s for s in SUBJECTS if environment_of(s) in S3_VAL_ENVIRONMENTS))


def split_subjects(protocol: str, setting: str, action: str, seed: int = 0) -> dict[str, tuple[str, ...]]:
    """{"train": subjects, "val": subjects} for one action of a protocol (empty if not in it)."""
    return {split: tuple(sorted(subjects))
            for split, subjects in zip(SPLITS, _split_sets(protocol, setting, action, seed))}


def split_of(key: SequenceKey, protocol: str, setting: str, seed: int = 0) -> str | None:
    """"train" or "val" for a sequence under ``protocol`` x ``setting``; None if its action is
    not in the protocol."""
    for split, subjects in zip(SPLITS, _split_sets(protocol, setting, key.action, seed)):
        if key.subject in subjects:
            return split
    return None


def split_namer(protocol: str, setting: str, seed: int = 0) -> SplitName:
    """``key -> "train" | "val" | None``: the ``split`` argument of ``bags.convert(per="split")``."""
    _protocol(protocol)  # fail now, not at the first frame
    _setting(setting)
    return partial(split_of, protocol=protocol, setting=setting, seed=seed)


def split_filter(protocol: str, setting: str, split: str, seed: int = 0) -> Callable[[SequenceKey], bool]:
    """Predicate keeping the sequences of one split, e.g. ``MmfiDataset(root, select=...)``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    _protocol(protocol)
    _setting(setting)
    return partial(_in_split, split=split, protocol=protocol, setting=setting, seed=seed)


def _in_split(key: SequenceKey, split: str, protocol: str, setting: str, seed: int) -> bool:
    return split_of(key, protocol, setting, seed) == split


def split_sequences(protocol: str, setting: str, seed: int = 0) -> dict[str, list[SequenceKey]]:
    """Every MM-Fi sequence of each split (whether or not a given tree holds it)."""
    table: dict[str, list[SequenceKey]] = {split: [] for split in SPLITS}
    for action in protocol_actions(protocol):
        for split, subjects in split_subjects(protocol, setting, action, seed).items():
            table[split].extend(SequenceKey(environment_of(s), s, action) for s in subjects)
    for keys in table.values():
        keys.sort()
    return table


def holdout_sequences(keys: Iterable[SequenceKey], fraction: float, seed: int = 0) -> frozenset[SequenceKey]:
    """Whole sequences of ``keys`` (training sequences) held out for training decisions.

    Stratified over actions and subjects: every action loses ``round(fraction * n)`` of its ``n``
    sequences (at least one when ``fraction > 0``, never all), and the subjects are taken in turn
    along one seeded permutation of all subjects, so each subject is held out about equally often
    (counts differ by at most one when every subject has every action). Whole sequences, so no
    frame of a held-out sequence neighbours a training frame. Fixed by ``seed``; an action with a
    single sequence keeps it for training.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    by_action: dict[str, set[str]] = {}
    for key in keys:
        by_action.setdefault(key.action, set()).add(key.subject)
    subjects = sorted({s for names in by_action.values() for s in names})
    order = [subjects[i] for i in np.random.RandomState(seed).permutation(len(subjects))]
    held: set[SequenceKey] = set()
    cursor = 0
    for action in sorted(by_action):
        available = by_action[action]
        count = min(max(1, round(fraction * len(available))), len(available) - 1) if fraction > 0 else 0
        start, taken = cursor, 0
        for step in range(len(order)):
            if taken == count:
                break
            subject = order[(start + step) % len(order)]
            if subject in available:
                held.add(SequenceKey(environment_of(subject), subject, action))
                taken += 1
                cursor = (start + step + 1) % len(order)
    return frozenset(held)
