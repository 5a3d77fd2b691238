"""Malformed input on the line protocol: each case gets an error reply or a closed
connection, never a crash or a hang, and the node keeps serving other clients."""

from __future__ import annotations

import socket
import time

import pytest

from brain_client import LineClient


def assert_node_serves(node) -> None:
    with node.client() as c:
        assert c.call("set", "alive", value="yes") in (b"0", b"1")
        assert c.call("get", "alive") == b"-yes"


@pytest.fixture
def node(brain):
    return brain()


def test_an_endless_line_is_refused_before_it_fills_memory(node):
    with node.client(timeout=30) as c:
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(8):  # 8 MiB, twice the 4 MiB line limit, with no newline
                c.send_raw(chunk)
        except OSError:
            pass  # the node closed the connection while we were still sending
        reply = c.read_until_closed(timeout=20)
    assert reply.startswith(b"error line_too_long: "), reply[:80]
    assert_node_serves(node)


def test_nul_bytes_bare_cr_and_invalid_utf8_are_kept_as_bytes(node):
    with node.client() as c:
        assert c.call_line(b"set k a\x00b\rc\xff\xfe") in (b"0", b"1")
        assert c.call("get", "k") == b"-a\\0b\\rc\\xff\\xfe"


def test_invalid_escapes_are_named(node):
    with node.client() as c:
        for line in (b"set k \\q", b"set k \\x4", b"set k abc\\", b"get \\xZZ"):
            reply = c.call_line(line)
            assert reply.startswith(b"error bad_escape: "), (line, reply)
    assert_node_serves(node)


def test_an_empty_key_is_an_error(node):
    with node.client() as c:
        # A key token that decodes to no bytes cannot be written as a token; \x00-free empty
        # keys arrive only through escapes of nothing, so use the smallest: a missing key.
        assert c.call_line(b"get").startswith(b"error wrong_arity: ")
        assert c.call_line(b"set").startswith(b"error wrong_arity: ")


def test_a_value_one_byte_over_the_maximum_is_refused(node):
    with node.client(timeout=30) as c:
        assert c.call("set", "big", value=b"v" * 1_000_000) == b"1"
        reply = c.call("set", "big", value=b"v" * 1_000_001)
        assert reply.startswith(b"error value_too_large: "), reply
        assert c.call("get", "big") == b"-" + b"v" * 1_000_000


def test_binary_garbage_gets_errors_and_the_connection_survives_or_closes_cleanly(node):
    garbage = bytes((i * 73 + 41) % 256 for i in range(20_000))
    with node.client(timeout=10) as c:
        c.send_raw(garbage + b"\r\nget alive-after-garbage\r\n")
        deadline = time.monotonic() + 10
        last = b""
        while time.monotonic() < deadline:
            try:
                last = c.read_line(timeout=2)
            except (TimeoutError, socket.timeout, OSError, AssertionError):
                break
            if last == b"null":
                break
            assert last.startswith(b"error "), last[:80]
        assert last == b"null", last[:80]
    assert_node_serves(node)


def test_a_command_split_across_many_writes(node):
    with node.client() as c:
        for byte in b"set split-key split value\r\n":
            c.send_raw(bytes([byte]))
            time.sleep(0.002)
        assert c.read_line() == b"1"
        assert c.call("get", "split-key") == b"-split value"


def test_an_unauthenticated_client_cannot_store_or_read(brain):
    node = brain(secret="s3cret")
    with node.client() as c:
        assert c.call("set", "k", value="v").startswith(b"error auth_required: ")
        assert c.call("get", "k").startswith(b"error auth_required: ")
        assert c.call("auth", "wrong").startswith(b"error auth_failed: ")
        assert c.call("auth", "s3cret") == b"1"
        assert c.call("get", "k") == b"null"
