"""Where the watcher's stat runs: on the loop for a file on a local filesystem, in a thread otherwise, and
in a thread for good once a stat on the loop was slow."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import proxy.live.filestat as filestat
from proxy.live.filestat import Stats, filesystem_of, on_local_filesystem, signature
from proxy.live.gate import Signature

MOUNTINFO = """\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
25 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
30 22 0:26 / /etc/strangler rw,relatime shared:7 - nfs4 fileserver:/exports/strangler rw,vers=4.2
31 30 0:27 / /etc/strangler/local rw,relatime - tmpfs tmpfs rw
40 22 0:40 / /mnt/my\\040configs rw,relatime - fuse.sshfs host:/configs rw
41 22 0:41 / /var/lib/kubelet/pods rw - xfs /dev/sdb1 rw
42 41 0:42 / /var/lib/kubelet/pods rw - tmpfs tmpfs rw
"""
SIG: Signature = (1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("realpath", "fstype"),
    [
        ("/etc/routes.yaml", "ext4"),
        ("/etc/strangler/routes.yaml", "nfs4"),
        ("/etc/strangler", "nfs4"),
        ("/etc/strangler-old/routes.yaml", "ext4"),  # a prefix of the name is not a mount point above it
        ("/etc/strangler/local/routes.yaml", "tmpfs"),  # the longest mount point holding the file
        ("/mnt/my configs/routes.yaml", "fuse.sshfs"),  # mountinfo escapes a space as \040
        ("/var/lib/kubelet/pods/x/routes.yaml", "tmpfs"),  # of two mounts stacked on one point, the last
    ],
)
def test_the_filesystem_of_a_file_is_that_of_the_longest_mount_point_holding_it(
    realpath: str, fstype: str
) -> None:
    assert filesystem_of(realpath, MOUNTINFO) == fstype


def test_without_mountinfo_a_filesystem_counts_as_not_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filestat, "MOUNTINFO", str(tmp_path / "missing"))
    assert on_local_filesystem(str(tmp_path / "routes.yaml")) is False
    assert filesystem_of("/etc/routes.yaml", "") is None


def test_a_signature_follows_symlinks_to_the_file_itself(tmp_path: Path) -> None:
    (tmp_path / "v1").write_text("a", encoding="utf-8")
    (tmp_path / "routes.yaml").symlink_to("v1")
    assert signature(str(tmp_path / "routes.yaml")) == signature(str(tmp_path / "v1"))


async def test_on_the_loop_the_stat_is_taken_in_the_loops_own_thread() -> None:
    threads: list[threading.Thread] = []

    def stat(path: str) -> Signature:
        threads.append(threading.current_thread())
        return SIG

    stats = Stats("/etc/routes.yaml", stat=stat, on_loop=True)
    assert await stats.take() == SIG
    assert threads == [threading.current_thread()]


async def test_off_the_loop_the_stat_is_taken_in_a_thread() -> None:
    threads: list[threading.Thread] = []

    def stat(path: str) -> Signature:
        threads.append(threading.current_thread())
        return SIG

    assert await Stats("/etc/routes.yaml", stat=stat, on_loop=False).take() == SIG
    assert threads[0] is not threading.current_thread()


async def test_where_it_is_not_forced_the_filesystem_decides_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def local(path: str) -> bool:
        asked.append(path)
        return False

    monkeypatch.setattr(filestat, "on_local_filesystem", local)
    stats = Stats("/mnt/nfs/routes.yaml", stat=lambda path: SIG)
    await stats.take()
    await stats.take()
    assert (asked, stats.on_loop) == (["/mnt/nfs/routes.yaml"], False)


async def test_a_slow_stat_on_the_loop_moves_every_later_stat_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(filestat, "SLOW_STAT_S", -1.0)  # every stat counts as slow: no clock is raced
    threads: list[threading.Thread] = []

    def stat(path: str) -> Signature:
        threads.append(threading.current_thread())
        return SIG

    stats = Stats("/etc/routes.yaml", stat=stat, on_loop=True)
    await stats.take()
    await stats.take()
    assert stats.on_loop is False
    assert threads[0] is threading.current_thread()
    assert threads[1] is not threading.current_thread()


async def test_a_stat_that_fails_raises_as_is(tmp_path: Path) -> None:
    stats = Stats(str(tmp_path / "missing.yaml"), on_loop=True)
    with pytest.raises(FileNotFoundError):
        await stats.take()
