"""What the side-by-side benchmark scripts share: the brain binary, the servers they start
(Brain, memcached, Redis, moto), the figures they read from /proc and from the servers
themselves, and tables.

Every server is started on a free loopback port, in a session of its own, and registered
with a `Processes` context; leaving the context (normally, by an exception, Ctrl-C or
SIGTERM) stops each one by its pid: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class BenchFailure(Exception):
    """A benchmark could not run or its result is unusable; the message says why."""


# --- the brain binary --------------------------------------------------------------------


def brain_binary(build: bool) -> Path:
    """`BRAIN_BINARY` when set; otherwise the release build, built first unless `build` is
    false (then it must already exist)."""
    if os.environ.get("BRAIN_BINARY"):
        path = Path(os.environ["BRAIN_BINARY"]).resolve()
        if not path.exists():
            raise BenchFailure(f"BRAIN_BINARY names a missing file: {path}")
        return path
    if build:
        log("building brain in release (swift build -c release --product brain)")
        subprocess.run(["swift", "build", "-c", "release", "--product", "brain"], cwd=REPO_ROOT, check=True)
    path = Path(
        subprocess.run(
            ["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO_ROOT, check=True,
            capture_output=True, text=True,
        ).stdout.strip()
    ) / "brain"
    if not path.exists():
        raise BenchFailure(f"no release build at {path}: run without --no-build")
    return path


def log(message: str) -> None:
    print(f"== {message}", file=sys.stderr, flush=True)


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchFailure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Server:
    """A server process started by a script."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path, env: dict | None = None):
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = workdir / f"{name}-{port}.log"
        with open(self.log_path, "wb") as output:
            output.write(("$ " + " ".join(argv) + "\n").encode())
            output.flush()
            self.process = subprocess.Popen(
                argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env, cwd=workdir,
            )

        def listening() -> bool:
            if self.process.poll() is not None:
                raise BenchFailure(f"{name} exited with {self.process.returncode} before listening:\n{self.log_tail()}")
            return port_accepts(port)

        wait_until(listening, 60, f"{name} to listen on port {port}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30, force: bool = False) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; SIGKILL at once when `force` (for a
        server whose data is thrown away). Returns the exit status."""
        if self.process.poll() is None and force:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def rss_bytes(self) -> int:
        """Resident set size, from /proc/<pid>/status (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise BenchFailure(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread, from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of the file (utime, stime) are 12 and 13 after the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class Processes:
    """Owns the servers and the scratch directory of one script run; stops every server on
    the way out, whatever the way out. SIGTERM and SIGHUP become SystemExit so that the
    way out runs."""

    def __init__(self, keep: bool = False):
        self.servers: list[Server] = []
        self.keep = keep
        self.workdir = Path(tempfile.mkdtemp(prefix="brain-bench-"))
        self.directories = [self.workdir]

    def __enter__(self) -> "Processes":
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as error:  # keep stopping the others
                print(f"could not stop {server.name} ({server.pid}): {error}", file=sys.stderr)
        self.servers.clear()
        if not self.keep:
            subprocess.run(["rm", "-rf", *map(str, self.directories)], check=False)
        else:
            log(f"logs and data kept in {', '.join(map(str, self.directories))}")

    def memory_directory(self) -> Path:
        """A scratch directory on tmpfs (/dev/shm) when there is one, removed on the way out:
        for a file backend whose fsyncs must cost nothing. Its pages are page cache, never
        part of a process's RSS."""
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        path = Path(tempfile.mkdtemp(prefix="brain-bench-backend-", dir=base))
        self.directories.append(path)
        return path

    def start(self, name: str, argv: list[str], port: int, env: dict | None = None) -> Server:
        server = Server(name, argv, port, self.workdir, env)
        self.servers.append(server)
        return server

    def stop(self, server: Server, timeout: float = 30, force: bool = False) -> int:
        code = server.stop(timeout, force)
        self.servers.remove(server)
        return code

    def brain(self, binary: Path, backend: str, flags: dict[str, str], name: str = "brain", env: dict | None = None) -> "Brain":
        line_port = free_port()
        admin_port = free_port()
        data_dir = self.workdir / f"{name}-data-{line_port}"
        argv = [
            str(binary), "serve", "--backend", backend, "--data-dir", str(data_dir),
            "--line-port", str(line_port), "--admin-port", str(admin_port),
        ]
        for key, value in flags.items():
            argv += ["--" + key.replace("_", "-"), str(value)]
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAIN_", "AWS_"))}
        clean_env.update(env or {})
        server = self.start(name, argv, line_port, clean_env)
        brain = Brain(server, admin_port)
        wait_until(brain.ready, 60, "brain's /ready")
        return brain

    def memcached(self, memory_mb: int, threads: int = 2) -> Server:
        port = free_port()
        argv = ["memcached", "-t", str(threads), "-m", str(memory_mb), "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-c", "4096"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        return self.start("memcached", argv, port)

    def redis(self) -> Server:
        port = free_port()
        argv = [
            "redis-server", "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1",
            "--daemonize", "no", "--dir", str(self.workdir), "--maxclients", "4096",
        ]
        return self.start("redis", argv, port)

    def moto(self) -> Server:
        port = free_port()
        return self.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


# --- Brain's admin port --------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


class Brain:
    """A running `brain serve` and its admin port."""

    def __init__(self, server: Server, admin_port: int):
        self.server = server
        self.admin_port = admin_port

    @property
    def port(self) -> int:
        return self.server.port

    def ready(self) -> bool:
        if not self.server.running():
            raise BenchFailure(f"brain exited with {self.server.process.returncode}:\n{self.server.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed `name{labels}` exactly as printed."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match and not line.startswith("#"):
                samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        return samples

    def backend_requests(self, op: str, outcome: str | None = None) -> int:
        """brain_backend_requests_total for `op`, of one outcome or of all."""
        total = 0.0
        for key, value in self.metrics().items():
            if key.startswith("brain_backend_requests_total{") and f'op="{op}"' in key:
                if outcome is None or f'outcome="{outcome}"' in key:
                    total += value
        return int(total)

    def memory_bytes(self) -> dict[str, int]:
        """brain_memory_bytes by kind (slab, index, raw_values)."""
        out = {}
        for key, value in self.metrics().items():
            match = re.match(r'brain_memory_bytes\{kind="([a-z_]+)"\}', key)
            if match:
                out[match.group(1)] = int(value)
        return out

    def wait_drained(self, timeout: float = 600) -> None:
        """Until nothing waits for write-back."""

        def drained() -> bool:
            metrics = self.metrics()
            return metrics.get("brain_writeback_backlog", 1) == 0 and metrics.get('brain_keys{state="dirty"}', 1) == 0

        wait_until(drained, timeout, "brain's write-back to drain", interval=0.25)


# --- memcached and Redis introspection -----------------------------------------------------


def memcached_stats(port: int, group: str = "") -> dict[str, str]:
    """`stats` (or `stats <group>`) as a dictionary."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"stats {group}\r\n".encode() if group else b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    stats = {}
    for line in data.decode().splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    return stats


def redis_info(port: int, section: str = "memory") -> dict[str, str]:
    """`INFO <section>` as a dictionary."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"INFO {section}\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            header, _, rest = data.partition(b"\r\n")
            if header.startswith(b"$") and len(rest) >= int(header[1:]) + 2:
                break
    info = {}
    for line in data.decode().splitlines()[1:]:
        key, sep, value = line.partition(":")
        if sep:
            info[key] = value
    return info


# --- running `brain bench` -----------------------------------------------------------------


def run_bench(binary: Path, arguments: list[str], timeout: float = 3600) -> dict:
    """Runs `brain bench ... --json` and returns its result; fails on a non-zero exit."""
    argv = [str(binary), "bench", *arguments, "--json"]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise BenchFailure(f"`{' '.join(argv)}` failed ({completed.returncode}): {completed.stderr.strip()}")
    return json.loads(completed.stdout)


# --- the machine and tables ----------------------------------------------------------------


def machine() -> dict:
    """What the numbers were measured on."""
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "kernel": os.uname().release,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def load_average() -> float:
    return os.getloadavg()[0]


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (user, nice, system, irq, softirq, steal),
    from /proc/stat. Minus what the servers and `brain bench` used over a run, it is what
    other processes took: a run where that is large was disturbed."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def busy_builds() -> list[str]:
    """Command lines of Swift builds running on the machine: numbers taken meanwhile are
    worthless."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith((b"swift-build", b"swift-frontend", b"swift-test")):
            found.append(b" ".join(argv)[:120].decode(errors="replace"))
    return found


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table; the first column is left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(row) for row in rows]])


def thousands(value: float) -> str:
    return f"{value:,.0f}"
