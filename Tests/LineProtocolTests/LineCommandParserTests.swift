import Engine
import XCTest

@testable import LineProtocol

/// A readable, comparable rendering of a parsed request.
func render(_ request: LineRequest) -> String {
    func text(_ bytes: [UInt8]) -> String { LineEscaping.escaped(bytes) }
    func list(_ items: [[UInt8]]) -> String { "[" + items.map(text).joined(separator: ",") + "]" }
    switch request {
    case .help: return "help"
    case .info: return "info"
    case .quit: return "quit"
    case .shutdown: return "shutdown"
    case .auth(let secret): return "auth secret=\(text(secret))"
    case .store(let command, let durability):
        let options = durability.map { "durability=\($0.rawValue) " } ?? ""
        return options + render(command)
    }
}

/// A readable, comparable rendering of a store command.
func render(_ command: Command) -> String {
    func text(_ bytes: [UInt8]) -> String { LineEscaping.escaped(bytes) }
    func list(_ items: [[UInt8]]) -> String { "[" + items.map(text).joined(separator: ",") + "]" }
    switch command {
    case .get(let key): return "get key=\(text(key))"
    case .set(let key, let value, let encoding, let persist):
        return "set key=\(text(key)) value=\(text(value)) encoding=\(encoding) persist=\(persist)"
    case .setTerm(let key, let etf, let persist):
        return "setTerm key=\(text(key)) etf=\(text(etf)) persist=\(persist)"
    case .delete(let key, let persist): return "delete key=\(text(key)) persist=\(persist)"
    case .persist(let key): return "persist key=\(text(key))"
    case .volatileGet(let key): return "volatileGet key=\(text(key))"
    case .volatileSet(let key, let value): return "volatileSet key=\(text(key)) value=\(text(value))"
    case .volatileDelete(let key): return "volatileDelete key=\(text(key))"
    case .hashGet(let key, let fields): return "hashGet key=\(text(key)) fields=\(list(fields))"
    case .hashSet(let key, let field, let value, let persist):
        return "hashSet key=\(text(key)) field=\(text(field)) value=\(text(value)) persist=\(persist)"
    case .hashDelete(let key, let fields, let persist):
        return "hashDelete key=\(text(key)) fields=\(list(fields)) persist=\(persist)"
    }
}

final class LineCommandParserTests: XCTestCase {
    private func parse(_ line: String) -> String {
        let bytes = Array(line.utf8)
        do {
            let parsed = try bytes.withUnsafeBytes { raw in try LineCommandParser.parse(raw) }
            guard let (name, request) = parsed else { return "empty" }
            return "\(name): \(render(request))"
        } catch {
            return "error \(error)"
        }
    }

    func testStringCommands() {
        XCTAssertEqual(parse("get k"), "get: get key=k")
        XCTAssertEqual(parse("set k v"), "set: set key=k value=v encoding=bytes persist=false")
        XCTAssertEqual(parse("pset k v"), "pset: set key=k value=v encoding=bytes persist=true")
        XCTAssertEqual(parse("del k"), "del: delete key=k persist=false")
        XCTAssertEqual(parse("pdel k"), "pdel: delete key=k persist=true")
    }

    func testWithGivesTheCommandAfterItADurability() {
        XCTAssertEqual(
            parse("with durability=backend set k v w"),
            "with: durability=backend set key=k value=v w encoding=bytes persist=false")
        XCTAssertEqual(parse("WITH  durability=log   del k"), "with: durability=log delete key=k persist=false")
        XCTAssertEqual(
            parse("with durability=memory hsetkv h f v"),
            "with: durability=memory hashSet key=h field=f value=v persist=false")
        // Applicability to the command (a read, pset with memory) is the engine's to judge.
        XCTAssertEqual(parse("with durability=backend get k"), "with: durability=backend get key=k")
    }

