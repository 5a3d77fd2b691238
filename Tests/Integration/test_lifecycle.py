"""Start-up, the admin port and shutdown as a user sees them: configuration errors that name
the key, /health and /ready, and the spill file when the backend stays down at shutdown."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backends import BUCKET
from brain_client import command_line, expect_all, wait_until
from processes import brain_binary


def run_brain(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(brain_binary()), *args], capture_output=True, text=True, timeout=timeout,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.parametrize(
    "args, named",
    [
        (["--max-memroy", "1gb"], "max-memroy"),
        (["--max-memory", "12qb"], "max_memory"),
        (["--idle-ttl", "soon"], "idle_ttl"),
        (["--line-port", "70000"], "line_port"),
        (["--backend", "ftp://x"], "backend"),
        (["--bind", "0.0.0.0"], "secret"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(tmp_path, args, named):
    result = run_brain("serve", "--data-dir", str(tmp_path), *args)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr


def test_unknown_key_in_the_file_is_named(tmp_path):
    config = tmp_path / "brain.toml"
    config.write_text('line_port = 0\nmax_memroy = "1gb"\n')
    result = run_brain("serve", "--config", str(config))
    assert result.returncode != 0
    assert "max_memroy" in result.stderr and "brain.toml" in result.stderr, result.stderr


def test_config_print_shows_sources_and_masks_the_secret(tmp_path):
    result = run_brain("config", "print", "--line-port", "4000", env={"BRAIN_SECRET": "hunter2", "BRAIN_IDLE_TTL": "90s"})
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "line_port = 4000" in result.stdout
    assert 'secret = "********"' in result.stdout
    assert 'idle_ttl = "90s"' in result.stdout


def test_sample_config_file_is_accepted(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "brain.toml"
    result = run_brain("config", "print", "--config", str(sample))
    assert result.returncode == 0, result.stderr
    assert "line_port = 3697" in result.stdout


def test_health_ready_and_metrics(brain):
    node = brain()
    base = f"http://127.0.0.1:{node.admin_port}"
    for path, body in (("/health", b"ok\n"), ("/ready", b"ready\n")):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            assert response.status == 200 and response.read() == body
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in ("brain_backend_requests_total", "brain_keys", "brain_dirty_bytes", "brain_writeback_backlog",
                 "brain_memory_bytes", "brain_commands_total"):
        assert f"# TYPE {name} " in text, name
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "/nothing", timeout=5)
    assert missing.value.code == 404


def test_an_erlang_term_reads_back_in_erlang_syntax(brain, backend):
    # term_to_binary({hp,100,[sword,<<"shield">>]}), written by hand.
    etf = bytes([131, 104, 3, 119, 2]) + b"hp" + bytes([97, 100, 108, 0, 0, 0, 2, 119, 5]) + b"sword"
    etf += bytes([109, 0, 0, 0, 6]) + b"shield" + bytes([106])
    backend.put("term", "player:1", etf)
    node = brain()
    with node.client() as c:
        assert c.call("get", "player:1") == b'-{hp,100,[sword,<<"shield">>]}'


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
@pytest.mark.time_limit(300)
def test_backend_down_at_shutdown_spills_and_the_next_start_writes_back(brain, backend, moto):
    node = brain(flush_delay="60s", max_dirty_age="120s", shutdown_timeout="2s")
    values = {f"sp-{i:03d}": f"spilled value {i}" for i in range(50)}
    with node.client() as c:
        expect_all(c.pipeline([command_line("set", k, value=v) for k, v in values.items()]), {b"1"}, "writes")
        assert c.call("hsetkv", "sp-hash", "f", value="v") == b"1"
    moto.stop()
    assert node.stop(expect_exit=1, timeout=60) == 1
    spills = sorted(node.data_dir.glob("spill-*.brain"))
    assert len(spills) == 1, list(node.data_dir.iterdir())
    assert "saved to" in node.log_text() and "next start" in node.log_text()

    moto.start()
    moto.create_bucket(BUCKET)
    restarted = brain(data_dir=node.data_dir)
    for key, value in values.items():
        assert backend.get("string", key) == value.encode(), key
    assert backend.get("hash", "sp-hash") == b'{"f":"v"}'
    assert not list(node.data_dir.glob("spill-*.brain")), "the spill file is removed once written back"
    with restarted.client() as c:
        assert c.call("get", "sp-007") == b"-spilled value 7"
