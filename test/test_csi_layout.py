"""CSI layouts: any antennas x subcarriers -> the model's 3 x 114, and complex I/Q packets."""
from __future__ import annotations

import numpy as np
import pytest

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.runtime import codecs
from mmhpe_ros.runtime.codecs import CodecError
from mmhpe_ros.runtime.csi_layout import LAYOUTS, MODEL_SUBCARRIERS, CsiLayoutMapper, layout_indices
from mmhpe_ros.runtime.csi_window import CsiWindowAssembler
from mmhpe_ros.runtime.sensors import CsiProcessor

ROSBAGS = codecs.rosbags_types()


def test_presets_match_the_standards_subcarrier_tables():
    """Against csiread's 802.11n/ac tables (scidx), an independent source."""
    csiread = pytest.importorskip("csiread")
    scidx = csiread.utils.scidx
    assert LAYOUTS["atheros_40mhz"] == tuple(scidx(40, 1)) and len(MODEL_SUBCARRIERS) == 114
    assert LAYOUTS["atheros_20mhz"] == tuple(scidx(20, 1))
    assert LAYOUTS["intel5300"] == tuple(scidx(20, 2))
    assert LAYOUTS["intel5300_40mhz"] == tuple(scidx(40, 4))
    assert len(LAYOUTS["esp32_ht20"]) == 52 and 0 not in LAYOUTS["esp32_ht20"]
    assert len(LAYOUTS["nexmon_80mhz"]) == 242


def _channel(indices: np.ndarray, antennas: int, delay_ns: float = 30.0) -> np.ndarray:
    """A smooth two-path channel H(f) at the given subcarrier indices, (antennas, len(indices))."""
    f = indices * 312.5e3
    rows = [np.exp(-2j * np.pi * f * 20e-9) + 0.5 * np.exp(-2j * np.pi * f * (delay_ns + 5 * a) * 1e-9)
            for a in range(antennas)]
    return np.array(rows)


