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
frequency. Rather than running the Goertzel recursion sample by sample in Python, blocks are
evaluated as a matrix product with precomputed cosine and sine columns — numerically the same
figures, vectorised over frequencies, blocks and legs.

:class:`InbandBank` does this for every leg of the engine at once, the way ``TalkDetector`` does
levels: per-slot state arrays (the samples carried over to the next block, the on/off timing),
fed one ``(M, L)`` block of frames with the ``M`` slots they belong to. Each leg carries a
different remainder (legs start at different times), so one call cuts each row into its own
blocks (one or two per 160-sample frame), classifies all the blocks of all the legs with one
matrix product (skipping blocks too quiet to hold a tone at the level floor, and running the
harmonic and purity checks only for the few blocks that pass the level, twist and peak checks),
then advances the timing of every leg by block number with array operations; a Python loop runs
only over the presses found. A leg's blocks, figures and timing never mix with
another leg's, so what a leg detects does not depend on which other legs share the call.
:class:`InbandDetector` is the one-leg view (a bank of one slot).

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
from numpy.typing import ArrayLike, NDArray

from media.errors import MediaConfigError

SAMPLE_RATE = 8000
BLOCK = 102
ON_BLOCKS = 2
OFF_BLOCKS = 4
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
FULL_SCALE_DBM0 = 3.17  # G.711: a sine at digital full scale is +3.17 dBm0 (G.711 table 5/6)

_KEYS = "".join(KEYPAD)  # key index (row * 4 + column) -> key
_TONES = np.array(ROWS + COLS, dtype=np.float64)


def _basis(freqs: NDArray[np.float64]) -> NDArray[np.float64]:
    """(BLOCK, 2F) columns: cos then sin at each frequency (the real and imaginary DFT terms),
    scaled by 2 / BLOCK so that a block's terms give the tone's amplitude."""
    phase = 2 * np.pi * np.outer(np.arange(BLOCK), freqs) / SAMPLE_RATE
    return np.ascontiguousarray(np.hstack([np.cos(phase), np.sin(phase)]) * (2.0 / BLOCK))


_FUNDAMENTALS = _basis(_TONES)  # (102, 16): the eight DTMF tones
_HARMONICS = _basis(2 * _TONES)  # (102, 16): their second harmonics
# Blocks are multiplied in stacks of this many rows. One (K, 102) @ (102, 16) product with K in
# the thousands crosses OpenBLAS's threading threshold (M*N*K > 262,144): its worker threads took
# 4-8 ms instead of 0.1 ms on a loaded 2-core machine, and spin on cores the engine needs.
# np.matmul over a stack calls gemm once per 128-row matrix: single-threaded, and faster.
_STACK = 128
_NO_SLOTS = np.zeros(0, dtype=np.intp)
# A slot's timing: the key of its last block (-1: none), how many blocks in a row held it
# (saturated at ON_BLOCKS), the key being pressed (-1: none), and how many blocks in a row went
# without it (saturated at OFF_BLOCKS). Fed blocks without a key, an idle slot stays idle.
_IDLE = np.array([-1, 0, -1, 0], dtype=np.int64)
_SLOT_0 = np.zeros(1, dtype=np.intp)


def _db(ratio_db: float) -> float:
    """An amplitude ratio from decibels."""
    return float(10.0 ** (ratio_db / 20.0))


