"""G.711 µ-law (PCMU) and A-law (PCMA) through lookup tables (ITU-T G.711; RFC 3551 §4.5.14).

Theory of operation
-------------------
G.711 maps a 16-bit linear sample to an 8-bit code: a sign bit, a 3-bit segment (exponent) and a
4-bit step inside the segment. The reference algorithm here is the one of Sun Microsystems'
public-domain ``g711.c`` (the same one CPython's ``audioop.lin2ulaw/ulaw2lin/lin2alaw/alaw2lin``
implement), evaluated once at import time with numpy over every possible input:

* two decode tables of 256 int16 entries (code → linear sample), and
* two encode tables of 65,536 uint8 entries indexed by the sample's bit pattern as uint16
  (sample → code), so encoding a frame is one ``np.take`` (faster than fancy indexing) and
  no arithmetic at run time.

All four public functions accept arrays of any shape and return an array of the same shape, so
the engine can encode or decode a whole ``(N, 160)`` tick in one call. The tables are read-only.

Decoding an array whose last axis is contiguous and of even length goes through a second table
of 65,536 uint32 entries per law: two codes read as one uint16 give two samples at once, stored
in the order they sit in memory, so the result is a uint32 array viewed as int16. Half the
lookups and no widening of the codes to ``intp``: 0.16 instead of 0.25 ms for a tick of 1,500
frames on this machine. Other shapes use the 256-entry table; both give the same samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from media.errors import MediaConfigError

__all__ = [
    "ALAW_SILENCE",
    "ULAW_SILENCE",
    "alaw_decode",
    "alaw_encode",
    "decoder",
    "encoder",
    "ulaw_decode",
    "ulaw_encode",
]

ULAW_SILENCE = 0xFF
"""µ-law code of linear 0 (positive zero): what a silent PCMU frame is filled with."""
ALAW_SILENCE = 0xD5
"""A-law code of linear 0: what a silent PCMA frame is filled with."""

_QUANT_MASK = 0x0F
_SEG_SHIFT = 4
_SEG_MASK = 0x70
_SIGN_BIT = 0x80
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159
# Upper bound of each segment, on the pre-shifted magnitude (g711.c seg_uend / seg_aend).
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _all_samples() -> NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the encode-table index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _segment(magnitude: NDArray[np.int32], ends: NDArray[np.int32]) -> NDArray[np.int32]:
    """g711.c ``search``: index of the first segment end ≥ magnitude (8 when above them all)."""
    return np.searchsorted(ends, magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> NDArray[np.uint8]:
    pcm = _all_samples() >> 2  # g711.c works on 14-bit magnitudes
    mask = np.where(pcm < 0, 0x7F, 0xFF).astype(np.int32)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(mag, _SEG_UEND)
    step = (mag >> np.minimum(seg + 1, 31)) & _QUANT_MASK
    code = np.where(seg >= 8, 0x7F, (seg << _SEG_SHIFT) | step) ^ mask
    return code.astype(np.uint8)


def _build_ulaw_decode() -> NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((u & _SEG_MASK) >> _SEG_SHIFT)
    return np.where(u & _SIGN_BIT, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> NDArray[np.uint8]:
    pcm = _all_samples() >> 3  # g711.c works on 13-bit magnitudes
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5).astype(np.int32)
    mag = np.where(negative, -pcm - 1, pcm)
    seg = _segment(mag, _SEG_AEND)
    step = np.where(seg < 2, mag >> 1, mag >> np.clip(seg, 0, 31)) & _QUANT_MASK
    code = np.where(seg >= 8, 0x7F, (seg << _SEG_SHIFT) | step) ^ mask
    return code.astype(np.uint8)


def _build_alaw_decode() -> NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    t = (a & _QUANT_MASK) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & _SIGN_BIT, t, -t).astype(np.int16)


def _frozen(table: NDArray[np.generic]) -> None:
    table.setflags(write=False)


_ULAW_ENC: NDArray[np.uint8] = _build_ulaw_encode()
_ULAW_DEC: NDArray[np.int16] = _build_ulaw_decode()
_ALAW_ENC: NDArray[np.uint8] = _build_alaw_encode()
_ALAW_DEC: NDArray[np.int16] = _build_alaw_decode()


def _build_pair_decode(table: NDArray[np.int16]) -> NDArray[np.uint32]:
    """Two codes (one uint16 as laid out in memory) → their two samples, in memory order."""
    word = np.arange(65536, dtype=np.uint32)
    first, second = (word & 0xFF, word >> 8) if np.little_endian else (word >> 8, word & 0xFF)
    lo = table[first].view(np.uint16).astype(np.uint32)
    hi = table[second].view(np.uint16).astype(np.uint32)
    # The sample at the lower address is the low half of the word on little-endian machines.
    pair: NDArray[np.uint32] = (lo | (hi << 16)) if np.little_endian else ((lo << 16) | hi)
    return pair


_ULAW_PAIRS: NDArray[np.uint32] = _build_pair_decode(_ULAW_DEC)
_ALAW_PAIRS: NDArray[np.uint32] = _build_pair_decode(_ALAW_DEC)
for _table in (_ULAW_ENC, _ULAW_DEC, _ALAW_ENC, _ALAW_DEC, _ULAW_PAIRS, _ALAW_PAIRS):
    _frozen(_table)


def _decode(
    codes: NDArray[np.uint8], table: NDArray[np.int16], pairs: NDArray[np.uint32]
) -> NDArray[np.int16]:
    c = np.asarray(codes, dtype=np.uint8)
    if c.ndim and c.shape[-1] and c.shape[-1] % 2 == 0 and c.strides[-1] == 1:
        words = c.view(np.uint16)  # needs only the last axis contiguous and of even length
        samples: NDArray[np.int16] = np.take(pairs, words).view(np.int16)
        return samples
    return np.take(table, c)


def _as_index(samples: NDArray[np.int16]) -> NDArray[np.uint16]:
    """Reinterpret int16 samples as uint16 table indices without copying."""
    return np.asarray(samples, dtype=np.int16).view(np.uint16)


def ulaw_encode(samples: NDArray[np.int16]) -> NDArray[np.uint8]:
    """Encode int16 samples (any shape) to µ-law codes of the same shape."""
    return np.take(_ULAW_ENC, _as_index(samples))


def ulaw_decode(codes: NDArray[np.uint8]) -> NDArray[np.int16]:
    """Decode µ-law codes (any shape) to int16 samples of the same shape."""
    return _decode(codes, _ULAW_DEC, _ULAW_PAIRS)


def alaw_encode(samples: NDArray[np.int16]) -> NDArray[np.uint8]:
    """Encode int16 samples (any shape) to A-law codes of the same shape."""
    return np.take(_ALAW_ENC, _as_index(samples))


def alaw_decode(codes: NDArray[np.uint8]) -> NDArray[np.int16]:
    """Decode A-law codes (any shape) to int16 samples of the same shape."""
    return _decode(codes, _ALAW_DEC, _ALAW_PAIRS)


Encoder = Callable[[NDArray[np.int16]], NDArray[np.uint8]]
Decoder = Callable[[NDArray[np.uint8]], NDArray[np.int16]]

_ENCODERS: dict[str, Encoder] = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
_DECODERS: dict[str, Decoder] = {"PCMU": ulaw_decode, "PCMA": alaw_decode}


def encoder(name: str) -> Encoder:
    """The encode function of a codec by its SDP encoding name ("PCMU" or "PCMA", any case)."""
    try:
        return _ENCODERS[name.upper()]
    except KeyError:
        raise MediaConfigError(f"no G.711 encoder named {name!r} (PCMU or PCMA)") from None


def decoder(name: str) -> Decoder:
    """The decode function of a codec by its SDP encoding name ("PCMU" or "PCMA", any case)."""
    try:
        return _DECODERS[name.upper()]
    except KeyError:
        raise MediaConfigError(f"no G.711 decoder named {name!r} (PCMU or PCMA)") from None


SILENCE: dict[str, int] = {"PCMU": ULAW_SILENCE, "PCMA": ALAW_SILENCE}
"""The silence code per codec name, for filling a muted or empty payload."""
