"""In-band DTMF detection (ITU-T Q.23 frequencies, Q.24 acceptance) for legs without RFC 4733.

Theory of operation
-------------------
A key is the sum of one low-group (row) tone and one high-group (column) tone:

====  =====  =====  =====  =====
 Hz   1209   1336   1477   1633
====  =====  =====  =====  =====
697     1      2      3      A
770     4      5      6      B
852     7      8      9      C
941     *      0      #      D
====  =====  =====  =====  =====

Audio (8 kHz int16, any frame length — the engine gives 160) is cut into blocks of 102 samples
(12.75 ms, the classic Goertzel block). For each block the energy at the eight DTMF frequencies and
at their eight second harmonics is the Goertzel output: one DFT term at an exact, non-bin
frequency. Rather than running the Goertzel recursion sample by sample in Python, all blocks of a
frame are evaluated at once as a matrix product with the precomputed 16 complex exponentials —
numerically the same figures, vectorised over frequencies and blocks.

A block holds a key when all of these hold (each threshold is a constructor argument):

* level: both tones above ``min_level_dbm0`` (G.711 scale: a full-scale sine is +3.17 dBm0);
* twist: the column tone at most 8 dB below the row tone (normal twist) and at most 4 dB above it
  (reverse twist);
* relative peak: every other tone of the same group at least ``relative_peak_db`` below the peak;
* second harmonic: neither tone's double frequency within ``harmonic_db`` of it — voiced speech is
  rich in harmonics, a DTMF generator is not;
* purity: the two tones carry at least ``min_tone_fraction`` of the block's energy, which rejects
  noise, music and speech whose energy is spread over many frequencies.

Timing: a press is accepted when two consecutive blocks agree on a key (25.5 ms of tone; every tone
of Q.24's minimum 40 ms contains two whole blocks), and reported once. It is released only after
four consecutive blocks without it (51 ms, over the 40 ms minimum pause), so a press interrupted
for less than 40 ms — a dropout, a lost packet concealed by silence — still counts once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from media.errors import MediaConfigError

SAMPLE_RATE = 8000
BLOCK = 102
ON_BLOCKS = 2
OFF_BLOCKS = 4
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
FULL_SCALE_DBM0 = 3.17  # G.711: a sine at digital full scale is +3.17 dBm0 (G.711 table 5/6)

_FREQS = np.array(ROWS + COLS + tuple(2 * f for f in ROWS + COLS), dtype=np.float64)
# (16, BLOCK) complex exponentials: row i evaluates the DFT at _FREQS[i] (the Goertzel term).
_BASIS: NDArray[np.complex128] = np.exp(
    -2j * np.pi * np.outer(_FREQS, np.arange(BLOCK)) / SAMPLE_RATE
).astype(np.complex128)


def _db(ratio_db: float) -> float:
    """An amplitude ratio from decibels."""
    return float(10.0 ** (ratio_db / 20.0))


class InbandDetector:
    """Goertzel DTMF detector with Q.24-style level, twist, purity and timing checks."""

    def __init__(
        self,
        *,
        min_level_dbm0: float = -33.0,
        normal_twist_db: float = 8.0,
        reverse_twist_db: float = 4.0,
        relative_peak_db: float = 6.0,
        harmonic_db: float = 4.0,
        min_tone_fraction: float = 0.6,
    ) -> None:
        if not 0.0 < min_tone_fraction <= 1.0:
            raise MediaConfigError(f"tone fraction {min_tone_fraction} is outside (0, 1]")
        self._min_amp = 32767.0 * _db(min_level_dbm0 - FULL_SCALE_DBM0)
        self._normal = _db(normal_twist_db)
        self._reverse = _db(reverse_twist_db)
        self._peak = _db(relative_peak_db)
        self._harm = _db(harmonic_db)
        self._fraction = min_tone_fraction
        self._carry: NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        self._candidate = -1
        self._hits = 0
        self._current = -1  # key index being pressed, -1 when none
        self._misses = 0

    def process(self, frame: NDArray[np.int16]) -> list[str]:
        """Feed 8 kHz samples; return the keys whose press was recognised in them (each once)."""
        if frame.ndim != 1:
            raise MediaConfigError(f"in-band detector takes one 1-D frame, got shape {frame.shape}")
        samples = np.concatenate([self._carry, frame.astype(np.float64)])
        n_blocks = samples.size // BLOCK
        self._carry = samples[n_blocks * BLOCK :]
        if n_blocks == 0:
            return []
        keys = self.classify(samples[: n_blocks * BLOCK].reshape(n_blocks, BLOCK))
        out = []
        for k in keys.tolist():  # one or two blocks per 20 ms frame: a tiny loop
            pressed = self._step(k)
            if pressed is not None:
                out.append(pressed)
        return out

    def classify(self, blocks: NDArray[np.float64]) -> NDArray[np.int64]:
        """Key index 0..15 (row * 4 + column) held by each (B, 102) block, or -1."""
        amp = np.abs(blocks @ _BASIS.T) * (2.0 / BLOCK)  # tone amplitude at each frequency
        rows, cols, harm = amp[:, :4], amp[:, 4:8], amp[:, 8:]
        r, c = rows.argmax(axis=1), cols.argmax(axis=1)
        idx = np.arange(blocks.shape[0])
        ar, ac = rows[idx, r], cols[idx, c]
        ok = (ar >= self._min_amp) & (ac >= self._min_amp)
        ok &= (ar <= ac * self._normal) & (ac <= ar * self._reverse)
        ok &= _second_largest(rows) * self._peak <= ar
        ok &= _second_largest(cols) * self._peak <= ac
        ok &= (harm[idx, r] * self._harm <= ar) & (harm[idx, 4 + c] * self._harm <= ac)
        energy = np.einsum("ij,ij->i", blocks, blocks)
        ok &= BLOCK * (ar**2 + ac**2) / 2.0 >= self._fraction * np.maximum(energy, 1e-9)
        return np.where(ok, r * 4 + c, -1).astype(np.int64)

    def _step(self, key: int) -> str | None:
        """Advance the on/off timing by one block; return a key when a press is accepted."""
        if key >= 0 and key == self._candidate:
            self._hits += 1
        else:
            self._candidate, self._hits = key, 1 if key >= 0 else 0
        self._misses = 0 if key == self._current else self._misses + 1
        if self._current >= 0 and self._misses >= OFF_BLOCKS:
            self._current = -1
        if self._current < 0 and self._hits >= ON_BLOCKS:
            self._current = self._candidate
            self._misses = 0
            return KEYPAD[self._current // 4][self._current % 4]
        return None


def _second_largest(group: NDArray[np.float64]) -> NDArray[np.float64]:
    """The second-largest value of each row of a (B, 4) array."""
    return np.sort(group, axis=1)[:, -2]
