#!/usr/bin/env python3
"""Writes the seed corpus of Brain's fuzz targets: Fuzz/Corpus/<Target>/<name>.

Seeds are named after what they hold, so that the corpus reads as a list of cases. Running the
script again rewrites the same bytes (nothing random). Files the fuzzer added to the corpus
(named by their SHA-1, see `scripts/fuzz --merge`) are left alone.

Input layouts, as the targets read them (see Fuzz/Sources/*):
- FuzzLineProtocol: settings byte, chunking seed, then the client's bytes. Settings bit 7 set
  makes the line limit (settings & 0x3F) + 1 bytes; clear, 4096 bytes.
- FuzzTermDecoder: the bytes of one External Term Format term (version byte 131 first), or a
  control term followed by a message term, as a distribution frame holds them.
- FuzzHandshake: mode byte, chunking seed, then the peer's bytes. Mode & 3: 0 nothing
  prepended, 1 a valid version 6 name, 2 a valid version 5 name and complement, 3 a valid
  name and challenge reply (the stream is then the connected link). Mode bit 2: the harness
  writes the right digest into a challenge reply.
"""

import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")
MAX_SEED = 4096


def write(target, name, data):
    assert len(data) < MAX_SEED, f"{target}/{name} is {len(data)} bytes"
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


# --- Line protocol -----------------------------------------------------------------------

LIMIT_64 = 0x80 | 63  # a 64-byte line limit


def line_seeds():
    def seed(name, text, settings=0x00, chunks=3):
        data = text if isinstance(text, bytes) else text.encode()
        write("FuzzLineProtocol", name, bytes([settings, chunks]) + data)

    commands = {
        # name: (good arguments, bad arguments)
        "get": ("k", ["", "a b"]),
        "del": ("k", ["", "a b"]),
        "pdel": ("k", ["", "a b"]),
        "vget": ("k", ["", "a b"]),
        "vdel": ("k", ["", "a b"]),
        "set": ("k some value", ["", "k"]),
        "pset": ("k v", ["", "k"]),
        "vset": ("k v", ["", "k"]),
        "hsetkv": ("k f v", ["", "k", "k f"]),
        "hpsetkv": ("k f v w", ["", "k f"]),
        "hget": ("k f1 f2", ["", "k"]),
        "hdel": ("k f", [""]),
        "hpdel": ("k", [""]),
        "help": ("", ["x"]),
        "info": ("", ["x"]),
        "quit": ("", ["now"]),
        "shutdown": ("", ["x"]),
        "auth": ("fuzz\\t!", ["", "a b", "wrong"]),
    }
    for command, (good, bads) in commands.items():
        seed(f"{command}-good", f"{command} {good}\r\n".replace(" \r\n", "\r\n"), chunks=3)
        for index, bad in enumerate(bads):
            line = f"{command} {bad}".rstrip(" ") if bad else command
            seed(f"{command}-bad-arity-{index}", f"{line}\n", chunks=1)
    seed("with-durability", "with durability=backend set k v\r\nwith  durability=memory  get k\r\n")
    seed("with-bad-options", "with durability=x set k v\r\nwith color=red get k\r\n"
         "with durability=log durability=log set k v\r\nwith durability=log\r\nwith\r\n")
    seed("with-not-a-store-command", "with durability=log auth fuzz\\t!\r\nwith durability=log with durability=log get k\r\n"
         "with durability=log frob k\r\n")
    seed("empty-set-value", "set k \r\n")
    seed("case-and-spaces", "  GeT   k  \r\n\r\n   \r\n")
    seed("unknown-command", "getx k\r\nfoo\r\nabcdefghijk x\r\n")
    seed("auth-then-commands", "get k\r\nauth wrong\r\nauth fuzz\\x09!\r\nget k\r\ninfo\r\nshutdown\r\n", chunks=0)
    seed("nul-bytes", b"get k\x00ey\r\nget\x00\r\n\x00\r\n")
    seed("bare-cr", b"set k a\rb\r\n\r\r\nget k\r")
    seed("bad-escapes", "get k\\q\r\nget k\\x4\r\nget k\\xzz\r\nset k v\\\r\nhget k \\x\r\n")
    seed("good-escapes", "set k\\x20y a\\\\b\\r\\n\\t\\0\\xFF\\xfe\r\n")
    seed("invalid-utf8", b"set k \xff\xfe\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82\r\n")
    seed("valid-utf8", "set cl\u00e9 \u65e5\u672c \U0001f600\r\n".encode())
    seed("line-at-limit", b"set k " + b"v" * 58 + b"\r\n", settings=LIMIT_64)
    seed("line-over-limit", b"set k " + b"v" * 59 + b"\r\nget k\r\n", settings=LIMIT_64)
    seed("unfinished-at-limit-cr", b"get k\r\n" + b"x" * 64 + b"\r", settings=LIMIT_64, chunks=1)
    seed("unfinished-over-limit", b"x" * 66, settings=LIMIT_64, chunks=2)
    seed("long-line-4k", b"set k " + b"v" * 4080 + b"\r\n", chunks=2)
    seed("no-newline", "get k")


