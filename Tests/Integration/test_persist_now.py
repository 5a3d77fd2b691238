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