def _powers(blocks: NDArray[np.float64], basis: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared tone amplitude of each (K, BLOCK) block at each frequency of ``basis``: (K, F).

    The checks compare squared amplitudes with squared ratios: the same tests as on amplitudes
    (all are non-negative), without a square root per tone.
    """
    terms = _product(blocks, basis)
    terms *= terms
    half = basis.shape[1] // 2
    return terms[:, :half] + terms[:, half:]


def _product(blocks: NDArray[np.float64], basis: NDArray[np.float64]) -> NDArray[np.float64]:
    """``blocks @ basis`` for C-contiguous blocks, as single-threaded gemm calls (see _STACK)."""
    k = blocks.shape[0]
    if k <= _STACK:
        return blocks @ basis
    main = k - k % _STACK
    out = np.empty((k, basis.shape[1]), dtype=np.float64)
    stacked = out[:main].reshape(-1, _STACK, basis.shape[1])
    np.matmul(np.ascontiguousarray(blocks[:main]).reshape(-1, _STACK, BLOCK), basis, out=stacked)
    out[main:] = blocks[main:] @ basis
    return out


class InbandBank:
    """Goertzel DTMF detection with Q.24-style checks for up to ``capacity`` legs at once."""

    def __init__(
        self,
        capacity: int,
        *,
        min_level_dbm0: float = -33.0,
        normal_twist_db: float = 8.0,
        reverse_twist_db: float = 4.0,
        relative_peak_db: float = 6.0,
        harmonic_db: float = 4.0,
        min_tone_fraction: float = 0.6,
    ) -> None:
        if capacity < 0:
            raise MediaConfigError(f"in-band bank capacity {capacity} is negative")
        if not 0.0 < min_tone_fraction <= 1.0:
            raise MediaConfigError(f"tone fraction {min_tone_fraction} is outside (0, 1]")
        # Squared: the checks compare tone powers (squared amplitudes).
        self._min_power = (32767.0 * _db(min_level_dbm0 - FULL_SCALE_DBM0)) ** 2
        self._normal = _db(normal_twist_db) ** 2
        self._reverse = _db(reverse_twist_db) ** 2
        self._peak = _db(relative_peak_db) ** 2
        self._harm = _db(harmonic_db) ** 2
        self._fraction = min_tone_fraction
        n = capacity
        self._enabled = np.zeros(n, dtype=np.bool_)
        self._slots = _NO_SLOTS
        # The last (up to BLOCK - 1) samples not yet in a block, right-aligned in each row.
        self._carry = np.zeros((n, BLOCK - 1), dtype=np.int16)
        self._carry_len = np.zeros(n, dtype=np.intp)
        # The on/off timing, one row per slot (columns: see _IDLE), gathered and stored at once.
        self._timing = np.tile(_IDLE, (n, 1))

    @property
    def capacity(self) -> int:
        """How many slots the bank has."""
        return int(self._enabled.size)

    @property
    def slots(self) -> NDArray[np.intp]:
        """The slots being detected, ascending (read-only; replaced on add/remove)."""
        return self._slots

    def add(self, slot: int) -> None:
        """Start detecting on ``slot`` with fresh state (a slot already present starts over)."""
        self._check_slot(slot)
        self._reset(slot)
        if not self._enabled[slot]:
            self._enabled[slot] = True
            self._slots = self._active()

    def remove(self, slot: int) -> None:
        """Stop detecting on ``slot`` (nothing happens if it was not being detected)."""
        self._check_slot(slot)
        if self._enabled[slot]:
            self._enabled[slot] = False
            self._reset(slot)
            self._slots = self._active()

    def process(self, frames: NDArray[np.int16], slots: ArrayLike) -> list[tuple[int, str]]:
        """Feed row ``i`` of ``(M, L)`` 8 kHz ``frames`` to slot ``slots[i]``.

        Returns the presses recognised, as ``(slot, key)``, each once: by slot, and in the
        order they were keyed within a slot. Every slot must have been added, and appear once.
        """
        index = np.asarray(slots, dtype=np.intp)
        if frames.ndim != 2 or index.ndim != 1 or frames.shape[0] != index.size:
            raise MediaConfigError(
                f"in-band bank takes (M, L) frames and M slots, got {frames.shape} and "
                f"{index.shape}"
            )
        if frames.dtype != np.int16:
            raise MediaConfigError(f"in-band frames are int16 samples, got {frames.dtype}")
        m, length = frames.shape
        if m == 0:
            return []
        if index is not self._slots:  # the bank's own slots are valid by construction
            self._check_slots(index)
        clen = self._carry_len[index]
        total = clen + length
        n_blocks = total // BLOCK
        # Row i's stream (its carry, then its frame) is buf[i, start[i]:]; a row's blocks never
        # reach past its own samples, so nothing else is ever read.
        buf = np.empty((m, BLOCK - 1 + length), dtype=np.int16)
        buf[:, : BLOCK - 1] = self._carry[index]
        buf[:, BLOCK - 1 :] = frames
        start = (BLOCK - 1) - clen
        self._carry[index] = buf[:, length:]
        self._carry_len[index] = total - n_blocks * BLOCK
        most = int(n_blocks.max())
        if most == 0:
            return []
        # Blocks numbered b = 0, 1, ... within this call: rows[b] are the rows having block b.
        everyone = np.arange(m)
        fewest = int(n_blocks.min())
        rows = [everyone if fewest > b else np.flatnonzero(n_blocks > b) for b in range(most)]
        row_of = np.concatenate(rows) if most > 1 else rows[0]
        offset = np.concatenate([start[r] + b * BLOCK for b, r in enumerate(rows)])
        # windows[i, j] is the view buf[i, j : j + BLOCK] (a strided view: nothing is copied).
        windows: NDArray[np.int16] = np.ndarray(
            (m, length, BLOCK), np.int16, buf, strides=(buf.strides[0], buf.itemsize, buf.itemsize)
        )
        keys = self.classify(windows[row_of, offset].astype(np.float64))
        events: list[tuple[NDArray[np.intp], NDArray[np.int64]]] = []
        first = 0
        for r in rows:  # timing is sequential in blocks, vectorised across legs
            pressed = self._step(index[r], keys[first : first + r.size])
            first += r.size
            if pressed is not None:
                events.append(pressed)
        if not events:
            return []
        slot_of = np.concatenate([s for s, _ in events])
        key_of = np.concatenate([k for _, k in events])
        order = np.argsort(slot_of, kind="stable")  # by slot, block order kept within a slot
        pairs = zip(slot_of[order].tolist(), key_of[order].tolist(), strict=True)
        return [(slot, _KEYS[key]) for slot, key in pairs]

    def classify(self, blocks: NDArray[np.float64]) -> NDArray[np.int64]:
        """Key index 0..15 (row * 4 + column) held by each (B, 102) block, or -1."""
        if blocks.ndim != 2 or blocks.shape[1] != BLOCK:
            raise MediaConfigError(f"in-band blocks are (B, {BLOCK}), got shape {blocks.shape}")
        energy = np.einsum("ij,ij->i", blocks, blocks)
        # A shortcut that changes no answer: a tone's squared amplitude in a block is at most
        # 4 * energy / BLOCK (Cauchy-Schwarz), so a block under half the level floor by that
        # bound (silence, line noise) cannot pass the level check and is not analysed.
        loud = np.flatnonzero(energy * (4.0 / BLOCK) >= 0.5 * self._min_power)
        if loud.size == blocks.shape[0]:
            return self._classify(blocks, energy)
        keys = np.full(blocks.shape[0], -1, dtype=np.int64)
        if loud.size:
            keys[loud] = self._classify(blocks[loud], energy[loud])
        return keys

    def _classify(
        self, blocks: NDArray[np.float64], energy: NDArray[np.float64]
    ) -> NDArray[np.int64]:
        """``classify`` for blocks of the given energies (sums of squares)."""
        power = _powers(blocks, _FUNDAMENTALS)  # squared tone amplitude at each DTMF frequency
        pr, r, second_r = _peak_of_four(power[:, :4])
        pc, c, second_c = _peak_of_four(power[:, 4:])
        ok = (pr >= self._min_power) & (pc >= self._min_power)
        ok &= (pr <= pc * self._normal) & (pc <= pr * self._reverse)
        ok &= (second_r * self._peak <= pr) & (second_c * self._peak <= pc)
        found = np.flatnonzero(ok)
        if found.size:  # harmonics and purity only for the blocks still in the running
            harm = _powers(blocks[found], _HARMONICS)
            fr, fc, fpr, fpc = r[found], c[found], pr[found], pc[found]
            rows = np.arange(found.size)
            keep = (harm[rows, fr] * self._harm <= fpr) & (harm[rows, 4 + fc] * self._harm <= fpc)
            floor = self._fraction * np.maximum(energy[found], 1e-9)
            keep &= BLOCK * (fpr + fpc) / 2.0 >= floor
            ok[found] = keep
        return np.where(ok, r * 4 + c, -1).astype(np.int64)

    def _step(
        self, slots: NDArray[np.intp], key: NDArray[np.int64]
    ) -> tuple[NDArray[np.intp], NDArray[np.int64]] | None:
        """Advance the on/off timing of ``slots`` by one block; return the presses accepted."""
        timing = self._timing[slots]
        if int(key.max()) < 0 and bool((timing == _IDLE).all()):
            return None  # nobody keyed and nobody was keying: the usual block
        candidate, hits, current, misses = timing.T
        held = key >= 0
        again = held & (key == candidate)
        hits = np.where(again, np.minimum(hits + 1, ON_BLOCKS), held)
        misses = np.where(key == current, 0, np.minimum(misses + 1, OFF_BLOCKS))
        current = np.where((current >= 0) & (misses >= OFF_BLOCKS), -1, current)
        press = (current < 0) & (hits >= ON_BLOCKS)
        current = np.where(press, key, current)
        misses = np.where(press, 0, misses)
        self._timing[slots] = np.stack([key, hits, current, misses], axis=1)
        return (slots[press], key[press]) if bool(press.any()) else None

    def _reset(self, slot: int) -> None:
        self._carry_len[slot] = 0
        self._timing[slot] = _IDLE

    def _active(self) -> NDArray[np.intp]:
        slots = np.flatnonzero(self._enabled).astype(np.intp)
        slots.flags.writeable = False
        return slots

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.capacity:
            raise MediaConfigError(f"in-band slot {slot} outside 0..{self.capacity - 1}")

    def _check_slots(self, index: NDArray[np.intp]) -> None:
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= self.capacity:
            raise MediaConfigError(f"in-band slots {low}..{high} outside 0..{self.capacity - 1}")
        if not bool(self._enabled[index].all()):
            missing = index[~self._enabled[index]]
            raise MediaConfigError(f"in-band slots {missing.tolist()} were not added")
        if index.size > 1 and int(np.bincount(index).max()) > 1:
            raise MediaConfigError("in-band slots must each appear once per call")


class InbandDetector:
    """One leg's in-band DTMF detector: an :class:`InbandBank` of one slot."""

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
        self._bank = InbandBank(
            1,
            min_level_dbm0=min_level_dbm0,
            normal_twist_db=normal_twist_db,
            reverse_twist_db=reverse_twist_db,
            relative_peak_db=relative_peak_db,
            harmonic_db=harmonic_db,
            min_tone_fraction=min_tone_fraction,
        )
        self._bank.add(0)

    def process(self, frame: NDArray[np.int16]) -> list[str]:
        """Feed 8 kHz samples; return the keys whose press was recognised in them (each once)."""
        if frame.ndim != 1:
            raise MediaConfigError(f"in-band detector takes one 1-D frame, got shape {frame.shape}")
        return [key for _, key in self._bank.process(frame[None, :], _SLOT_0)]

    def classify(self, blocks: NDArray[np.float64]) -> NDArray[np.int64]:
        """Key index 0..15 (row * 4 + column) held by each (B, 102) block, or -1."""
        return self._bank.classify(blocks)


def _peak_of_four(
    group: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """The largest value of each row of a (B, 4) array, its column (the first on a tie, as
    ``argmax``) and the second-largest value, with elementwise operations on the columns."""
    a, b, c, d = group[:, 0], group[:, 1], group[:, 2], group[:, 3]
    hi1, lo1 = np.maximum(a, b), np.minimum(a, b)
    hi2, lo2 = np.maximum(c, d), np.minimum(c, d)
    peak = np.maximum(hi1, hi2)
    second = np.maximum(np.minimum(hi1, hi2), np.maximum(lo1, lo2))
    column = np.where(hi2 > hi1, np.where(d > c, 3, 2), np.where(b > a, 1, 0)).astype(np.int64)
    return peak, column, second
