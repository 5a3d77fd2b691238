"""Clients for a running `brain serve`: the line protocol and the admin port's metrics.

Everything here is bounded in time (socket timeouts) and talks only to 127.0.0.1.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Iterable, Sequence

CRLF = b"\r\n"


class ProtocolViolation(AssertionError):
    """The node sent something the line protocol does not allow."""


# --- escaping -------------------------------------------------------------------------------

_NAMED_ESCAPES = {
    ord("\\"): b"\\\\",
    ord("\r"): b"\\r",
    ord("\n"): b"\\n",
    ord("\t"): b"\\t",
    0: b"\\0",
}


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def escape_value(data: bytes | str) -> bytes:
    """Escapes a value (the rest of a line): spaces stay raw, every byte that is not
    printable ASCII becomes `\\xHH` or a named escape."""
    out = bytearray()
    for byte in _as_bytes(data):
        named = _NAMED_ESCAPES.get(byte)
        if named is not None:
            out += named
        elif byte < 0x20 or byte >= 0x7F:
            out += b"\\x%02X" % byte
        else:
            out.append(byte)
    return bytes(out)


def escape_token(data: bytes | str) -> bytes:
    """Escapes a key or a field: as a value, and a space becomes `\\x20` too."""
    return escape_value(data).replace(b" ", b"\\x20")


def unescape(data: bytes) -> bytes:
    """Decodes the escapes of a reply; an unknown escape is a protocol violation."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        byte = data[i]
        if byte != 0x5C:  # backslash
            out.append(byte)
            i += 1
            continue
        if i + 1 >= n:
            raise ProtocolViolation(f"reply ends inside an escape: {data!r}")
        code = data[i + 1]
        if code == ord("\\"):
            out.append(0x5C)
        elif code == ord("r"):
            out.append(0x0D)
        elif code == ord("n"):
            out.append(0x0A)
        elif code == ord("t"):
            out.append(0x09)
        elif code == ord("0"):
            out.append(0x00)
        elif code == ord("x"):
            digits = data[i + 2 : i + 4]
            if len(digits) != 2 or not re.fullmatch(rb"[0-9A-Fa-f]{2}", digits):
                raise ProtocolViolation(f"bad \\x escape in reply: {data!r}")
            out.append(int(digits, 16))
            i += 4
            continue
        else:
            raise ProtocolViolation(f"unknown escape \\{chr(code)} in reply: {data!r}")
        i += 2
    return bytes(out)


def command_line(name: str, *tokens: bytes | str, value: bytes | str | None = None) -> bytes:
    """`name tok1 tok2 ... [value]`, tokens and value escaped, without the line ending."""
    parts = [name.encode("ascii")] + [escape_token(t) for t in tokens]
    if value is not None:
        parts.append(escape_value(value))
    return b" ".join(parts)


# --- the line client ------------------------------------------------------------------------


class LineClient:
    """One connection to the line port. Every reply must be exactly one `\\r\\n` line."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    # context manager
    def __enter__(self) -> "LineClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self, timeout: float | None = None) -> bytes:
        """Reads exactly one reply line and returns it without its `\\r\\n`."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            end = self._buffer.find(CRLF)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                if b"\n" in line or b"\r" in line:
                    raise ProtocolViolation(f"reply holds a raw CR or LF: {line!r}")
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete reply line; received so far {bytes(self._buffer)!r}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; unterminated data {bytes(self._buffer)!r}")
            self._buffer += chunk

    def call_line(self, line: bytes, ending: bytes = CRLF) -> bytes:
        """Sends one raw command line and returns the reply line."""
        self.send_raw(line + ending)
        return self.read_line()

    def call(self, name: str, *tokens: bytes | str, value: bytes | str | None = None) -> bytes:
        """Sends one command (tokens and value escaped) and returns the raw reply line."""
        return self.call_line(command_line(name, *tokens, value=value))

    def pipeline(self, lines: Sequence[bytes], timeout: float = 120.0) -> list[bytes]:
        """Sends every line without waiting, from a second thread, and reads one reply each."""
        payload = b"".join(line + CRLF for line in lines)
        failure: list[BaseException] = []

        def sender() -> None:
            try:
                view = memoryview(payload)
                step = 256 * 1024
                for start in range(0, len(view), step):
                    self.sock.sendall(view[start : start + step])
            except BaseException as error:  # reported by the reader below
                failure.append(error)

        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        replies = []
        for _ in lines:
            replies.append(self.read_line(timeout=max(0.1, deadline - time.monotonic())))
        thread.join(timeout=5)
        if failure:
            raise failure[0]
        return replies

    def read_until_closed(self, timeout: float = 5.0) -> bytes:
        """Reads until the node closes the connection; returns whatever came before."""
        deadline = time.monotonic() + timeout
        data = bytes(self._buffer)
        self._buffer.clear()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"connection still open; received {data!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    # typed helpers: each asserts the reply's shape and returns its meaning

    def get(self, key: bytes | str, command: str = "get") -> bytes | None:
        return parse_value(self.call(command, key))

    def vget(self, key: bytes | str) -> bytes | None:
        return self.get(key, command="vget")

    def hget(self, key: bytes | str, *fields: bytes | str) -> dict | None:
        return parse_hash(self.call("hget", key, *fields))

    def info(self) -> dict[str, str]:
        return parse_info(self.call("info"))


