"""Dial-in end to end with real pjsua2 phones over loopback: IVR, join, who hears whom.

Each phone plays its own steady tone and records what it hears; a Hann-windowed FFT of a quiet
stretch of each recording (after the join prompts) tells which tones reached it. Tones are
chosen away from the hold music and the entry/exit tones (all below 1.1 kHz).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conf_server.runtime.server import Server
from tests.integration.conftest import DEMO_DID, MakeServer, events, run_phone, sip_port
from tests.integration.test_dialin_audio import read_recording, tone_level, window, write_tone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HEARD = 300.0  # a -10 dBFS tone arrives at ~10,000; through the mix well above this
SILENT = 60.0  # what is left of a tone nobody sent: noise and prompt residue


def target(server: Server) -> str:
    return f"sip:{DEMO_DID}@127.0.0.1:{sip_port(server)}"


async def phone(server: Server, *args: str, timeout: float = 60.0) -> dict[str, Any]:
    return await run_phone("--target", target(server), *args, timeout=timeout)


async def test_three_roles_hear_each_other_but_not_themselves_nor_the_listener(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    tones = {"host": 1250.0, "participant": 1650.0, "listener": 2150.0}
    codes = {"host": "1111#", "participant": "2222#", "listener": "3333#"}
    runs = []
    for i, role in enumerate(tones):
        wav = write_tone(tmp_path / f"{role}.wav", tones[role])
        runs.append(
            phone(
                server,
                *("--caller", f"+1555000000{i}"),
                *("--play", str(wav), "--record", str(tmp_path / f"{role}-heard.wav")),
                *("--dtmf", codes[role], "--dtmf-at", "0.8", "--talk", "13"),
            )
        )
    results = dict(zip(tones, await asyncio.gather(*runs), strict=True))
    assert all(r["answered"] and r["hung_up_by"] == "phone" for r in results.values()), results

    joined = {line["role"]: line for line in events(logs, "call.joined")}
    assert set(joined) == {"host", "participant", "listener"}
    assert {line["meeting"] for line in joined.values()} == {"100001"}

    for role, result in results.items():
        heard = read_recording(tmp_path / f"{role}-heard.wav")
        # 8.5–12.5 s after the answer: everyone joined, count prompts and entry tones are over.
        offset = result["record_offset"]
        quiet = window(heard, 8.5 - offset, 12.5 - offset)
        levels = {other: tone_level(quiet, freq) for other, freq in tones.items()}
        for other, level in levels.items():
            if other in (role, "listener"):
                assert level < SILENT, (role, levels)
            else:
                assert level > HEARD, (role, levels)

    ended = events(logs, "call.ended")
    assert {(line["role"], line["meeting"]) for line in ended} == {
        ("host", "100001"),
        ("participant", "100001"),
        ("listener", "100001"),
    }
    assert [line["meeting"] for line in events(logs, "meeting.ended")] == ["100001"]


async def test_wrong_code_three_times_ends_the_call(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    result = await phone(
        server,
        *("--caller", "+15550001000"),
        *("--keys", "0.8=9876#", "--keys", "3.0=9875#", "--keys", "5.2=9874#"),
        *("--wait-bye", "30"),
    )
    assert result["answered"] and result["hung_up_by"] == "server", result
    # After the third failure: "invalid code", "too many attempts", "goodbye" (~6 s), then BYE.
    assert 8.0 < result["talked"] < 20.0, result
    (ended,) = events(logs, "call.ended")
    assert ended["reason"] == "local_bye"
    assert ended["role"] is None and ended["meeting"] is None
    assert ended["digits"] == 15
    assert len(events(logs, "ivr.code_rejected")) == 3
    assert [line["reason"] for line in events(logs, "ivr.hangup")] == ["too_many_attempts"]
    assert not events(logs, "call.joined")


async def test_code_and_pin_by_sip_info_join_the_waiting_room(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    result = await phone(
        server,
        *("--caller", "+15550001100", "--dtmf-method", "info"),
        *("--keys", "0.8=5555#", "--keys", "2.5=1357#", "--talk", "5"),
    )
    assert result["answered"] and result["hung_up_by"] == "phone", result
    (joined,) = events(logs, "call.joined")
    assert (joined["meeting"], joined["role"]) == ("100002", "participant")
    (ended,) = events(logs, "call.ended")
    assert ended["digits"] == 10 and ended["role"] == "participant"
    assert {line["source"] for line in events(logs, "call.digit")} == {"info"}
    # Nobody else came: the participant waited for the host and the meeting never started.
    assert not events(logs, "meeting.started")
