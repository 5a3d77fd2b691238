import Engine
import XCTest

@testable import ErlangTransport

/// Brain's messages: how each is taken apart, carried out on a store, and answered.
final class ClientMessageTests: XCTestCase {
    private let pid = Pid(node: "client@127.0.0.1", id: 85, serial: 0, creation: 7)
    private let ref = Term.reference(Reference(node: "client@127.0.0.1", creation: 7, ids: [1, 2, 3]))
    private let limits = TermLimits.default

    private func parse(_ term: Term) throws -> ClientMessage {
        try ClientMessageParser.parse(term).get()
    }

    private func malformed(_ term: Term) -> MalformedMessage? {
        if case .failure(let error) = ClientMessageParser.parse(term) { return error }
        return nil
    }

    private func string(_ text: String) -> Term { .string(Array(text.utf8)) }

    /// The command a message carries, rendered for comparison (Command is not Equatable).
    private func command(of message: ClientMessage) -> String {
        switch message {
        case .set(let command), .get(let command, _), .persist(let command): "\(command)"
        case .request(_, _, _, .command(let command, nil)): "\(command)"
        case .request(_, _, _, .command(let command, let durability?)): "with \(durability) \(command)"
        case .request(_, _, _, let operation): "\(operation)"
        }
    }

    // MARK: The first Brain's messages

    func testSetKeepsTheKindOfValue() throws {
        let k: [UInt8] = [107]
        let cases: [(Term, Command)] = [
            (.binary([1, 2]), .set(key: k, value: [1, 2], encoding: .bytes, persist: false)),
            (string("text"), .set(key: k, value: Array("text".utf8), encoding: .erlangString, persist: false)),
            (.properList([.integer(104), .integer(255)]), .set(key: k, value: [104, 255], encoding: .erlangString, persist: false)),
            (.emptyList, .set(key: k, value: [], encoding: .erlangString, persist: false)),
            (.tuple([.atom("a"), .integer(1)]),
             .setTerm(key: k, externalTermFormat: [131, 104, 2, 119, 1, 97, 97, 1], persist: false)),
            (.properList([.integer(1), .integer(300)]),
             .setTerm(key: k, externalTermFormat: ExternalTermFormat.encode(.properList([.integer(1), .integer(300)])), persist: false)),
            (.integer(-1), .setTerm(key: k, externalTermFormat: [131, 98, 255, 255, 255, 255], persist: false)),
        ]
        for (value, expected) in cases {
            let message = try parse(.tuple([.atom("s"), string("k"), value]))
            XCTAssertEqual(command(of: message), "\(expected)", value.printed)
            XCTAssertEqual(message.commandName, .s)
        }
    }

    func testStringAndBinaryIdsNameTheSameKey() throws {
        let fromString = try parse(.tuple([.atom("s"), string("player:42"), .binary([1])]))
        let fromBinary = try parse(.tuple([.atom("g"), .atom("true"), .binary(Array("player:42".utf8)), .pid(pid), .atom("null")]))
        let fromList = try parse(.tuple([.atom("p"), .properList(Array("player:42".utf8).map { .integer(Int64($0)) })]))
        XCTAssertEqual(fromString.key, Array("player:42".utf8))
        XCTAssertEqual(fromBinary.key, fromString.key)
        XCTAssertEqual(fromList.key, fromString.key)
    }

    func testGetWithEitherConsistencyRepliesToThePid() throws {
        for consistency in ["true", "false"] {
            let message = try parse(.tuple([.atom("g"), .atom(Atom(consistency)), string("k"), .pid(pid), .atom("null")]))
            guard case .get(let command, let replyTo) = message else { return XCTFail("not a get") }
            XCTAssertEqual("\(command)", "\(Command.get(key: [107]))")
            XCTAssertEqual(replyTo, pid)
        }
    }

