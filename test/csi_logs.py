"""Writers of the CSI tools' log formats, from their documented layouts, for the bridge's tests.

* Atheros CSI Tool (``recv_csi``): per packet a uint16 length L, then L bytes: uint64 timestamp
  (us), uint16 csi_len, uint16 channel (MHz), uint8 err_info, noise_floor, rate, bandwidth
  (0: 20 MHz, 1: 40 MHz), num_tones, nr, nc, rssi, rssi_1, rssi_2, rssi_3, uint16 payload_len
  (25 bytes), the CSI (csi_len bytes), the payload. The CSI is a stream of 10-bit two's-complement
  numbers packed least significant bit first in 16-bit little-endian words: per tone, per
  transmit stream, per receive antenna the imaginary then the real part.
* Linux 802.11n CSI Tool (``log_to_file``): per record a big-endian uint16 length L, then L bytes:
  the code (0xbb: beamforming feedback), uint32 timestamp_low (us), uint16 bfee_count, uint16
  reserved, uint8 Nrx, Ntx, rssi_a, rssi_b, rssi_c, int8 noise, uint8 agc, antenna_sel, uint16
  len, uint16 rate_n_flags, then ``len`` bytes of CSI: per subcarrier (30) 3 bits skipped, then
  per (rx, tx) pair (tx fastest) 8-bit signed real then imaginary, least significant bit first.
* ESP32-CSI-Tool: CSV lines ``CSI_DATA,role,mac,rssi,rate,sig_mode,mcs,bandwidth,smoothing,
  not_sounding,aggregation,stbc,fec_coding,sgi,noise_floor,ampdu_cnt,channel,secondary_channel,
  local_timestamp,ant,sig_len,rx_state,real_time_set,real_timestamp,len,[i0 r0 i1 r1 ...]``: 64
  L-LTF bins in FFT order (0..31, -32..-1), each imaginary then real (int8).
"""
from __future__ import annotations

import struct

import numpy as np


def _pack_bits(values: list[int], bits: int, word_bytes: int = 2) -> bytes:
    """Two's-complement ``bits``-bit values packed least significant bit first, padded to words."""
    stream = 0
    for i, value in enumerate(values):
        stream |= (value & ((1 << bits) - 1)) << (i * bits)
    total = len(values) * bits
    size = -(-total // (8 * word_bytes)) * word_bytes
    return stream.to_bytes(size, "little")


def atheros_record(iq: np.ndarray, timestamp_us: int, payload: bytes = b"\x00" * 4) -> bytes:
    """One packet; ``iq`` (tones, nr, nc) of integers in -512..511 (real and imaginary)."""
    tones, nr, nc = iq.shape
    values = []
    for k in range(tones):
        for c in range(nc):
            for r in range(nr):
                values += [int(iq[k, r, c].imag), int(iq[k, r, c].real)]
    csi = _pack_bits(values, 10)
    status = struct.pack("<QHHBBBBBBBBBBBH", timestamp_us, len(csi), 5320, 0, 0, 0x8b, int(tones == 114),
                         tones, nr, nc, 40, 38, 37, 36, len(payload))
    body = status + csi + payload
    return struct.pack("<H", len(body)) + body


def intel_record(iq: np.ndarray, timestamp_us: int, count: int, rssi: tuple[int, int, int] = (40, 38, 36),
                 noise: int = -92, agc: int = 30) -> bytes:
    """One 0xbb record; ``iq`` (30, nrx, ntx) of integers in -128..127."""
    subcarriers, nrx, ntx = iq.shape
    stream, position = 0, 0
    for k in range(subcarriers):
        position += 3
        for r in range(nrx):
            for t in range(ntx):
                stream |= (int(iq[k, r, t].real) & 0xFF) << position
                stream |= (int(iq[k, r, t].imag) & 0xFF) << (position + 8)
                position += 16
    length = (subcarriers * (nrx * ntx * 16 + 3) + 7) // 8
    csi = stream.to_bytes(length, "little")
    antenna_sel = 0 | (1 << 2) | (2 << 4)  # no permutation of the receive chains
    bfee = struct.pack("<IHHBBBBBbBBHH", timestamp_us & 0xFFFFFFFF, count, 0, nrx, ntx, *rssi, noise, agc,
                       antenna_sel, length, 0x4101)
    body = b"\xbb" + bfee + csi
    return struct.pack(">H", len(body)) + body


def esp32_line(bins: np.ndarray, local_timestamp_us: int) -> str:
    """One CSV line; ``bins`` (64,) complex integers in FFT order."""
    values = " ".join(f"{int(v.imag)} {int(v.real)}" for v in bins)
    fields = ["CSI_DATA", "AP", "3C:71:BF:6D:2A:78", "-73", "11", "1", "7", "1", "0", "0", "1", "0", "0", "0",
              "-91", "0", "6", "2", str(local_timestamp_us & 0xFFFFFFFF), "0", "68", "0", "0", "0.0", "128"]
    return ",".join(fields) + f",[{values} ]\n"
