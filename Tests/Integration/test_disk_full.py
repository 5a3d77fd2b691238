"""A full disk under durability = log: writes that need the log are refused with
`log_unavailable`, nothing acknowledged is lost (a SIGKILL and a restart replay all of it),
and the node takes writes again once space returns.

The data directory is a 4 MiB tmpfs mounted for the test, so "full" is real ENOSPC from the
kernel. Mounting needs root (CAP_SYS_ADMIN); without it the test is skipped and says why.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from brain_client import wait_until


@pytest.fixture
def small_disk(workdir):
    mountpoint = workdir / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def value_for(key: str, version: int) -> bytes:
    return f"{key} v{version} ".encode().ljust(8000, b"d")


@pytest.mark.parametrize("backend", ["file"], indirect=True)
@pytest.mark.time_limit(300)
def test_a_full_disk_refuses_logged_writes_loses_nothing_and_recovers(brain, backend, small_disk):
    data_dir = small_disk / "data"
    flags = dict(durability="log", fsync="always", flush_delay="10m", max_dirty_age="20m", idle_ttl="30m")
    node = brain(data_dir=data_dir, **flags)
    # Room to free later: a filler taking a quarter of the disk.
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (1 << 20))

    acknowledged: dict[str, bytes] = {}
    refused = 0
    with node.client() as c:
        for i in range(2000):  # 16 MB of values: four times the disk
            key = f"disk-{i:04d}"
            reply = c.call("set", key, value=value_for(key, 1))
            if reply == b"1":
                acknowledged[key] = value_for(key, 1)
            elif reply.startswith(b"error log_unavailable: "):
                refused += 1
                if refused >= 20:
                    break
            else:
                raise AssertionError(f"set {key} on a filling disk answered {reply!r}")
        assert refused >= 20, "the disk never filled"
        assert acknowledged, "nothing was acknowledged before the disk filled"
        print(f"\n{len(acknowledged)} writes acknowledged, then {refused} refused with log_unavailable")
        # Reads go on while the disk is full.
        some = next(iter(acknowledged))
        assert c.get(some) == acknowledged[some]

        # Space returns: the node takes logged writes again without a restart.
        filler.unlink()
        wait_until(
            lambda: c.call("set", "after-space", value=b"logged again") in (b"0", b"1"),
            30,
            "logged writes to be accepted once space returned",
        )
        acknowledged["after-space"] = b"logged again"
        for i in range(20):
            key = f"more-{i:02d}"
            assert c.call("set", key, value=b"small") == b"1", key
            acknowledged[key] = b"small"

    # A crash now: everything acknowledged must come back from the log.
    node.kill()
    assert not backend.names("string"), "the long flush_delay should have kept everything in the log only"
    restarted = brain(data_dir=data_dir, **flags)
    with restarted.client() as c:
        wrong = [k for k, v in acknowledged.items() if c.get(k) != v]
    assert not wrong, f"{len(wrong)} of {len(acknowledged)} acknowledged writes lost, first: {wrong[:3]}"
    assert "append-only log: replayed" in restarted.log_text()
