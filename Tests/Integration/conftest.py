"""Fixtures for the integration tests: moto's S3 server, backend views, `brain serve` nodes.

* `workdir`: a temporary directory, removed after the test.
* `moto`: a running moto S3 server on a free loopback port, with the bucket `brain-it`.
* `backend`: a view of the node's backend; parametrized over `file` (a local directory)
  and `s3` (moto). Narrow it with `@pytest.mark.parametrize("backend", ["s3"], indirect=True)`.
* `brain`: a factory that starts `brain serve` against `backend`; every node it started is
  stopped with SIGTERM after the test, which must exit 0.

A failing test's report carries the tail of every node's log. Each test has a time limit
(`@pytest.mark.time_limit(seconds)`, default 240 s).
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from backends import BUCKET, PREFIX, FileBackendView, S3BackendView
from processes import BrainNode, MotoServer

DEFAULT_TIME_LIMIT = 240

_nodes_key = pytest.StashKey[list]()
_moto_key = pytest.StashKey[MotoServer]()
_call_report_key = pytest.StashKey[pytest.TestReport]()



@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_call_report_key] = report
    if report.failed:
        for node in item.stash.get(_nodes_key, []):
            report.sections.append((f"brain log: {node.name} ({node.log_path.name})", node.log_tail(200)))
        moto = item.stash.get(_moto_key, None)
        if moto is not None:
            report.sections.append(("moto log", moto.log_tail(40)))
    return report


def _test_failed(item) -> bool:
    report = item.stash.get(_call_report_key, None)
    return report is None or report.failed


@pytest.fixture(autouse=True)
def time_limit(request):
    marker = request.node.get_closest_marker("time_limit")
    seconds = marker.args[0] if marker else DEFAULT_TIME_LIMIT

    def expire(signum, frame):
        raise TimeoutError(f"test exceeded its time limit of {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="brain-it-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def moto(request, workdir):
    server = MotoServer(workdir)
    request.node.stash[_moto_key] = server
    server.start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture(params=["file", "s3"])
def backend(request, workdir):
    if request.param == "file":
        return FileBackendView(workdir / "backend")
    if request.param == "s3":
        return S3BackendView(request.getfixturevalue("moto"), BUCKET, PREFIX)
    raise ValueError(f"unknown backend {request.param}")


@pytest.fixture
def brain(request, workdir, backend):
    """`brain(**flags)` starts a node; `brain(data_dir=node.data_dir)` reuses a data dir."""
    nodes: list[BrainNode] = []
    request.node.stash[_nodes_key] = nodes

    def start(data_dir: Path | None = None, start_timeout: float = 60.0, **flags) -> BrainNode:
        index = len(nodes)
        node = BrainNode(
            workdir=workdir,
            backend=backend,
            data_dir=data_dir or workdir / f"data-{index}",
            flags=flags,
            name=f"brain-{index}",
        )
        nodes.append(node)
        node.start(timeout=start_timeout)
        return node

    yield start

    failed = _test_failed(request.node)
    problems = []
    for node in nodes:
        if not node.running:
            continue
        if failed:
            node.stop(expect_exit=None, timeout=10, quiet=True)
            continue
        try:
            node.stop(expect_exit=0, timeout=60)
        except AssertionError as error:
            problems.append(f"{node.name}: {error}")
    if problems:
        pytest.fail("node did not stop cleanly at teardown:\n" + "\n".join(problems))
