"""The command line: help that explains each flag, and one-line failures with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf_server.cli import build_parser, main, settings_from_args


def test_help_explains_every_run_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--sip", "--config", "--log-format", "--demo", "--db", "--rtp-ports", "--api"):
        assert flag in text
    assert "0.0.0.0:5060" in text


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "run" in capsys.readouterr().out


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sip]\nlisten = "127.0.0.1:5070"\n[rtp]\nports = "40000-40100"\n')
    args = build_parser().parse_args(["run", "--config", str(cfg), "--sip", "127.0.0.1:5080"])
    settings = settings_from_args(args)
    assert settings.sip.listen == "127.0.0.1:5080"
    assert settings.rtp.ports == "40000-40100"


def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sip]\nt1 = 'soon'\n")
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{cfg}: sip.t1: expected float" in err


def test_bad_flag_value_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--rtp-ports", "9-5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conf-server: ") and "rtp.ports" in err