    func testPersist() throws {
        XCTAssertEqual(command(of: try parse(.tuple([.atom("p"), string("k")]))), "\(Command.persist(key: [107]))")
    }

    func testMalformedFirstBrainMessages() {
        // No one to answer: logged and ignored.
        for term: Term in [
            .atom("garbage"), .tuple([]), .tuple([.atom("x"), .integer(1)]),
            .tuple([.atom("s"), string("k")]), .tuple([.atom("s"), .integer(1), .binary([])]),
            .tuple([.atom("p"), .atom("k")]),
            .tuple([.atom("g"), .atom("true"), string("k"), .atom("notapid"), .atom("null")]),
        ] {
            let error = malformed(term)
            XCTAssertNotNil(error, term.printed)
            XCTAssertNil(error?.replyTo, term.printed)
        }
        // A g with a pid gets {error, bad_command}: it would otherwise wait for nothing.
        for term: Term in [
            .tuple([.atom("g"), .atom("maybe"), string("k"), .pid(pid), .atom("null")]),
            .tuple([.atom("g"), .atom("true"), .integer(42), .pid(pid), .atom("null")]),
        ] {
            let error = malformed(term)
            XCTAssertEqual(error?.replyTo, pid, term.printed)
            XCTAssertEqual(error?.replyMessage, .tuple([.atom("error"), .atom("bad_command")]))
            XCTAssertEqual(error?.command, .g)
        }
        XCTAssertEqual(malformed(.tuple([.atom("s"), string("k")]))?.reason, "s takes {s, Id, Value}")
        XCTAssertEqual(
            malformed(.tuple([.atom("s"), .integer(1), .binary([])]))?.reason, "s: the id 1 is not a binary or a string")
    }

    // MARK: Requests

    func testRequestsMapToCommands() throws {
        let key = Term.binary([107])
        let k: [UInt8] = [107]
        let cases: [(Term, ErlangCommandName, String)] = [
            (.tuple([.atom("get"), key]), .get, "\(Command.get(key: k))"),
            (.tuple([.atom("set"), key, .binary([1])]), .set, "\(Command.set(key: k, value: [1], encoding: .bytes, persist: false))"),
            (.tuple([.atom("pset"), key, string("v")]), .pset,
             "\(Command.set(key: k, value: [118], encoding: .erlangString, persist: true))"),
            (.tuple([.atom("pset"), key, .atom("v")]), .pset,
             "\(Command.setTerm(key: k, externalTermFormat: ExternalTermFormat.encode(.atom("v")), persist: true))"),
            (.tuple([.atom("del"), key]), .del, "\(Command.delete(key: k, persist: false))"),
            (.tuple([.atom("pdel"), key]), .pdel, "\(Command.delete(key: k, persist: true))"),
            (.tuple([.atom("persist"), key]), .persist, "\(Command.persist(key: k))"),
            (.tuple([.atom("vget"), key]), .vget, "\(Command.volatileGet(key: k))"),
            (.tuple([.atom("vset"), key, string("v")]), .vset, "\(Command.volatileSet(key: k, value: [118]))"),
            (.tuple([.atom("vdel"), key]), .vdel, "\(Command.volatileDelete(key: k))"),
            (.tuple([.atom("hget"), key]), .hget, "\(Command.hashGet(key: k, fields: []))"),
            (.tuple([.atom("hget"), key, .properList([string("a"), .binary([98])])]), .hget,
             "\(Command.hashGet(key: k, fields: [[97], [98]]))"),
            (.tuple([.atom("hget"), key, .binary([97])]), .hget, "\(Command.hashGet(key: k, fields: [[97]]))"),
            (.tuple([.atom("hget"), key, .emptyList]), .hget, "\(ErlangOperation.hashGetNoFields(key: k))"),
            (.tuple([.atom("hset"), key, string("f"), .binary([118])]), .hset,
             "\(Command.hashSet(key: k, field: [102], value: [118], persist: false))"),
            (.tuple([.atom("hpset"), key, string("f"), .binary([118])]), .hpset,
             "\(Command.hashSet(key: k, field: [102], value: [118], persist: true))"),
            (.tuple([.atom("hdel"), key]), .hdel, "\(Command.hashDelete(key: k, fields: [], persist: false))"),
            (.tuple([.atom("hpdel"), key, .properList([string("f")])]), .hpdel,
             "\(Command.hashDelete(key: k, fields: [[102]], persist: true))"),
            (.tuple([.atom("hdel"), key, .emptyList]), .hdel, "\(ErlangOperation.hashDeleteNoFields(key: k))"),
            (.atom("info"), .info, "\(ErlangOperation.info)"),
            (.tuple([.atom("info")]), .info, "\(ErlangOperation.info)"),
        ]
        for (request, name, expected) in cases {
            let message = try parse(.tuple([.pid(pid), ref, request]))
            guard case .request(let replyTo, let tag, let parsedName, _) = message else {
                return XCTFail("not a request: \(request.printed)")
            }
            XCTAssertEqual(replyTo, pid)
            XCTAssertEqual(tag, ref)
            XCTAssertEqual(parsedName, name, request.printed)
            XCTAssertEqual(command(of: message), expected, request.printed)
        }
    }

