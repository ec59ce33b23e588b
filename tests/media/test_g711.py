"""G.711 tables: bit-exact against CPython's audioop over every input, plus published values."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from media import g711
from media.errors import MediaConfigError

ALL_SAMPLES: NDArray[np.int16] = np.arange(65536, dtype=np.uint16).view(np.int16)
ALL_CODES: NDArray[np.uint8] = np.arange(256, dtype=np.uint8)


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    with warnings.catch_warnings():
        # 3.11/3.12 warn that audioop goes away in 3.13, where audioop-lts provides it.
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as module
    return module


@pytest.mark.parametrize(
    ("ours", "ref_name"),
    [(g711.ulaw_encode, "lin2ulaw"), (g711.alaw_encode, "lin2alaw")],
)
def test_encode_matches_audioop_on_every_sample(
    audioop: ModuleType, ours: Callable[[NDArray[np.int16]], NDArray[np.uint8]], ref_name: str
) -> None:
    ref = np.frombuffer(getattr(audioop, ref_name)(ALL_SAMPLES.tobytes(), 2), dtype=np.uint8)
    got = ours(ALL_SAMPLES)
    assert got.dtype == np.uint8
    mismatches = np.flatnonzero(got != ref)
    assert mismatches.size == 0, f"first mismatch at sample {int(ALL_SAMPLES[mismatches[0]])}"


@pytest.mark.parametrize(
    ("ours", "ref_name"),
    [(g711.ulaw_decode, "ulaw2lin"), (g711.alaw_decode, "alaw2lin")],
)
def test_decode_matches_audioop_on_every_code(
    audioop: ModuleType, ours: Callable[[NDArray[np.uint8]], NDArray[np.int16]], ref_name: str
) -> None:
    ref = np.frombuffer(getattr(audioop, ref_name)(ALL_CODES.tobytes(), 2), dtype=np.int16)
    got = ours(ALL_CODES)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, ref)


# Published G.711 values (ITU-T G.711 tables 1 and 2, as 16-bit linear): code -> sample.
@pytest.mark.parametrize(
    ("code", "sample"),
    [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0xF0, 120), (0x70, -120)],
)
def test_ulaw_published_values(code: int, sample: int) -> None:
    assert int(g711.ulaw_decode(np.array([code], dtype=np.uint8))[0]) == sample


@pytest.mark.parametrize(
    ("code", "sample"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0x80, 5504)],
)
def test_alaw_published_values(code: int, sample: int) -> None:
    assert int(g711.alaw_decode(np.array([code], dtype=np.uint8))[0]) == sample


def test_silence_codes_encode_zero() -> None:
    zero = np.zeros(160, dtype=np.int16)
    assert set(g711.ulaw_encode(zero).tolist()) == {g711.ULAW_SILENCE}
    assert set(g711.alaw_encode(zero).tolist()) == {g711.ALAW_SILENCE}
    assert g711.SILENCE == {"PCMU": 0xFF, "PCMA": 0xD5}


def test_shape_is_preserved_for_a_tick() -> None:
    frames = np.arange(3 * 160, dtype=np.int16).reshape(3, 160) * 50
    codes = g711.ulaw_encode(frames)
    assert codes.shape == (3, 160)
    assert g711.ulaw_decode(codes).shape == (3, 160)


def test_tables_are_read_only() -> None:
    out = g711.ulaw_encode(np.zeros(4, dtype=np.int16))
    out[0] = 1  # the result is a fresh array the caller may reuse
    with pytest.raises(ValueError, match="read-only"):
        g711._ULAW_ENC[0] = 1


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
@given(samples=hnp.arrays(np.int16, st.integers(0, 400)))
def test_decode_encode_is_idempotent(codec: str, samples: NDArray[np.int16]) -> None:
    # A decoded code is a reconstruction level: re-encoding it must give the same code back.
    enc, dec = g711.encoder(codec), g711.decoder(codec)
    codes = enc(samples)
    np.testing.assert_array_equal(enc(dec(codes)), codes)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_quantisation_error_is_bounded_and_monotonic(codec: str) -> None:
    enc, dec = g711.encoder(codec), g711.decoder(codec)
    back = dec(enc(ALL_SAMPLES)).astype(np.int32)
    wide = ALL_SAMPLES.astype(np.int32)
    order = np.argsort(wide)
    # Companding never reverses the order of two samples...
    assert np.all(np.diff(back[order]) >= 0)
    # ...and the error is at most half the largest step (1024 for µ-law at full scale).
    assert int(np.max(np.abs(back - wide))) <= 1024


def test_lookup_by_name_and_unknown_codec() -> None:
    assert g711.encoder("pcmu") is g711.ulaw_encode
    assert g711.decoder("PCMA") is g711.alaw_decode
    with pytest.raises(MediaConfigError, match=r"no G\.711 encoder named 'G722'"):
        g711.encoder("G722")
    with pytest.raises(MediaConfigError, match=r"no G\.711 decoder named 'opus'"):
        g711.decoder("opus")


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_pair_table_path_matches_single_codes_for_every_pair(codec: str) -> None:
    # (65536, 2): every ordered pair of codes; even and contiguous, so the pair table is used.
    first, second = np.divmod(np.arange(65536), 256)
    pairs = np.stack([first, second], axis=1).astype(np.uint8)
    dec = g711.decoder(codec)
    singles = np.stack([dec(pairs[:, 0].copy()[:, None])[:, 0], dec(pairs[:, 1][:, None])[:, 0]])
    np.testing.assert_array_equal(dec(pairs), singles.T)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_odd_strided_and_row_sliced_inputs_decode_alike(codec: str) -> None:
    dec = g711.decoder(codec)
    rng = np.random.default_rng(7)
    packets = rng.integers(0, 256, (5, 200), dtype=np.uint8)
    reference = np.vstack([dec(row[None, 12:172].copy().reshape(-1)[:, None])[:, 0]
                           for row in packets])  # fmt: skip
    np.testing.assert_array_equal(dec(packets[:, 12:172]), reference)  # rows of a wider buffer
    np.testing.assert_array_equal(dec(packets[:, 13:172]), reference[:, 1:])  # odd length
    np.testing.assert_array_equal(dec(packets[:, 12:172:2]), reference[:, ::2])  # strided
    assert dec(np.zeros((0, 160), np.uint8)).shape == (0, 160)
    assert dec(np.array(0xFF, np.uint8)).shape == ()
