"""FeatureSync without ROS: rates, jitter, silent sensors, reordering, stamp jumps, bounded queues;
complete sets checked against message_filters.ApproximateTimeSynchronizer (../shared/ros-tools)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmhpe_ros.modalities import MODALITIES
from mmhpe_ros.runtime.sync import FeatureSync, SyncedSet

MS = 1_000_000
RATES_HZ = {"rgb": 30.0, "lidar": 10.0, "mmwave": 20.0, "wifi": 10.0}  # CSI windows: 10 Hz
LATENCY_MS = {"rgb": 2.0, "lidar": 5.0, "mmwave": 3.0, "wifi": 90.0}  # stamp -> arrival (wifi: a window)


def events(seconds: float, *, rates=RATES_HZ, latency=LATENCY_MS, jitter_ms: float = 0.0, start_ms: float = 1000.0,
           seed: int = 0, skip=lambda modality, t_ms: False) -> list[tuple[str, int]]:
    """(modality, stamp ns) in arrival order for streams at ``rates`` with stamp jitter."""
    rng = np.random.default_rng(seed)
    arrivals = []
    for modality, rate in rates.items():
        for k in range(int(seconds * rate)):
            t_ms = start_ms + k * 1000.0 / rate
            if skip(modality, t_ms):
                continue
            stamp_ms = t_ms + rng.uniform(-jitter_ms, jitter_ms)
            arrivals.append((stamp_ms + latency[modality], modality, round(stamp_ms * MS)))
    arrivals.sort()
    return [(m, s) for _, m, s in arrivals]


def run(sync: FeatureSync, stream, flush: bool = True) -> list[SyncedSet]:
    out = []
    for modality, stamp in stream:
        out.extend(sync.add(modality, stamp, (modality, stamp, len(out), sync.counters[modality].received)))
        assert all(n <= sync.queue_size for n in sync.pending.values())
    return out + (sync.flush() if flush else [])


def assert_consistent(sets: list[SyncedSet], slop_ns: int) -> None:
    """Every message used once, each set's stamps spanning less than slop, messages match their stamps."""
    seen = set()
    for s in sets:
        assert s.messages, "an emitted set always has a message"
        assert set(s.messages) | set(s.missing) == set(MODALITIES)
        assert max(s.stamps.values()) - min(s.stamps.values()) < slop_ns
        assert min(s.stamps.values()) <= s.stamp_ns <= max(s.stamps.values())
        for modality, message in s.messages.items():
            assert message[:2] == (modality, s.stamps[modality])
            assert message not in seen
            seen.add(message)


def test_equal_stamps_make_complete_sets_in_order():
    sync = FeatureSync(MODALITIES, slop_s=0.01)
    stream = [(m, (1000 + 100 * k) * MS) for k in range(20) for m in MODALITIES]
    sets = run(sync, stream)
    assert [s.stamp_ns for s in sets] == [(1000 + 100 * k) * MS for k in range(20)]
    assert all(s.complete and not s.by_deadline for s in sets)
    assert sync.complete_sets == 20 and all(c.dropped == 0 for c in sync.counters.values())


@pytest.mark.parametrize("jitter_ms", [0.0, 8.0])
def test_different_rates_with_jitter_fuse_at_the_slowest_rate(jitter_ms):
    slop = 0.03
    sync = FeatureSync(MODALITIES, slop_s=slop, deadline_s=0.25)
    sets = run(sync, events(5.0, jitter_ms=jitter_ms, seed=1))
    assert_consistent(sets, round(slop * 1e9))
    complete = [s for s in sets if s.complete]
    assert len(complete) == 50  # one set per LiDAR frame
    last_lidar = max(s.stamps["lidar"] for s in complete)
    assert all(s.stamp_ns > last_lidar for s in sets if not s.complete)  # only flushed leftovers
    counters = sync.counters
    assert counters["lidar"].used == 50 and counters["lidar"].dropped == 0
    assert counters["rgb"].unmatched >= 90  # two of three camera frames have no partner
    assert np.all(np.diff([s.stamp_ns for s in sets]) > 0)


