"""Memory: values are compressed in slabs, and max_memory holds however much is written."""

from __future__ import annotations

import base64
import json
import os
import random

import pytest

from brain_client import command_line, expect_all, parse_value

ITEMS = ["sword", "shield", "potion", "arrow", "helmet", "boots", "ring", "amulet", "scroll", "gem"]


def game_record(index: int, rng: random.Random) -> bytes:
    """A ~2 KB JSON record of the kind a game back end keeps: repetitive, as real JSON is."""
    document = {
        "id": index,
        "user": f"player-{index:06d}",
        "level": rng.randint(1, 99),
        "guild": rng.choice(["red", "blue", "green"]),
        "inventory": [
            {
                "item": rng.choice(ITEMS),
                "quantity": rng.randint(1, 50),
                "durability": rng.randint(0, 100),
                "enchanted": rng.random() < 0.2,
            }
            for _ in range(28)
        ],
        "settings": {"sound": True, "music": False, "language": "en-GB", "difficulty": "normal"},
        "last_login": f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
    }
    return json.dumps(document, separators=(",", ":")).encode()


@pytest.mark.parametrize("backend", ["file"], indirect=True)
@pytest.mark.time_limit(300)
def test_compressible_records_take_at_most_60_percent_in_slabs(brain):
    node = brain(max_memory="256mb", idle_ttl="10m")
    rng = random.Random(20240501)
    records = {f"rec-{i:05d}": game_record(i, rng) for i in range(10_000)}
    raw_bytes = sum(len(v) for v in records.values())
    names = list(records)
    with node.client() as c:
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            expect_all(c.pipeline([command_line("set", k, value=records[k]) for k in chunk]), {b"1"}, "sets")
        dirty_metrics = node.metrics()
        metrics = node.wait_drained(timeout=120)
        slab = metrics.memory("slab")
        print(
            f"raw {raw_bytes} B in {len(records)} records (mean {raw_bytes // len(records)} B); "
            f"slab {slab:.0f} B = {slab / raw_bytes:.3f} of raw after write-back "
            f"({dirty_metrics.memory('slab') / raw_bytes:.3f} while dirty); "
            f"brain_memory_bytes raw_values {metrics.memory('raw_values'):.0f}"
        )
        assert metrics.memory("raw_values") == raw_bytes
        assert slab <= 0.6 * raw_bytes, f"slab {slab:.0f} B is {slab / raw_bytes:.3f} of the raw {raw_bytes} B"
        for key in rng.sample(names, 300):
            assert c.get(key) == records[key], key


def incompressible_record(index: int, size: int) -> bytes:
    prefix = f"{index:06d}:".encode()
    return prefix + base64.b64encode(os.urandom(size))[: size - len(prefix)]


@pytest.mark.time_limit(900)
def test_memory_stays_under_max_memory_and_evicted_records_reload(brain, backend):
    max_memory = 16 * 1024 * 1024
    record_size = 4096
    count = 3 * max_memory // record_size  # three times max_memory
    node = brain(
        max_memory="16mb", max_dirty_bytes="4mb", flush_delay="100ms", max_dirty_age="1s", idle_ttl="10m"
    )
    records = {f"ev-{i:05d}": incompressible_record(i, record_size) for i in range(count)}
    names = list(records)
    peak_slab = 0.0

    def sample() -> None:
        nonlocal peak_slab
        slab = node.metrics().memory("slab")
        peak_slab = max(peak_slab, slab)
        assert slab <= max_memory, f"slab {slab:.0f} B past max_memory {max_memory} B"

    with node.client(timeout=60) as c:
        batch = (2 * 1024 * 1024) // record_size  # an eighth of max_memory, drained before the next
        for start in range(0, count, batch):
            chunk = names[start : start + batch]
            expect_all(c.pipeline([command_line("set", k, value=records[k]) for k in chunk]), {b"1"}, "sets")
            sample()
            node.wait_drained(timeout=120)
        gets_before = node.metrics().backend("get", "ok")
        for start in range(0, count, 1000):
            chunk = names[start : start + 1000]
            replies = c.pipeline([command_line("get", k) for k in chunk], timeout=300)
            wrong = [k for k, r in zip(chunk, replies) if parse_value(r) != records[k]]
            assert not wrong, f"{len(wrong)} records read back wrong, first: {wrong[:3]}"
            sample()
    reloads = node.metrics().backend("get", "ok") - gets_before
    resident_at_most = max_memory // record_size
    print(f"{count} records of {record_size} B; peak slab {peak_slab:.0f} B; {reloads:.0f} reloads")
    assert reloads >= count - resident_at_most, (
        f"only {reloads:.0f} backend reads to read back {count} records that cannot all fit in max_memory"
    )
