"""What the collector keeps is private to its user (0600 files, 0700 folders), whatever the umask
it was started under, and names that could pass for others are refused."""
from __future__ import annotations

import os
import stat

import pytest


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_stored_files_and_their_folders_are_private(collector_factory, tmp_path):
    old = os.umask(0o022)  # the collector process inherits the usual umask
    try:
        server = collector_factory(data_dir=tmp_path / "c")
    finally:
        os.umask(old)
    from .conftest import Tus

    tus = Tus(server.url, server.tokens["S01"], "SIT-private")
    data = os.urandom(5000)
    location = tus.create(data, path="recordings/0001-1.flac").headers["Location"]
    tus.patch(location, 0, data[:1000], checksum=data[:1000])
    assert mode(server.spool_file(location)) == 0o600  # half-sent data too
    tus.patch(location, 1000, data[1000:], checksum=data[1000:])
    tus.http.close()
    stored = server.data_dir / "files" / "S01" / "SIT-private" / "recordings" / "0001-1.flac"
    assert stored.read_bytes() == data
    assert mode(stored) == 0o600
    for folder in (server.data_dir, server.data_dir / "incoming", server.data_dir / "files",
                   server.data_dir / "files" / "S01", stored.parent.parent, stored.parent):
        assert mode(folder) == 0o700, folder


@pytest.mark.parametrize("path", ["results\u202ecsv.exe", "re\u200bsults.csv", "录音/学生.flac", ".profile",
                                  "a b.csv", "ｒesults.csv"])
def test_names_that_could_pass_for_others_are_refused(collector, tus_for, path):
    answer = tus_for().create(b"x", path=path)
    assert answer.status_code == 400 and answer.json()["error"] == "bad_path"


def test_a_name_that_differs_only_in_case_is_refused(collector, tus_for):
    tus = tus_for()
    tus.upload(b"first", path="results.csv")
    answer = tus.create(b"second", path="Results.CSV")  # the same file on Windows
    assert answer.status_code == 409 and answer.json()["error"] == "path_taken"