    func testGenServerCallIsARequestTaggedWithItsTag() throws {
        let tag = Term.list([.atom("alias")], tail: ref)
        let message = try parse(.tuple([.atom("$gen_call"), .tuple([.pid(pid), tag]), .tuple([.atom("get"), .binary([107])])]))
        guard case .request(let replyTo, let parsedTag, .get, _) = message else { return XCTFail("not a get request") }
        XCTAssertEqual(replyTo, pid)
        XCTAssertEqual(parsedTag, tag)
    }

    func testMalformedRequestsAreAnsweredBadCommand() {
        let cases: [(Term, ErlangCommandName?, String)] = [
            (.tuple([.atom("frob"), .binary([1])]), nil, "unknown command frob"),
            (.integer(5), nil, "the command 5 is not an atom or a tuple"),
            (.tuple([.atom("s"), .binary([1]), .binary([1])]), nil, "unknown command s"),
            (.tuple([.atom("get")]), .get, "get takes {get, Key}"),
            (.tuple([.atom("set"), .binary([1])]), .set, "set takes {set, Key, Value}"),
            (.tuple([.atom("get"), .atom("k")]), .get, "get: the key k is not a binary or a string"),
            (.tuple([.atom("vset"), .binary([1]), .atom("v")]), .vset, "vset: the value v is not a binary or a string"),
            (.tuple([.atom("hset"), .binary([1]), .integer(1), .binary([])]), .hset,
             "hset: the field 1 is not a binary or a string"),
            (.tuple([.atom("hget"), .binary([1]), string("name")]), .hget,
             "hget: the fields \"name\" are not a list of binaries or strings"),
            (.tuple([.atom("info"), .binary([1])]), .info, "info takes info"),
        ]
        for (request, name, reason) in cases {
            let error = malformed(.tuple([.pid(pid), ref, request]))
            XCTAssertEqual(error?.command, name, request.printed)
            XCTAssertEqual(error?.reason, reason, request.printed)
            XCTAssertEqual(error?.replyTo, pid)
            XCTAssertEqual(
                error?.replyMessage, .tuple([ref, .tuple([.atom("error"), .atom("bad_command"), .binary(reason)])]))
        }
    }