# --- External Term Format ----------------------------------------------------------------

def u8(value):
    return struct.pack(">B", value)


def u16(value):
    return struct.pack(">H", value)


def u32(value):
    return struct.pack(">I", value)


def atom(name):
    data = name.encode()
    if len(data) <= 255:
        return b"\x77" + u8(len(data)) + data
    return b"\x76" + u16(len(data)) + data


def integer(value):
    if 0 <= value <= 255:
        return b"\x61" + u8(value)
    if -(2**31) <= value < 2**31:
        return b"\x62" + struct.pack(">i", value)
    magnitude = abs(value).to_bytes((abs(value).bit_length() + 7) // 8, "little")
    return b"\x6e" + u8(len(magnitude)) + u8(1 if value < 0 else 0) + magnitude


def binary(data):
    return b"\x6d" + u32(len(data)) + data


def string(data):
    return b"\x6b" + u16(len(data)) + data


def tuple_(*elements):
    return b"\x68" + u8(len(elements)) + b"".join(elements)


def list_(*elements, tail=b"\x6a"):
    return b"\x6c" + u32(len(elements)) + b"".join(elements) + tail


def map_(*pairs):
    return b"\x74" + u32(len(pairs)) + b"".join(key + value for key, value in pairs)


NIL = b"\x6a"


def pid(node="client@127.0.0.1", number=42):
    return b"\x58" + atom(node) + u32(number) + u32(0) + u32(7)


def reference(node="client@127.0.0.1"):
    return b"\x5a" + u16(3) + atom(node) + u32(7) + u32(1) + u32(2) + u32(3)


def term(body):
    return b"\x83" + body


def compressed(body, declared=None):
    data = zlib.compress(body)
    return b"\x83\x50" + u32(len(body) if declared is None else declared) + data


def new_fun(free=()):
    fields = (
        u8(1)  # arity
        + b"\x00" * 16  # uniq
        + u32(0)  # index
        + u32(len(free))
        + atom("m")
        + integer(0)  # old index
        + integer(12345)  # old uniq
        + pid()
        + b"".join(free)
    )
    return b"\x70" + u32(4 + len(fields)) + fields


def term_seeds():
    def seed(name, data):
        write("FuzzTermDecoder", name, data)

    seed("small-int", term(integer(42)))
    seed("integer-negative", term(integer(-5)))
    seed("int32-max", term(integer(2**31 - 1)))
    seed("small-big", term(integer(2**64 + 1)))
    seed("small-big-negative-min", term(integer(-(2**63))))
    seed("large-big", term(b"\x6f" + u32(300) + u8(1) + b"\x01" * 300))
    seed("bignum-bad-sign", term(b"\x6e\x01\x02\x05"))
    seed("new-float", term(b"\x46" + struct.pack(">d", 3.25)))
    seed("new-float-nan", term(b"\x46" + struct.pack(">d", float("nan"))))
    seed("old-float", term(b"\x63" + b"1.50000000000000000000e+00".ljust(31, b"\x00")))
    seed("old-float-garbage", term(b"\x63" + b"nan".ljust(31, b"\x00")))
    seed("atom-ok", term(atom("ok")))
    seed("atom-latin1", term(b"\x64" + u16(4) + b"caf\xe9"))
    seed("atom-small-latin1", term(b"\x73" + u8(3) + b"\xe9t\xe9"))
    seed("atom-255", term(atom("a" * 255)))
    seed("atom-256", term(b"\x76" + u16(256) + b"a" * 256))
    seed("atom-255-unicode", term(atom("\u00e9" * 255)))
    seed("atom-256-unicode", term(b"\x76" + u16(512) + "\u00e9".encode() * 256))
    seed("atom-invalid-utf8", term(b"\x77\x02\xc3\x28"))
    seed("binary", term(binary(b"hello")))
    seed("binary-empty", term(binary(b"")))
    seed("bit-binary", term(b"\x4d" + u32(2) + u8(3) + b"\xff\xff"))
    seed("bit-binary-bad-bits", term(b"\x4d" + u32(1) + u8(9) + b"\xff"))
    seed("string", term(string(b"abc")))
    seed("list", term(list_(integer(1), atom("a"), binary(b"x"))))
    seed("list-improper", term(list_(integer(1), tail=integer(2))))
    seed("list-nested-tail", term(list_(integer(1), tail=string(b"ab"))))
    seed("list-empty-ext", term(b"\x6c" + u32(0) + atom("t")))
    seed("nested-tuples", term(tuple_(tuple_(tuple_(atom("a"), integer(1)), NIL), map_())))
    nested = integer(0)
    for _ in range(520):
        nested = tuple_(nested)
    seed("tuples-deeper-than-limit", term(nested))
    seed("large-tuple", term(b"\x69" + u32(3) + integer(1) + integer(2) + integer(3)))
    seed("map", term(map_((atom("a"), integer(1)), (binary(b"k"), list_(integer(2))), (integer(1), NIL))))
    seed("map-duplicate-key", term(map_((atom("a"), integer(1)), (atom("a"), integer(2)))))
    seed("map-int-float-keys", term(map_((integer(1), NIL), (b"\x46" + struct.pack(">d", 1.0), NIL))))
    seed("map-nil-and-empty-string", term(map_((NIL, integer(1)), (string(b""), integer(2)))))
    seed("pid", term(pid()))
    seed("pid-old", term(b"\x67" + atom("n@h") + u32(1) + u32(0) + u8(1)))
    seed("reference", term(reference()))
    seed("reference-old", term(b"\x65" + atom("n@h") + u32(1) + u8(1)))
    seed("reference-new", term(b"\x72" + u16(2) + atom("n@h") + u8(1) + u32(1) + u32(2)))
    seed("port", term(b"\x59" + atom("n@h") + u32(5) + u32(1)))
    seed("port-v4", term(b"\x78" + atom("n@h") + struct.pack(">Q", 2**40) + u32(1)))
    seed("export", term(b"\x71" + atom("lists") + atom("map") + integer(2)))
    seed("fun", term(new_fun()))
    seed("fun-free-variables", term(new_fun([integer(1), atom("x")])))
    seed("compressed", compressed(list_(*[binary(b"abc" * 10)] * 20)))
    seed("compressed-huge-declared-size", compressed(integer(1), declared=0xFFFFFFFF))
    seed("compressed-size-mismatch", compressed(integer(1), declared=3))
    seed("compressed-corrupt", compressed(binary(b"x" * 64))[:-6] + b"\x00" * 6)
    seed("compressed-stored-block", b"\x83\x50" + u32(2) + zlib.compress(integer(1), 0))
    seed("binary-length-beyond-data", term(b"\x6d" + u32(0xFFFFFFFF) + b"abc"))
    seed("list-length-beyond-data", term(b"\x6c" + u32(0xFFFFFFFF) + integer(1)))
    seed("tuple-arity-beyond-data", term(b"\x69" + u32(0xFFFFFFFF) + integer(1)))
    seed("map-arity-beyond-data", term(b"\x74" + u32(0xFFFFFFFF) + integer(1)))
    seed("string-length-beyond-data", term(b"\x6b" + u16(0xFFFF) + b"ab"))
    seed("atom-cache-ref", term(b"\x52\x00"))
    seed("bad-version", b"\x82" + integer(1))
    seed("trailing-bytes", term(integer(1)) + b"\x00")
    seed("truncated", term(b"\x68\x02" + integer(1)))
    seed("large-tuple-300", term(b"\x69" + u32(300) + integer(1) * 300))
    seed("compressed-invalid-content", compressed(b"\x68\x02\x61\x01"))
    seed("compressed-trailing-content", compressed(integer(1) + b"\x00"))
    # Messages to Brain's name, one per kind of request.
    caller, tag, key = pid(), reference(), binary(b"k")

    def request(*command):
        return term(tuple_(caller, tag, tuple_(*command)))

    seed("msg-s", term(tuple_(atom("s"), string(b"k"), list_(integer(1), integer(300)))))
    seed("msg-g", term(tuple_(atom("g"), atom("false"), key, caller, atom("null"))))
    seed("msg-g-bad-key", term(tuple_(atom("g"), atom("true"), integer(1), caller, atom("null"))))
    seed("msg-p", term(tuple_(atom("p"), key)))
    seed("req-info", term(tuple_(caller, tag, atom("info"))))
    for command in ("get", "del", "pdel", "persist", "vget", "vdel"):
        seed(f"req-{command}", request(atom(command), key))
    seed("req-set-term", request(atom("set"), key, tuple_(atom("a"), integer(1))))
    seed("req-pset-string", request(atom("pset"), string(b"k"), string(b"v")))
    seed("req-vset-bad-value", request(atom("vset"), key, integer(1)))
    seed("req-hget-fields", request(atom("hget"), key, list_(binary(b"f"), string(b"g"))))
    seed("req-hdel-no-fields", request(atom("hdel"), key, NIL))
    seed("req-hset", request(atom("hset"), key, binary(b"f"), binary(b"v")))
    seed("req-hpset-bad-field", request(atom("hpset"), key, integer(1), binary(b"v")))
    seed("req-with-list", request(atom("with"), list_(tuple_(atom("durability"), atom("log"))),
                                  tuple_(atom("set"), key, binary(b"v"))))
    seed("req-with-map", request(atom("with"), map_((atom("durability"), atom("backend"))), tuple_(atom("del"), key)))
    seed("req-with-bad", request(atom("with"), list_(tuple_(atom("durability"), atom("x"))), tuple_(atom("get"), key)))
    seed("req-gen-call-hpdel", term(tuple_(atom("$gen_call"), tuple_(caller, tag), tuple_(atom("hpdel"), key))))
    # Control term and message, as a distribution frame carries them after 112.
    seed("frame-reg-send-set", term(tuple_(integer(6), pid(), atom(""), atom("brain")))
         + term(tuple_(atom("s"), binary(b"k"), binary(b"v"))))
    seed("frame-reg-send-get", term(tuple_(integer(6), pid(), atom(""), atom("brain")))
         + term(tuple_(atom("g"), atom("true"), binary(b"k"), pid(), atom("null"))))
    seed("frame-request", term(tuple_(integer(6), pid(), atom(""), atom("brain")))
         + term(tuple_(pid(), reference(), tuple_(atom("hset"), binary(b"k"), string(b"f"), binary(b"v")))))
    seed("frame-gen-call", term(tuple_(integer(6), pid(), atom(""), atom("brain")))
         + term(tuple_(atom("$gen_call"), tuple_(pid(), reference()), tuple_(atom("hget"), binary(b"k"), NIL))))
    seed("frame-net-kernel", term(tuple_(integer(6), pid(), atom(""), atom("net_kernel")))
         + term(tuple_(atom("$gen_call"), tuple_(pid(), reference()), tuple_(atom("is_auth"), atom("n@h")))))
    seed("frame-link", term(tuple_(integer(1), pid(), pid("brain@127.0.0.1", 1))))
    seed("frame-monitor", term(tuple_(integer(19), pid(), pid("brain@127.0.0.1", 1), reference())))
    seed("frame-unlink-id", term(tuple_(integer(35), integer(9), pid(), pid("brain@127.0.0.1", 1))))
    seed("frame-send", term(tuple_(integer(2), atom(""), pid())) + term(atom("hello")))


# --- Distribution handshake --------------------------------------------------------------

MANDATORY_25 = 0x1070F94
ADVERTISED_HIDDEN = 0x403070F94 | 0x4000000 | 0x8 | 0x20 | 0x4000
NAME_ME = 2 << 32


def framed16(body):
    return u16(len(body)) + body


def framed32(body):
    return u32(len(body)) + body


def name_v6(flags=ADVERTISED_HIDDEN, name=b"peer@127.0.0.1", declared=None, creation=7):
    length = len(name) if declared is None else declared
    return b"N" + struct.pack(">Q", flags) + u32(creation) + u16(length) + name


def name_v5(flags=ADVERTISED_HIDDEN & 0xFFFFFFFF, name=b"peer@127.0.0.1", version=5):
    return b"n" + u16(version) + u32(flags) + name


def complement(flags=ADVERTISED_HIDDEN >> 32, creation=7):
    return b"c" + u32(flags) + u32(creation)


def reply(digest=b"\x00" * 16, challenge=0xFFFFFFFF):
    return b"r" + u32(challenge) + digest


def link_frame(control, message=None):
    body = b"\x70" + term(control) + (term(message) if message is not None else b"")
    return framed32(body)


def handshake_seeds():
    def seed(name, stream, mode=0, chunks=3):
        write("FuzzHandshake", name, bytes([mode, chunks]) + stream)

    fix = 4
    seed("v6-wrong-digest", framed16(name_v6()) + framed16(reply()))
    seed("v6-digest-fixed", framed16(name_v6()) + framed16(reply()) + framed32(b""), mode=fix, chunks=1)
    seed("v5-wrong-digest", framed16(name_v5()) + framed16(complement()) + framed16(reply()))
    seed("v5-digest-fixed", framed16(name_v5()) + framed16(complement()) + framed16(reply()), mode=fix)
    seed("v5-bad-version", framed16(name_v5(version=7)))
    seed("v5-long-name-1021", framed16(name_v5(name=b"n" * 1000 + b"@" + b"h" * 20)))
    seed("v5-without-complement", framed16(name_v5()) + framed16(reply()), mode=fix)
    seed("v5-complement-name-me", framed16(name_v5()) + framed16(complement(flags=NAME_ME >> 32)))
    seed("unknown-flags", framed16(name_v6(flags=0xFFFFFFFFFFFFFFFF & ~NAME_ME)) + framed16(reply()), mode=fix)
    seed("missing-mandatory-flags", framed16(name_v6(flags=0x4)))
    seed("name-me", framed16(name_v6(flags=ADVERTISED_HIDDEN | NAME_ME)))
    seed("name-255-characters", framed16(name_v6(name=b"n" * 250 + b"@" + b"h" * 4)), mode=fix)
    seed("name-256-characters", framed16(name_v6(name=b"n" * 250 + b"@" + b"h" * 5)))
    seed("long-name-1020", framed16(name_v6(name=b"n" * 1000 + b"@" + b"h" * 19)))
    seed("long-name-1021", framed16(name_v6(name=b"n" * 1000 + b"@" + b"h" * 20)))
    seed("name-length-65535", framed16(name_v6(declared=0xFFFF)))
    seed("name-length-beyond-data", framed16(name_v6(declared=200)))
    seed("name-without-at", framed16(name_v6(name=b"peer")))
    seed("name-empty-host", framed16(name_v6(name=b"peer@")))
    seed("name-empty-node", framed16(name_v6(name=b"@host")))
    seed("name-control-byte", framed16(name_v6(name=b"pe\x01er@h")))
    seed("name-invalid-utf8", framed16(name_v6(name=b"p\xffer@h")))
    seed("name-trailing-bytes", framed16(name_v6() + b"extra"))
    seed("handshake-length-65535", b"\xff\xff" + b"N" * 8)
    seed("handshake-length-over-limit", u16(2049) + b"N")
    seed("reply-first", framed16(reply()))
    seed("complement-in-v6", framed16(name_v6()) + framed16(complement()))
    seed("name-twice", framed16(name_v6()) + framed16(name_v6()))
    seed("empty-message", framed16(b""))
    seed("reply-short", framed16(name_v6()) + framed16(b"r\x00\x00"), mode=fix)
    seed("reply-long", framed16(name_v6()) + framed16(reply() + b"\x00"), mode=fix)
    # Mode 1 and 2: the harness sends the name; the stream starts at the reply.
    seed("after-v6-name-reply", framed16(reply()), mode=1 | fix)
    seed("after-v5-complement-reply", framed16(reply()), mode=2 | fix)
    # Mode 3: the link is up; the stream is 4-byte-length frames.
    brain = pid("brain@127.0.0.1", 1)
    seed("link-frame-length-max", b"\xff\xff\xff\xff" + b"\x70", mode=3)
    seed("link-ticks", framed32(b"") * 3, mode=3)
    seed("link-reg-send-set", link_frame(tuple_(integer(6), pid(), atom(""), atom("brain")),
                                         tuple_(atom("s"), binary(b"k"), binary(b"v"))), mode=3, chunks=1)
    seed("link-request-get", link_frame(tuple_(integer(6), pid(), atom(""), atom("brain")),
                                        tuple_(pid(), reference(), tuple_(atom("get"), binary(b"k")))), mode=3)
    seed("link-request-bad", link_frame(tuple_(integer(6), pid(), atom(""), atom("brain")),
                                        tuple_(pid(), reference(), tuple_(atom("vset"), binary(b"k"), integer(1)))), mode=3)
    seed("link-net-kernel", link_frame(tuple_(integer(6), pid(), atom(""), atom("net_kernel")),
                                       tuple_(atom("$gen_call"), tuple_(pid(), reference()),
                                              tuple_(atom("is_auth"), atom("n@h")))), mode=3)
    seed("link-link", link_frame(tuple_(integer(1), pid(), brain)), mode=3)
    seed("link-monitor-pid", link_frame(tuple_(integer(19), pid(), brain, reference())), mode=3)
    seed("link-monitor-name", link_frame(tuple_(integer(19), pid(), atom("brain"), reference())), mode=3)
    seed("link-unlink-id", link_frame(tuple_(integer(35), integer(9), pid(), brain)), mode=3)
    seed("link-no-pass-through", framed32(term(tuple_(integer(2), atom(""), pid()))), mode=3)
    seed("link-trailing-after-link", framed32(b"\x70" + term(tuple_(integer(1), pid(), brain)) + b"\x00"), mode=3)
    seed("link-bad-payload", framed32(b"\x70" + term(tuple_(integer(2), atom(""), pid())) + b"\x83\x6d\xff"), mode=3)


if __name__ == "__main__":
    line_seeds()
    term_seeds()
    handshake_seeds()
