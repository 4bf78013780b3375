"""Fault drill: the collector's disk fills up. The spool sits on a real 4 MiB tmpfs, mounted in a
private mount namespace of the collector process only (so nothing leaks if the test dies)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

MiB = 1024 * 1024


def can_mount_privately() -> bool:
    if os.name != "posix" or shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d "
                            "&& rmdir $d"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not can_mount_privately(),
                                reason="needs root and unshare to mount a small tmpfs")


@pytest.fixture
def small_disk_collector(collector_factory, tmp_path):
    data_dir = tmp_path / "collector-small-disk"
    incoming = data_dir / "incoming"
    incoming.mkdir(parents=True)
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               f'mount -t tmpfs -o size=4m tmpfs "{incoming}" && exec "$@"', "sh"]
    return collector_factory(data_dir=data_dir, wrapper=wrapper)


def test_disk_full_is_507_bilingual_and_nothing_is_lost(small_disk_collector, tus_for):
    server = small_disk_collector
    tus = tus_for(server=server)
    first, second = os.urandom(3 * MiB), os.urandom(3 * MiB)
    a = tus.create(first, path="a.flac").headers["Location"]
    b = tus.create(second, path="b.flac").headers["Location"]
    assert tus.patch(a, 0, first[:2 * MiB + MiB // 2]).status_code == 204

    answer = tus.patch(b, 0, second[:2 * MiB + MiB // 2])   # does not fit beside a
    assert answer.status_code == 507
    body = answer.json()
    assert body["error"] == "disk_full"
    assert "磁盘" in body["message_zh"] and "disk" in body["message_en"]
    assert tus.head(b).headers["Upload-Offset"] == "0"       # nothing marked as received
    assert tus.head(a).headers["Upload-Offset"] == str(2 * MiB + MiB // 2)

    # The earlier upload finishes untouched, which frees the spool; then the other goes in.
    assert tus.patch(a, 2 * MiB + MiB // 2, first[2 * MiB + MiB // 2:]).status_code == 204
    assert server.stored(tus.sitting, "a.flac").read_bytes() == first
    assert tus.patch(b, 0, second).status_code == 204
    assert server.stored(tus.sitting, "b.flac").read_bytes() == second


def test_upload_larger_than_the_free_space_is_refused_at_creation(small_disk_collector, tus_for):
    tus = tus_for(server=small_disk_collector)
    answer = tus.create(8 * MiB)
    assert answer.status_code == 507
    assert answer.json()["error"] == "disk_full"
