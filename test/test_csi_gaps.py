"""CSI gaps: missing packets filled from their neighbours in time and marked, never 0 before normalising."""
from __future__ import annotations

import numpy as np
import torch

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.csi import drop_csi_packets, fill_csi_gaps
from mmhpe_ros.model.encoders import CsiEncoder
from mmhpe_ros.geometry.calibration import Calibration
from mmhpe_ros.model.inputs import WIFI_MASK, normalise_csi_amplitude, prepare_csi, sanitise_csi_phase
from mmhpe_ros.model.observe import Rig, observe_modality

CONFIG = ModelConfig()


def _window(rng: np.random.Generator) -> np.ndarray:
    """(2, 3, 114, 10): amplitude in dB around 40, random phases."""
    return np.stack([rng.normal(40.0, 3.0, size=(3, 114, 10)), rng.uniform(-np.pi, np.pi, size=(3, 114, 10))])


def test_interior_gaps_interpolate_linearly_in_time_and_edges_take_the_nearest_packet():
    csi = _window(np.random.default_rng(0))
    holed = csi.copy()
    holed[..., [0, 4, 5, 9]] = np.nan
    filled, mask = fill_csi_gaps(holed)
    assert mask.tolist() == [k not in (0, 4, 5, 9) for k in range(10)]
    np.testing.assert_array_equal(filled[..., 0], csi[..., 1])  # no packet before: the first after
    np.testing.assert_array_equal(filled[..., 9], csi[..., 8])
    for k, weight in ((4, 1 / 3), (5, 2 / 3)):  # between packets 3 and 6
        np.testing.assert_allclose(filled[..., k], csi[..., 3] * (1 - weight) + csi[..., 6] * weight)
    kept = [1, 2, 3, 6, 7, 8]
    np.testing.assert_array_equal(filled[..., kept], csi[..., kept])
    assert np.isnan(holed[..., 0]).all()  # the input is left as it was


def test_complete_and_empty_windows():
    csi = _window(np.random.default_rng(1))
    filled, mask = fill_csi_gaps(csi)
    np.testing.assert_array_equal(filled, csi)
    assert mask.all()
    empty = np.full_like(csi, np.nan)
    filled, mask = fill_csi_gaps(empty)
    assert not mask.any() and np.isnan(filled).all()


def test_a_packet_is_missing_only_when_no_amplitude_value_is_finite():
    csi = _window(np.random.default_rng(2))
    csi[0, :, :50, 3] = -np.inf  # some subcarriers reported as zero: the packet is there
    csi[0, :, :, 6] = np.nan
    _, mask = fill_csi_gaps(csi)
    assert mask.tolist() == [k != 6 for k in range(10)]


def test_prepared_wifi_fills_the_missing_packet_before_normalising():
    csi = _window(np.random.default_rng(3))
    holed = csi.copy()
    holed[..., 4] = np.nan
    arrays, present = prepare_csi(holed, CONFIG)
    assert present and arrays[WIFI_MASK].tolist() == [k != 4 for k in range(10)]
    # the oracle: amplitude interpolated by hand, then MM-Fi's normalisation over the whole block
    amplitude = csi[0].copy()
    amplitude[..., 4] = (csi[0][..., 3] + csi[0][..., 5]) / 2
    np.testing.assert_allclose(arrays["wifi"][0], normalise_csi_amplitude(amplitude), atol=1e-6)
    phase = sanitise_csi_phase(csi[1])
    phase[..., 4] = (phase[..., 3] + phase[..., 5]) / 2
    np.testing.assert_allclose(arrays["wifi"][1], phase * CONFIG.csi_phase_scale, atol=1e-6)
    assert arrays["wifi"][0][..., 4].min() > 0.05  # was 0 (the block's minimum) before gaps were filled
    complete, _ = prepare_csi(csi, CONFIG)
    assert complete[WIFI_MASK].all()
    observed, seen = observe_modality("wifi", holed, Rig(Calibration()), CONFIG)  # what the WiFi node runs
    assert seen and observed.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(observed[key], arrays[key])
    nothing, seen = observe_modality("wifi", np.full_like(csi, np.nan), Rig(Calibration()), CONFIG)
    assert not seen and not nothing["wifi"].any() and not nothing[WIFI_MASK].any()


def test_packet_dropout_fills_and_marks_one_measured_packet():
    rng = np.random.default_rng(4)
    csi = torch.from_numpy(rng.normal(size=(64, 2, 3, 114, 10)).astype(np.float32))
    mask = torch.ones(64, 10, dtype=torch.bool)
    mask[0, 3] = False
    out, new_mask = drop_csi_packets(csi, mask, 1.0, torch.Generator().manual_seed(0))
    dropped = (~new_mask & mask).nonzero().tolist()
    assert len(dropped) >= 60 and all(new_mask[b].sum() == mask[b].sum() - 1 for b, _ in dropped)
    for b, k in dropped:
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < 10]
        expected = sum(csi[b, ..., j] for j in neighbours) / len(neighbours)
        torch.testing.assert_close(out[b, ..., k], expected)
        others = [j for j in range(10) if j != k]
        torch.testing.assert_close(out[b, ..., others], csi[b, ..., others])
    assert mask.sum() == 64 * 10 - 1  # inputs untouched
    same, same_mask = drop_csi_packets(csi, mask, 0.0)
    assert same is csi and same_mask is mask


def test_the_encoder_reads_the_mask_as_a_channel():
    torch.manual_seed(0)
    encoder = CsiEncoder(ModelConfig(csi_width=8, feature_dim=16)).eval()
    csi = torch.randn(2, 2, 3, 114, 10)
    full = torch.ones(2, 10, dtype=torch.bool)
    holed = full.clone()
    holed[:, 4] = False
    with torch.no_grad():
        assert not torch.allclose(encoder({"wifi": csi, WIFI_MASK: full}), encoder({"wifi": csi, WIFI_MASK: holed}))
        torch.testing.assert_close(encoder({"wifi": csi}), encoder({"wifi": csi, WIFI_MASK: full}))
    legacy = CsiEncoder(ModelConfig(csi_width=8, feature_dim=16, csi_mask_channel=False))
    assert legacy.conv[0].in_channels == 6 and encoder.conv[0].in_channels == 7