def test_a_100_hz_stream_beside_10_20_30_hz_ones_still_fuses_at_the_slowest_rate():
    """Camera 30 Hz, LiDAR 10 Hz, radar 20 Hz and a 100 Hz stream (CSI at its packet rate)."""
    slop = 0.03
    sync = FeatureSync(MODALITIES, slop_s=slop, deadline_s=0.25)
    rates = {**RATES_HZ, "wifi": 100.0}
    sets = run(sync, events(5.0, rates=rates, latency={**LATENCY_MS, "wifi": 1.0}, jitter_ms=2.0, seed=3))
    assert_consistent(sets, round(slop * 1e9))
    complete = [s for s in sets if s.complete]
    assert len(complete) == 50
    wifi = sync.counters["wifi"]
    assert wifi.received == 500 and wifi.used == len([s for s in sets if "wifi" in s.messages])
    assert wifi.unmatched + wifi.overflow + wifi.late >= 440  # nine in ten packets have no set to join
    for complete_set in complete:  # the 100 Hz partner is the nearest one: within half a period + jitter
        assert abs(complete_set.stamps["wifi"] - complete_set.stamps["lidar"]) <= 9 * MS


def test_a_silent_sensor_is_reported_missing_and_not_waited_for():
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    sets = run(sync, events(4.0, skip=lambda m, t: m == "wifi"))
    fused = [s for s in sets if "lidar" in s.messages]  # the rest are the leftovers flushed at the end
    assert len(fused) == 40 and all(s.missing == ("wifi",) for s in fused)
    assert sync.counters["wifi"].missing == len(sets)
    # waited for during the first `deadline` only, then known silent: no more waiting
    assert 1 <= sum(s.by_deadline for s in fused) <= 3


def test_sensor_stops_then_returns():
    gap = (2000.0, 3000.0)
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    sets = run(sync, events(5.0, skip=lambda m, t: m == "lidar" and gap[0] <= t < gap[1]))
    assert_consistent(sets, 30 * MS)
    during = [s for s in sets if gap[0] * MS + 50 * MS < s.stamp_ns < gap[1] * MS - 50 * MS]
    after = [s for s in sets if s.stamp_ns > gap[1] * MS + 100 * MS and s.stamp_ns < 5900 * MS]
    assert during and all(s.missing == ("lidar",) for s in during)
    assert len(during) >= 8  # fusion goes on from the other three
    assert after and all(s.complete for s in after)  # and recovers when the LiDAR returns
    # once the sensor is known silent, sets are not held back by the deadline any more
    assert sum(not s.by_deadline for s in during) >= len(during) - 3


def test_out_of_order_arrival_within_slop_still_matches():
    # radar arrives 150 ms late (after later frames of the others); within a frame any order
    stream = events(3.0, rates={m: 10.0 for m in MODALITIES}, latency=dict.fromkeys(MODALITIES, 0.0) | {"mmwave": 150.0})
    rng = np.random.default_rng(3)
    shuffled = []
    for start in range(0, len(stream), 4):
        block = stream[start:start + 4]
        shuffled.extend(block[i] for i in rng.permutation(len(block)))
    assert shuffled != stream
    sync = FeatureSync(MODALITIES, slop_s=0.01, deadline_s=0.25)
    sets = run(sync, shuffled)
    assert_consistent(sets, 10 * MS)
    assert sum(s.complete for s in sets) == 30
    # a message too old for any future set is dropped and counted, never fused out of order
    late_stamp = sets[-1].stamp_ns - 500 * MS
    late = sync.add("rgb", late_stamp, ("rgb", late_stamp, -1, -1))
    assert late == [] and sync.counters["rgb"].late == 1


def test_bag_loop_resets_and_fusion_continues():
    one_pass = events(2.0, rates={m: 10.0 for m in MODALITIES})
    sync = FeatureSync(MODALITIES, slop_s=0.02, deadline_s=0.25)
    sets = run(sync, one_pass + one_pass + one_pass, flush=True)
    assert sync.resets == 2  # once per loop
    assert len(sets) == 3 * 20 and all(s.complete for s in sets)  # each pass fused again, nothing extra
    stamps = [s.stamp_ns for s in sets]
    assert stamps[:20] == stamps[20:40] == stamps[40:]
    assert all(n <= sync.queue_size for n in sync.pending.values())