    func testWithRefusesWhatItDoesNotKnow() {
        XCTAssertEqual(
            parse("with durability=disk set k v"),
            "error bad_option: durability=disk is not memory, log or backend")
        XCTAssertEqual(
            parse("with fsync=always set k v"),
            "error bad_option: unknown option fsync; with takes durability=memory|log|backend")
        XCTAssertEqual(
            parse("with durability=log durability=log set k v"), "error bad_option: durability is given twice")
        XCTAssertEqual(parse("with durability=log info"), "error bad_option: info takes no options")
        XCTAssertEqual(
            parse("with durability=log with durability=log set k v"),
            "error bad_option: with cannot precede another with")
        XCTAssertEqual(
            parse("with durability=log"),
            "error wrong_arity: with takes durability=memory|log|backend <command> <arguments>")
        XCTAssertEqual(
            parse("with set k v"),
            "error wrong_arity: with takes durability=memory|log|backend <command> <arguments>")
        XCTAssertEqual(parse("with durability=log fly k"), "error unknown_command: fly")
        XCTAssertEqual(parse("with durability=log set k"), "error wrong_arity: set takes <key> <value>")
        // A token with `=` at either end is no option: it is read as the command.
        XCTAssertEqual(parse("with =log set k v"), "error wrong_arity: with takes durability=memory|log|backend <command> <arguments>")
    }

    func testVolatileCommands() {
        XCTAssertEqual(parse("vget k"), "vget: volatileGet key=k")
        XCTAssertEqual(parse("vset k v w"), "vset: volatileSet key=k value=v w")
        XCTAssertEqual(parse("vdel k"), "vdel: volatileDelete key=k")
    }

    func testHashCommands() {
        XCTAssertEqual(parse("hget h"), "hget: hashGet key=h fields=[]")
        XCTAssertEqual(parse("hget h a  b c "), "hget: hashGet key=h fields=[a,b,c]")
        XCTAssertEqual(
            parse("hsetkv h f some value"), "hsetkv: hashSet key=h field=f value=some value persist=false")
        XCTAssertEqual(parse("hpsetkv h f v"), "hpsetkv: hashSet key=h field=f value=v persist=true")
        XCTAssertEqual(parse("hdel h"), "hdel: hashDelete key=h fields=[] persist=false")
        XCTAssertEqual(parse("hdel h a b"), "hdel: hashDelete key=h fields=[a,b] persist=false")
        XCTAssertEqual(parse("hpdel h"), "hpdel: hashDelete key=h fields=[] persist=true")
        XCTAssertEqual(parse("hpdel h a"), "hpdel: hashDelete key=h fields=[a] persist=true")
    }

