"""The harness's own codecs, checked without a node: if these are wrong, every other test's
verdict is meaningless."""

from __future__ import annotations

import pytest

from backends import encode_key
from brain_client import (
    ProtocolViolation,
    command_line,
    escape_token,
    escape_value,
    parse_prometheus,
    unescape,
)


def test_escapes_round_trip_every_byte():
    every_byte = bytes(range(256))
    escaped = escape_value(every_byte)
    assert b"\r" not in escaped and b"\n" not in escaped
    assert unescape(escaped) == every_byte
    assert unescape(escape_token(b"a b")) == b"a b"
    assert escape_token(b"a b") == b"a\\x20b"


def test_named_escapes():
    assert escape_value(b"\\\r\n\t\x00") == b"\\\\\\r\\n\\t\\0"
    assert unescape(b"\\\\\\r\\n\\t\\0\\x41\\xff") == b"\\\r\n\t\x00A\xff"


def test_bad_escapes_are_violations():
    for bad in (b"\\", b"\\q", b"\\x4", b"\\xZZ"):
        with pytest.raises(ProtocolViolation):
            unescape(bad)


def test_command_line_escapes_tokens_but_not_value_spaces():
    assert command_line("set", "my key", value="a value\n") == b"set my\\x20key a value\\n"


def test_key_encoding_matches_the_backend_layout():
    assert encode_key("user:42") == "user%3A42"
    assert encode_key("a.b") == "a.b"
    assert encode_key(".hidden") == "%2Ehidden"
    assert encode_key("AZaz09-_~") == "AZaz09-_~"
    assert encode_key(b"\x00\xff/ ") == "%00%FF%2F%20"


def test_prometheus_parser():
    text = (
        "# HELP brain_keys Keys.\n# TYPE brain_keys gauge\n"
        'brain_keys{state="dirty"} 3\n'
        'brain_backend_requests_total{op="put",outcome="ok"} 12\n'
        "brain_writeback_backlog 0\n"
        'odd{a="x\\"y",b="z"} 1.5e3\n'
    )
    samples = parse_prometheus(text)
    assert samples[("brain_keys", frozenset({("state", "dirty")}))] == 3
    assert samples[("brain_backend_requests_total", frozenset({("op", "put"), ("outcome", "ok")}))] == 12
    assert samples[("brain_writeback_backlog", frozenset())] == 0
    assert samples[("odd", frozenset({("a", 'x"y'), ("b", "z")}))] == 1500
