"""Loading prompt audio: format checks, overrides by name, language fallback to English."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from conf_server.domain.speech import CATALOGUE
from conf_server.prompts import PromptError, load_language, load_prompts, read_prompt

ROOT = Path(__file__).resolve().parents[2] / "config" / "prompts"


def _write_wav(
    path: Path,
    samples: npt.NDArray[np.int16],
    *,
    rate: int = 8000,
    channels: int = 1,
    width: int = 2,
) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes() if width == 2 else bytes(len(samples)))
    return path


def test_read_prompt_golden_vector(tmp_path: Path) -> None:
    # A hand-made 44-byte RIFF header, then four little-endian samples: 1, -1, 32767, -32768.
    data = bytes.fromhex("0100ffffff7f0080")
    header = (
        b"RIFF"
        + (36 + len(data)).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + (8000).to_bytes(4, "little")
        + (16000).to_bytes(4, "little")  # byte rate
        + (2).to_bytes(2, "little")  # block align
        + (16).to_bytes(2, "little")  # bits per sample
        + b"data"
        + len(data).to_bytes(4, "little")
    )
    path = tmp_path / "golden.wav"
    path.write_bytes(header + data)
    samples = read_prompt(path)
    assert samples.dtype == np.int16
    assert samples.tolist() == [1, -1, 32767, -32768]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 16000}, r"need mono 16-bit 8000 Hz, got 1 channel\(s\), 16-bit, 16000 Hz"),
        ({"channels": 2}, r"need mono 16-bit 8000 Hz, got 2 channel\(s\), 16-bit, 8000 Hz"),
        ({"width": 1}, r"need mono 16-bit 8000 Hz, got 1 channel\(s\), 8-bit, 8000 Hz"),
    ],
)
def test_wrong_format_is_refused_naming_the_file(
    tmp_path: Path, kwargs: dict[str, int], message: str
) -> None:
    path = _write_wav(tmp_path / "welcome.wav", np.zeros(80, dtype=np.int16), **kwargs)
    with pytest.raises(PromptError, match=rf"welcome\.wav: {message}"):
        read_prompt(path)


def test_garbage_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "goodbye.wav"
    path.write_bytes(b"ID3\x03 not a wave file")
    with pytest.raises(PromptError, match=r"goodbye\.wav: not a readable PCM WAV file"):
        read_prompt(path)


def test_load_english() -> None:
    prompts = load_prompts(ROOT / "en")
    assert prompts.keys() == CATALOGUE.keys()
    assert all(audio.dtype == np.int16 and audio.ndim == 1 for audio in prompts.values())


def test_override_replaces_a_prompt_by_name_and_adds_new_ones(tmp_path: Path) -> None:
    mine = np.full(800, 1234, dtype=np.int16)
    _write_wav(tmp_path / "welcome.wav", mine)
    _write_wav(tmp_path / "acme_greeting.wav", mine)
    prompts = load_prompts(ROOT / "en", overrides=tmp_path)
    assert np.array_equal(prompts["welcome"], mine)
    assert np.array_equal(prompts["acme_greeting"], mine)
    english = load_prompts(ROOT / "en")
    assert np.array_equal(prompts["goodbye"], english["goodbye"])


def test_missing_directories_are_named(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="nowhere: prompt directory not found"):
        load_prompts(tmp_path / "nowhere")
    with pytest.raises(PromptError, match="gone: prompt override directory not found"):
        load_prompts(ROOT / "en", overrides=tmp_path / "gone")


def test_missing_language_falls_back_to_english() -> None:
    got = load_language(ROOT, "DE")
    assert got.language == "de"
    assert set(got.fell_back) == set(CATALOGUE)
    assert got.prompts.keys() == CATALOGUE.keys()


def test_english_is_not_a_fallback() -> None:
    got = load_language(ROOT, "EN")
    assert got.fell_back == ()


def test_partial_language_is_completed_from_english(tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    (root / "en").mkdir(parents=True)
    (root / "es-latam").mkdir()
    (root / "overrides").mkdir()
    english = np.full(400, 100, dtype=np.int16)
    spanish = np.full(400, 200, dtype=np.int16)
    local = np.full(400, 300, dtype=np.int16)
    for name in ("welcome", "goodbye", "enter_pin"):
        _write_wav(root / "en" / f"{name}.wav", english)
    _write_wav(root / "es-latam" / "welcome.wav", spanish)
    _write_wav(root / "es-latam" / "goodbye.wav", spanish)
    _write_wav(root / "overrides" / "goodbye.wav", local)
    got = load_language(root, "ES-LATAM", overrides=root / "overrides")
    assert got.fell_back == ("enter_pin",)
    assert got.prompts["welcome"].tolist() == spanish.tolist()
    assert got.prompts["goodbye"].tolist() == local.tolist()
    assert got.prompts["enter_pin"].tolist() == english.tolist()
