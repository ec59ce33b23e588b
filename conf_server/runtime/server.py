"""The server process: store, media engine, SIP endpoint, listeners and calls in one loop.

Start-up order matters: the store first (a bad database URL fails before any port is taken),
then the media engine, then the SIP sockets (port 0 picks a free port; the endpoint is told the
real one for Via and Contact), and the call layer last. Any problem an operator can fix is a
``StartupError`` with one line naming it; ``conf-server run`` prints it and exits 2.

Shutdown sends BYE to every answered call and gives the BYEs a moment to leave before the
sockets close, so phones are not left with a silent call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from sqlalchemy.exc import SQLAlchemyError

from conf_server.api import ApiHandle, create_app, start_api
from conf_server.api import ApiSettings as ApiAppSettings
from conf_server.api.app import listen_socket
from conf_server.config import Settings, parse_hostport, parse_port_range
from conf_server.domain.lockout import Lockout, LockoutPolicy
from conf_server.logs import LogFormat, configure, get_logger
from conf_server.prompts import PromptError, load_language, read_prompt
from conf_server.runtime.calls import CallManager, CallSettings
from conf_server.runtime.conference import Conference
from conf_server.runtime.conference_media import PromptLibrary
from conf_server.runtime.engine import MediaEngine
from conf_server.runtime.heap import FullCollector, settle_heap, switch_interval
from conf_server.runtime.ports import PortAllocator
from conf_server.runtime.sip_transport import SipTransport
from conf_server.store import Store
from conf_server.store.errors import ProvisionError, StoreError
from conf_server.store.provision import provision_file
from sip.endpoint import EndpointConfig, SipEndpoint
from sip.ids import SecretIds
from sip.limits import Limits
from sip.protection import Guard, GuardConfig

log = get_logger("server")

DEMO_FILE = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
PROMPTS_DIR = Path(__file__).resolve().parents[2] / "config" / "prompts"
# Addresses meaning "every interface": never usable as our address in Contact or SDP.
# The demo's API administrator (only with --demo and no administrator configured); the API
# listens on loopback unless --api says otherwise. `make run` prints these.
DEMO_ADMIN = ("admin", "conf-demo")
WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104


class StartupError(Exception):
    """The server cannot start for a reason the operator can fix."""


class _BindError(OSError):
    """A SIP listener could not bind; the message names transport and address."""


def local_address(listen_host: str, public_host: str) -> str:
    """The address to put in Contact/Via and SDP: configured, bound, or the primary one."""
    if public_host:
        return public_host
    if listen_host not in WILDCARDS:
        return listen_host
    family = socket.AF_INET6 if listen_host == "::" else socket.AF_INET
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((probe, 9))  # UDP connect sends nothing; it only picks a route
            return str(sock.getsockname()[0])
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"


@dataclass
class Server:
    """One conference server; ``start`` then ``stop``."""

    settings: Settings
    sip_addresses: list[tuple[str, tuple[str, int]]] = field(default_factory=list)
    store: Store | None = None
    engine: MediaEngine | None = None
    endpoint: SipEndpoint | None = None
    transport: SipTransport | None = None
    calls: CallManager | None = None
    conference: Conference | None = None
    api: ApiHandle | None = None
    api_address: tuple[str, int] | None = None
    demo_admin: tuple[str, str] | None = None
    demo_lines: list[str] = field(default_factory=list)
    started: bool = False

    async def start(self, *, demo: bool = False) -> None:
        """Bring everything up; raise StartupError with one readable line on failure."""
        store = await self._open_store(demo)
        sip = self.settings.sip
        host, port = parse_hostport(sip.listen, 5060)
        media_host = local_address(host, sip.public_host)
        low, high = parse_port_range(self.settings.rtp.ports)
        rtp_bind = host if host not in WILDCARDS else ("::" if ":" in media_host else "0.0.0.0")  # noqa: S104
        # SIP and API sockets before the engine: a taken port fails first, with one line
        transport, port = await self._listen(host, port)
        api_sock = self._bind_api()
        self.engine = MediaEngine(
            ports=PortAllocator(rtp_bind, low, high),
            jitter_min_ms=self.settings.rtp.jitter_min_ms,
            jitter_max_ms=self.settings.rtp.jitter_max_ms,
            strict_source=self.settings.rtp.strict_source,
            strict_learn_packets=self.settings.rtp.strict_learn_packets,
            realtime_priority=self.settings.rtp.realtime_priority,
        )
        await self.engine.start()
        sec = self.settings.security
        lockout = Lockout(
            LockoutPolicy(
                threshold=sec.failures,
                window=sec.window,
                cooling_off=sec.cooling_off,
                did_threshold=sec.did_failures,
                trusted=sec.trusted,
                shared_caller_calls=sec.shared_caller_calls,
                shared_caller_memory=sec.shared_caller_memory,
                shared_callers=sec.shared_callers,
            )
        )
        self.conference = Conference(store, self.engine, _load_audio(self.engine), lockout=lockout)
        self.endpoint = SipEndpoint(
            EndpointConfig(
                host=media_host,
                port=port,
                user_agent=sip.user_agent,
                t1=sip.t1,
                t2=sip.t2,
                t4=sip.t4,
                max_transactions=sip.max_transactions,
                max_dialogs=sip.max_dialogs,
                force_rport=sip.force_rport,
                limits=Limits(max_message=sip.max_message_size),
            ),
            SecretIds(),
            Guard(_guard_config(self.settings)),
        )
        loop = asyncio.get_running_loop()
        self.calls = CallManager(
            self.endpoint,
            self.engine,
            store,
            CallSettings(sip.default_region, sip.ring_time, media_host),
            flush=transport.flush,
            clock=loop.time,
            hooks=self.conference,
        )
        app = create_app(store, self.conference, self._api_settings(demo))
        self.api = await start_api(app, sock=api_sock)
        transport.endpoint = self.endpoint
        self.sip_addresses = list(transport.addresses)
        self.started = True
        log.info(
            "server.started",
            sip=[f"{t.lower()}:{a[0]}:{a[1]}" for t, a in self.sip_addresses],
            media_host=media_host,
            rtp_ports=self.settings.rtp.ports,
            api=_hostport(*self.api_address) if self.api_address else None,
        )

    def _bind_api(self) -> socket.socket:
        host, port = parse_hostport(self.settings.api.listen, 8080)
        try:
            sock = listen_socket(host, port)
        except OSError as exc:
            raise StartupError(
                f"cannot listen for the API on {_hostport(host, port)}: {exc.strerror or exc}"
            ) from None
        self.api_address = (host, int(sock.getsockname()[1]))
        return sock

    def _api_settings(self, demo: bool) -> ApiAppSettings:
        api = self.settings.api
        login, password = api.admin_login, api.admin_password
        env_admin = os.environ.get("CONF_SERVER_ADMIN_LOGIN")
        if demo and not (login and password) and not env_admin:
            login, password = DEMO_ADMIN
            self.demo_admin = DEMO_ADMIN
        return ApiAppSettings(
            admin_login=login,
            admin_password=password,
            data_dir=Path(api.data_dir),
            webhook_secret=api.webhook_secret,
            fallback_url=api.fallback_url,
        )

    async def _open_store(self, demo: bool) -> Store:
        url = self.settings.db.url
        try:
            self.store = store = await Store.open(url)
        except (StoreError, SQLAlchemyError, OSError, ValueError) as exc:
            raise StartupError(f"cannot open database {url}: {exc}") from None
        if demo:
            try:
                report = await provision_file(store, DEMO_FILE)
            except ProvisionError as exc:
                raise StartupError(str(exc)) from None
            self.demo_lines = report.lines()
        return store

    async def _listen(self, host: str, port: int) -> tuple[SipTransport, int]:
        """Bind every SIP listener on one port; with port 0, retry on a fresh free port.

        UDP picks the port and TCP must take the same number, which another program may hold
        as an ephemeral TCP port: a few fresh attempts make ``--sip HOST:0`` dependable.
        """
        attempts = 5 if port == 0 else 1
        for attempt in range(attempts):
            self.transport = transport = SipTransport(
                self._on_activity,
                max_tcp_connections=self.settings.sip.max_tcp_connections,
                max_message=self.settings.sip.max_message_size,
            )
            try:
                return transport, await self._bind_all(transport, host, port)
            except _BindError as exc:
                await transport.close()
                if attempt + 1 == attempts:
                    raise StartupError(str(exc)) from None
        raise AssertionError("unreachable: the last attempt raises")

    async def _bind_all(self, transport: SipTransport, host: str, port: int) -> int:
        sip = self.settings.sip
        hosts = [host] + (["::"] if sip.ipv6 and host in WILDCARDS else [])
        for h in hosts:
            for kind in sip.transports:
                listen = transport.listen_udp if kind == "udp" else transport.listen_tcp
                try:
                    port = (await listen(h, port))[1]
                except OSError as exc:
                    where = f"[{h}]:{port}" if ":" in h else f"{h}:{port}"
                    raise _BindError(
                        f"cannot listen for SIP on {kind} {where}: {exc.strerror or exc}"
                    ) from None
        return port

    def _on_activity(self) -> None:
        if self.calls is not None:
            self.calls.pump()

    async def stop(self) -> None:
        """Stop the API, hang up every call, then close sockets, media and the store."""
        if self.api is not None:
            await self.api.stop()
        if self.calls is not None:
            self.calls.hangup_all()
            for _ in range(20):
                if not self.calls.calls:
                    break
                await asyncio.sleep(0.05)
        if self.transport is not None:
            await self.transport.close()
        if self.engine is not None:
            await self.engine.stop()
        if self.store is not None:
            await self.store.close()
        if self.started:
            log.info("server.stopped")


def _load_audio(engine: MediaEngine) -> PromptLibrary:
    """The English prompts and the hold music; a bad file stops the start with its name."""
    try:
        prompts = load_language(PROMPTS_DIR, "en").prompts
        engine.set_music_on_hold(read_prompt(PROMPTS_DIR / "moh.wav"))
    except PromptError as exc:
        raise StartupError(str(exc)) from None
    return PromptLibrary(prompts)


def _guard_config(settings: Settings) -> GuardConfig:
    g = settings.sip.guard
    return GuardConfig(
        window=g.window, limit=g.limit, ban=g.ban, trusted=g.trusted, max_sources=g.max_sources
    )


def _hostport(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in WILDCARDS else host
    return f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"


def banner(server: Server) -> str:
    """What ``conf-server run`` prints for a person once the server is up."""
    lines = ["conf-server is running."]
    for transport, (host, port) in server.sip_addresses:
        shown = f"[{host}]" if ":" in host else host
        lines.append(f"  SIP {transport:<3} {shown}:{port}")
    if server.demo_lines:
        udp = next((a for t, a in server.sip_addresses if t == "UDP"), ("127.0.0.1", 5060))
        target = "127.0.0.1" if udp[0] in WILDCARDS else udp[0]
        lines += [
            "Demo provisioned:",
            *(f"  {line}" for line in server.demo_lines),
            f"  Dial sip:+12125550100@{target}:{udp[1]} from any SIP phone.",
            "  Room 100001: access code 1111 host, 2222 participant, 3333 listener (then #).",
            "  Room 100002: 4444 host, 5555 participant; PIN 2468 (organizer) or 1357;",
            "               participants wait with music until the host joins.",
        ]
    if server.api_address is not None:
        url = f"http://{_hostport(*server.api_address)}/conference/v1"
        lines.append(f"  REST API {url}  (docs: {url}/docs)")
    if server.demo_admin is not None:
        lines.append(f"  API login (demo): {server.demo_admin[0]} / {server.demo_admin[1]}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines) + "\n"


async def serve(settings: Settings, *, demo: bool = False) -> None:
    """Run until SIGINT/SIGTERM."""
    switch_interval()
    configure(cast(LogFormat, settings.log.format), settings.log.level)  # validated by config
    server = Server(settings)
    try:
        await server.start(demo=demo)
    except StartupError:
        await server.stop()
        raise
    settle_heap()
    collector = FullCollector()
    collector.start()
    sys.stdout.write(banner(server))
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await collector.stop()
    await server.stop()