def test_bag_loop_fuses_the_last_frame_whose_wifi_is_still_on_its_way():
    """Live replay: the next pass's first camera, LiDAR and radar messages reach the fusion node
    before the last CSI window of the pass before (it takes a window's time to assemble)."""
    one_pass = events(2.0, rates={m: 10.0 for m in MODALITIES})
    last_wifi = max(i for i, (m, _) in enumerate(one_pass) if m == "wifi")
    tail = one_pass[last_wifi]
    head = [e for e in one_pass[:6] if e[0] != "wifi"][:3]  # pass 2's first rgb, lidar, mmwave
    assert {m for m, _ in head} == {"rgb", "lidar", "mmwave"}
    stream = one_pass[:last_wifi] + head + [tail] + one_pass[last_wifi + 1:] + [e for e in one_pass if e not in head]
    sync = FeatureSync(MODALITIES, slop_s=0.02, deadline_s=0.25)
    sets = run(sync, stream)
    assert sync.resets == 1
    first_pass = sets[:20]
    assert len(sets) == 40, "every frame of both passes is fused"
    assert [s.stamp_ns for s in first_pass] == [s.stamp_ns for s in sets[20:]]
    assert all(s.complete for s in first_pass[:-1]) and first_pass[-1].missing == ("wifi",)
    assert sync.counters["wifi"].late == 1  # the old pass's window came after the jump
    assert_consistent(sets, 20 * MS)


def test_one_stream_far_ahead_does_not_stall_the_others():
    sync = FeatureSync(MODALITIES, slop_s=0.02, deadline_s=0.25, reset_after_s=1.0)
    stream = events(3.0, rates={m: 10.0 for m in MODALITIES}, latency={m: 0.0 for m in MODALITIES},
                    skip=lambda m, t: m == "mmwave" and t > 1500.0)
    stream.insert(len(stream) // 2, ("mmwave", 60_000 * MS))  # a radar clock glitch: a minute ahead
    sets = run(sync, stream, flush=False)
    later = [s for s in sets if 1700 * MS < s.stamp_ns < 10_000 * MS]
    assert len(later) == 22  # 1.8 .. 3.9 s
    assert all(set(s.messages) == {"rgb", "lidar", "wifi"} for s in later)


def test_flood_keeps_queues_bounded():
    rates = dict(RATES_HZ, lidar=100.0)  # the LiDAR floods at 10x
    sync = FeatureSync(MODALITIES, queue_size=15, slop_s=0.03, deadline_s=0.25)  # 150 ms of LiDAR at 100 Hz
    sets = run(sync, events(3.0, rates=rates))
    assert_consistent(sets, 30 * MS)
    assert sum(s.complete for s in sets) >= 25
    assert sync.counters["lidar"].dropped >= 250


def test_flush_emits_what_is_pending():
    sync = FeatureSync(MODALITIES, slop_s=0.01, deadline_s=0.25)
    assert sync.add("lidar", 5000 * MS, "l") == []
    assert sync.add("rgb", 5001 * MS, "c") == []
    sets = sync.flush()
    assert len(sets) == 1 and sets[0].messages == {"lidar": "l", "rgb": "c"}
    assert sets[0].missing == ("mmwave", "wifi") and sets[0].by_deadline
    assert sync.pending == {m: 0 for m in MODALITIES}


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="queue_size"):
        FeatureSync(MODALITIES, queue_size=0)
    with pytest.raises(ValueError, match="slop"):
        FeatureSync(MODALITIES, slop_s=0.5, deadline_s=0.1)
    with pytest.raises(ValueError, match="distinct"):
        FeatureSync(["rgb", "rgb"])
    with pytest.raises(KeyError, match="thermal"):
        FeatureSync(MODALITIES).add("thermal", 0, None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(MODALITIES), st.integers(0, 5_000)), max_size=200),
       st.integers(1, 8))
