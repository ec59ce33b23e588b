"""Subscribers' media files: stored under the data folder, usable as prompts and hold music.

Source: the File Descriptor object and the ``/subscribers/{sid}/files`` endpoints of
``seeds/004_…``; the WAVE format (RIFF ``fmt `` chunk: PCM, channels, sample rate,
sample width), read with the standard ``wave`` module.

Theory of operation
-------------------
The engine plays 8 kHz mono 16-bit PCM, so an upload must be exactly that (anything else is a
422 naming what is wrong, rather than a file that later plays as noise). Files live at
``<data_dir>/files/<sid>/<name>``; names are one path component of letters, digits, ``.``,
``_`` and ``-`` ending in ``.wav``, so a name can never leave its folder. The descriptor's
``url`` is ``/storage/subscribers/<sid>/<name>`` as in the spec; ``path_of`` gives the runtime
the file behind it. Disk work runs in a worker thread so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import io
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from conf_server.api.errors import NotFoundApiError, ValidationApiError

SAMPLE_RATE: Final = 8000
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,123}\.wav")


@dataclass(frozen=True, slots=True)
class FileDescriptor:
    name: str
    size: int
    duration_ms: int
    url: str

    def shape(self) -> dict[str, object]:
        return {"duration": self.duration_ms, "name": self.name, "size": self.size, "url": self.url}


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationApiError.one(
            "file", f"file name {name!r} must be letters, digits, '.', '_' or '-' ending in .wav"
        )
    return name


def wav_duration_ms(data: bytes) -> int:
    """Check ``data`` is 8 kHz mono 16-bit PCM WAVE; its duration in milliseconds."""
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels, width = reader.getnchannels(), reader.getsampwidth()
            rate, frames = reader.getframerate(), reader.getnframes()
    except (wave.Error, EOFError) as exc:
        raise ValidationApiError.one("file", f"not a PCM WAVE file: {exc}") from None
    if (channels, width, rate) != (1, 2, SAMPLE_RATE):
        raise ValidationApiError.one(
            "file",
            f"audio must be 8000 Hz mono 16-bit PCM, not {rate} Hz, {channels} channel(s), "
            f"{8 * width}-bit",
        )
    return frames * 1000 // rate


class FileStore:
    """Media files per subscriber under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sid: str, name: str) -> Path:
        folder = re.sub(r"[^A-Za-z0-9_-]", "_", sid)  # sids are URL-safe; keep them one component
        return self.root / folder / check_name(name)

    def _descriptor(self, sid: str, path: Path) -> FileDescriptor:
        data = path.read_bytes()
        return FileDescriptor(
            path.name, len(data), wav_duration_ms(data), f"/storage/subscribers/{sid}/{path.name}"
        )

    async def save(self, sid: str, name: str, data: bytes) -> FileDescriptor:
        path = self.path_of(sid, name)
        duration = wav_duration_ms(data)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # atomic: a player never sees half a file

        await asyncio.to_thread(write)
        return FileDescriptor(name, len(data), duration, f"/storage/subscribers/{sid}/{name}")

    async def list_files(self, sid: str) -> list[FileDescriptor]:
        folder = self.path_of(sid, "x.wav").parent

        def scan() -> list[FileDescriptor]:
            if not folder.is_dir():
                return []
            return [self._descriptor(sid, p) for p in sorted(folder.glob("*.wav"))]

        return await asyncio.to_thread(scan)

    async def delete(self, sid: str, names: list[str]) -> None:
        paths = [self.path_of(sid, n) for n in names]

        def remove() -> None:
            missing = [p.name for p in paths if not p.is_file()]
            if missing:
                raise NotFoundApiError(f"file {missing[0]}")
            for p in paths:
                p.unlink()

        await asyncio.to_thread(remove)