    func testWithGivesARequestADurability() async throws {
        let key = Term.binary([107])
        let set = Term.tuple([.atom("set"), key, .binary([1])])
        let options: [(Term, Durability)] = [
            (.properList([.tuple([.atom("durability"), .atom("backend")])]), .backend),
            (.map([.atom("durability"): .atom("log")]), .log),
            (.properList([.tuple([.atom("durability"), .atom("memory")])]), .memory),
        ]
        for (option, durability) in options {
            let message = try parse(.tuple([.pid(pid), ref, .tuple([.atom("with"), option, set])]))
            XCTAssertEqual(message.commandName, .set, "counted as the command it wraps")
            XCTAssertEqual(
                command(of: message),
                "with \(durability) \(Command.set(key: [107], value: [1], encoding: .bytes, persist: false))")
        }
        let call = try parse(.tuple([
            .atom("$gen_call"), .tuple([.pid(pid), ref]),
            .tuple([.atom("with"), options[0].0, .tuple([.atom("del"), key])]),
        ]))
        XCTAssertEqual(command(of: call), "with backend \(Command.delete(key: [107], persist: false))")

        let store = FakeStore()
        _ = try await run(store, .tuple([.pid(pid), ref, .tuple([.atom("with"), options[0].0, set])]))
        XCTAssertEqual(store.commands, ["with backend \(Command.set(key: [107], value: [1], encoding: .bytes, persist: false))"])
    }

    func testMalformedWithIsAnsweredBadCommand() {
        let key = Term.binary([107])
        let set = Term.tuple([.atom("set"), key, .binary([1])])
        let backend = Term.properList([.tuple([.atom("durability"), .atom("backend")])])
        let usage = "with takes [{durability, memory | log | backend}] or #{durability => ...} as options"
        let cases: [(Term, ErlangCommandName?, String)] = [
            (.tuple([.atom("with"), backend]), nil, "with takes {with, Options, Command}"),
            (.tuple([.atom("with"), .atom("backend"), set]), nil, "the options backend are not a list or a map; \(usage)"),
            (.tuple([.atom("with"), .emptyList, set]), nil, "no option given; \(usage)"),
            (.tuple([.atom("with"), .properList([.atom("durability")]), set]), nil,
             "the option durability is not {Name, Value}; \(usage)"),
            (.tuple([.atom("with"), .properList([.tuple([.atom("fsync"), .atom("always")])]), set]), nil,
             "unknown option fsync; \(usage)"),
            (.tuple([.atom("with"), .properList([.tuple([.atom("durability"), .atom("disk")])]), set]), nil,
             "durability disk is not memory, log or backend"),
            (.tuple([.atom("with"), .properList([
                .tuple([.atom("durability"), .atom("log")]), .tuple([.atom("durability"), .atom("log")]),
            ]), set]), nil, "durability is given twice"),
            (.tuple([.atom("with"), backend, .atom("info")]), .info, "info takes no options"),
            (.tuple([.atom("with"), backend, .tuple([.atom("with"), backend, set])]), nil, "with cannot wrap another with"),
            (.tuple([.atom("with"), backend, .tuple([.atom("set"), key])]), .set, "set takes {set, Key, Value}"),
        ]
        for (request, name, reason) in cases {
            let error = malformed(.tuple([.pid(pid), ref, request]))
            XCTAssertEqual(error?.command, name, request.printed)
            XCTAssertEqual(error?.reason, reason, request.printed)
            XCTAssertEqual(
                error?.replyMessage, .tuple([ref, .tuple([.atom("error"), .atom("bad_command"), .binary(reason)])]))
        }
    }

    func testPreviewOfAHugeTermStaysShort() {
        let huge = Term.tuple((0..<10_000).map { _ in .binary(Array(repeating: 1, count: 1000)) })
        let text = ClientMessageParser.preview(huge)
        XCTAssertLessThan(text.count, 200)
        XCTAssertTrue(text.hasPrefix("{<<...1000 bytes>>,"), text)
        XCTAssertTrue(text.hasSuffix("...}"), text)
    }

    // MARK: Carried out on a store

    private func run(_ store: FakeStore, _ term: Term) async throws -> ClientMessageExecutor.Outcome {
        await ClientMessageExecutor(store: store, limits: limits).execute(try parse(term))
    }