def test_any_stamps_keep_queues_bounded_and_sets_within_slop(arrivals, queue_size):
    sync = FeatureSync(MODALITIES, queue_size=queue_size, slop_s=0.02, deadline_s=0.1, reset_after_s=0.5)
    sets = run(sync, [(m, t * MS) for m, t in arrivals])
    assert_consistent(sets, 20 * MS)
    assert sum(len(s.messages) for s in sets) == sum(c.used for c in sync.counters.values())
    total = sum(c.received for c in sync.counters.values())
    accounted = sum(c.used + c.dropped for c in sync.counters.values())
    assert accounted == total  # nothing silently lost


def message_filters_sets(stream, queue_size: int, slop_s: float) -> list[tuple]:
    """The sets message_filters.ApproximateTimeSynchronizer emits for ``stream`` (stamps in
    MODALITIES order)."""
    message_filters = pytest.importorskip(
        "message_filters", reason="message_filters is not on PyPI: install ../shared/ros-tools (make test does)")
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    class Input(message_filters.SimpleFilter):
        pass

    class Stamped:
        def __init__(self, ns):
            self.header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9))

    inputs = [Input() for _ in MODALITIES]
    theirs: list[tuple[int, ...]] = []
    reference = message_filters.ApproximateTimeSynchronizer(inputs, queue_size=queue_size, slop=slop_s)
    reference.registerCallback(lambda *msgs: theirs.append(tuple(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                                                                 for m in msgs)))
    for modality, stamp in stream:
        inputs[MODALITIES.index(modality)].signalMessage(Stamped(stamp))
    return theirs


def random_streams(rng: np.random.Generator, seconds: float = 6.0) -> tuple[list[tuple[str, int]], set]:
    """Mixed rates (camera 10 or 30 Hz, radar 10 or 20 Hz, LiDAR and WiFi 10 Hz), stamp jitter, a
    per-stream latency with jitter (arrivals stay in order within a stream, as DDS delivers them)
    and random drops. Returns the arrivals and the dropped (modality, frame time in ms)."""
    rates = {"rgb": float(rng.choice([10.0, 30.0])), "lidar": 10.0, "mmwave": float(rng.choice([10.0, 20.0])),
             "wifi": 10.0}
    jitter_ms = float(rng.uniform(0.0, 6.0))
    drop = float(rng.uniform(0.0, 0.08))
    arrivals, dropped = [], set()
    for modality, rate in rates.items():
        latency, last_arrival = rng.uniform(1.0, 60.0), -np.inf
        for k in range(int(seconds * rate)):
            t_ms = 1000.0 + k * 1000.0 / rate
            if rng.random() < drop:
                dropped.add((modality, t_ms))
                continue
            stamp_ms = t_ms + rng.uniform(-jitter_ms, jitter_ms)
            last_arrival = max(last_arrival + 1e-3, stamp_ms + latency + rng.uniform(0.0, 20.0))
            arrivals.append((last_arrival, modality, round(stamp_ms * MS)))
    arrivals.sort()
    return [(m, s) for _, m, s in arrivals], dropped


@pytest.mark.parametrize("seed", range(8))
def test_complete_sets_are_message_filters_sets_on_random_streams(seed):
    """Jitter, drops, mixed rates: every complete set is one message_filters emits and vice versa;
    every other set is partial (the deadline's), and no set spans slop or more."""
    rng = np.random.default_rng(seed)
    stream, _ = random_streams(rng)
    slop = float(rng.choice([0.02, 0.03, 0.045]))
    theirs = message_filters_sets(stream, 10, slop)
    sync = FeatureSync(MODALITIES, queue_size=10, slop_s=slop, deadline_s=0.25)
    sets = run(sync, stream)
    assert_consistent(sets, round(slop * 1e9))
    ours = [tuple(s.stamps[m] for m in MODALITIES) for s in sets if s.complete]
    assert len(theirs) > 20
    assert ours == theirs