def parse_value(reply: bytes) -> bytes | None:
    """`-<value>` → the unescaped value; `null` → None; anything else is a violation."""
    if reply == b"null":
        return None
    if reply.startswith(b"-"):
        return unescape(reply[1:])
    raise ProtocolViolation(f"expected -<value> or null, got {reply!r}")


def parse_hash(reply: bytes) -> dict | None:
    import json

    if reply == b"null":
        return None
    if not reply.startswith(b"{"):
        raise ProtocolViolation(f"expected a JSON object or null, got {reply!r}")
    decoded = json.loads(unescape(reply).decode("utf-8"))
    if not isinstance(decoded, dict):
        raise ProtocolViolation(f"expected a JSON object, got {reply!r}")
    return decoded


def parse_info(reply: bytes) -> dict[str, str]:
    text = reply.decode("utf-8")
    pairs = {}
    for token in text.split():
        name, sep, value = token.partition(":")
        if not sep or not name:
            raise ProtocolViolation(f"info token {token!r} is not name:value in {reply!r}")
        pairs[name] = value
    if not pairs:
        raise ProtocolViolation(f"info reply is empty: {reply!r}")
    return pairs


# --- metrics --------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')

MetricKey = tuple[str, frozenset]


def parse_prometheus(text: str) -> dict[MetricKey, float]:
    """Prometheus text format → {(name, frozenset({(label, value), ...})): value}."""
    samples: dict[MetricKey, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ProtocolViolation(f"unparsable metrics line: {raw!r}")
        name, label_text, value = match.groups()
        labels = []
        if label_text:
            position = 0
            while position < len(label_text):
                label = _LABEL.match(label_text, position)
                if not label or label.end() == position:
                    raise ProtocolViolation(f"unparsable labels in: {raw!r}")
                unescaped = label.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                labels.append((label.group(1), unescaped))
                position = label.end()
        samples[(name, frozenset(labels))] = float(value)
    return samples


class Metrics:
    """One scrape of /metrics."""

    def __init__(self, samples: dict[MetricKey, float], text: str):
        self.samples = samples
        self.text = text

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise AssertionError(f"metric {name}{labels} is missing from /metrics:\n{self.text}")
        return self.samples[key]

    def backend(self, op: str, outcome: str) -> float:
        return self.value("brain_backend_requests_total", op=op, outcome=outcome)

    @property
    def backlog(self) -> float:
        return self.value("brain_writeback_backlog")

    @property
    def dirty_keys(self) -> float:
        return self.value("brain_keys", state="dirty")

    @property
    def dirty_bytes(self) -> float:
        return self.value("brain_dirty_bytes")

    def memory(self, kind: str) -> float:
        return self.value("brain_memory_bytes", kind=kind)


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def scrape(admin_port: int, timeout: float = 5.0) -> Metrics:
    """GET /metrics, retrying connection failures for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, text = http_get(admin_port, "/metrics", timeout=timeout)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    if status != 200:
        raise AssertionError(f"/metrics answered {status}: {text[:500]}")
    return Metrics(parse_prometheus(text), text)


def wait_until(predicate, timeout: float, description: str, interval: float = 0.1):
    """Polls `predicate` until it returns a truthy value; fails naming `description`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {description}")
        time.sleep(interval)


def expect_all(replies: Iterable[bytes], allowed: set[bytes], what: str) -> None:
    """Asserts every reply is one of `allowed`, naming the first that is not."""
    for index, reply in enumerate(replies):
        if reply not in allowed:
            raise AssertionError(f"{what}: reply #{index} was {reply!r}, expected one of {sorted(allowed)}")
