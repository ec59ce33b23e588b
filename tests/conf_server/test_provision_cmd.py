"""``conf-server provision``: the report lines, idempotence, one error line and exit 2."""

from __future__ import annotations

import io
from pathlib import Path

from conf_server.cli import build_parser
from conf_server.provision_cmd import run

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"


def _provision(*argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(["provision", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_demo_file_is_created_then_unchanged(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/p.db"
    code, out, err = _provision(str(DEMO), "--db", db)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{DEMO}:",
        "  subscribers: 0 created, 0 updated, 0 unchanged",
        "  did_groups: 1 created, 0 updated, 0 unchanged",
        "  dids: 1 created, 0 updated, 0 unchanged",
        "  rooms: 2 created, 0 updated, 0 unchanged",
    ]
    code, out, _ = _provision(str(DEMO), "--db", db)
    assert code == 0
    assert "  rooms: 0 created, 0 updated, 2 unchanged" in out.splitlines()


def test_bad_file_names_file_key_and_reason_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rooms]]\nmeeting_number = "x"\ndid_group = "demo"\n')
    code, out, err = _provision(str(bad), "--db", f"sqlite+aiosqlite:///{tmp_path}/p.db")
    assert (code, out) == (2, "")
    assert err == f"conf-server: {bad}: rooms[0].meeting_number: must be an integer, not str\n"


def test_missing_file_and_bad_database_are_one_line(tmp_path: Path) -> None:
    code, _, err = _provision(
        str(tmp_path / "none.toml"), "--db", f"sqlite+aiosqlite:///{tmp_path}/p.db"
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"conf-server: {tmp_path / 'none.toml'}: (top level): cannot read")
    code, _, err = _provision(str(DEMO), "--db", "nosuchdriver://x")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("conf-server: cannot open database nosuchdriver://x")
