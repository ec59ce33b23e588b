"""Configuration: defaults, TOML, overrides, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf_server.config import ConfigError, load, parse_hostport, parse_port_range

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_and_documented_file_matches_them(tmp_path: Path) -> None:
    defaults = load()
    from_file = load(REPO / "config" / "default.toml")
    assert from_file == defaults
    assert defaults.sip.listen == "0.0.0.0:5060"
    assert defaults.api.listen == "127.0.0.1:8080"
    assert defaults.sip.guard.limit == 16


def test_file_values_and_overrides_apply_in_order(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sip]\nlisten = "127.0.0.1:5080"\nt1 = 1\n[sip.guard]\nban = 60\n')
    settings = load(cfg, {"sip.listen": "127.0.0.1:5090"})
    assert settings.sip.listen == "127.0.0.1:5090"
    assert settings.sip.t1 == 1.0
    assert isinstance(settings.sip.t1, float)
    assert settings.sip.guard.ban == 60.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sip]\nlisen = 1\n", "c.toml: sip.lisen: unknown setting"),
        ("[sip]\nt1 = 'fast'\n", "c.toml: sip.t1: expected float"),
        ("[sip]\nforce_rport = 1\n", "c.toml: sip.force_rport: expected bool"),
        ("[rtp]\nports = '20000'\n", "c.toml: rtp.ports: bad port range"),
        ("[rtp]\nrealtime_priority = 100\n", "c.toml: rtp.realtime_priority: 100 is not 0"),
        ("[sip]\nlisten = '1.2.3.4:99999'\n", "c.toml: sip.listen: bad port 99999"),
        ("[sip]\ntransports = ['udp', 'sctp']\n", "c.toml: sip.transports: 'sctp' is not one"),
        ("[sip.guard]\ntrusted = '127.0.0.1'\n", "c.toml: sip.guard.trusted: expected a list"),
        ("sip = 3\n", "c.toml: sip: expected a table"),
        ("[log]\nformat = 'xml'\n", "c.toml: log.format: 'xml' is not one"),
        ("[sip\n", "c.toml: not valid TOML"),
        ("[security]\nfailures = 0\n", "c.toml: security: failures and did_failures"),
        ("[security]\ntrusted = ['10.0.0.0/33']\n", "c.toml: security: "),
        ("[security]\nshared_caller_calls = -1\n", "c.toml: security: shared_caller_calls"),
        ("[security]\nshared_caller_memory = 0\n", "c.toml: security: times must be positive"),
        ("[security]\nshared_callers = '+1555'\n", "c.toml: security.shared_callers: expected a"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load(cfg)
    assert message in str(exc.value)
    assert str(cfg) in str(exc.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:5060", ("0.0.0.0", 5060)),
        ("127.0.0.1", ("127.0.0.1", 5060)),
        (":5070", ("0.0.0.0", 5070)),
        ("[::1]:5062", ("::1", 5062)),
        ("::1", ("::1", 5060)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, 5060) == expected


@pytest.mark.parametrize("text", ["[::1", "a b:5060", "host:x", "[::1]x"])
def test_bad_hostport(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hostport(text, 5060)


def test_port_range() -> None:
    assert parse_port_range("20000-29999") == (20000, 29999)
    for bad in ("30000-20000", "80-90", "20000-20001", "x-y"):
        with pytest.raises(ValueError):
            parse_port_range(bad)