def _amplitude_phase(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 20 * np.log10(np.abs(h)), np.angle(h)


def test_model_layout_passes_through_unchanged():
    mapper = CsiLayoutMapper()
    amplitude, phase = np.random.default_rng(0).normal(size=(2, 3, 114))
    got = mapper(amplitude, phase)
    assert mapper.identity
    np.testing.assert_array_equal(got[0], amplitude)
    np.testing.assert_array_equal(got[1], phase)


def test_frequency_mapping_interpolates_by_subcarrier_and_leaves_out_of_band_nan():
    source = layout_indices("intel5300")  # 30 grouped subcarriers of 20 MHz: -28..28
    amplitude, phase = _amplitude_phase(_channel(source, 3))
    got_amplitude, got_phase = CsiLayoutMapper("intel5300")(amplitude, phase)
    inside = np.abs(MODEL_SUBCARRIERS) <= 28
    assert np.isnan(got_amplitude[:, ~inside]).all() and not np.isnan(got_amplitude[:, inside]).any()
    truth_amplitude, truth_phase = _amplitude_phase(_channel(MODEL_SUBCARRIERS, 3))
    # interpolating between subcarriers 2 apart: close to the channel itself
    assert np.abs(got_amplitude[:, inside] - truth_amplitude[:, inside]).max() < 0.6
    wrapped = np.angle(np.exp(1j * (got_phase[:, inside] - truth_phase[:, inside])))
    assert np.abs(wrapped).max() < 0.1
    for row in range(3):  # the oracle: numpy's interp on the unwrapped phase
        expected = np.interp(MODEL_SUBCARRIERS[inside], source, np.unwrap(phase[row]))
        np.testing.assert_allclose(got_phase[row, inside], expected, atol=1e-12)


def test_stretch_mapping_spreads_the_source_band_over_every_model_subcarrier():
    source = layout_indices("esp32_ht20")
    amplitude = np.tile(np.linspace(0.0, 10.0, len(source)), (1, 1))
    got, _ = CsiLayoutMapper("esp32_ht20", subcarrier_mapping="stretch")(amplitude, np.zeros_like(amplitude))
    assert got.shape == (3, 114) and not np.isnan(got).any()
    assert got[0, 0] == pytest.approx(0.0) and got[0, -1] == pytest.approx(10.0)
    np.testing.assert_array_equal(got[0], got[2])  # one antenna repeated


def test_wider_sources_use_only_the_model_band_and_antennas_are_chosen_or_repeated():
    source = layout_indices("nexmon_80mhz")
    h = _channel(source, 4)
    amplitude, phase = _amplitude_phase(h)
    got, _ = CsiLayoutMapper("nexmon_80mhz", antenna_select=[3, 1, 0])(amplitude, phase)
    columns = np.searchsorted(source, MODEL_SUBCARRIERS)  # the model's subcarriers are among the source's
    np.testing.assert_allclose(got, amplitude[[3, 1, 0]][:, columns])
    two = CsiLayoutMapper("atheros_40mhz")(amplitude[:2, columns], phase[:2, columns])[0]
    np.testing.assert_array_equal(two[2], two[0])
    filled = CsiLayoutMapper("atheros_40mhz", antenna_policy="fill")(amplitude[:1, columns], phase[:1, columns])[0]
    assert np.isnan(filled[1:]).all() and not np.isnan(filled[0]).any()


def test_bad_layouts_and_packets_are_refused():
    with pytest.raises(ValueError, match="unknown CSI layout"):
        CsiLayoutMapper("atheros_80mhz")
    with pytest.raises(ValueError, match="ascending"):
        CsiLayoutMapper([3, 2, 1])
    with pytest.raises(CodecError, match=r"\(antennas >= 1, 30\)"):
        CsiLayoutMapper("intel5300")(np.zeros((3, 114)), np.zeros((3, 114)))
    with pytest.raises(CodecError, match="antenna_select"):
        CsiLayoutMapper(antenna_select=[0, 1, 5])(np.zeros((4, 114)), np.zeros((4, 114)))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_iq_packets_round_trip_and_read_as_amplitude_in_db_and_phase(dtype):
    h = _channel(layout_indices("esp32_ht20"), 1).astype(dtype)
    h[0, 5] = 0
    msg = codecs.create_csi_packet(ROSBAGS, codecs.make_header(ROSBAGS, 10**9, "wifi"), iq=h)
    assert msg.encoding == np.dtype(dtype).name and (msg.height, msg.width) == (1, 52)
    back = codecs.read_csi_iq(msg)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, h)
    amplitude, phase = codecs.read_csi_packet(msg)
    np.testing.assert_allclose(amplitude[0, 6:], 20 * np.log10(np.abs(h[0, 6:].astype(complex))), rtol=1e-5)
    assert amplitude[0, 5] == -np.inf
    np.testing.assert_allclose(phase, np.angle(h.astype(complex)), atol=1e-6)
    assert amplitude.dtype == phase.dtype == np.float64
    polar = codecs.create_csi_packet(ROSBAGS, msg.header, amplitude, phase)
    assert polar.encoding == "64FC2"
    np.testing.assert_allclose(codecs.read_csi_iq(polar), h, atol=1e-5)


def test_iq_encoding_errors():
    with pytest.raises(CodecError, match="not both"):
        codecs.create_csi_packet(ROSBAGS, None, np.zeros((1, 2)), np.zeros((1, 2)), iq=np.zeros((1, 2), complex))
    with pytest.raises(CodecError, match="complex64 / complex128"):
        codecs.create_csi_packet(ROSBAGS, None, iq=np.zeros((1, 2)))
    with pytest.raises(CodecError, match="give amplitude and phase"):
        codecs.create_csi_packet(ROSBAGS, None, np.zeros((1, 2)))


def test_processor_takes_iq_packets_of_another_layout_at_another_rate():
    """ESP32-like packets (1 x 52 I/Q, ~60 Hz irregular) -> complete (2, 3, 114, 10) windows."""
    config = ModelConfig()
    processor = CsiProcessor(config, CsiWindowAssembler(), CsiLayoutMapper("esp32_ht20", "stretch"))
    rng = np.random.default_rng(7)
    stamp, out = 1_000_000_000, []
    indices = layout_indices("esp32_ht20")
    for _ in range(60):
        stamp += int(rng.uniform(1e9 / 90, 1e9 / 45))
        h = _channel(indices, 1) * np.exp(1j * rng.uniform(-np.pi, np.pi))  # a random common phase per packet
        msg = codecs.create_csi_packet(ROSBAGS, codecs.make_header(ROSBAGS, stamp, "wifi"), iq=h.astype(np.complex64))
        out += processor.process(msg)
    assert len(out) >= 8 and all(f.present for f in out)
    assert all(f.arrays["wifi"].shape == (2, 3, 114, 10) and f.arrays["wifi_mask"].all() for f in out[1:])
