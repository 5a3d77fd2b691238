"""Write-back as a user sees it: coalescing, and nothing lost across SIGTERM, `shutdown` and
a restart."""

from __future__ import annotations

import json
import time

import pytest

from brain_client import command_line, expect_all

ROUNDS = 20
KEYS = 1000


def coalescing_value(key: str, round_: int) -> str:
    return f"{key} round {round_:02d} " + "payload " * 8


@pytest.mark.time_limit(420)
def test_many_writes_to_a_key_become_one_backend_write(brain, backend):
    # Coalescing is promised for writes closer together than flush_delay; the whole run must
    # fit in it (round 0 also looks every new key up in the backend).
    flush_delay = 15
    node = brain(flush_delay=f"{flush_delay}s", max_dirty_age="120s", idle_ttl="10m")
    keys = [f"co-{i:04d}" for i in range(KEYS)]
    puts_before = node.metrics().backend("put", "ok")
    lines = [command_line("set", key, value=coalescing_value(key, r)) for r in range(ROUNDS) for key in keys]
    with node.client() as c:
        started = time.monotonic()
        replies = c.pipeline(lines, timeout=300)
        elapsed = time.monotonic() - started
    print(f"{len(lines)} pipelined sets took {elapsed:.1f}s")
    assert elapsed < flush_delay, f"{len(lines)} sets took {elapsed:.1f}s, longer than flush_delay {flush_delay}s"
    expect_all(replies[:KEYS], {b"1"}, "round 0 (new keys)")
    expect_all(replies[KEYS:], {b"0"}, "rounds 1-19 (existing keys)")

    metrics = node.wait_drained(timeout=180)
    puts = metrics.backend("put", "ok") - puts_before
    print(f"{KEYS * ROUNDS} writes to {KEYS} keys became {puts:.0f} backend puts")
    assert 1 <= puts <= KEYS, f"{puts} puts for {KEYS} keys written {ROUNDS} times"
    assert metrics.dirty_bytes == 0

    wrong = []
    for key in keys:
        stored = backend.get("string", key)
        expected = coalescing_value(key, ROUNDS - 1).encode()
        if stored != expected:
            wrong.append((key, stored))
    assert not wrong, f"{len(wrong)} keys hold the wrong value in the backend, first: {wrong[:3]}"


def restart_data():
    strings = {f"str-{i:03d}": f"string value {i} " * (i % 7 + 1) for i in range(200)}
    strings["binary\x00key"] = "bytes \x00\x01\xff\r\n end"
    hashes = {f"hash-{i:03d}": {"name": f"user {i}", "score": str(i * 10), "tag": "t"} for i in range(50)}
    volatiles = {f"vol-{i:03d}": f"volatile {i}" for i in range(50)}
    return strings, hashes, volatiles


def write_restart_data(client, strings, hashes, volatiles):
    lines = [command_line("set", k, value=v.encode("latin-1")) for k, v in strings.items()]
    lines += [command_line("hsetkv", k, f, value=v) for k, h in hashes.items() for f, v in h.items()]
    lines += [command_line("vset", k, value=v) for k, v in volatiles.items()]
    expect_all(client.pipeline(lines), {b"1"}, "writes of new keys and fields")


def check_restart_data(client, strings, hashes, volatiles):
    for key, value in strings.items():
        assert client.get(key.encode("latin-1")) == value.encode("latin-1"), key
    for key, fields in hashes.items():
        assert client.hget(key) == fields, key
    for key in volatiles:
        assert client.call("vget", key) == b"null", f"volatile {key} survived a restart"


def check_backend_holds(backend, strings, hashes, volatiles):
    for key, value in strings.items():
        assert backend.get("string", key.encode("latin-1")) == value.encode("latin-1"), key
    for key, fields in hashes.items():
        stored = backend.get("hash", key)
        assert stored is not None and json.loads(stored) == fields, key
    for key in volatiles:
        assert backend.get("string", key) is None and backend.get("volatile", key) is None, (
            f"volatile {key} was written to the backend"
        )


@pytest.mark.time_limit(300)
def test_sigterm_writes_back_and_a_restart_reads_everything_but_volatile(brain, backend):
    strings, hashes, volatiles = restart_data()
    # A long flush_delay: only the shutdown can have written these back.
    node = brain(flush_delay="30s", max_dirty_age="60s", idle_ttl="10m")
    with node.client() as c:
        write_restart_data(c, strings, hashes, volatiles)
    node.stop(expect_exit=0)
    check_backend_holds(backend, strings, hashes, volatiles)

    restarted = brain(data_dir=node.data_dir)
    with restarted.client() as c:
        check_restart_data(c, strings, hashes, volatiles)


@pytest.mark.time_limit(300)
def test_shutdown_command_writes_back_and_exits_0(brain, backend):
    strings, hashes, volatiles = restart_data()
    node = brain(flush_delay="30s", max_dirty_age="60s", idle_ttl="10m")
    with node.client() as c:
        write_restart_data(c, strings, hashes, volatiles)
        assert c.call("shutdown") == b"1"
    assert node.wait_exit(timeout=60) == 0
    check_backend_holds(backend, strings, hashes, volatiles)

    restarted = brain(data_dir=node.data_dir)
    with restarted.client() as c:
        check_restart_data(c, strings, hashes, volatiles)
