"""CSI tools' logs and live output -> CSI packets (complex, antennas x subcarriers) with their times.

Parsing is csiread's (pip extra ``wifi``); this module only frames the tools' byte streams into
records, picks each packet's antennas and subcarriers and keeps its time. Supported tools:

* ``atheros``: Atheros CSI Tool ``recv_csi`` logs (``.dat``: per packet a uint16 length, then a
  25-byte status with a uint64 microsecond timestamp, the CSI, the payload). 56 tones (HT20,
  layout ``atheros_20mhz``) or 114 (HT40, ``atheros_40mhz``, MM-Fi's). Rows: the receive
  antennas of transmit stream ``tx_stream``.
* ``intel``: Linux 802.11n CSI Tool ``log_to_file`` logs (per record a big-endian uint16 length,
  a code byte, 0xbb for CSI), 30 grouped subcarriers (``intel5300``, or ``intel5300_40mhz`` for an
  HT40 channel: ``--layout``), the CSI scaled to the receive power (csiread's
  ``get_scaled_csi``); times: the NIC's 32-bit microsecond clock, unwrapped.
* ``esp32``: ESP32-CSI-Tool serial output (CSV lines ``CSI_DATA,...,[imag real ...]``), the 64
  L-LTF bins of a 20 MHz channel, of which the 52 occupied ones are kept (``esp32_ht20``), one
  antenna; times: ``local_timestamp`` (microseconds, 32-bit, unwrapped).

:func:`read_log` reads a whole file with csiread's file reader; :class:`StreamParser` parses one
record at a time with csiread's ``pmsg`` (UDP datagrams, a followed file, stdin);
:class:`RecordSplitter` cuts a byte or text stream into those records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mmhpe_ros.runtime.csi_layout import LAYOUTS

TOOLS: tuple[str, ...] = ("atheros", "intel", "esp32")
ESP32_BINS = 64  # L-LTF bins of an ESP32 HT20 packet, in FFT order (0..31, -32..-1)
_US = 1000  # ns per microsecond


class CsiLogError(ValueError):
    """A log or record that cannot be read as the named tool's; the text says why."""


@dataclass(frozen=True)
class CsiPacket:
    """One packet: ``iq`` (antennas, subcarriers) complex in its layout's column order, and the
    tool's own time of the packet in microseconds (unwrapped; None when the record has none)."""

    iq: np.ndarray
    time_us: int | None


def _csiread() -> Any:
    try:
        import csiread
    except ImportError as error:  # pragma: no cover - the extra is installed in CI
        raise CsiLogError("csi-bridge needs csiread: pip install 'mmhpe_ros[wifi]' (csiread==1.4.1)") from error
    return csiread


def default_layout(tool: str, tones: int | None = None) -> str:
    """The layout name of a tool's packets (Atheros: by its tone count)."""
    if tool == "atheros":
        return "atheros_40mhz" if tones in (None, 114) else "atheros_20mhz"
    if tool == "intel":
        return "intel5300"
    if tool == "esp32":
        return "esp32_ht20"
    raise CsiLogError(f"unknown CSI tool {tool!r}; supported: {list(TOOLS)}")


def _esp32_columns() -> np.ndarray:
    """Bins of the 64-bin FFT-ordered ESP32 row holding the esp32_ht20 subcarriers, ascending."""
    return np.array(LAYOUTS["esp32_ht20"]) % ESP32_BINS


class _Unwrap:
    """Unwraps a counter that wraps at ``2**bits`` (the tools' 32-bit microsecond clocks)."""

    def __init__(self, bits: int | None) -> None:
        self.modulus = None if bits is None else 2 ** bits
        self.offset, self.last = 0, None

    def __call__(self, value: int) -> int:
        value = int(value)
        if self.modulus is not None and self.last is not None and value < self.last - self.modulus // 2:
            self.offset += self.modulus
        self.last = value
        return value + self.offset


def _wrap_bits(tool: str) -> int | None:
    return None if tool == "atheros" else 32


def _rows(tool: str, data: Any, index: int, tx_stream: int, scaled: np.ndarray | None) -> np.ndarray:
    """(antennas, subcarriers) complex of packet ``index`` of a parsed csiread object."""
    if tool == "atheros":
        nr, nc = int(data.nr[index]), int(data.nc[index])
        if not 0 <= tx_stream < max(nc, 1):
            raise CsiLogError(f"atheros packet {index}: transmit stream {tx_stream} of {nc}")
        # read_csi.c stores each tone's values with the receive antenna fastest (then the transmit
        # stream); csiread 1.4.1 fills its (nr, nc) slots with the stream in C order (nc fastest),
        # so its [r, c] is value number r * nc + c. Undo that (a no-op for one transmit stream).
        values = np.asarray(data.csi[index])[:, :nr, :nc].reshape(-1, nr * nc)
        return values.reshape(-1, nc, nr)[:, tx_stream, :].T  # (tones, nc, nr) -> (nr, tones)
    if tool == "intel":
        nrx, ntx = int(data.Nrx[index]), int(data.Ntx[index])
        if not 0 <= tx_stream < max(ntx, 1):
            raise CsiLogError(f"intel packet {index}: transmit stream {tx_stream} of {ntx}")
        return np.asarray(scaled[index])[:, :nrx, tx_stream].T  # (30, nrx, ntx) -> (nrx, 30)
    row = np.asarray(data.csi[index])
    if row.shape[-1] < ESP32_BINS:
        raise CsiLogError(f"esp32 packet {index}: {row.shape[-1]} CSI bins, expected {ESP32_BINS}")
    return row[None, _esp32_columns()]


