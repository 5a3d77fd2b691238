"""The Erlang side of the integration tests: epmd, a real `erl` client node, the ei C node.

* `build(into)` compiles `brain_it.erl` (erlc) and `brain_ei.c` (gcc against Debian's
  erlang-dev `ei`) into a directory and returns their paths.
* `ensure_epmd()` starts `epmd -daemon` when none answers on 127.0.0.1:4369.
* `epmd_port(alive)` asks epmd where a node listens (PORT_PLEASE2_REQ); `None` if unknown.
* `ErlNode` runs `erl -name NAME@127.0.0.1 -setcookie COOKIE -noshell [-hidden]` with the
  `brain_it` driver: `eval("expr")` sends one Erlang expression and returns its result as
  printed by `~p` on one line (see brain_it.erl).
* `run_c_node(...)` runs the compiled C node once and returns its exit code and stdout lines.
* `erl_binary`, `erl_string`, `erl_atom` write Erlang source literals for Python values.

Everything is bounded in time; every process is stopped by its own pid.
"""

from __future__ import annotations

import glob
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EPMD_PORT = 4369
HOST = "127.0.0.1"


class ErlangError(AssertionError):
    """The Erlang driver crashed evaluating an expression, timed out, or went away."""


# --- building the tools ----------------------------------------------------------------------


@dataclass
class Tools:
    ebin: Path
    c_node: Path


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise AssertionError(f"`{program}` is missing: install Debian's {package}")
    return path


def build(into: Path) -> Tools:
    """Compiles the driver module and the C node into `into`."""
    erlc = _require("erlc", "erlang-nox (or erlang-base)")
    _require("erl", "erlang-nox (or erlang-base)")
    _require("epmd", "erlang-nox (or erlang-base)")
    gcc = _require("gcc", "gcc")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run([erlc, "-o", str(into), str(HERE / "brain_it.erl")], check=True, timeout=120,
                   capture_output=True)
    ei_dirs = sorted(glob.glob("/usr/lib/erlang/lib/erl_interface-*"))
    if not ei_dirs:
        raise AssertionError("erl_interface is missing under /usr/lib/erlang/lib: install Debian's erlang-dev")
    ei = ei_dirs[-1]
    c_node = into / "brain_ei"
    result = subprocess.run(
        [gcc, "-std=c11", "-D_DEFAULT_SOURCE", "-D_REENTRANT", "-Wall", "-Wextra", "-Werror", "-O1",
         f"-I{ei}/include", "-o", str(c_node), str(HERE / "brain_ei.c"), f"-L{ei}/lib", "-lei", "-lpthread"],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"compiling brain_ei.c failed:\n{result.stderr}")
    return Tools(ebin=into, c_node=c_node)


# --- epmd ------------------------------------------------------------------------------------


def _epmd_request(body: bytes, timeout: float = 2.0) -> bytes:
    with socket.create_connection((HOST, EPMD_PORT), timeout=timeout) as sock:
        sock.sendall(struct.pack(">H", len(body)) + body)
        data = bytearray()
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return bytes(data)
            data += chunk


def epmd_answers() -> bool:
    try:
        _epmd_request(b"n")  # NAMES_REQ
        return True
    except OSError:
        return False


def ensure_epmd(timeout: float = 10.0) -> None:
    """Starts `epmd -daemon` unless one answers; leaves it running for everyone."""
    if epmd_answers():
        return
    subprocess.run(["epmd", "-daemon"], check=True, timeout=10)
    deadline = time.monotonic() + timeout
    while not epmd_answers():
        if time.monotonic() > deadline:
            raise AssertionError("epmd did not answer on 127.0.0.1:4369 after `epmd -daemon`")
        time.sleep(0.1)


def epmd_names() -> dict[str, int]:
    """NAMES_REQ: {alive name: port} of every registered node."""
    reply = _epmd_request(b"n")
    names = {}
    for line in reply[4:].decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "name" and parts[2] == "at" and parts[3] == "port":
            names[parts[1]] = int(parts[4])
    return names


def epmd_port(alive: str) -> int | None:
    """PORT_PLEASE2_REQ: the distribution port of `alive`, or None if epmd does not know it."""
    reply = _epmd_request(b"z" + alive.encode())
    if len(reply) < 2 or reply[0] != 119:
        raise AssertionError(f"unexpected PORT2_RESP from epmd: {reply!r}")
    if reply[1] != 0:
        return None
    return struct.unpack(">H", reply[2:4])[0]


def wait_registered(alive: str, timeout: float = 30.0) -> int:
    """Polls epmd until `alive` is registered; returns its port."""
    deadline = time.monotonic() + timeout
    while True:
        port = epmd_port(alive)
        if port is not None:
            return port
        if time.monotonic() > deadline:
            raise AssertionError(f"{alive} did not register with epmd within {timeout}s (epmd knows {epmd_names()})")
        time.sleep(0.1)