    func testGetReturnsExactlyWhatWasSet() async throws {
        let store = FakeStore()
        let values: [Term] = [
            .binary(Array("bytes\u{0}\u{ff}".utf8)), string("a string"), .emptyList,
            .tuple([.atom("hp"), .integer(100), .properList([.atom("sword"), .binary(Array("shield".utf8))])]),
            .normalizedInteger(BigInteger(isNegative: true, magnitude: Array(repeating: 0xAB, count: 20))),
            .float(1.5), .atom("an_atom"), .map([.atom("a"): .integer(1)]), .pid(pid), .properList([.integer(1), .integer(300)]),
        ]
        for (index, value) in values.enumerated() {
            let id = string("key\(index)")
            let set = try await run(store, .tuple([.atom("s"), id, value]))
            XCTAssertEqual(set, .done)
            let got = try await run(store, .tuple([.atom("g"), .atom("true"), id, .pid(pid), .atom("null")]))
            XCTAssertEqual(got, .reply(to: pid, message: .tuple([.atom("ok"), value])), value.printed)
        }
        // A binary set is what the line protocol reads; a string is kept as bytes too.
        XCTAssertEqual(store.value("key0"), StoredValue(type: .string, bytes: Array("bytes\u{0}\u{ff}".utf8), encoding: .bytes))
        XCTAssertEqual(store.value("key1"), StoredValue(type: .string, bytes: Array("a string".utf8), encoding: .erlangString))
        XCTAssertEqual(store.value("key3")?.type, .term)
    }

    func testMissingKeyIsKoAndAnErrorIsNotKo() async throws {
        let store = FakeStore()
        let get = Term.tuple([.atom("g"), .atom("false"), string("nothing"), .pid(pid), .atom("null")])
        let missing = try await run(store, get)
        XCTAssertEqual(missing, .reply(to: pid, message: .atom("ko")))
        store.failAll(with: EngineError(.backendUnavailable, "the backend could not be read"))
        let failed = try await run(store, get)
        XCTAssertEqual(failed, .reply(to: pid, message: .tuple([.atom("error"), .atom("backend_unavailable")])))
        let set = try await run(store, .tuple([.atom("s"), string("k"), .binary([1])]))
        XCTAssertEqual(set, .failed("s of \"k\" failed: backend_unavailable: the backend could not be read"))
    }

    func testStoredTermThatDoesNotDecodeIsAnErrorNotACrash() {
        let reply = Reply.value(StoredValue(type: .term, bytes: [131, 104, 9]))
        XCTAssertEqual(ErlangReplies.getReply(reply, limits: limits), .tuple([.atom("error"), .atom("bad_term")]))
        guard case .tuple(let fields) = ErlangReplies.result(reply, limits: limits) else { return XCTFail("not a tuple") }
        XCTAssertEqual(fields.prefix(2), [.atom("error"), .atom("bad_term")])
    }

