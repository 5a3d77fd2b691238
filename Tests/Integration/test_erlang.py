"""The Erlang transport as its users see it: a real OTP node and an erl_interface C node.

A real `erl -name client-...@127.0.0.1 -setcookie <secret> -noshell` runs the `brain_it`
driver (erlang/brain_it.erl) and sends Brain the first Brain's messages exactly as an
application written for it does (`{brain, Node} ! {s, Id, Value}`, `{g, true|false, Id,
self(), null}` with a receive timeout, `{p, Id}`). The C node (erlang/brain_ei.c, compiled
here against Debian's erlang-dev `ei`) plays the PHP bridge's part: `ei_connect_init`,
`ei_connect`, `ei_reg_send`, `ei_receive_msg`.

Each test starts `brain serve --erlang-node <unique>@127.0.0.1 --secret <cookie>`, waits for
it to register with epmd, and asserts only what a client sees: the reply (compared with
`=:=` in Erlang, so `1` is not `1.0` and `"a"` is not `<<"a">>`), the line protocol's view
of the same key, and the backend's objects.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time

import pytest

from brain_client import wait_until
from erlang.nodes import (
    CNodeProcess,
    ErlNode,
    build,
    ensure_epmd,
    epmd_port,
    erl_atom,
    erl_binary,
    erl_string,
    rss_bytes,
    run_c_node,
    wait_registered,
    wait_unregistered,
)
from processes import brain_binary

COOKIE = "brain-it-cookie"
"""The node's `secret`, hence the cookie every well-behaved client presents."""

SLOW_WRITE_BACK = {"flush_delay": "30s", "max_dirty_age": "60s", "idle_ttl": "10m"}
"""With these, only `{p, Id}` (or shutdown) can explain an object appearing in the backend."""

FILE_BACKEND = pytest.mark.parametrize("backend", ["file"], indirect=True)

SHIELD = '{hp,100,[sword,<<"shield">>]}'

_names = itertools.count()


