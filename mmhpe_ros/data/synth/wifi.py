"""WiFi CSI model: amplitude and phase per receive antenna x subcarrier x packet of a multipath channel.

The channel from the transmitter to each of the 3 receive antennas (``Scene.wifi``) is a sum of
paths, each ``gain * exp(-2j pi f_k * length / c)`` over the 114 subcarrier frequencies ``f_k`` of
a 40 MHz channel at 5.32 GHz: the line of sight, the room's static reflections (fixed lengths,
gains and arrival angles), and one weak bistatic path per body sphere (:mod:`surface`) whose length
``|tx - p| + |p - rx|`` follows the body at every packet (100 Hz, 10 packets per frame); a path's
gain grows with the sphere's cross-section and falls with both legs' lengths. The body changes the
channel only weakly, which is why CSI is the weakest modality.

Receiver impairments, as in commodity CSI tools: the receive chains' fixed phase offsets and
filter ripple; per packet a random common phase (carrier frequency offset), a random linear phase
across subcarriers (timing offset) and an automatic-gain-control step; complex Gaussian noise at
the scene's SNR. Amplitudes are reported in dB (``20 log10 |H|`` of the integer-scaled CSI), so a
subcarrier a packet reports as zero becomes ``-inf``, as real CSI amplitude files contain; phase is
wrapped to [-pi, pi].

:func:`csi_packets` simulates any CSI hardware layout: any subcarrier index set (the receiver
ripple is interpolated over subcarrier index, held beyond MM-Fi's band), any antenna count (the
antenna array extended at its own spacing, the receive chains' phase offsets cycled) and packets at
any times (the caller's joints at those times). :func:`csi_frames` is MM-Fi's layout of it.
"""
from __future__ import annotations

import numpy as np

from mmhpe_ros.data.synth.scene import (
    SPEED_OF_LIGHT,
    WIFI_CARRIER_HZ,
    WIFI_SUBCARRIER_INDICES,
    WIFI_SUBCARRIER_SPACING_HZ,
    Scene,
)
from mmhpe_ros.data.synth.surface import SURFACE
from mmhpe_ros.modalities import CSI_PACKETS_PER_FRAME

FREQUENCIES_HZ = WIFI_CARRIER_HZ + WIFI_SUBCARRIER_INDICES * WIFI_SUBCARRIER_SPACING_HZ
CSI_SCALE = 200.0  # |H| -> the CSI tool's integer magnitude scale
TIMING_OFFSET_S = 100e-9  # largest per-packet timing offset
AGC_STEP_DB = 0.5
TORSO_RADIUS = 0.15
SCATTERER_STRIDE = 4  # every 4th body sphere scatters, standing in for its neighbours