    func testTransportCommands() {
        XCTAssertEqual(parse("help"), "help: help")
        XCTAssertEqual(parse("info"), "info: info")
        XCTAssertEqual(parse("quit"), "quit: quit")
        XCTAssertEqual(parse("shutdown"), "shutdown: shutdown")
        XCTAssertEqual(parse("auth s3cret"), "auth: auth secret=s3cret")
        XCTAssertEqual(parse(#"auth a\x20b"#), "auth: auth secret=a b")
    }

    func testCommandNamesIgnoreCaseAndSpacesAroundTokens() {
        XCTAssertEqual(parse("GET k"), "get: get key=k")
        XCTAssertEqual(parse("HsEtKv h f v"), "hsetkv: hashSet key=h field=f value=v persist=false")
        XCTAssertEqual(parse("  get   k  "), "get: get key=k")
        XCTAssertEqual(parse("set   k v"), "set: set key=k value=v encoding=bytes persist=false")
        XCTAssertEqual(parse("hsetkv  h   f v"), "hsetkv: hashSet key=h field=f value=v persist=false")
        XCTAssertEqual(parse("QUIT"), "quit: quit")
    }

    func testValueIsTheRestOfTheLineVerbatim() {
        XCTAssertEqual(parse("set k  two  spaces "), "set: set key=k value= two  spaces  encoding=bytes persist=false")
        XCTAssertEqual(parse("set k "), "set: set key=k value= encoding=bytes persist=false")
        XCTAssertEqual(parse("hsetkv h f "), "hsetkv: hashSet key=h field=f value= persist=false")
        XCTAssertEqual(
            parse("set k {\"a\": [1, 2]}"), "set: set key=k value={\"a\": [1, 2]} encoding=bytes persist=false")
    }

    func testEscapesInKeysFieldsAndValues() {
        XCTAssertEqual(
            parse(#"set a\x20b line\none\ttab\\"#),
            #"set: set key=a b value=line\none\ttab\\ encoding=bytes persist=false"#)
        XCTAssertEqual(parse(#"hget h f\x20g \x00"#), #"hget: hashGet key=h fields=[f g,\0]"#)
        XCTAssertEqual(parse(#"get \0"#), #"get: get key=\0"#)
        XCTAssertEqual(parse(#"vset k \xff\xFE"#), #"vset: volatileSet key=k value=\xff\xfe"#)
    }

    func testBadEscapes() {
        XCTAssertEqual(parse(#"get a\q"#), "error bad_escape: unknown escape 'q' in the key at column 6")
        XCTAssertEqual(
            parse(#"set k ab\x4"#), "error bad_escape: escape 'x' needs two hex digits in the value at column 9")
        XCTAssertEqual(
            parse(#"hsetkv k f\ v"#), "error bad_escape: line ends inside an escape in the field at column 11")
    }

    func testEmptyLines() {
        XCTAssertEqual(parse(""), "empty")
        XCTAssertEqual(parse("   "), "empty")
    }

    func testUnknownCommands() {
        XCTAssertEqual(parse("bogus k"), "error unknown_command: bogus")
        XCTAssertEqual(parse("getx k"), "error unknown_command: getx")
        XCTAssertEqual(parse("shutdownx"), "error unknown_command: shutdownx")
        XCTAssertEqual(parse("ge"), "error unknown_command: ge")
        XCTAssertEqual(parse("get\u{0} k"), "error unknown_command: get\u{0}")
        XCTAssertEqual(parse("\tget k"), "error unknown_command: \tget")
    }

    func testWrongArityOfEveryCommand() {
        let cases: [(String, String)] = [
            ("get", "get takes <key>"), ("get a b", "get takes <key>"),
            ("del", "del takes <key>"), ("del a b", "del takes <key>"),
            ("pdel", "pdel takes <key>"), ("pdel a b", "pdel takes <key>"),
            ("vget", "vget takes <key>"), ("vget a b", "vget takes <key>"),
            ("vdel", "vdel takes <key>"), ("vdel a b", "vdel takes <key>"),
            ("set", "set takes <key> <value>"), ("set k", "set takes <key> <value>"),
            ("pset", "pset takes <key> <value>"), ("pset k", "pset takes <key> <value>"),
            ("vset", "vset takes <key> <value>"), ("vset k", "vset takes <key> <value>"),
            ("hget", "hget takes <key> [<field> ...]"),
            ("hdel", "hdel takes <key> [<field> ...]"),
            ("hpdel", "hpdel takes <key> [<field> ...]"),
            ("hsetkv", "hsetkv takes <key> <field> <value>"), ("hsetkv h", "hsetkv takes <key> <field> <value>"),
            ("hsetkv h f", "hsetkv takes <key> <field> <value>"),
            ("hpsetkv", "hpsetkv takes <key> <field> <value>"), ("hpsetkv h", "hpsetkv takes <key> <field> <value>"),
            ("hpsetkv h f", "hpsetkv takes <key> <field> <value>"),
            ("auth", "auth takes <secret>"), ("auth a b", "auth takes <secret>"),
            ("help x", "help takes no arguments"), ("info x", "info takes no arguments"),
            ("quit x", "quit takes no arguments"), ("shutdown now", "shutdown takes no arguments"),
            ("with", "with takes durability=memory|log|backend <command> <arguments>"),
            ("with durability=log", "with takes durability=memory|log|backend <command> <arguments>"),
        ]
        for (line, message) in cases {
            XCTAssertEqual(parse(line), "error wrong_arity: \(message)", "for \(line)")
        }
        // Every command is covered.
        let covered = Set(cases.map { $0.0.split(separator: " ")[0] })
        XCTAssertEqual(covered, Set(LineCommandName.allCases.map { Substring($0.text) }))
    }

    func testHeadIdentifiesTheCommandWithoutReadingArguments() {
        let bytes = Array(#"SET a\q v"#.utf8)
        let head = bytes.withUnsafeBytes { LineCommandParser.head(of: $0) }
        XCTAssertEqual(head, .command(.set, argumentsAt: 3))
    }

    func testHelpLineListsEveryCommandSorted() {
        XCTAssertEqual(
            LineCommandName.helpLine,
            "commands: auth del get hdel help hget hpdel hpsetkv hsetkv info pdel pset quit set shutdown vdel vget vset with"
        )
    }
}