def wait_unregistered(alive: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while epmd_port(alive) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{alive} is still registered with epmd after {timeout}s")
        time.sleep(0.1)


# --- Erlang literals -------------------------------------------------------------------------


def erl_binary(data: bytes) -> str:
    """`<<1,2,3>>`: exact for any bytes."""
    return "<<" + ",".join(str(b) for b in data) + ">>"


def erl_string(text: str | bytes) -> str:
    """A string literal (a list of character codes) for ASCII-printable text, else `[99,...]`."""
    codes = list(text.encode("latin-1") if isinstance(text, str) else text)
    if all(0x20 <= c < 0x7F and c not in (ord('"'), ord("\\")) for c in codes):
        return '"' + bytes(codes).decode("ascii") + '"'
    return "[" + ",".join(str(c) for c in codes) + "]"


def erl_atom(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- the erl client node ---------------------------------------------------------------------


class ErlNode:
    """`erl -name NAME@127.0.0.1 -setcookie COOKIE -noshell [-hidden] -eval 'brain_it:main()'`."""

    def __init__(self, tools: Tools, workdir: Path, alive: str, cookie: str, hidden: bool = False):
        self.tools = tools
        self.name = f"{alive}@{HOST}"
        self.cookie = cookie
        self.hidden = hidden
        self.log_path = Path(workdir) / f"erl-{alive}.log"
        self.process: subprocess.Popen | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._log_lock = threading.Lock()

    @property
    def argv(self) -> list[str]:
        argv = ["erl", "-name", self.name, "-setcookie", self.cookie, "-noshell", "-pa", str(self.tools.ebin)]
        if self.hidden:
            argv.append("-hidden")
        return argv + ["-eval", "brain_it:main()"]

    def start(self, timeout: float = 30.0) -> "ErlNode":
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log("$ " + " ".join(self.argv))
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._next_reply(timeout, "the erl node to start")
        if ready != f"ready {self.name}":
            raise ErlangError(f"erl did not start as expected: {ready!r}\n{self.log_tail()}")
        return self

    def _log(self, line: str) -> None:
        with self._log_lock, open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            log.write(line + "\n")

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("latin-1").rstrip("\n")
            self._log(line)
            if line.startswith("@@ "):
                self._replies.put(line[3:])
        self._replies.put(None)

    def _next_reply(self, timeout: float, what: str) -> str:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise ErlangError(f"no answer from {self.name} within {timeout}s waiting for {what}\n{self.log_tail()}") from None
        if line is None:
            raise ErlangError(f"{self.name} exited while waiting for {what}\n{self.log_tail()}")
        return line

    def eval(self, expression: str, timeout: float = 45.0) -> str:
        """Evaluates one expression (no trailing `.`) and returns `~p` of its value."""
        assert "\n" not in expression, "one expression per line"
        assert self.process is not None and self.process.stdin is not None
        self._log(f">> {expression[:2000]}")
        self.process.stdin.write(expression.encode("latin-1") + b".\n")
        self.process.stdin.flush()
        line = self._next_reply(timeout, expression[:200])
        kind, _, text = line.partition(" ")
        if kind == "ok":
            return text
        if kind == "crash":
            raise ErlangError(f"evaluating {expression[:500]} crashed: {text}")
        raise ErlangError(f"evaluating {expression[:500]} took longer than the driver's 30 s limit")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no erl log)"


# --- the C node ------------------------------------------------------------------------------


@dataclass
class CNodeRun:
    argv: list[str]
    exit_code: int
    lines: list[str]
    stderr: str

    def replies(self) -> dict[str, str]:
        """{step: printed reply} from the `reply <step> <term>` lines."""
        found = {}
        for line in self.lines:
            if line.startswith("reply "):
                _, step, term = line.split(" ", 2)
                found[step] = term
        return found

    def describe(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.exit_code}\nstdout:\n" + "\n".join(self.lines) + f"\nstderr:\n{self.stderr}"


def run_c_node(tools: Tools, target: str, cookie: str, alive: str, registered: str, scenario: str,
               *args: str, timeout: float = 60.0) -> CNodeRun:
    argv = [str(tools.c_node), target, cookie, alive, registered, scenario, *args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=10)
        raise AssertionError(f"the C node did not finish within {timeout}s: $ {' '.join(argv)}\n{out.decode(errors='replace')}")
    return CNodeRun(argv, process.returncode, out.decode("latin-1").splitlines(), err.decode("latin-1"))


class CNodeProcess:
    """The C node running in the background (for scenarios that last), its stdout in a file."""

    def __init__(self, tools: Tools, workdir: Path, target: str, cookie: str, alive: str, registered: str,
                 scenario: str, *args: str):
        self.argv = [str(tools.c_node), target, cookie, alive, registered, scenario, *args]
        self.out_path = Path(workdir) / f"c-node-{alive}.out"
        with open(self.out_path, "wb") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.out_path.read_text(encoding="latin-1")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (VmRSS in /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for row in status:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
