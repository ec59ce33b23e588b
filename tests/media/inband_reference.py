"""The per-leg in-band DTMF detector before ``media.inband.InbandBank``, kept as a reference.

A verbatim copy of the detector the engine ran once per leg in a Python loop (complex Goertzel
basis, one ``process`` per leg per tick). The tests check that the bank detects exactly what it
did, and ``benchmarks/bench_inband.py`` times the old per-leg loop against the bank.
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


class ReferenceDetector:
    """The per-leg detector as it was before ``InbandBank`` (Goertzel, Q.24 checks)."""

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