def unique(prefix: str) -> str:
    """An alive name no other test (or concurrent run) uses: `<prefix>_<pid>_<n>`."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tools(tmp_path_factory):
    """brain_it.beam and the brain_ei C node, built once; epmd running."""
    built = build(tmp_path_factory.mktemp("erlang-tools"))
    ensure_epmd()
    return built


@pytest.fixture
def erlang_brain(brain, tools):
    """`erlang_brain(**flags)`: a node with the Erlang transport on, registered with epmd.

    The node gets a unique `erlang_node` (pass `erlang_node=` to reuse one, as a restart
    does) and `secret=COOKIE`. It carries `.erlang_node` and `.alive`."""

    def start(erlang_node: str | None = None, **flags):
        name = erlang_node or f"{unique('brain_it')}@127.0.0.1"
        flags.setdefault("secret", COOKIE)
        node = brain(erlang_node=name, **flags)
        node.erlang_node = name
        node.alive = name.split("@", 1)[0]
        wait_registered(node.alive, timeout=30)
        return node

    return start


@pytest.fixture
def erl(tools, workdir):
    """`erl(target=node, cookie=COOKIE, hidden=False, registered="brain")`: a started client."""
    started: list[ErlNode] = []

    def start(target=None, cookie: str = COOKIE, hidden: bool = False, registered: str = "brain") -> ErlNode:
        client = ErlNode(tools, workdir, unique("client"), cookie, hidden=hidden)
        started.append(client)
        client.start()
        if target is not None:
            use(client, target, registered)
        return client

    yield start
    for client in started:
        client.stop()
        # Shown by pytest only when the test fails.
        print(f"---- {client.name} ----\n{client.log_tail(80)}")


def use(client: ErlNode, node, registered: str = "brain") -> None:
    assert client.eval(f"brain_it:use({erl_atom(registered)}, {erl_atom(node.erlang_node)})") == "ok"


def line(node):
    """A line-protocol connection to `node`, authenticated with the secret."""
    client = node.client()
    reply = client.call("auth", COOKIE)
    assert reply == b"1", f"auth {COOKIE} answered {reply!r}"
    return client


def g(client: ErlNode, consistency: str, id_literal: str) -> str:
    return client.eval(f"brain_it:g({consistency}, {id_literal})")


# --- s, g and p ------------------------------------------------------------------------------


@FILE_BACKEND
def test_set_then_get_with_both_consistencies_and_a_missing_key(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:s("user:1", <<"hello">>)') == "ok"
    assert g(client, "true", '"user:1"') == '{ok,<<"hello">>}'
    assert g(client, "false", '"user:1"') == '{ok,<<"hello">>}'

    # An update replaces the value, seen by the next read of the same process.
    assert client.eval('begin brain_it:s("user:1", <<"updated">>), brain_it:g(true, "user:1") end') == '{ok,<<"updated">>}'
    assert g(client, "false", '"user:1"') == '{ok,<<"updated">>}'

    # A key never set: `ko`, with either consistency, and the same again (remembered miss).
    for consistency in ("true", "false", "true"):
        assert g(client, consistency, '"never:set"') == "ko", consistency
        assert g(client, consistency, '<<"never:set:either">>') == "ko", consistency


# Every kind of value, as (label, Erlang expression). `g` must return exactly (=:=) the term
# that `s` sent. The expressions run in the client, so pids, refs and funs are real ones.
VALUES = [
    ("binary", '<<"hello">>'),
    ("empty binary", "<<>>"),
    ("all 256 bytes", "list_to_binary(lists:seq(0, 255))"),
    ("960,000-byte binary (the engine's value limit is 1,000,000)", 'binary:copy(<<"0123456789abcdef">>, 60000)'),
    ("string", '"hello world"'),
    ("empty string (nil)", "[]"),
    ("latin-1 string", "[99, 97, 102, 233, 0, 255]"),
    ("string over 65535 characters (LIST_EXT)", "lists:duplicate(70000, $a)"),
    ("list of code points over 255", "[26085, 26412, 35486]"),
    ("zero", "0"),
    ("small integer", "255"),
    ("integer", "256"),
    ("negative integer", "-1"),
    ("int32 max", "2147483647"),
    ("int32 min", "-2147483648"),
    ("just past int32", "2147483648"),
    ("bignum 2^64", "1 bsl 64"),
    ("negative bignum", "-(1 bsl 64) - 7"),
    ("bignum 2^2000 (LARGE_BIG_EXT)", "1 bsl 2000 + 12345"),
    ("float", "3.14159"),
    ("negative float", "-0.5"),
    ("float 1.0 (not the integer 1)", "1.0"),
    ("huge float", "1.0e300"),
    ("denormal float", "5.0e-324"),
    ("atom", "ok"),
    ("atom with a space", "'hello world'"),
    ("atom true", "true"),
    ("atom null", "null"),
    ("unicode atom", "list_to_atom([26085, 26412])"),
    ("empty tuple", "{}"),
    ("the shield record", SHIELD),
    ("nested tuples", '{a, {b, {c, [1, 2, {d, <<"e">>}], 2.5}}, "str"}'),
    ("tuple of 300 (LARGE_TUPLE_EXT)", "list_to_tuple(lists:seq(1, 300))"),
    ("list of mixed terms", '[1, <<"b">>, "c", 4.5, x, {y}]'),
    ("list of small integers and a big one", "[1, 2, 256]"),
    ("improper list", "[a, b | c]"),
    ("deeply nested list", "lists:foldl(fun(_, Acc) -> [Acc] end, leaf, lists:seq(1, 50))"),
    ("empty map", "#{}"),
    ("map", '#{a => 1, <<"b">> => [2], {c} => #{d => e}, "s" => 1.5}'),
    ("map of 100 pairs", "maps:from_list([{N, N * N} || N <- lists:seq(1, 100)])"),
    ("pid (self)", "self()"),
    ("pid inside a tuple", "{owner, self(), 7}"),
    ("reference", "make_ref()"),
    ("port", "hd(erlang:ports())"),
    ("export fun", "fun lists:reverse/1"),
    ("closure", "begin N = 41, fun(X) -> X + N end end"),
    ("bit string", "<<1:3>>"),
    ("bit string after bytes", '<<"abc", 5:4>>'),
]


@FILE_BACKEND
@pytest.mark.time_limit(300)
def test_every_kind_of_value_comes_back_exactly_as_set(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    failures = []
    for index, (label, expression) in enumerate(VALUES):
        key = erl_string(f"kind:{index}")
        try:
            result = client.eval(f"brain_it:set_get({key}, {expression})")
        except AssertionError as error:
            result = f"error: {error}"
        if result != "same":
            failures.append(f"{label}: {{s, {key}, {expression}}} then g true/false -> {result}")
    assert not failures, "values that did not come back exactly:\n" + "\n".join(failures)

    # And they still do later, from another process, through both consistencies.
    later = []
    for index, (label, expression) in enumerate(VALUES):
        if "self()" in expression or "make_ref" in expression:
            continue  # a different process would build a different pid or ref
        result = client.eval(f"brain_it:check({erl_string(f'kind:{index}')}, {expression})")
        if result != "same":
            later.append(f"{label}: {result}")
    assert not later, "values that changed on a later read:\n" + "\n".join(later)


@FILE_BACKEND
def test_a_value_over_the_limit_is_not_stored_and_the_link_stays_up(erlang_brain, erl):
    # The engine's value limit is 1,000,000 bytes; `s` has no reply, so the client sees the
    # old value on its next read, and the 1 MB frame does not disturb the link.
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:set_get("big", <<"small">>)') == "same"
    assert client.eval('brain_it:s("big", binary:copy(<<"x">>, 1000001))') == "ok"
    assert client.eval('brain_it:check("big", <<"small">>)') == "same"
    assert client.eval('brain_it:set_get("big", binary:copy(<<"y">>, 1000000))') == "same"
    assert client.eval("brain_it:connected()") == "true"


@FILE_BACKEND
def test_a_string_id_and_a_binary_id_name_the_same_key(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:s("same:key", <<"via string id">>)') == "ok"
    assert g(client, "true", '<<"same:key">>') == '{ok,<<"via string id">>}'
    assert g(client, "false", '<<"same:key">>') == '{ok,<<"via string id">>}'

    assert client.eval('brain_it:s(<<"same:key">>, <<"via binary id">>)') == "ok"
    assert g(client, "true", '"same:key"') == '{ok,<<"via binary id">>}'
    assert g(client, "false", '<<"same:key">>') == '{ok,<<"via binary id">>}'

    # A string Id with bytes above 127 and the binary of the same bytes.
    assert client.eval('brain_it:s([107, 233, 255], {latin1, key})') == "ok"
    assert g(client, "true", "<<107, 233, 255>>") == "{ok,{latin1,key}}"

    # The line protocol names the same key by the same bytes.
    with line(node) as c:
        assert c.get("same:key") == b"via binary id"
        assert c.call("get", b"k\xe9\xff") == b"-{latin1,key}"


@pytest.mark.time_limit(300)
def test_p_writes_the_object_to_the_backend_now(erlang_brain, erl, backend):
    node = erlang_brain(**SLOW_WRITE_BACK)
    client = erl(target=node)
    data = bytes(range(256))

    assert client.eval(f'brain_it:s("p:bin", {erl_binary(data)})') == "ok"
    assert client.eval('brain_it:s("p:str", "a string value")') == "ok"
    assert client.eval(f'brain_it:s("p:term", {SHIELD})') == "ok"
    assert client.eval('brain_it:s("p:later", <<"not persisted yet">>)') == "ok"
    # The sets are in memory (the reads answer), and nothing is in the backend yet.
    assert client.eval(f'brain_it:check("p:bin", {erl_binary(data)})') == "same"
    assert backend.get("string", "p:bin") is None, "a plain s was written back at once"

    for key in ("p:bin", "p:str", "p:term"):
        assert client.eval(f'brain_it:p("{key}")') == "ok"

    wait_until(lambda: backend.get("string", "p:bin") is not None, 10, "{p, \"p:bin\"} to reach the backend")
    assert backend.get("string", "p:bin") == data
    wait_until(lambda: backend.get("string", "p:str") is not None, 10, "{p, \"p:str\"} to reach the backend")
    assert backend.get("string", "p:str") == b"a string value"
    wait_until(lambda: backend.get("term", "p:term") is not None, 10, "{p, \"p:term\"} to reach the backend")
    stored = backend.get("term", "p:term")
    assert stored[:1] == b"\x83", f"the term object is not External Term Format: {stored[:16]!r}"
    assert client.eval(f'brain_it:decodes_to("{stored.hex()}", {SHIELD})') == "same"

    # Only what was persisted is there; the value is still readable, unchanged.
    assert backend.get("string", "p:later") is None
    assert client.eval(f'brain_it:check("p:term", {SHIELD})') == "same"

    # A p after an update writes the latest value.
    assert client.eval('begin brain_it:s("p:bin", <<"second">>), brain_it:p("p:bin") end') == "ok"
    wait_until(lambda: backend.get("string", "p:bin") == b"second", 10, "the updated value to reach the backend")


def test_with_durability_backend_in_an_erlang_request(erlang_brain, erl, backend):
    node = erlang_brain(**SLOW_WRITE_BACK)
    client = erl(target=node)
    assert client.eval('brain_it:call({with, [{durability, backend}], {set, <<"w:1">>, <<"now">>}})') == "true"
    assert backend.get("string", "w:1") == b"now", "the reply came before the backend had the value"
    assert client.eval('brain_it:call({with, #{durability => backend}, {hset, <<"w:h">>, <<"f">>, <<"v">>}})') == "true"
    assert json.loads(backend.get("hash", "w:h")) == {"f": "v"}
    assert client.eval('brain_it:call({set, <<"w:2">>, <<"later">>})') == "true"
    assert backend.get("string", "w:2") is None
    # An option that does not apply: {error, bad_option, Why}; a malformed one: bad_command.
    assert client.eval(
        'case brain_it:call({with, [{durability, log}], {set, <<"w:3">>, <<"x">>}}) of '
        '{error, bad_option, Why} when is_binary(Why) -> bad_option; Other -> Other end') == "bad_option"
    assert bad_command(client, '{with, [{durability, disk}], {set, <<"w:3">>, <<"x">>}}') == "bad_command"


# --- Brain2's operations as {Pid, Ref, Command} requests (docs/erlang.md) ----------------------


def bad_command(client: ErlNode, command: str) -> str:
    """`bad_command` when `{self(), Ref, Command}` is answered `{Ref, {error, bad_command, Why}}`
    with `Why` a binary; otherwise the result as it came."""
    return client.eval(
        f"case brain_it:call({command}) of {{error, bad_command, Why}} when is_binary(Why) -> bad_command; "
        f"Other -> Other end"
    )


@pytest.mark.time_limit(300)
def test_brain2_operations_as_requests(erlang_brain, erl, backend):
    node = erlang_brain(**SLOW_WRITE_BACK)
    client = erl(target=node)

    def call(command: str) -> str:
        return client.eval(f"brain_it:call({command})")

    # Strings: get, set (true = created, false = existed), del; a key as a binary or a string.
    assert call('{get, <<"b2:s">>}') == "not_found"
    assert call('{set, <<"b2:s">>, <<"one">>}') == "true"
    assert call('{set, "b2:s", <<"two">>}') == "false"
    assert call('{get, "b2:s"}') == '{ok,<<"two">>}'
    assert g(client, "true", '"b2:s"') == '{ok,<<"two">>}'
    # A value keeps its kind, as with s: a term comes back as the term, a string as a string.
    assert call(f'{{set, <<"b2:t">>, {SHIELD}}}') == "true"
    assert call('{get, <<"b2:t">>}') == "{ok," + SHIELD + "}"
    assert call('{set, <<"b2:l">>, "a list"}') == "true"
    assert client.eval('brain_it:call({get, <<"b2:l">>}) =:= {ok, "a list"}') == "true"
    assert call('{del, <<"b2:s">>}') == "true"
    assert call('{del, <<"b2:s">>}') == "false"
    assert call('{get, <<"b2:s">>}') == "not_found"
    assert g(client, "false", '"b2:s"') == "ko"

    # pset and pdel answer once the backend has the change (flush_delay is 30 s).
    assert call('{pset, <<"b2:p">>, <<"persisted">>}') == "true"
    assert backend.get("string", "b2:p") == b"persisted"
    assert call('{set, <<"b2:q">>, <<"memory first">>}') == "true"
    assert backend.get("string", "b2:q") is None
    assert call('{persist, <<"b2:q">>}') == "true"
    assert backend.get("string", "b2:q") == b"memory first"
    assert call('{pdel, <<"b2:p">>}') == "true"
    assert backend.get("string", "b2:p") is None
    assert call('{get, <<"b2:p">>}') == "not_found"

    # Volatile values: their own namespace, never written to the backend.
    assert call('{vget, <<"b2:v">>}') == "not_found"
    assert call('{vset, <<"b2:v">>, <<"volatile">>}') == "true"
    assert call('{vset, <<"b2:v">>, "again"}') == "false"
    assert call('{vget, "b2:v"}') == '{ok,<<"again">>}'
    assert call('{get, <<"b2:v">>}') == "not_found"
    assert call('{vdel, <<"b2:v">>}') == "true"
    assert call('{vget, <<"b2:v">>}') == "not_found"
    assert bad_command(client, '{vset, <<"b2:v">>, {not_bytes}}') == "bad_command"

    # Hashes: fields and values are binaries (or strings); hget answers a map of binaries.
    assert call('{hget, <<"b2:h">>}') == "not_found"
    assert call('{hset, <<"b2:h">>, <<"f1">>, <<"v1">>}') == "true"
    assert call('{hset, <<"b2:h">>, "f1", "v1b"}') == "false"
    assert call('{hset, <<"b2:h">>, <<"f2">>, <<"v2">>}') == "true"
    assert client.eval(
        'brain_it:call({hget, <<"b2:h">>}) =:= {ok, #{<<"f1">> => <<"v1b">>, <<"f2">> => <<"v2">>}}'
    ) == "true", call('{hget, <<"b2:h">>}')
    assert client.eval(
        'brain_it:call({hget, <<"b2:h">>, [<<"f2">>]}) =:= {ok, #{<<"f2">> => <<"v2">>}}'
    ) == "true", call('{hget, <<"b2:h">>, [<<"f2">>]}')
    assert call('{hpset, <<"b2:h">>, <<"f3">>, <<"v3">>}') == "true"
    assert json.loads(backend.get("hash", "b2:h")) == {"f1": "v1b", "f2": "v2", "f3": "v3"}
    assert call('{hdel, <<"b2:h">>, [<<"f1">>]}') == "true"
    assert client.eval(
        'brain_it:call({hget, <<"b2:h">>}) =:= {ok, #{<<"f2">> => <<"v2">>, <<"f3">> => <<"v3">>}}'
    ) == "true", call('{hget, <<"b2:h">>}')
    assert call('{hpdel, <<"b2:h">>, [<<"f2">>]}') == "true"
    assert json.loads(backend.get("hash", "b2:h")) == {"f3": "v3"}
    assert call('{hpdel, <<"b2:h">>}') == "true"
    assert backend.get("hash", "b2:h") is None
    assert call('{hget, <<"b2:h">>}') == "not_found"
    with line(node) as c:
        assert call('{hset, <<"b2:h2">>, <<"name">>, <<"brain">>}') == "true"
        assert c.hget("b2:h2") == {"name": "brain"}
        assert c.call("hsetkv", "b2:h2", "more", value="x") == b"1"
        assert client.eval(
            'brain_it:call({hget, "b2:h2"}) =:= {ok, #{<<"name">> => <<"brain">>, <<"more">> => <<"x">>}}'
        ) == "true"

    # Field lists: a single binary, an empty list; hdel of no field deletes nothing.
    assert call('{hset, <<"b2:h3">>, <<"a">>, <<"1">>}') == "true"
    assert client.eval('brain_it:call({hget, <<"b2:h3">>, <<"a">>}) =:= {ok, #{<<"a">> => <<"1">>}}') == "true"
    assert client.eval('brain_it:call({hget, <<"b2:h3">>, []}) =:= {ok, #{}}') == "true"
    assert client.eval('brain_it:call({hget, <<"b2:h3">>, [<<"nope">>]}) =:= {ok, #{}}') == "true"
    assert call('{hget, <<"b2:none">>, [<<"a">>]}') == "not_found"
    assert call('{hdel, <<"b2:h3">>, []}') == "false"
    assert call('{hdel, <<"b2:h3">>, [<<"nope">>]}') == "false"
    assert call('{hdel, <<"b2:h3">>, ["a"]}') == "true"
    assert call('{hget, <<"b2:h3">>}') == "not_found", "deleting the last field deletes the hash"

    # The engine's errors: {error, Code, Message} with Message a binary.
    def error_code(command: str) -> str:
        return client.eval(
            f"case brain_it:call({command}) of {{error, Code, Why}} when is_atom(Code), is_binary(Why) -> Code; "
            f"Other -> {{not_an_error, Other}} end"
        )

    assert error_code('{set, <<"b2:big">>, binary:copy(<<"x">>, 1000001)}') == "value_too_large"
    assert error_code('{set, <<>>, <<"v">>}') == "empty_key"
    assert error_code('{set, binary:copy(<<"k">>, 251), <<"v">>}') == "key_too_long"
    assert error_code('{hset, <<"b2:h4">>, <<255>>, <<"v">>}') == "invalid_hash"
    assert call('{get, <<"b2:big">>}') == "not_found"

    # info: {ok, #{Name => Value}} with the names the line protocol's info shows.
    with line(node) as c:
        line_names = sorted(c.info())
    info_names = client.eval(
        "case brain_it:call(info) of {ok, M} when is_map(M) -> lists:sort([atom_to_list(K) || K <- maps:keys(M)]); "
        "Other -> Other end"
    )
    assert info_names == "[" + ",".join(f'"{n}"' for n in line_names) + "]", info_names
    assert client.eval(
        "case brain_it:call(info) of {ok, M} -> [{K, V} || {K, V} <- maps:to_list(M), not is_number(V)]; O -> O end"
    ) == "[]", "info values are integers or floats"
    assert client.eval("element(1, brain_it:call({info}))") == "ok"

    # The gen_server:call form of the same requests.
    assert client.eval('gen_server:call(brain_it:target(), {get, <<"b2:t">>}, 5000)') == "{ok," + SHIELD + "}"
    assert client.eval('gen_server:call(brain_it:target(), {set, <<"b2:gs">>, <<"via call">>}, 5000)') == "true"
    assert call('{get, <<"b2:gs">>}') == '{ok,<<"via call">>}'

    # Requests that are not commands: {Ref, {error, bad_command, Why}}, and the node goes on.
    for command in ('{nosuch, <<"k">>}', "{get}", '{get, <<"k">>, extra}', '{set, <<"k">>}', "{info, extra}",
                    '{get, 42}', '{hset, <<"k">>, <<"f">>}', '"get"', "42"):
        assert bad_command(client, command) == "bad_command", command
    assert call('{get, <<"b2:t">>}') == "{ok," + SHIELD + "}"


# --- Erlang and the line protocol ------------------------------------------------------------


@FILE_BACKEND
def test_a_value_set_over_erlang_reads_over_the_line_protocol_and_back(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    every_byte = bytes(range(256))
    with line(node) as c:
        # Erlang → line: a binary is its bytes, a string its bytes, a term its printed form.
        assert client.eval(f'brain_it:s("x:bin", {erl_binary(every_byte)})') == "ok"
        assert client.eval('brain_it:s("x:str", "plain text, with spaces")') == "ok"
        assert client.eval(f'brain_it:s("x:term", {SHIELD})') == "ok"
        # Messages on different keys may be carried out concurrently: read each back first.
        assert client.eval(f'brain_it:check("x:bin", {erl_binary(every_byte)})') == "same"
        assert client.eval('brain_it:check("x:str", "plain text, with spaces")') == "same"
        assert client.eval(f'brain_it:check("x:term", {SHIELD})') == "same"
        assert c.get("x:bin") == every_byte
        assert c.get("x:str") == b"plain text, with spaces"
        assert c.call("get", "x:term") == b"-" + SHIELD.encode()

        # Line → Erlang: a value set over the line protocol is a binary of the same bytes.
        assert c.call("set", "l:bytes", value=every_byte) == b"1"
        assert c.call("set", "l:text", value="set over the line") == b"1"
        assert client.eval('brain_it:check("l:bytes", list_to_binary(lists:seq(0, 255)))') == "same"
        assert client.eval('brain_it:check(<<"l:text">>, <<"set over the line">>)') == "same"

        # Both sides see each other's updates and deletes of one key.
        assert c.call("set", "x:bin", value="line overwrote it") == b"0"
        assert client.eval('brain_it:check("x:bin", <<"line overwrote it">>)') == "same"
        assert client.eval('brain_it:s("x:bin", {erlang, wrote, 2})') == "ok"
        wait_until(lambda: c.call("get", "x:bin") == b"-{erlang,wrote,2}", 5, "the line client to see the Erlang update")
        assert c.call("del", "x:bin") == b"1"
        assert g(client, "true", '"x:bin"') == "ko"
        assert g(client, "false", '"x:bin"') == "ko"


# --- bad input -------------------------------------------------------------------------------

# Messages to `brain` that are none of the accepted shapes and name no one waiting for an
# answer. Each is logged and ignored: no reply, no change to any key, and the link stays up.
MALFORMED = [
    "garbage",
    "42",
    '<<"raw bytes">>',
    '[s, "mal", <<"x">>]',
    "{}",
    "{s}",
    '{s, "mal"}',
    '{s, "mal", <<"four">>, extra}',
    '{s, 42, <<"integer id">>}',
    '{s, [109, 97 | 108], <<"improper id">>}',
    '{s, {"mal"}, <<"tuple id">>}',
    '{s, mal, <<"atom id">>}',
    '{s, [26085, 26412], <<"id with characters above 255">>}',
    '{g, true, "mal", self()}',
    '{g, true, "mal", not_a_pid, null}',
    '{g, true, "mal", self(), null, extra}',
    "{p}",
    "{p, 42}",
    '{p, "mal", extra}',
    '{x, "mal", <<"unknown tag">>}',
    '{"s", "mal", <<"string tag">>}',
    "{self(), make_ref()}",
]

# A `g` with a reply pid but a malformed consistency or Id: docs/erlang.md answers exactly
# `{error, bad_command}` to the pid (the issue says "logged and ignored"; see the report).
MALFORMED_G = [
    '{g, maybe, "mal", self(), null}',
    '{g, "true", "mal", self(), null}',
    '{g, true, 42, self(), null}',
    '{g, false, {"mal"}, self(), null}',
]


@FILE_BACKEND
def test_malformed_messages_are_ignored_and_the_node_still_answers(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:set_get("mal", <<"original">>)') == "same"
    client.eval("brain_it:events()")  # forget the connection's nodeup

    answered = client.eval(f"brain_it:answered([{', '.join(MALFORMED)}], 300)")
    assert answered == "[]", f"malformed messages were answered ([{{Message, Replies}}]): {answered}"
    for message in MALFORMED_G:
        replies = client.eval(f"begin brain_it:send({message}), brain_it:quiet(1000) end")
        assert replies == "{got,[{error,bad_command}]}", f"{message} was answered {replies}"

    # The node still answers, on the same link, and no key changed.
    assert client.eval('brain_it:check("mal", <<"original">>)') == "same"
    assert g(client, "true", "<<\"mal\">>") == '{ok,<<"original">>}'
    assert g(client, "true", '"mal"') == '{ok,<<"original">>}'
    assert client.eval("brain_it:events()") == "[]", "the link went down after malformed messages"
    assert client.eval("brain_it:connected()") == "true"

    # One malformed message between good ones does not disturb them.
    assert client.eval(
        'begin brain_it:s("mal:2", <<"a">>), brain_it:send({s}), brain_it:s("mal:2", <<"b">>), brain_it:g(true, "mal:2") end'
    ) == '{ok,<<"b">>}'


@FILE_BACKEND
def test_garbage_on_the_distribution_port_closes_only_that_connection(erlang_brain, erl):
    node = erlang_brain()
    port = epmd_port(node.alive)
    client = erl(target=node)
    assert client.eval('brain_it:set_get("gp", <<"before">>)') == "same"

    def closed_by_node(payload: bytes) -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(payload)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    if not sock.recv(4096):
                        return True
                except ConnectionResetError:
                    return True
                except socket.timeout:
                    return False
            return False

    # A 5-byte handshake message that is neither 'N' nor 'n'; an empty message; a truncated 'N'.
    for payload in (b"\x00\x05hello", b"\x00\x00", b"\x00\x03N\x00\x00"):
        assert closed_by_node(payload), f"the node kept a connection open after {payload!r}"

    # A peer that starts a handshake and then stalls does not hold up anyone else.
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        name = b"stalled@127.0.0.1"
        body = b"N" + (0x407070F94).to_bytes(8, "big") + (7).to_bytes(4, "big") + len(name).to_bytes(2, "big") + name
        stalled.sendall(len(body).to_bytes(2, "big") + body)
        started = time.monotonic()
        assert client.eval('brain_it:set_get("gp", <<"during a stalled handshake">>)') == "same"
        assert time.monotonic() - started < 5, "a stalled handshake slowed another link"
    finally:
        stalled.close()
    assert client.eval('brain_it:check("gp", <<"during a stalled handshake">>)') == "same"
    assert client.eval("brain_it:connected()") == "true"


@FILE_BACKEND
def test_a_wrong_cookie_is_refused(erlang_brain, erl, tools):
    node = erlang_brain()
    intruder = erl(target=node, cookie="not-the-secret")
    assert intruder.eval("brain_it:ping()") == "pang"
    assert intruder.eval('begin brain_it:s("wc:k", <<"intruder">>), brain_it:g(true, "wc:k", 3000) end') == "no_reply"
    assert intruder.eval("brain_it:connected()") == "false"
    wait_until(lambda: "wrong_cookie" in node.log_text(), 10, "the node to log wrong_cookie")

    # The intruder's set never happened; a client with the right cookie is served.
    friend = erl(target=node)
    assert g(friend, "true", '"wc:k"') == "ko"
    assert friend.eval('brain_it:set_get("wc:k", <<"friend">>)') == "same"

    # The C node with a wrong cookie cannot connect either.
    run = run_c_node(tools, node.erlang_node, "not-the-secret", unique("peb_client"), "brain", "get", "wc:k")
    assert run.exit_code == 2 and run.lines and run.lines[0].startswith("connect_failed"), run.describe()


@FILE_BACKEND
def test_net_adm_ping_answers_pong(erlang_brain, erl):
    # net_adm:ping asks net_kernel on the node {is_auth, Node} and expects `yes`
    # (reference: "Common request shapes"). Erlang users check a node this way.
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval("brain_it:ping()") == "pong"
    assert client.eval("brain_it:connected()") == "true"
    assert client.eval('brain_it:set_get("after:ping", <<"v">>)') == "same"


@FILE_BACKEND
def test_monitors_and_other_signals_are_answered_as_erlang_does(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:set_get("sig", <<"v">>)') == "same"
    target = erl_atom(node.erlang_node)
    # A monitor of a name Brain does not serve fires at once with noproc.
    assert client.eval(
        f"begin R = erlang:monitor(process, {{nosuch, {target}}}), "
        f"receive {{'DOWN', R, process, _, Why}} -> Why after 5000 -> no_down end end"
    ) == "noproc"
    # A monitor of the served name is accepted: no DOWN while the node is up.
    assert client.eval(
        f"begin R = erlang:monitor(process, {{brain, {target}}}), "
        f"receive {{'DOWN', R, process, _, Why}} -> {{down, Why}} after 1500 -> erlang:demonitor(R), up end end"
    ) == "up"
    # A message to another name is dropped, as Erlang drops it; an rpc (which Brain does not
    # serve) fails on the client's side; neither disturbs the link.
    assert client.eval(f"begin {{nosuch, {target}}} ! hello, ok end") == "ok"
    client.eval(f"rpc:call({target}, erlang, node, [], 3000)")
    assert client.eval('brain_it:check("sig", <<"v">>)') == "same"
    assert client.eval("brain_it:connected()") == "true"
    events = client.eval("brain_it:events()")
    assert "nodedown" not in events, events


@FILE_BACKEND
@pytest.mark.time_limit(240)
def test_an_idle_link_stays_up_past_the_tick_time(erlang_brain, erl):
    # Both sides drop a link they hear nothing from for the tick time (60 s, checked every
    # 15 s): an idle link survives 80 s only if ticks flow both ways.
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:set_get("idle", <<"before">>)') == "same"
    client.eval("brain_it:events()")
    time.sleep(80)
    assert client.eval("brain_it:events()") == "[]", "the idle link went down"
    assert client.eval("brain_it:connected()") == "true"
    assert client.eval('brain_it:check("idle", <<"before">>)') == "same"


# --- two OTP behaviours, many clients ----------------------------------------------------------


@FILE_BACKEND
def test_a_normal_and_a_hidden_node_are_both_served(erlang_brain, erl):
    node = erlang_brain()
    normal = erl(target=node)
    hidden = erl(target=node, hidden=True)
    assert normal.eval('brain_it:s("nh:from-normal", {set, by, normal})') == "ok"
    assert hidden.eval('brain_it:s("nh:from-hidden", <<"set by hidden">>)') == "ok"
    assert normal.eval('brain_it:check("nh:from-normal", {set, by, normal})') == "same"
    assert hidden.eval('brain_it:check("nh:from-normal", {set, by, normal})') == "same"
    assert normal.eval('brain_it:check("nh:from-hidden", <<"set by hidden">>)') == "same"
    assert hidden.eval('brain_it:check("nh:from-hidden", <<"set by hidden">>)') == "same"
    assert normal.eval("brain_it:connected()") == "true"
    assert hidden.eval("lists:member(brain_it:target_node(), nodes(hidden))") == "true"
    # The pid of a hidden node's process is a value like any other.
    assert hidden.eval('brain_it:set_get("nh:pid", {pid, self()})') == "same"


@FILE_BACKEND
def test_a_reply_goes_to_a_pid_on_another_connected_node(erlang_brain, erl):
    # {g, _, Id, Pid, null} where Pid lives on node B, sent by node A: the reply travels over
    # Brain's link to B (both are connected to Brain).
    node = erlang_brain()
    asker = erl(target=node)
    receiver = erl(target=node, hidden=True)
    assert receiver.eval('brain_it:set_get("elsewhere", {for, b})') == "same"
    caught: dict[str, str] = {}

    def catch() -> None:
        try:
            caught["reply"] = receiver.eval("begin register(catcher, self()), brain_it:await(10000) end", timeout=30)
        except AssertionError as error:
            caught["reply"] = f"error: {error}"

    thread = threading.Thread(target=catch)
    thread.start()
    try:
        where = f"rpc:call({erl_atom(receiver.name)}, erlang, whereis, [catcher])"
        wait_until(lambda: asker.eval(f"is_pid({where})") == "true", 10, "the receiver's catcher process")
        sent = asker.eval(f'begin P = {where}, brain_it:send({{g, true, "elsewhere", P, null}}), node(P) end')
        assert sent == erl_atom(receiver.name), f"the catcher's pid is on {sent}, not on the receiver"
    finally:
        thread.join(timeout=40)
    assert caught.get("reply") == "{ok,{for,b}}", caught


@FILE_BACKEND
@pytest.mark.time_limit(300)
def test_clients_on_several_nodes_work_at_the_same_time(erlang_brain, erl):
    node = erlang_brain()
    clients = [erl(target=node, hidden=(i % 2 == 1)) for i in range(4)]
    results: dict[int, str] = {}

    def work(index: int, client: ErlNode) -> None:
        try:
            results[index] = client.eval(f'brain_it:bulk("bulk{index}:", 400)', timeout=60)
        except AssertionError as error:
            results[index] = f"error: {error}"

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert results == {i: "{ok,400}" for i in range(4)}
    # Each sees the others' keys.
    assert clients[0].eval('brain_it:check("bulk3:17", {17, "bulk3:"})') == "same"
    assert clients[3].eval('brain_it:check("bulk0:400", {400, "bulk0:"})') == "same"


@FILE_BACKEND
@pytest.mark.time_limit(300)
def test_a_peer_that_never_reads_does_not_stall_others_or_grow_memory(erlang_brain, erl, tools, workdir):
    # A C node asks for a 64 KiB value 20,000 times (1.25 GiB of replies) and never reads.
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:set_get("flood:v", binary:copy(<<"x">>, 65536))') == "same"
    baseline = rss_bytes(node.process.pid)
    flood = CNodeProcess(tools, workdir, node.erlang_node, COOKIE, unique("flooder"), "brain",
                         "flood", "flood:v", "20000", "60")
    try:
        wait_until(lambda: "flooded" in flood.output() or flood.process.poll() is not None, 60,
                   "the C node to send its requests")
        assert "flooded" in flood.output(), flood.output()
        peak = baseline
        slowest = 0.0
        for i in range(10):
            started = time.monotonic()
            assert client.eval(f'brain_it:set_get("flood:other:{i}", <<"value {i}">>)') == "same"
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, rss_bytes(node.process.pid))
            time.sleep(0.5)
        print(f"flood: {flood.output().strip()}; RSS baseline {baseline >> 20} MiB, peak {peak >> 20} MiB; "
              f"slowest set+2 gets {slowest:.3f}s")
        assert slowest < 3, f"another client waited {slowest:.1f}s while a peer did not read"
        assert peak - baseline < 256 << 20, (
            f"the node's memory grew by {(peak - baseline) >> 20} MiB for one peer that does not read"
        )
    finally:
        flood.stop()
    assert client.eval('brain_it:check("flood:v", binary:copy(<<"x">>, 65536))') == "same"


# --- restart ---------------------------------------------------------------------------------


@FILE_BACKEND
@pytest.mark.time_limit(300)
def test_brain_restarted_while_erl_is_connected(erlang_brain, erl):
    node = erlang_brain()
    client = erl(target=node)
    assert client.eval('brain_it:set_get("r:bin", <<"set before the restart">>)') == "same"
    assert client.eval('brain_it:set_get("r:str", "a string before the restart")') == "same"
    assert client.eval(f'brain_it:set_get("r:term", {SHIELD})') == "same"
    assert client.eval("brain_it:connected()") == "true"
    client.eval("brain_it:events()")

    node.stop(expect_exit=0, timeout=60)
    wait_unregistered(node.alive, timeout=10)
    wait_until(
        lambda: "nodedown" in client.eval("brain_it:events()"), 10, "the client to see Brain's node go down"
    )
    assert g(client, "true", '"r:bin"') == "no_reply"  # no node, no reply: the client's timeout

    restarted = erlang_brain(data_dir=node.data_dir, erlang_node=node.erlang_node)
    assert restarted.erlang_node == node.erlang_node
    # The client's next sends connect again by themselves (auto-connect through epmd).
    reply = client.eval('brain_it:wait_reply(true, "r:bin", 15)')
    assert reply.startswith('{{ok,<<"set before the restart">>},'), reply
    assert client.eval('brain_it:check("r:bin", <<"set before the restart">>)') == "same"
    assert client.eval(f'brain_it:check("r:term", {SHIELD})') == "same"
    # docs/erlang.md, "What differs": the Erlang-string mark lives in memory only, so a
    # string read after a restart is the binary of its bytes (the issue asks for the string).
    assert client.eval('brain_it:check("r:str", <<"a string before the restart">>)') == "same"
    assert client.eval("brain_it:connected()") == "true"


# --- configuration and start-up ----------------------------------------------------------------


@FILE_BACKEND
def test_the_registered_name_is_configurable(erlang_brain, erl):
    node = erlang_brain(erlang_name="cache")
    client = erl(target=node, registered="cache")
    assert client.eval('brain_it:set_get("rn", <<"via cache">>)') == "same"
    # `brain` is not registered on that node: the message goes nowhere.
    use(client, node, "brain")
    assert client.eval('brain_it:g(true, "rn", 2000)') == "no_reply"


def test_a_node_name_already_taken_stops_start_up(erl, tools, workdir):
    import subprocess

    squatter = erl()
    alive = squatter.name.split("@", 1)[0]
    wait_registered(alive, timeout=10)
    argv = [
        str(brain_binary()), "serve",
        "--backend", f"file://{workdir}/taken-backend", "--data-dir", str(workdir / "taken-data"),
        "--line-port", "0", "--admin-port", "0", "--secret", COOKIE, "--erlang-node", squatter.name,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAIN_", "AWS_"))}
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, cwd=workdir)
    except subprocess.TimeoutExpired:
        pytest.fail(f"brain kept running with an erlang_node whose name epmd already holds: {squatter.name}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "name_in_use" in output and alive in output, f"the start-up error does not say name_in_use {alive}:\n{output}"


# --- the erl_interface C node: the PHP bridge's path --------------------------------------------


@FILE_BACKEND
def test_an_erl_interface_c_node_sets_and_gets(erlang_brain, erl, tools):
    node = erlang_brain()
    run = run_c_node(tools, node.erlang_node, COOKIE, unique("peb_client"), "brain", "basic", "cn:1", "00ff41")
    assert run.exit_code == 0, run.describe()
    assert run.lines == [
        "connected",
        "reply g_true_string_id {ok,<<0,255,65>>}",
        "reply g_false_binary_id {ok,<<0,255,65>>}",
        'reply g_term {ok,{hp,100,[sword,<<"shield">>]}}',
        "reply g_missing ko",
        "done",
    ], run.describe()

    # What the C node set is what everyone else reads.
    with line(node) as c:
        assert c.get("cn:1") == b"\x00\xff\x41"
        assert c.call("get", "cn:1:term") == b"-" + SHIELD.encode()
    client = erl(target=node)
    assert client.eval('brain_it:check("cn:1", <<0, 255, 65>>)') == "same"
    assert client.eval(f'brain_it:check(<<"cn:1:term">>, {SHIELD})') == "same"

    # And the C node reads what the Erlang node set.
    assert client.eval('brain_it:s("cn:2", <<"from erl">>)') == "ok"
    assert client.eval('brain_it:check("cn:2", <<"from erl">>)') == "same"
    run = run_c_node(tools, node.erlang_node, COOKIE, unique("peb_client"), "brain", "get", "cn:2")
    assert run.exit_code == 0 and run.replies() == {"g_true": '{ok,<<"from erl">>}'}, run.describe()


@FILE_BACKEND
def test_a_c_node_reconnecting_under_the_same_name_is_served(erlang_brain, tools):
    # Peb may reconnect under the same name before its old socket is seen closed
    # (reference, "Pitfalls"): the node answers `ok` and retires the old link.
    node = erlang_brain()
    run = run_c_node(tools, node.erlang_node, COOKIE, unique("peb_client"), "brain", "reconnect", "cn:re", "414243")
    assert run.exit_code == 0, run.describe()
    assert run.lines == [
        "connected",
        "reply first_link {ok,<<\"ABC\">>}",
        "connected",
        "reply second_link {ok,<<\"ABC\">>}",
        "reply second_link_after_set {ok,<<\"again\">>}",
        "done",
    ], run.describe()
