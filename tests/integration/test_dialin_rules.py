"""Meeting rules end to end with pjsua2 phones: hold music until the host, self-mute, lock,
host leaving under stop-how moderator, and guessing protection across calls.

Phones start at known offsets from each other; windows in the recordings are chosen with a
second or more of margin on each side of the moments that matter (joins, prompts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conf_server.store.provision import provision_file
from tests.integration.conftest import MakeServer, events
from tests.integration.test_dialin import HEARD, SILENT, phone
from tests.integration.test_dialin_audio import (
    read_recording,
    rms,
    tone_level,
    window,
    write_tone,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HOST_TONE = 1250.0
PARTICIPANT_TONE = 1650.0
T = TypeVar("T")


async def later(delay: float, job: Awaitable[T]) -> T:
    await asyncio.sleep(delay)
    return await job


def heard(path: Path, result: dict[str, Any], start: float, end: float) -> Any:
    """The recording between ``start`` and ``end`` seconds after the phone's answer."""
    offset = result["record_offset"]
    return window(read_recording(path), start - offset, end - offset)


async def test_participant_hears_music_until_the_host_joins_then_the_host(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    host_wav = write_tone(tmp_path / "host.wav", HOST_TONE)
    record = tmp_path / "participant-heard.wav"
    participant = phone(
        server,
        *("--caller", "+15550002001", "--record", str(record)),
        *("--keys", "0.8=5555#", "--keys", "2.5=1357#", "--talk", "21"),
    )
    host = later(
        11.0,
        phone(
            server,
            *("--caller", "+15550002002", "--play", str(host_wav)),
            *("--keys", "0.8=4444#", "--keys", "2.5=2468#", "--talk", "9"),
        ),
    )
    p_result, h_result = await asyncio.gather(participant, host)
    assert p_result["answered"] and h_result["answered"]

    joined = {line["role"]: line for line in events(logs, "call.joined")}
    assert joined.keys() == {"host", "participant"}  # organizer PIN 2468 made the host
    assert {line["meeting"] for line in joined.values()} == {"100002"}
    (started,) = events(logs, "meeting.started")
    assert started["meeting"] == "100002"

    # "waiting for the host" ends ~7 s after the answer; the host joins ~14.5 s after it.
    music = heard(record, p_result, 8.0, 12.0)
    assert rms(music) > 300.0
    assert tone_level(music, HOST_TONE) < SILENT
    host_heard = heard(record, p_result, 17.0, 20.0)
    assert tone_level(host_heard, HOST_TONE) > HEARD


async def test_star_six_mutes_and_unmutes(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    record = tmp_path / "host-heard.wav"
    host = phone(
        server,
        *("--caller", "+15550003001", "--record", str(record)),
        *("--dtmf", "1111#", "--dtmf-at", "0.8", "--talk", "15"),
    )
    participant = phone(
        server,
        *("--caller", "+15550003002"),
        *("--play", str(write_tone(tmp_path / "p.wav", PARTICIPANT_TONE))),
        *("--keys", "0.8=2222#", "--keys", "7.0=*6", "--keys", "11.0=*6", "--talk", "16"),
    )
    h_result: dict[str, Any] = (await asyncio.gather(host, participant))[0]

    assert [(line["muted"], line["by"] != "api") for line in events(logs, "call.muted")] == [
        (True, True),
        (False, True),
    ]
    # The host's phone answered first; the participant's keys are ~0.1 s later on its clock.
    before = heard(record, h_result, 4.5, 6.5)
    muted = heard(record, h_result, 8.5, 10.5)
    after = heard(record, h_result, 12.5, 14.5)
    assert tone_level(before, PARTICIPANT_TONE) > HEARD
    assert tone_level(muted, PARTICIPANT_TONE) < SILENT
    assert tone_level(after, PARTICIPANT_TONE) > HEARD


async def test_locked_meeting_refuses_a_participant_and_admits_a_host(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    host = phone(
        server,
        *("--caller", "+15550004001"),
        *("--keys", "0.8=1111#", "--keys", "4.5=*7", "--talk", "16"),
    )
    late_participant = later(
        8.0, phone(server, "--caller", "+15550004002", "--dtmf", "2222#", "--wait-bye", "15")
    )
    late_host = later(
        8.0, phone(server, "--caller", "+15550004003", "--dtmf", "1111#", "--talk", "6")
    )
    h, p, h2 = await asyncio.gather(host, late_participant, late_host)

    assert h["hung_up_by"] == "phone" and h2["hung_up_by"] == "phone", (h, h2)
    assert p["hung_up_by"] == "server", p
    (locked,) = events(logs, "meeting.locked")
    assert locked["locked"] is True
    (refused,) = events(logs, "call.refused")
    assert refused["reason"] == "locked" and refused["role"] == "participant"
    joined = [line["caller"] for line in events(logs, "call.joined")]
    assert sorted(joined) == ["+15550004001", "+15550004003"]


async def test_host_leaving_under_stop_how_moderator_ends_the_meeting(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    setup = tmp_path / "room.toml"
    setup.write_text(
        "[[rooms]]\n"
        "meeting_number = 100003\n"
        'did_group = "demo"\n'
        'attributes = { conference_stop_how = "moderator", conference_stop_wait = 3 }\n'
        'keychain = [ { code = "7777", role = "host" }, { code = "8888", role = "participant" } ]\n'
    )
    assert server.store is not None
    await provision_file(server.store, setup)
    host = phone(server, "--caller", "+15550005001", "--dtmf", "7777#", "--talk", "5")
    participant = phone(server, "--caller", "+15550005002", "--dtmf", "8888#", "--wait-bye", "30")
    h, p = await asyncio.gather(host, participant)

    assert h["hung_up_by"] == "phone"
    assert p["hung_up_by"] == "server", p
    # Host gone at ~6 s; "the host has left" then 3 s of stop wait, then a goodbye.
    assert 8.5 < p["talked"] < 20.0, p
    (ended,) = events(logs, "meeting.ended")
    assert ended["meeting"] == "100003" and ended["reason"] == "host_left"
    left = {line["role"]: line["reason"] for line in events(logs, "call.ended")}
    assert left == {"host": "remote_bye", "participant": "local_bye"}
    reasons = {line.get("call_id"): line["reason"] for line in events(logs, "call.left")}
    assert sorted(reasons.values()) == ["hangup", "meeting_ended"]


async def test_repeated_failing_calls_lock_the_caller_out(
    make_server: MakeServer, tmp_path: Path, logs: Any
) -> None:
    server = await make_server()
    attacker = "+15550006666"
    wrong = ("--keys", "0.8=1234#", "--keys", "2.6=1235#", "--keys", "4.4=1236#")
    guesses = [phone(server, "--caller", attacker, *wrong, "--wait-bye", "30") for _ in range(4)]
    results = await asyncio.gather(*guesses)
    assert all(r["hung_up_by"] == "server" for r in results), results
    assert len(events(logs, "ivr.code_rejected")) == 12

    (lockout,) = events(logs, "security.lockout_started")
    assert lockout["caller"] == attacker and lockout["cooling_off"] == 900.0
    assert all(not line.startswith("security.did") for line in _names(logs))

    # A fifth call, with the right code this time, is refused before the code is asked for.
    refused = await phone(server, "--caller", attacker, "--dtmf", "1111#", "--wait-bye", "20")
    assert refused["hung_up_by"] == "server"
    (call_refused,) = events(logs, "security.call_refused")
    assert call_refused["scope"] == "caller"
    assert not events(logs, "call.joined")
    # Another caller on the same (trusted, loopback) address is not affected.
    other = await phone(server, "--caller", "+15550006667", "--dtmf", "1111#", "--talk", "2")
    assert other["hung_up_by"] == "phone"
    assert len(events(logs, "call.joined")) == 1


def _names(logs: list[dict[str, Any]]) -> list[str]:
    return [str(line.get("event")) for line in logs]
