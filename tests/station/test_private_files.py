"""Files with children's names and results are private to the station's user, whatever the
umask: the CSV export and the printable sheet (the data dir itself is tested in test_config)."""
import os
import stat

from tests.station.servers import close_pe_sitting


def test_exports_and_sheets_are_private_to_their_user(station, data_dir, tmp_path):
    old = os.umask(0o022)  # the usual umask: files world-readable unless made private
    try:
        sitting = close_pe_sitting(station, tmp_path)["id"]
        out = tmp_path / "exports"
        out.mkdir()
        station("pe", "export", "--session", sitting, "--csv", str(out / "成绩.csv"), check=True)
        station("session", "sheet", sitting, "--html", str(out / "记录单.html"), check=True)
        for name in ("成绩.csv", "记录单.html"):
            assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600, name
        for path in (data_dir / "bundles" / sitting).rglob("*"):
            assert not stat.S_IMODE(path.stat().st_mode) & 0o077 or path.is_dir(), path
    finally:
        os.umask(old)
