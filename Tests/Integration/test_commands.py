"""Every line-protocol command, as a telnet user sees it, on both backends.

Replies follow Brain2 (docs/protocol.md): `-<value>`/`null` for reads, `1`/`0` for writes,
a JSON object for hashes, `error <code>: <message>` for errors, and every reply is exactly
one line ending in `\\r\\n` (the client checks that on every read).
"""

from __future__ import annotations

import json

import pytest

from brain_client import command_line, expect_all, parse_info, parse_value

ALL_COMMANDS = [
    "get", "set", "pset", "del", "pdel", "vget", "vset", "vdel",
    "hget", "hsetkv", "hpsetkv", "hdel", "hpdel", "info", "help", "quit", "shutdown", "with",
]


def test_string_set_get_del(brain):
    node = brain()
    with node.client() as c:
        assert c.call("get", "user:1") == b"null"
        assert c.call("set", "user:1", value="hello world") == b"1"
        assert c.call("get", "user:1") == b"-hello world"
        assert c.call("set", "user:1", value="second value") == b"0"
        assert c.get("user:1") == b"second value"
        assert c.call("del", "user:1") == b"1"
        assert c.call("get", "user:1") == b"null"
        assert c.call("del", "user:1") == b"0"
        assert c.call("set", "user:1", value="back again") == b"1"
        assert c.get("user:1") == b"back again"


def test_binary_values_and_keys_round_trip_through_escapes(brain, backend):
    every_byte = bytes(range(256))
    key = b"odd key\x00\xff/\\.%"
    node = brain()
    with node.client() as c:
        assert c.call("set", key, value=every_byte) == b"1"
        assert c.get(key) == every_byte
        # The same key written with a literal \x20 for its space is the same key.
        assert parse_value(c.call_line(b"get odd\\x20key\\0\\xFF/\\\\.%")) == every_byte
        # pset: the backend object, under the encoded key, holds exactly the bytes.
        assert c.call("pset", key, value=every_byte) == b"1"
    assert backend.get("string", key) == every_byte


def test_named_escapes_are_decoded(brain):
    node = brain()
    with node.client() as c:
        assert c.call_line(b"set esc line1\\nline2\\ttab\\\\slash\\0nul\\rcr\\x41") == b"1"
        assert c.get("esc") == b"line1\nline2\ttab\\slash\x00nul\rcrA"
        assert c.call_line(b"set space\\x20key v") == b"1"
        assert c.get("space key") == b"v"


def test_lf_and_crlf_line_endings(brain):
    node = brain()
    with node.client() as c:
        assert c.call_line(b"set lf-key by lf", ending=b"\n") == b"1"
        assert c.call_line(b"get lf-key", ending=b"\n") == b"-by lf"
        assert c.call_line(b"get lf-key", ending=b"\r\n") == b"-by lf"


def test_pipelined_commands_reply_in_order(brain):
    node = brain()
    lines = []
    expected = []
    for i in range(200):
        lines.append(command_line("set", f"pipe-{i}", value=f"value {i}"))
        expected.append(b"1")
        lines.append(command_line("get", f"pipe-{i}"))
        expected.append(f"-value {i}".encode())
    with node.client() as c:
        assert c.pipeline(lines) == expected


def test_volatile_values_have_their_own_namespace(brain):
    node = brain()
    with node.client() as c:
        assert c.call("vget", "session") == b"null"
        assert c.call("vset", "session", value="token abc") == b"1"
        assert c.call("vset", "session", value="token def") == b"0"
        assert c.vget("session") == b"token def"
        assert c.call("get", "session") == b"null"
        assert c.call("set", "session", value="a string") == b"1"
        assert c.vget("session") == b"token def"
        assert c.call("vdel", "session") == b"1"
        assert c.call("vdel", "session") == b"0"
        assert c.call("vget", "session") == b"null"
        assert c.get("session") == b"a string"


def test_hash_commands(brain):
    node = brain()
    with node.client() as c:
        assert c.call("hget", "h") == b"null"
        assert c.call("hsetkv", "h", "name", value="Ada") == b"1"
        assert c.call("hsetkv", "h", "name", value="Ada Lovelace") == b"0"
        assert c.call("hsetkv", "h", "city", value="London") == b"1"
        assert c.call("hsetkv", "h", "note", value="Zoë, 1815") == b"1"
        assert c.hget("h") == {"name": "Ada Lovelace", "city": "London", "note": "Zoë, 1815"}
        assert c.hget("h", "city") == {"city": "London"}
        assert c.hget("h", "city", "name") == {"city": "London", "name": "Ada Lovelace"}
        assert c.hget("h", "city", "no-such-field") == {"city": "London"}
        assert c.call("hdel", "h", "city") == b"1"
        assert c.call("hdel", "h", "city") == b"0"
        assert c.call("hdel", "h", "city", "note") == b"1"
        assert c.hget("h") == {"name": "Ada Lovelace"}
        assert c.call("get", "h") == b"null"
        assert c.call("hdel", "h") == b"1"
        assert c.call("hget", "h") == b"null"
        assert c.call("hdel", "h") == b"0"