def _times(tool: str, data: Any) -> np.ndarray | None:
    if tool == "atheros":
        return np.asarray(data.timestamp)
    if tool == "intel":
        return np.asarray(data.timestamp_low)
    local = getattr(data, "local_timestamp", None)
    return None if local is None else np.asarray(local)


def _parser(tool: str, file: str | None, antennas: int, tones: int) -> Any:
    csiread = _csiread()
    if tool == "atheros":
        return csiread.Atheros(file, nrxnum=antennas, ntxnum=antennas, tones=tones, if_report=False)
    if tool == "intel":
        return csiread.Intel(file, nrxnum=antennas, ntxnum=antennas, if_report=False)
    if tool == "esp32":
        return csiread.ESP32(file, if_report=False)
    raise CsiLogError(f"unknown CSI tool {tool!r}; supported: {list(TOOLS)}")


def read_log(path: str | Path, tool: str, tones: int = 114, tx_stream: int = 0,
             antennas: int = 3) -> list[CsiPacket]:
    """Every CSI packet of a tool's log file, in file order (csiread's file reader)."""
    path = Path(path)
    if not path.is_file():
        raise CsiLogError(f"{path}: no such file")
    data = _parser(tool, str(path), antennas, tones)
    try:
        data.read()
    except Exception as error:  # noqa: BLE001 - csiread raises assorted types on malformed files
        raise CsiLogError(f"{path}: not a readable {tool} CSI log ({type(error).__name__}: {error})") from None
    count = int(data.count or 0)
    if count == 0:
        return []
    scaled = data.get_scaled_csi() if tool == "intel" else None
    times, unwrap = _times(tool, data), _Unwrap(_wrap_bits(tool))
    return [CsiPacket(_rows(tool, data, i, tx_stream, scaled), None if times is None else unwrap(times[i]))
            for i in range(count)]


class StreamParser:
    """Parses one record at a time (csiread's ``pmsg``): UDP datagrams, a followed log, stdin lines."""

    _OK = {"atheros": 0xff00, "intel": 0xbb, "esp32": 0xf200}

    def __init__(self, tool: str, tones: int = 114, tx_stream: int = 0, antennas: int = 3) -> None:
        self.tool, self.tx_stream = tool, tx_stream
        self._data = _parser(tool, None, antennas, tones)
        self._unwrap = _Unwrap(_wrap_bits(tool))

    def parse(self, record: bytes | str) -> CsiPacket | None:
        """The packet of one record; None for a record that holds no CSI (another code, a log line)."""
        if self.tool == "esp32":
            text = record.decode(errors="replace") if isinstance(record, bytes) else record
            code = self._data.pmsg(text.rstrip("\r\n") + "\n") if text.startswith("CSI_DATA") else None
        else:
            code = self._data.pmsg(bytes(record))
        if code != self._OK[self.tool]:
            return None
        scaled = self._data.get_scaled_csi() if self.tool == "intel" else None
        times = _times(self.tool, self._data)
        rows = np.array(_rows(self.tool, self._data, 0, self.tx_stream, scaled))  # a copy: pmsg reuses its buffer
        return CsiPacket(rows, None if times is None else self._unwrap(times[0]))


class RecordSplitter:
    """Cuts a tool's byte stream into the records :class:`StreamParser` takes; keeps partial ones.

    ``atheros``: uint16 length (``endian``) + that many bytes; ``intel``: big-endian uint16 length
    + that many bytes (the first is the code); ``esp32``: text lines.
    """

    def __init__(self, tool: str, endian: str = "little") -> None:
        if tool not in TOOLS:
            raise CsiLogError(f"unknown CSI tool {tool!r}; supported: {list(TOOLS)}")
        self.tool = tool
        self.endian = "big" if tool == "intel" else endian
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The complete records that ``data`` (appended to what was kept) holds."""
        self._buffer += data
        if self.tool == "esp32":
            *lines, rest = self._buffer.split(b"\n")
            self._buffer = bytearray(rest)
            yield from (bytes(line) + b"\n" for line in lines if line.strip())
            return
        start = 0
        while len(self._buffer) - start >= 2:
            length = int.from_bytes(self._buffer[start:start + 2], self.endian)
            if len(self._buffer) - start - 2 < length:
                break
            yield bytes(self._buffer[start + 2:start + 2 + length])
            start += 2 + length
        del self._buffer[:start]


@dataclass
class LogClock:
    """Maps a log's microsecond times to ROS stamps: ``base_ns + (time - first time)``."""

    base_ns: int
    first_us: int | None = None

    def stamp_ns(self, time_us: int) -> int:
        if self.first_us is None:
            self.first_us = time_us
        return self.base_ns + (time_us - self.first_us) * _US
