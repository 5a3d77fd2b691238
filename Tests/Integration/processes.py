"""The processes an integration test runs: moto's S3 server and `brain serve`.

Every wait is bounded; every process is stopped by its own pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from brain_client import LineClient, Metrics, scrape, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def brain_binary() -> Path:
    """`BRAIN_BINARY`, or the debug build of the package."""
    return Path(os.environ.get("BRAIN_BINARY", REPO_ROOT / ".build" / "debug" / "brain"))


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _terminate(process: subprocess.Popen, timeout: float) -> tuple[int, bool]:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns (exit code, whether it hung)."""
    if process.poll() is not None:
        return process.returncode, False
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10), True


class MotoServer:
    """`python3 -m moto.server` on 127.0.0.1, stoppable and restartable on the same port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / f"moto-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self._client = None

    def start(self, timeout: float = 30.0) -> None:
        assert self.process is None or self.process.poll() is not None, "moto is already running"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"moto exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(answers, timeout, f"moto to answer on port {self.port}", interval=0.1)

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process, timeout=10)
        # The port must be refusing connections before a test relies on the outage.
        wait_until(lambda: not port_accepts(self.port), 10, "moto's port to close")

    def restart(self) -> None:
        """A fresh moto on the same port; like a real outage, it has lost every bucket."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                region_name="us-east-1",
                config=Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=3,
                    read_timeout=20,
                    max_pool_connections=20,
                ),
            )
        return self._client

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no moto log)"


class BrainNode:
    """One `brain serve` process with its own ports, data dir and log file."""

    def __init__(self, workdir: Path, backend, data_dir: Path, flags: dict[str, str], name: str):
        self.workdir = Path(workdir)
        self.backend = backend
        self.data_dir = Path(data_dir)
        self.flags = dict(flags)
        self.name = name
        self.line_port = free_port()
        self.admin_port = free_port()
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None

    @property
    def argv(self) -> list[str]:
        argv = [
            str(brain_binary()),
            "serve",
            "--backend", self.backend.url,
            "--data-dir", str(self.data_dir),
            "--line-port", str(self.line_port),
            "--admin-port", str(self.admin_port),
        ]
        for key, value in self.flags.items():
            argv += ["--" + key.replace("_", "-"), str(value)]
        return argv

    def environment(self) -> dict[str, str]:
        # A clean slate: no BRAIN_* or AWS_* setting of the caller leaks into the node.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAIN_", "AWS_"))}
        env.update(self.backend.env)
        return env

    def start(self, timeout: float = 60.0) -> "BrainNode":
        binary = brain_binary()
        if not binary.exists():
            raise AssertionError(f"the brain binary is missing: {binary} (build it, or set BRAIN_BINARY)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(self.argv) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                cwd=self.workdir,
                start_new_session=True,
            )

        def listening() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"brain exited with {self.process.returncode} before listening:\n{self.log_tail()}"
                )
            return port_accepts(self.line_port)

        wait_until(listening, timeout, f"brain to accept on line port {self.line_port}", interval=0.05)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, expect_exit: int | None = 0, timeout: float = 60.0, quiet: bool = False) -> int:
        """SIGTERM; SIGKILL after `timeout`. Asserts the exit code when `expect_exit` is set,
        and that the node did not hang unless `quiet` (cleaning up after a failed test)."""
        assert self.process is not None, "node was never started"
        code, hung = _terminate(self.process, timeout)
        self.exit_code = code
        if quiet:
            return code
        if hung:
            raise AssertionError(f"brain did not exit within {timeout}s of SIGTERM (killed):\n{self.log_tail()}")
        if expect_exit is not None and code != expect_exit:
            raise AssertionError(f"brain exited with {code} after SIGTERM, expected {expect_exit}:\n{self.log_tail()}")
        return code

    def wait_exit(self, timeout: float) -> int:
        """Waits for the node to exit on its own (after `shutdown`)."""
        assert self.process is not None
        try:
            self.exit_code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"brain still running {timeout}s after shutdown:\n{self.log_tail()}")
        return self.exit_code

    def kill(self) -> None:
        if self.running:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self, timeout: float = 10.0) -> LineClient:
        return LineClient(self.line_port, timeout=timeout)

    def metrics(self) -> Metrics:
        return scrape(self.admin_port)

    def wait_drained(self, timeout: float = 60.0) -> Metrics:
        """Polls until brain_writeback_backlog == 0 and brain_keys{state="dirty"} == 0."""
        state: dict[str, Metrics] = {}

        def drained() -> bool:
            state["m"] = self.metrics()
            return state["m"].backlog == 0 and state["m"].dirty_keys == 0

        try:
            wait_until(drained, timeout, "the write-back to drain", interval=0.1)
        except AssertionError:
            m = state.get("m")
            detail = f"backlog={m.backlog} dirty_keys={m.dirty_keys} dirty_bytes={m.dirty_bytes}" if m else ""
            raise AssertionError(f"write-back did not drain within {timeout}s ({detail})") from None
        return state["m"]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