def test_a_set_spans_less_than_slop_as_in_message_filters():
    """Stamps 25 ms apart pairwise but 50 ms end to end: no set at slop 30 ms (message_filters'
    meaning of slop), one at slop 60 ms."""
    stream = [("rgb", 1000 * MS), ("lidar", 1025 * MS), ("mmwave", 1050 * MS), ("wifi", 1025 * MS)]
    assert message_filters_sets(stream, 10, 0.03) == []
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    assert not [s for s in run(sync, stream) if s.complete]
    sync = FeatureSync(MODALITIES, slop_s=0.06, deadline_s=0.25)
    sets = run(sync, stream, flush=False)
    assert len(sets) == 1 and sets[0].complete and sets[0].stamps["mmwave"] - sets[0].stamps["rgb"] == 50 * MS
    assert message_filters_sets(stream, 10, 0.06) == [tuple(sets[0].stamps[m] for m in MODALITIES)]


def test_one_lost_wifi_window_gives_a_partial_set_after_the_deadline():
    """WiFi frame 1500 ms of 10 Hz streams lost: the other three are fused without it once the
    streams are `deadline` past it; every other frame is complete."""
    stream = events(3.0, rates={m: 10.0 for m in MODALITIES}, jitter_ms=3.0, seed=5,
                    skip=lambda m, t: m == "wifi" and t == 1500.0)
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    sets = run(sync, stream, flush=False)
    assert len(sets) == 30
    lost = [s for s in sets if not s.complete]
    assert len(lost) == 1 and lost[0].missing == ("wifi",) and lost[0].by_deadline
    assert abs(lost[0].stamp_ns - 1500 * MS) <= 3 * MS
    assert sync.counters["wifi"].missing == 1
    # emitted once the streams reached 1500 + 250 ms, not before
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    before = [e for e in stream if e[1] < 1740 * MS]
    assert not [s for s in run(sync, before, flush=False) if not s.complete]
    # message_filters emits nothing for that frame
    theirs = message_filters_sets(stream, 10, 0.03)
    assert len(theirs) == 29 and all(abs(t[0] - 1500 * MS) > 10 * MS for t in theirs)


def test_random_drops_each_give_a_partial_set_of_the_rest():
    """10 Hz streams, random single drops: each frame missing one modality is fused from the other
    three (after the deadline); no frame is lost."""
    rng = np.random.default_rng(11)
    lost = {(str(rng.choice(MODALITIES)), 1000.0 + 100.0 * k) for k in rng.choice(40, size=8, replace=False)}
    stream = events(4.0, rates={m: 10.0 for m in MODALITIES}, jitter_ms=4.0, seed=2,
                    skip=lambda m, t: (m, t) in lost)
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    sets = run(sync, stream)
    assert len(sets) == 40
    partial = {(s.missing, round(s.stamp_ns / MS / 100) * 100.0) for s in sets if not s.complete}
    assert partial == {((m,), t) for m, t in lost}


def test_settings_change_at_run_time_and_bad_ones_are_refused():
    sync = FeatureSync(MODALITIES, slop_s=0.03, deadline_s=0.25)
    sync.configure(slop_s=0.06)
    assert sync.slop_ns == 60 * MS
    stream = [("rgb", 1000 * MS), ("lidar", 1025 * MS), ("mmwave", 1050 * MS), ("wifi", 1025 * MS)]
    assert [s.complete for s in run(sync, stream, flush=False)] == [True]
    with pytest.raises(ValueError, match="slop"):
        sync.configure(slop_s=0.5)  # beyond the deadline
    assert sync.slop_ns == 60 * MS and sync.deadline_ns == 250 * MS  # unchanged
    sync.configure(queue_size=2)
    assert sync.queue_size == 2


def test_clock_switching_between_sim_and_wall_time():
    """Bag stamps (a few seconds), then wall-clock stamps (~1.8e9 s), then bag stamps again."""
    sim = events(2.0, rates={m: 10.0 for m in MODALITIES})
    wall = events(2.0, rates={m: 10.0 for m in MODALITIES}, start_ms=1.8e12)
    sync = FeatureSync(MODALITIES, slop_s=0.02, deadline_s=0.25)
    sets = run(sync, sim + wall + sim)
    assert len(sets) == 60 and all(s.complete for s in sets)
    assert sync.resets == 1  # the jump forward needs no reset; the jump back is one
