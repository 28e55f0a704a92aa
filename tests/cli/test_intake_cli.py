import json
from pathlib import Path

from typer.testing import CliRunner

from prefetch.cli import app

runner = CliRunner()
BSN = "123456782"
KEYS = ["id", "start", "end", "status", "clinic", "agenda", "type", "patient_id", "bsn"]


def test_intake_read_json_shape_and_row_errors(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_text(
        "Afspraak_ID;Patientnummer;BSN;BSN geverifieerd;Poli;Start;Eind;Type;Status\n"
        f"A1;P1;{BSN};ja;card;2026-11-24 09:30;2026-11-24 09:45;NP;\n"
        f"A2;{BSN};CARD;;;;;;\n"
        "A3;P3;;nee;CARD;2026-11-24T10:00+01:00;;CON;afgezegd\n",
        encoding="cp1252",
    )
    result = runner.invoke(app, ["intake", "read", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == ["appointments", "errors"]
    a1, a3 = data["appointments"]
    assert list(a1) == [*KEYS, "bsn_verified"]
    assert a1["start"] == "2026-11-24T09:30:00+01:00" and a1["end"] == "2026-11-24T09:45:00+01:00"
    assert a1["bsn"] == BSN and a1["bsn_verified"] is True and a1["clinic"] == "CARD"
    assert a3["status"] == "cancelled" and a3["end"] is None and a3["bsn"] is None
    (error,) = data["errors"]
    assert error == {"file": str(path), "where": "row 3", "message": error["message"]}
    assert BSN not in error["message"]


def test_intake_read_exit_2_when_unreadable(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json", encoding="utf-8")
    result = runner.invoke(app, ["intake", "read", str(bad), "--json"])
    assert result.exit_code == 2
    assert f"{bad}: not valid JSON" in result.stderr
    missing = runner.invoke(app, ["intake", "read", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "file not found" in missing.stderr
    unknown = runner.invoke(app, ["intake", "read", str(tmp_path / "day.xlsx")])
    assert unknown.exit_code == 2 and "--format" in unknown.stderr


def test_intake_read_hl7v2_text(tmp_path: Path) -> None:
    path = tmp_path / "feed.hl7"
    path.write_bytes(
        b"MSH|^~\\&|EPD|H|P|H|20261123120000||SIU^S12|M1|P|2.5\n"
        b"SCH||F1||||||NP|||^^^202611240930\nPID|1||P1^^^H^PI\nAIL|1||CARD\n"
    )
    result = runner.invoke(app, ["intake", "read", str(path)])
    assert result.exit_code == 0, result.output
    assert "F1  2026-11-24T09:30:00+01:00  CARD/-  NP  booked  patient P1" in result.stdout