    func testRequestResults() async throws {
        let store = FakeStore()
        func request(_ command: Term) async throws -> Term? {
            guard case .reply(let to, .tuple(let pair)) = try await run(store, .tuple([.pid(pid), ref, command])) else {
                return nil
            }
            XCTAssertEqual(to, pid)
            XCTAssertEqual(pair.first, ref)
            return pair.last
        }
        func check(_ command: Term, _ expected: Term, line: UInt = #line) async throws {
            let got = try await request(command)
            XCTAssertEqual(got, expected, command.printed, line: line)
        }
        let key = Term.binary(Array("k".utf8))
        try await check(.tuple([.atom("get"), key]), .atom("not_found"))
        try await check(.tuple([.atom("set"), key, .binary([1])]), .atom("true"))
        try await check(.tuple([.atom("set"), key, .binary([2])]), .atom("false"))
        try await check(.tuple([.atom("get"), key]), .tuple([.atom("ok"), .binary([2])]))
        try await check(.tuple([.atom("pset"), key, .atom("x")]), .atom("true"))
        try await check(.tuple([.atom("get"), key]), .tuple([.atom("ok"), .atom("x")]))
        try await check(.tuple([.atom("persist"), key]), .atom("true"))
        try await check(.tuple([.atom("del"), key]), .atom("true"))
        try await check(.tuple([.atom("del"), key]), .atom("false"))
        try await check(.tuple([.atom("persist"), key]), .atom("not_found"))

        try await check(.tuple([.atom("vset"), key, string("v")]), .atom("true"))
        try await check(.tuple([.atom("vget"), key]), .tuple([.atom("ok"), .binary([118])]))
        try await check(.tuple([.atom("vdel"), key]), .atom("true"))

        try await check(.tuple([.atom("hget"), key]), .atom("not_found"))
        try await check(.tuple([.atom("hget"), key, .emptyList]), .atom("not_found"))
        try await check(.tuple([.atom("hset"), key, string("a"), string("1")]), .atom("true"))
        try await check(.tuple([.atom("hpset"), key, string("b"), string("2")]), .atom("true"))
        try await check(.tuple([.atom("hset"), key, string("a"), string("3")]), .atom("false"))
        try await check(.tuple([.atom("hget"), key]), .tuple([.atom("ok"), .map([.binary([97]): .binary([51]), .binary([98]): .binary([50])])]))
        try await check(.tuple([.atom("hget"), key, .properList([string("b"), string("zz")])]), .tuple([.atom("ok"), .map([.binary([98]): .binary([50])])]))
        try await check(.tuple([.atom("hget"), key, .emptyList]), .tuple([.atom("ok"), .map([:])]))
        try await check(.tuple([.atom("hdel"), key, .emptyList]), .atom("false"))
        try await check(.tuple([.atom("hdel"), key, .properList([string("a")])]), .atom("true"))
        try await check(.tuple([.atom("hpdel"), key]), .atom("true"))
        try await check(.tuple([.atom("hget"), key]), .atom("not_found"))

        try await check(.tuple([.atom("set"), .binary([]), .binary([1])]), .tuple([.atom("error"), .atom("empty_key"), .binary("the key is empty")]))

        let infoReply = try await request(.atom("info"))
        guard case .tuple(let info)? = infoReply, case .map(let fields) = info.last else {
            return XCTFail("info is not {ok, Map}")
        }
        XCTAssertEqual(info.first, .atom("ok"))
        XCTAssertEqual(fields[.atom("keys_string_dirty")], .integer(0))
        XCTAssertEqual(fields[.atom("max_memory")], .integer(1 << 30))
        XCTAssertEqual(fields[.atom("ops_per_sec")], .float(2.5))
        XCTAssertEqual(fields[.atom("compression_ratio")], .float(1.0))
    }

    func testHashValuesThatAreNotJSONStringsComeBackAsTheirJSONText() throws {
        let term = try ErlangReplies.hashTerm(json: Array(#"{"a":"x","n":12,"l":[1,2]}"#.utf8))
        XCTAssertEqual(
            term, .map([.binary([97]): .binary([120]), .binary([110]): .binary(Array("12".utf8)), .binary([108]): .binary(Array("[1,2]".utf8))]))
        XCTAssertThrowsError(try ErlangReplies.hashTerm(json: Array("[1]".utf8)))
    }

    func testCommandNamesAreTheCounterLabels() {
        XCTAssertEqual(
            ErlangCommandName.allCases.map(\.text),
            ["s", "g", "p", "get", "set", "pset", "del", "pdel", "persist", "vget", "vset", "vdel", "hget", "hset", "hpset",
             "hdel", "hpdel", "info"])
        XCTAssertNil(ErlangCommandName.request(named: "g"))
        XCTAssertEqual(ErlangCommandName.request(named: "hpset"), .hpset)
    }
}