def test_keys_only_in_the_backend_behave_as_if_in_memory(brain, backend):
    backend.put("string", "b-get", b"from the backend")
    backend.put("string", "b-set", b"old")
    backend.put("string", "b-del", b"doomed")
    backend.put("hash", "b-hget", json.dumps({"a": "1", "b": "two"}).encode())
    backend.put("hash", "b-hset-old", json.dumps({"a": "1"}).encode())
    backend.put("hash", "b-hset-new", json.dumps({"a": "1"}).encode())
    backend.put("hash", "b-hdel-field", json.dumps({"a": "1", "b": "2"}).encode())
    backend.put("hash", "b-hdel-all", json.dumps({"a": "1"}).encode())
    node = brain()
    with node.client() as c:
        assert c.get("b-get") == b"from the backend"
        assert c.call("set", "b-set", value="new") == b"0"
        assert c.get("b-set") == b"new"
        assert c.call("del", "b-del") == b"1"
        assert c.call("get", "b-del") == b"null"
        assert c.hget("b-hget") == {"a": "1", "b": "two"}
        assert c.call("hsetkv", "b-hset-old", "a", value="x") == b"0"
        assert c.call("hsetkv", "b-hset-new", "c", value="y") == b"1"
        assert c.hget("b-hset-new") == {"a": "1", "c": "y"}
        assert c.call("hdel", "b-hdel-field", "a") == b"1"
        assert c.hget("b-hdel-field") == {"b": "2"}
        assert c.call("hdel", "b-hdel-all") == b"1"
        assert c.call("hget", "b-hdel-all") == b"null"
    node.stop()
    assert backend.get("string", "b-set") == b"new"
    assert backend.get("string", "b-del") is None
    assert json.loads(backend.get("hash", "b-hset-old")) == {"a": "x"}
    assert json.loads(backend.get("hash", "b-hset-new")) == {"a": "1", "c": "y"}
    assert json.loads(backend.get("hash", "b-hdel-field")) == {"b": "2"}
    assert backend.get("hash", "b-hdel-all") is None


def test_info_is_one_line_of_name_value_pairs(brain):
    node = brain()
    with node.client() as c:
        assert c.call("set", "info-key", value="x") == b"1"
        info = parse_info(c.call("info"))
    for name in ("keys_string_clean", "keys_string_dirty", "keys_hash_clean", "memory_slab_bytes",
                 "max_memory", "dirty_bytes", "writeback_backlog", "commands_total"):
        assert name in info, f"info lacks {name}: {info}"
    assert int(info["keys_string_clean"]) + int(info["keys_string_dirty"]) >= 1


def test_help_lists_every_command(brain):
    node = brain()
    with node.client() as c:
        reply = c.call("help")
    assert reply.startswith(b"commands: "), reply
    listed = set(reply[len(b"commands: "):].decode().replace(",", " ").split())
    missing = [name for name in ALL_COMMANDS if name not in listed]
    assert not missing, f"help does not list {missing}: {reply!r}"


def test_quit_closes_the_connection(brain):
    node = brain()
    with node.client() as c:
        assert c.call("set", "q", value="v") == b"1"
        c.send_raw(b"quit\r\n")
        assert c.read_until_closed(timeout=5) == b""
    with node.client() as c:
        assert c.get("q") == b"v"


def test_unknown_command(brain):
    node = brain()
    with node.client() as c:
        reply = c.call("frobnicate", "k")
        assert reply.startswith(b"error unknown_command: "), reply
        assert b"frobnicate" in reply
        assert c.call("set", "after-error", value="ok") == b"1"


WRONG_ARITY = [
    b"get", b"get a b", b"set", b"set k", b"pset", b"pset k", b"del", b"del a b", b"pdel",
    b"pdel a b", b"vget", b"vget a b", b"vset", b"vset k", b"vdel", b"vdel a b", b"hget",
    b"hsetkv", b"hsetkv k", b"hsetkv k f", b"hpsetkv", b"hpsetkv k", b"hpsetkv k f", b"hdel",
    b"hpdel",
]


def test_wrong_arity_of_each_command(brain):
    node = brain()
    with node.client() as c:
        for line in WRONG_ARITY:
            reply = c.call_line(line)
            assert reply.startswith(b"error wrong_arity: "), f"sent {line!r}, got {reply!r}"
        # The connection is still usable after every error.
        assert c.call("set", "arity-ok", value="v") == b"1"
    with node.client() as c:
        # Nothing was created by the refused commands.
        expect_all([c.call("get", "k"), c.call("get", "a"), c.call("hget", "k")], {b"null"}, "after arity errors")


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_secret_requires_auth_per_connection(brain):
    node = brain(secret="s3cret-token")
    with node.client() as c:
        reply = c.call("get", "k")
        assert reply.startswith(b"error auth_required: "), reply
        reply = c.call("set", "k", value="v")
        assert reply.startswith(b"error auth_required: "), reply
        reply = c.call("auth", "wrong-secret")
        assert reply.startswith(b"error "), f"auth with a wrong secret answered {reply!r}"
    with node.client() as c:
        reply = c.call("auth", "s3cret-token")
        assert not reply.startswith(b"error"), f"auth with the right secret answered {reply!r}"
        assert c.call("set", "k", value="v") == b"1"
        assert c.get("k") == b"v"
    with node.client() as c:
        reply = c.call("get", "k")
        assert reply.startswith(b"error auth_required: "), f"a new connection skipped auth: {reply!r}"
