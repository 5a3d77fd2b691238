"""Overload on the line protocol: clients that do not read, huge pipelines, too many
connections, idle clients. Each is bounded as docs/protocol.md ("Limits") says, with the
node's resident memory measured, and the node keeps serving everyone else."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from brain_client import LineClient, command_line, wait_until

MIB = 1024 * 1024


def rss_bytes(node) -> int:
    with open(f"/proc/{node.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


class PeakSampler:
    """Samples a node's RSS every 50 ms in the background; `peak` is the largest seen."""

    def __init__(self, node):
        self.node = node
        self.peak = rss_bytes(node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, rss_bytes(self.node))
            except OSError:
                return


def assert_node_serves(node) -> None:
    with node.client() as c:
        assert c.call("set", "alive", value="yes") in (b"0", b"1")
        assert c.call("get", "alive") == b"-yes"


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Reads (and drops) until the node closes the connection; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(1 << 20):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


@pytest.mark.time_limit(300)
def test_clients_that_never_read_hold_bounded_memory_and_are_disconnected(brain):
    node = brain(max_memory="64mb", max_dirty_bytes="16mb", client_output_timeout="3s")
    value = os.urandom(50_000).hex()  # 100,000 bytes; random, so LZ4 cannot shrink it
    with node.client() as c:
        assert c.call("set", "big", value=value) == b"1"
    baseline = rss_bytes(node)

    clients = 200
    gets = 2000  # 200 MB of replies per client if the node produced them all
    request = b"get big\r\n" * gets
    sockets = []
    with PeakSampler(node) as sampler:
        for _ in range(clients):
            s = socket.create_connection(("127.0.0.1", node.line_port), timeout=10)
            s.sendall(request)
            sockets.append(s)
        time.sleep(2)  # the node runs until every connection has stopped on its full output
    growth = sampler.peak - baseline
    per_client = growth / clients
    print(f"\n{clients} clients sent {gets} gets of a 100,000 B value each and read nothing: "
          f"RSS {baseline / MIB:.1f} MiB -> peak {sampler.peak / MIB:.1f} MiB "
          f"(+{growth / MIB:.1f} MiB, {per_client / 1024:.0f} KiB per client; "
          f"unbounded would be {clients * gets * 100_000 / MIB:,.0f} MiB)")
    # Documented per connection: 64 KiB waiting + one read's replies (64 KiB, or one larger
    # reply) + two reads of commands; allow twice that for the allocator.
    assert per_client < 1 * MIB, f"{per_client / 1024:.0f} KiB per client that does not read"

    # Past client_output_timeout every one of them is closed (counted and logged); only
    # then start reading, since a client that reads is no longer one that does not.
    def output_timeouts() -> float:
        return node.metrics().value("brain_connections_closed_total", transport="line", reason="output_timeout")

    wait_until(lambda: output_timeouts() >= clients, 60, f"{clients} output timeouts")
    closed = sum(closed_by_peer(s, timeout=20) for s in sockets)
    for s in sockets:
        s.close()
    assert closed == clients, f"only {closed} of {clients} non-reading clients saw the node close"
    assert output_timeouts() == clients
    assert "read none of its replies for 3.0 seconds" in node.log_text()
    assert_node_serves(node)


@pytest.mark.time_limit(300)
def test_a_huge_pipeline_is_answered_in_full_with_bounded_memory(brain):
    node = brain(max_memory="64mb", max_dirty_bytes="16mb")
    with node.client() as c:
        assert c.call("set", "k", value="v" * 100) == b"1"
    baseline = rss_bytes(node)
    count = 300_000
    payload = b"get k\r\n" * count
    with node.client(timeout=120) as c, PeakSampler(node) as sampler:
        sender = threading.Thread(target=c.send_raw, args=(payload,), daemon=True)
        sender.start()
        time.sleep(2)  # read nothing for a while: the node must stop, not buffer everything
        held = rss_bytes(node) - baseline
        received = 0
        expected = b"-" + b"v" * 100
        while received < count:
            reply = c.read_line(timeout=60)
            assert reply == expected, reply[:80]
            received += 1
        sender.join(timeout=60)
    growth = sampler.peak - baseline
    print(f"\na pipeline of {count:,} gets ({len(payload) / MIB:.1f} MiB of commands, "
          f"{count * 103 / MIB:.1f} MiB of replies): RSS +{held / MIB:.2f} MiB while the client "
          f"read nothing, peak +{growth / MIB:.2f} MiB; {received:,} replies, all correct")
    assert growth < 32 * MIB, f"a pipeline grew the node by {growth / MIB:.1f} MiB"
    assert_node_serves(node)


def test_connections_past_max_connections_are_refused_with_an_error(brain):
    node = brain(max_connections="20")
    clients = []
    try:
        # A connection counts until its close has been handled, so the harness's probe of the
        # port at start-up may still hold a slot for a moment: retry a refused one briefly.
        for _ in range(20):
            deadline = time.monotonic() + 10
            while True:
                c = node.client()
                reply = c.call("get", "none")
                if reply == b"null":
                    clients.append(c)
                    break
                c.close()
                assert reply == b"error too_many_connections", reply
                assert time.monotonic() < deadline, "a slot was never given back"
                time.sleep(0.05)
        with node.client() as extra:
            assert extra.read_until_closed(timeout=5) == b"error too_many_connections\r\n"
        clients.pop().close()
        wait_until(lambda: _serves_once(node), 10, "a connection to be accepted again")
    finally:
        for c in clients:
            c.close()
    assert "line protocol refused a connection: 20 connections already open" in node.log_text()
    assert node.metrics().value(
        "brain_connections_closed_total", transport="line", reason="too_many_connections") >= 1


def _serves_once(node) -> bool:
    with node.client() as c:
        c.send_raw(b"get none\r\n")
        return c.read_line(timeout=5) == b"null"


def test_idle_clients_time_out_when_configured(brain):
    node = brain(client_idle_timeout="1s")
    with node.client() as idle, node.client() as busy:
        assert idle.call("get", "x") == b"null"
        started = time.monotonic()
        for _ in range(10):  # 3 s of a command every 0.3 s keeps a connection open
            assert busy.call("get", "x") == b"null"
            time.sleep(0.3)
        assert idle.read_until_closed(timeout=5) == b""
        assert busy.call("get", "x") == b"null"
        assert time.monotonic() - started >= 1
    assert "line protocol closed a connection idle for" in node.log_text()
    assert node.metrics().value("brain_connections_closed_total", transport="line", reason="idle_timeout") == 1

    quiet = brain()  # off by default: a connection idle for 2 s stays open
    with quiet.client() as c:
        time.sleep(2)
        assert c.call("get", "x") == b"null"


def test_an_unauthenticated_client_sending_a_huge_line_is_closed(brain):
    node = brain(secret="s3cret")
    baseline = rss_bytes(node)
    with node.client(timeout=30) as c, PeakSampler(node) as sampler:
        try:
            for _ in range(16):  # 16 MiB with no newline, four times the line limit
                c.send_raw(b"x" * MIB)
        except OSError:
            pass  # closed while still sending
        reply = c.read_until_closed(timeout=20)
    assert reply.startswith(b"error line_too_long: "), reply[:80]
    growth = sampler.peak - baseline
    print(f"\nan unauthenticated 16 MiB line: RSS +{growth / MIB:.1f} MiB")
    assert growth < 16 * MIB
    with node.client() as c:
        assert c.call("auth", "s3cret") == b"1"
        assert c.call("get", "k") == b"null"
