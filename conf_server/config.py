"""Server configuration: defaults, a TOML file, and command-line overrides, in that order.

Every setting lives in a frozen dataclass section below; the TOML file uses the same names
(``[sip] listen = "0.0.0.0:5060"``). Loading is strict: an unknown key or a value of the wrong
type is a ``ConfigError`` whose message names the file and the dotted key, so an operator can
fix it without reading code. ``config/default.toml`` documents every key with its default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from sip.limits import Limits


class ConfigError(ValueError):
    """A configuration problem; the message names the file and key."""


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``:PORT`` → (host, port); ValueError if bad."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    elif text.count(":") > 1:
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    port = int(port_text) if port_text else default_port
    if not 0 <= port <= 65535:
        raise ValueError(f"bad port {port} in {text!r}: must be 0..65535")
    if host:
        _check_host(host)
    # An empty host means every interface, as the issue specifies for --sip.
    return host or "0.0.0.0", port  # noqa: S104


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"bad host {host!r}") from None


def parse_port_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH`` → (low, high) with an even low port (RTP on even, RTCP on odd, RFC 3550 §11)."""
    low_text, sep, high_text = text.partition("-")
    if not sep:
        raise ValueError(f"bad port range {text!r}: expected LOW-HIGH")
    low, high = int(low_text), int(high_text)
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"bad port range {text!r}: need 1024 <= LOW < HIGH <= 65535")
    if high - low < 3:
        raise ValueError(f"port range {text!r} holds no RTP/RTCP pair")
    return low, high


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Per-source flood protection (pike defaults: 16 requests in 2 s → 300 s ban)."""

    window: float = 2.0
    limit: int = 16
    ban: float = 300.0
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_sources: int = 100_000


@dataclass(frozen=True, slots=True)
class SipSettings:
    """SIP listeners, timers (RFC 3261 §17) and routing."""

    listen: str = "0.0.0.0:5060"
    transports: tuple[str, ...] = ("udp", "tcp")
    ipv6: bool = False
    public_host: str = ""
    user_agent: str = "conf-server"
    default_region: str = "US"
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    force_rport: bool = True
    ring_time: float = 0.0
    max_transactions: int = 20_000
    max_dialogs: int = 5_000
    max_tcp_connections: int = 1_000
    max_message_size: int = 16_384
    guard: GuardSettings = field(default_factory=GuardSettings)


@dataclass(frozen=True, slots=True)
class RtpSettings:
    """Media ports and the 20 ms engine."""

    ports: str = "20000-29999"
    strict_source: bool = True
    strict_learn_packets: int = 4
    jitter_min_ms: int = 20
    jitter_max_ms: int = 200
    realtime_priority: int = 10  # SCHED_FIFO priority of the tick thread; 0: normal scheduling


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Access-code guessing protection across calls (per source address and caller number).

    The ``shared_*`` keys say when a caller id from a ``trusted`` source is a shared one (a PBX
    main number) and so no lockout key: see ``conf_server.domain.lockout``.
    """

    failures: int = 10
    window: float = 600.0
    cooling_off: float = 900.0
    did_failures: int = 50
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    shared_caller_calls: int = 2  # calls up at once (one of them let in); 0: never detected
    shared_caller_memory: float = 86_400.0
    shared_callers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The REST API: listener, first administrator, files, event callbacks."""

    listen: str = "127.0.0.1:8080"
    admin_login: str = ""
    admin_password: str = field(default="", repr=False)
    data_dir: str = "var"
    webhook_secret: str = field(default="", repr=False)
    fallback_url: str = ""


@dataclass(frozen=True, slots=True)
class DbSettings:
    """Where the store lives."""

    url: str = "sqlite+aiosqlite:///var/conf-server.db"


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Structured logs: ``json``, ``console`` or ``auto`` (console on a terminal)."""

    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration."""

    sip: SipSettings = field(default_factory=SipSettings)
    rtp: RtpSettings = field(default_factory=RtpSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    db: DbSettings = field(default_factory=DbSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def validate(self, source: str = "settings") -> Settings:
        """Check cross-field rules; raise ConfigError naming ``source`` and the key."""
        checks: list[tuple[str, Any]] = [
            ("sip.listen", lambda: parse_hostport(self.sip.listen, 5060)),
            ("api.listen", lambda: parse_hostport(self.api.listen, 8080)),
            ("rtp.ports", lambda: parse_port_range(self.rtp.ports)),
            ("sip.transports", self._check_transports),
            ("log.format", lambda: _one_of(self.log.format, ("auto", "json", "console"))),
            ("log.level", lambda: _one_of(self.log.level, ("debug", "info", "warning", "error"))),
            ("sip.t1", lambda: _positive(self.sip.t1, self.sip.t2, self.sip.t4)),
            ("sip.max_message_size", lambda: Limits(max_message=self.sip.max_message_size)),
            ("rtp.realtime_priority", lambda: _priority(self.rtp.realtime_priority)),
            ("security", self._check_security),
        ]
        for key, check in checks:
            try:
                check()
            except ValueError as exc:
                raise ConfigError(f"{source}: {key}: {exc}") from None
        return self

    def _check_security(self) -> None:
        sec = self.security
        if sec.failures < 1 or sec.did_failures < 1:
            raise ValueError("failures and did_failures must be at least 1")
        _positive(sec.window, sec.cooling_off, sec.shared_caller_memory)
        if sec.shared_caller_calls < 0:
            raise ValueError("shared_caller_calls must be 0 (off) or more")
        for net in sec.trusted:
            ipaddress.ip_network(net, strict=False)

    def _check_transports(self) -> None:
        if not self.sip.transports:
            raise ValueError("at least one of udp, tcp")
        for t in self.sip.transports:
            _one_of(t, ("udp", "tcp"))


def _one_of(value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")


def _priority(value: int) -> None:
    if not 0 <= value <= 99:
        raise ValueError(f"{value} is not 0 (normal scheduling) or a SCHED_FIFO priority 1..99")


def _positive(*values: float) -> None:
    if any(v <= 0 for v in values):
        raise ValueError("times must be positive")


T = TypeVar("T")


def load(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then the TOML file, then ``overrides`` (dotted keys, e.g. ``sip.listen``)."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    return _build(Settings, data, source, "").validate(source)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _build(cls: type[T], data: Mapping[str, Any], source: str, prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or '(top)'}: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: {prefix}{unknown[0]}: unknown setting")
    values = {
        name: _convert(hints[name], raw, source, f"{prefix}{name}") for name, raw in data.items()
    }
    return cls(**values)


def _convert(hint: Any, raw: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, raw, source, key + ".")
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(raw, list | tuple):
            raise ConfigError(f"{source}: {key}: expected a list")
        (item,) = get_args(hint)[:1]
        return tuple(_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(raw))
    if origin is types.UnionType:
        raise ConfigError(f"{source}: {key}: unsupported setting type")
    return _scalar(hint, raw, source, key)


def _scalar(hint: Any, raw: Any, source: str, key: str) -> Any:
    ok = {
        bool: isinstance(raw, bool),
        int: isinstance(raw, int) and not isinstance(raw, bool),
        float: isinstance(raw, int | float) and not isinstance(raw, bool),
        str: isinstance(raw, str),
    }.get(hint, False)
    if not ok:
        raise ConfigError(f"{source}: {key}: expected {hint.__name__}, got {raw!r}")
    return float(raw) if hint is float else raw