def _frequencies(subcarriers: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(subcarrier indices, their frequencies in Hz); None: MM-Fi's 114."""
    if subcarriers is None:
        return WIFI_SUBCARRIER_INDICES, FREQUENCIES_HZ
    indices = np.asarray(subcarriers, dtype=np.float64)
    return indices, WIFI_CARRIER_HZ + indices * WIFI_SUBCARRIER_SPACING_HZ


def _phasor(lengths: np.ndarray, frequencies: np.ndarray = FREQUENCIES_HZ) -> np.ndarray:
    """exp(-2j pi f length / c) for lengths (...,) -> (..., subcarriers)."""
    return np.exp(-2j * np.pi * frequencies * (lengths[..., None] / SPEED_OF_LIGHT))


def _antennas(scene: Scene, count: int | None) -> np.ndarray:
    """Receive antenna positions: the scene's 3, or ``count`` along the same line at the same spacing."""
    antennas = scene.wifi.antennas
    if count is None or count == len(antennas):
        return antennas
    step = antennas[1] - antennas[0]
    return antennas[0] + np.arange(count)[:, None] * step


def _receiver(scene: Scene, indices: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(ripple (S,), chain phase (A,)) of the receiver for these subcarriers and antennas."""
    link = scene.wifi
    ripple = link.ripple if indices is WIFI_SUBCARRIER_INDICES else np.interp(indices, WIFI_SUBCARRIER_INDICES,
                                                                               link.ripple)
    phase = link.antenna_phase if count == len(link.antenna_phase) else link.antenna_phase[np.arange(count) % 3]
    return ripple, phase


def static_channel(scene: Scene, subcarriers: np.ndarray | None = None, antennas: int | None = None) -> np.ndarray:
    """The room's channel (A, S) without the body: line of sight plus static reflections."""
    link = scene.wifi
    _, frequencies = _frequencies(subcarriers)
    positions = _antennas(scene, antennas)
    line_of_sight = np.linalg.norm(positions - link.transmitter, axis=-1)  # (A,)
    spacing = np.linalg.norm(positions[1] - positions[0]) if len(positions) > 1 else 0.0
    offsets = (np.arange(len(positions)) - 1) * spacing  # (A,) along the array
    along_array = offsets[:, None] * np.sin(link.path_angle)[None, :]  # (A, L) extra length per antenna
    lengths = line_of_sight.mean() + link.path_extra_m[None, :] + along_array
    gains = link.path_gain / (line_of_sight.mean() + link.path_extra_m)
    channel = _phasor(line_of_sight, frequencies) / line_of_sight[:, None]
    return channel + np.einsum("l,alk->ak", gains, _phasor(lengths, frequencies))


def body_channel(scene: Scene, joints: np.ndarray, subcarriers: np.ndarray | None = None,
                 antennas: int | None = None) -> np.ndarray:
    """The body's scattered channel (P, A, S) for joints at each packet (P, 17, 3)."""
    link = scene.wifi
    _, frequencies = _frequencies(subcarriers)
    positions = _antennas(scene, antennas)
    centres = SURFACE.centres(joints)[:, ::SCATTERER_STRIDE]  # (P, S, 3)
    outward = np.linalg.norm(centres - link.transmitter, axis=-1)  # (P, S)
    back = np.linalg.norm(centres[:, :, None, :] - positions, axis=-1)  # (P, S, A)
    size = SCATTERER_STRIDE * (SURFACE.radii[::SCATTERER_STRIDE] / TORSO_RADIUS) ** 2
    gains = link.body_gain * size[:, None] / (outward[..., None] * back)  # (P, S, A)
    return np.einsum("psa,psak->pak", gains, _phasor(outward[..., None] + back, frequencies))


def csi_packets(scene: Scene, packet_joints: np.ndarray, rng: np.random.Generator,
                subcarriers: np.ndarray | None = None, antennas: int | None = None,
                chunk: int = CSI_PACKETS_PER_FRAME) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude (dB) and phase (P, A, S) float64 of one packet per row of ``packet_joints`` (P, 17, 3).

    ``subcarriers``: subcarrier indices (units of 312.5 kHz from 5.32 GHz; None: MM-Fi's 114);
    ``antennas``: receive antennas (None: the scene's 3). The packets' times are the caller's:
    ``packet_joints`` are the joints at those times.
    """
    link = scene.wifi
    indices, frequencies = _frequencies(subcarriers)
    count = len(_antennas(scene, antennas))
    ripple, chain_phase = _receiver(scene, indices, count)
    packets = len(packet_joints)
    static = static_channel(scene, subcarriers, antennas) * ripple * np.exp(1j * chain_phase)[:, None]
    channel = np.empty((packets,) + static.shape, dtype=np.complex128)
    for start in range(0, packets, chunk):  # bounded memory: one frame at a time
        stop = start + chunk
        channel[start:stop] = static + body_channel(scene, packet_joints[start:stop], subcarriers, antennas) \
            * ripple * np.exp(1j * chain_phase)[:, None]
    common_phase = rng.uniform(-np.pi, np.pi, packets)
    timing = rng.uniform(0.0, TIMING_OFFSET_S, packets)
    agc = 10 ** (rng.normal(0.0, AGC_STEP_DB, packets) / 20)
    impairment = agc[:, None] * np.exp(1j * (common_phase[:, None] - 2 * np.pi * indices
                                             * WIFI_SUBCARRIER_SPACING_HZ * timing[:, None]))
    channel *= impairment[:, None, :]
    noise_rms = np.sqrt(np.mean(np.abs(channel) ** 2)) * 10 ** (-link.snr_db / 20)
    channel += noise_rms / np.sqrt(2) * (rng.normal(size=channel.shape) + 1j * rng.normal(size=channel.shape))
    magnitude = np.abs(channel) * CSI_SCALE
    dropped = np.flatnonzero(rng.random(packets) < link.dropout)
    antenna = rng.integers(0, channel.shape[1], len(dropped))
    first = rng.integers(0, channel.shape[2] - 4, len(dropped))
    keep = np.ones(len(dropped), dtype=bool)
    for width in range(4):  # a run of 1 to 4 subcarriers reported as zero
        magnitude[dropped[keep], antenna[keep], first[keep] + width] = 0.0
        keep &= rng.random(len(dropped)) < 0.5
    with np.errstate(divide="ignore"):
        amplitude = 20 * np.log10(magnitude)
    phase = np.where(magnitude > 0, np.angle(channel), 0.0)
    return amplitude, phase


def csi_frames(scene: Scene, packet_joints: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CSIamp and CSIphase (F, 3, 114, 10) float64 for joints at every packet (F * 10, 17, 3)."""
    packets = len(packet_joints)
    if packets % CSI_PACKETS_PER_FRAME:
        raise ValueError(f"expected a multiple of {CSI_PACKETS_PER_FRAME} packets, got {packets}")
    amplitude, phase = csi_packets(scene, packet_joints, rng)
    frames = packets // CSI_PACKETS_PER_FRAME
    return _per_frame(amplitude, frames), _per_frame(phase, frames)


def _per_frame(packets: np.ndarray, frames: int) -> np.ndarray:
    """(F * 10, 3, 114) packets -> (F, 3, 114, 10): MM-Fi's antennas x subcarriers x packets."""
    shaped = packets.reshape(frames, CSI_PACKETS_PER_FRAME, *packets.shape[1:])
    return np.ascontiguousarray(shaped.transpose(0, 2, 3, 1))
