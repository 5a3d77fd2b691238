"""Nothing acknowledged is lost: a write load is killed with SIGKILL at random moments, and
after each restart every acknowledged write must be there (durability = log)."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

CLIENTS = 4
KEYS_PER_CLIENT = 50
DEPTH = 8


class Writer(threading.Thread):
    """One client: pipelined `set` of its own keys with growing sequence numbers. Records the
    highest acknowledged and the highest sent sequence of each key."""

    def __init__(self, port: int, client: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.client, self.stop = port, client, stop
        self.keys = [f"c{client}-k{i:03d}" for i in range(KEYS_PER_CLIENT)]
        self.acked: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.acknowledged = 0
        self.unanswered = 0

    def run(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        reader = sock.makefile("rb")
        sequence = 0
        in_flight: list[tuple[str, int]] = []
        try:
            while not self.stop.is_set():
                batch = []
                for _ in range(DEPTH):
                    sequence += 1
                    key = self.keys[sequence % len(self.keys)]
                    batch.append((key, sequence))
                    self.sent[key] = sequence
                sock.sendall(b"".join(f"set {k} v{s}\r\n".encode() for k, s in batch))
                in_flight = batch
                for key, seq in batch:
                    line = reader.readline()
                    if not line.endswith(b"\r\n"):
                        raise ConnectionError("closed")
                    assert line in (b"0\r\n", b"1\r\n"), line
                    self.acked[key] = seq
                    self.acknowledged += 1
                    in_flight = in_flight[1:]
        except (OSError, ConnectionError):
            self.unanswered += len(in_flight)
        finally:
            sock.close()


def run_crash_rounds(brain, rounds: int, fsync: str, seed: int) -> tuple[int, int, int, int]:
    rng = random.Random(seed)
    data_dir = None
    checked = lost = unanswered = acknowledged = 0
    for round_ in range(rounds):
        node = brain(data_dir=data_dir, durability="log", fsync=fsync, flush_delay="300ms", max_dirty_age="2s")
        data_dir = node.data_dir
        stop = threading.Event()
        writers = [Writer(node.line_port, c, stop) for c in range(CLIENTS)]
        for writer in writers:
            writer.start()
        time.sleep(rng.uniform(0.2, 1.2))
        node.kill()
        stop.set()
        for writer in writers:
            writer.join(timeout=10)

        check = brain(data_dir=data_dir)
        with check.client() as c:
            for writer in writers:
                unanswered += writer.unanswered
                acknowledged += writer.acknowledged
                for key, acked in writer.acked.items():
                    reply = c.call("get", key)
                    assert reply.startswith(b"-v"), (round_, key, reply)
                    found = int(reply[2:])
                    checked += 1
                    if found < acked:
                        lost += 1
                    assert found <= writer.sent[key], (round_, key, found, writer.sent[key])
        # The next round starts from what this one recovered.
        check.kill()
    return checked, lost, unanswered, acknowledged


@pytest.mark.parametrize("backend", ["file"], indirect=True)
@pytest.mark.time_limit(600)
def test_sigkill_loses_no_acknowledged_write_with_fsync_always(brain, backend):
    rounds = 12
    checked, lost, unanswered, acknowledged = run_crash_rounds(brain, rounds, "always", seed=2026)
    print(f"\ncrash test (fsync=always): {rounds} rounds, {acknowledged} writes acknowledged, "
          f"{checked} keys checked against their last acknowledged write, "
          f"{lost} lost, {unanswered} writes without a reply")
    assert checked > rounds * CLIENTS
    assert lost == 0


@pytest.mark.parametrize("backend", ["file"], indirect=True)
@pytest.mark.time_limit(600)
def test_sigkill_with_fsync_everysec_loses_nothing_the_kernel_had(brain, backend):
    # everysec writes every change to the kernel before the reply and fsyncs once a second:
    # a process crash (SIGKILL) loses nothing; only a machine crash can lose the last second.
    rounds = 8
    checked, lost, unanswered, acknowledged = run_crash_rounds(brain, rounds, "everysec", seed=7)
    print(f"\ncrash test (fsync=everysec): {rounds} rounds, {acknowledged} writes acknowledged, "
          f"{checked} keys checked against their last acknowledged write, "
          f"{lost} lost, {unanswered} writes without a reply")
    assert checked > rounds * CLIENTS
    assert lost == 0
