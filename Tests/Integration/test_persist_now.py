"""pset, pdel, hpsetkv, hpdel: the reply comes only after the backend has the change.

The node runs with a long flush_delay, so the ordinary write-back cannot explain an object
appearing (or disappearing) right after the reply.
"""

from __future__ import annotations

import json

SLOW_WRITE_BACK = {"flush_delay": "30s", "max_dirty_age": "60s", "idle_ttl": "10m"}


def test_pset_and_pdel_reach_the_backend_before_the_reply(brain, backend):
    node = brain(**SLOW_WRITE_BACK)
    with node.client() as c:
        assert c.call("set", "later", value="in memory only") == b"1"
        assert backend.get("string", "later") is None, "a plain set was written back at once"

        assert c.call("pset", "now", value="persisted now") == b"1"
        assert backend.get("string", "now") == b"persisted now"
        assert c.call("pset", "now", value="persisted again") == b"1"
        assert backend.get("string", "now") == b"persisted again"
        assert c.get("now") == b"persisted again"

        assert c.call("pset", "later", value="now persisted") == b"1"
        assert backend.get("string", "later") == b"now persisted"

        assert c.call("pdel", "now") == b"1"
        assert backend.get("string", "now") is None
        assert c.call("get", "now") == b"null"


def test_pdel_of_a_key_only_in_the_backend(brain, backend):
    backend.put("string", "cold", b"never loaded")
    node = brain(**SLOW_WRITE_BACK)
    with node.client() as c:
        assert c.call("pdel", "cold") == b"1"
        assert backend.get("string", "cold") is None
        assert c.call("get", "cold") == b"null"


def test_hpsetkv_and_hpdel_reach_the_backend_before_the_reply(brain, backend):
    node = brain(**SLOW_WRITE_BACK)
    with node.client() as c:
        assert c.call("hpsetkv", "ph", "f", value="v") == b"1"
        assert json.loads(backend.get("hash", "ph")) == {"f": "v"}
        assert c.call("hpsetkv", "ph", "g", value="w w") == b"1"
        assert json.loads(backend.get("hash", "ph")) == {"f": "v", "g": "w w"}
        assert c.call("hpsetkv", "ph", "g", value="w2") == b"0"
        assert json.loads(backend.get("hash", "ph")) == {"f": "v", "g": "w2"}

        assert c.call("hsetkv", "ph", "lazy", value="memory") == b"1"
        assert json.loads(backend.get("hash", "ph")) == {"f": "v", "g": "w2"}

        assert c.call("hpdel", "ph", "f") == b"1"
        assert json.loads(backend.get("hash", "ph")) == {"g": "w2", "lazy": "memory"}
        assert c.call("hpdel", "ph") == b"1"
        assert backend.get("hash", "ph") is None
        assert c.call("hget", "ph") == b"null"


def test_with_durability_backend_on_the_line_protocol(brain, backend):
    """`with durability=backend` makes one write wait for the backend; the next is lazy again."""
    node = brain(**SLOW_WRITE_BACK)
    with node.client() as c:
        assert c.call("with", "durability=backend", "set", "w", value="at once") == b"1"
        assert backend.get("string", "w") == b"at once"
        assert c.call("set", "w", value="lazily") == b"0"
        assert backend.get("string", "w") == b"at once"
        assert c.call("with", "durability=backend", "hsetkv", "wh", "f", value="v") == b"1"
        assert json.loads(backend.get("hash", "wh")) == {"f": "v"}
        assert c.call("with", "durability=backend", "del", "w") == b"1"
        assert backend.get("string", "w") is None

        # Options that do not apply are refused by name, and change nothing.
        assert c.call("with", "durability=backend", "get", "w").startswith(b"error bad_option: durability applies only")
        assert c.call("with", "durability=memory", "pset", "w", value="x").startswith(
            b"error bad_option: a persist-now command")
        assert c.call("with", "durability=log", "set", "w", value="x").startswith(
            b"error bad_option: durability=log needs the append-only log")
        assert c.call("with", "durability=disk", "set", "w", value="x") == (
            b"error bad_option: durability=disk is not memory, log or backend")
        assert c.call("get", "w") == b"null"


def test_with_durability_memory_on_a_backend_node(brain, backend):
    node = brain(durability="backend", **SLOW_WRITE_BACK)
    with node.client() as c:
        assert c.call("set", "b", value="acknowledged by the backend") == b"1"
        assert backend.get("string", "b") == b"acknowledged by the backend"
        assert c.call("with", "durability=memory", "set", "m", value="in memory") == b"1"
        assert backend.get("string", "m") is None, "durability=memory waited for the backend"
        assert c.get("m") == b"in memory"
