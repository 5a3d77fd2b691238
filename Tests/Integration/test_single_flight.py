"""A hundred clients missing the same key at once cause one backend read."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

CLIENTS = 100


def test_simultaneous_misses_make_one_backend_read(brain, backend):
    value = b"loaded once " + b"0123456789" * 50
    backend.put("string", "hot-key", value)
    node = brain()
    clients = [node.client() for _ in range(CLIENTS)]
    try:
        # Every connection is established and served before the race starts.
        for c in clients:
            assert c.call("vget", "warm-up") == b"null"
        gets_before = node.metrics().backend("get", "ok")
        barrier = threading.Barrier(CLIENTS, timeout=30)

        def race(c):
            barrier.wait()
            c.send_raw(b"get hot-key\r\n")
            return c.read_line(timeout=30)

        with ThreadPoolExecutor(CLIENTS) as pool:
            replies = list(pool.map(race, clients))
    finally:
        for c in clients:
            c.close()
    wrong = [r for r in replies if r != b"-" + value]
    assert not wrong, f"{len(wrong)} of {CLIENTS} replies were wrong, first: {wrong[0][:80]!r}"
    gets = node.metrics().backend("get", "ok") - gets_before
    assert gets == 1, f"{CLIENTS} simultaneous misses made {gets:.0f} backend reads"
