"""A real SIP phone for integration tests: pjsua2 (PJSIP), driven from the command line.

Runs in its own process (pjsua2 has its own threads and timers; keeping it out of the
server's event loop avoids cross-thread surprises) and prints one JSON line with what happened.

    python tests/integration/phone.py --target sip:+12125550100@127.0.0.1:5060 \
        --talk 2 [--dtmf 1111# --dtmf-at 1.0] [--play in.wav] [--record out.wav] [--wait-bye 10]
        [--keys 6.5=*6 --keys 9=*6] [--dtmf-method rfc2833|info]

``--keys AT=KEYS`` (repeatable) sends RFC 2833 keys ``AT`` seconds after the call was answered,
during the talk or the wait for BYE. The JSON line gives ``record_offset`` (seconds from the
answer to the first recorded sample) and ``keys_sent`` ([seconds after the answer, keys]) so a
test can line a recording up with what the phone did.

pjsua2 pitfalls handled here (DESIGN.md §5): the null audio device; each call's audio is
connected to a conference-bridge port (a player, or the null capture port) or the stream never
runs and no DTMF is sent; every Call object is deleted before ``libDestroy()``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import pjsua2 as pj


class Phone(pj.Call):  # type: ignore[misc]
    """One call with state and media hooks."""

    def __init__(self, account: Any, args: argparse.Namespace) -> None:
        super().__init__(account)
        self.args = args
        self.state = "null"
        self.status = 0
        self.reason = ""
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.player: Any = None
        self.recorder: Any = None
        self.record_started: float | None = None
        self.media_active = False

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.state = info.stateText.lower()
        self.status = int(info.lastStatusCode)
        self.reason = str(info.lastReason)
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = time.monotonic()

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(i)
            self._connect(audio)
            self.media_active = True

    def _connect(self, audio: Any) -> None:
        if self.args.play and self.player is None:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(self.args.play)
        source = self.player or pj.Endpoint.instance().audDevManager().getCaptureDevMedia()
        source.startTransmit(audio)
        if self.args.record and self.recorder is None:
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(self.args.record)
            audio.startTransmit(self.recorder)
            self.record_started = time.monotonic()


def _endpoint(args: argparse.Namespace) -> Any:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "pjsua2-test-phone"
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    kind = pj.PJSIP_TRANSPORT_TCP if args.tcp else pj.PJSIP_TRANSPORT_UDP
    ep.transportCreate(kind, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 0)
    ep.codecSetPriority(args.codec + "/8000/1", 255)
    return ep


def _pump(ep: Any, seconds: float, until: Any = None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ep.libHandleEvents(10)
        if until is not None and until():
            return


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Place the call, talk, send digits, hang up (or wait for the server's BYE)."""
    ep = _endpoint(args)
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.caller}@127.0.0.1"
    acfg.sipConfig.transportId = 0
    account = pj.Account()
    account.create(acfg)
    calls = [Phone(account, args)]  # a list, so the Call can be deleted before libDestroy
    try:
        return _drive(ep, calls[0], args)
    finally:
        calls[0].recorder = None
        calls[0].player = None
        calls.clear()
        account.shutdown()
        ep.libDestroy()


def _drive(ep: Any, call: Phone, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    call.makeCall(args.target, pj.CallOpParam(True))
    _pump(ep, args.answer_timeout, lambda: call.confirmed_at or call.disconnected_at)
    result: dict[str, Any] = {"answered": call.confirmed_at is not None}
    result["setup_ms"] = round(((call.confirmed_at or time.monotonic()) - started) * 1000, 1)
    if call.confirmed_at is not None:
        _converse(ep, call, args)
    talked = 0.0
    if call.confirmed_at is not None:
        talked = round((call.disconnected_at or time.monotonic()) - call.confirmed_at, 2)
    record_offset = None
    if call.record_started is not None and call.confirmed_at is not None:
        record_offset = round(call.record_started - call.confirmed_at, 3)
    result.update(
        status=call.status,
        reason=call.reason,
        media_active=call.media_active,
        hung_up_by=_who_hung_up(call, args),
        talked=talked,
        record_offset=record_offset,
        keys_sent=args.keys_sent,
    )
    return result


def _who_hung_up(call: Phone, args: argparse.Namespace) -> str:
    if args.hangup_sent:
        return "phone"
    return "server" if call.disconnected_at is not None else "nobody"


def _dial(call: Phone, keys: str, method: str) -> None:
    """Send ``keys`` as RFC 2833 events in the media, or as SIP INFO requests."""
    if method == "rfc2833":
        call.dialDtmf(keys)
        return
    prm = pj.CallSendDtmfParam()
    prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
    prm.digits = keys
    prm.duration = 160
    call.sendDtmf(prm)


def _send_due_keys(call: Phone, args: argparse.Namespace) -> None:
    if call.confirmed_at is None or call.disconnected_at is not None:
        return
    elapsed = time.monotonic() - call.confirmed_at
    while args.keys and args.keys[0][0] <= elapsed:
        _, keys = args.keys.pop(0)
        _dial(call, keys, args.dtmf_method)
        args.keys_sent.append([round(elapsed, 3), keys])


def _pump_keys(ep: Any, call: Phone, args: argparse.Namespace, seconds: float) -> None:
    """Pump events for ``seconds`` (or until BYE), sending scheduled keys when due."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and call.disconnected_at is None:
        _send_due_keys(call, args)
        ep.libHandleEvents(10)


def _converse(ep: Any, call: Phone, args: argparse.Namespace) -> None:
    if args.dtmf:
        _pump_keys(ep, call, args, args.dtmf_at)
        if call.disconnected_at is None:
            _dial(call, args.dtmf, args.dtmf_method)
            elapsed = time.monotonic() - (call.confirmed_at or 0.0)
            args.keys_sent.append([round(elapsed, 3), args.dtmf])
    if args.wait_bye:
        _pump_keys(ep, call, args, args.wait_bye)
        return
    _pump_keys(ep, call, args, args.talk)
    if call.disconnected_at is None:
        args.hangup_sent = True
        call.hangup(pj.CallOpParam(True))
        _pump(ep, 3.0, lambda: call.disconnected_at)


def _schedule(item: str) -> tuple[float, str]:
    at, sep, keys = item.partition("=")
    if not sep or not keys:
        raise SystemExit(f"--keys {item!r}: expected AT=KEYS, e.g. 6.5=*6")
    return float(at), keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--caller", default="+15557654321")
    parser.add_argument("--codec", default="PCMU", choices=("PCMU", "PCMA"))
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--talk", type=float, default=1.0, help="seconds before hanging up")
    parser.add_argument("--wait-bye", type=float, default=0.0, help="wait this long for BYE")
    parser.add_argument("--answer-timeout", type=float, default=10.0)
    parser.add_argument("--dtmf", default="")
    parser.add_argument("--dtmf-at", type=float, default=0.5)
    parser.add_argument("--dtmf-method", choices=("rfc2833", "info"), default="rfc2833")
    parser.add_argument("--play", default="")
    parser.add_argument("--record", default="")
    parser.add_argument(
        "--keys",
        action="append",
        default=[],
        metavar="AT=KEYS",
        help="send KEYS (RFC 2833) AT seconds after the answer; repeatable",
    )
    args = parser.parse_args()
    args.hangup_sent = False
    args.keys = sorted(_schedule(item) for item in args.keys)
    args.keys_sent = []
    sys.stdout.write(json.dumps(run(args)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
