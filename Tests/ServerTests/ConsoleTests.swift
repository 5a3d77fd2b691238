#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import XCTest

@testable import Server

// MARK: - Key decoding

final class ConsoleKeyDecoderTests: XCTestCase {
    private func keys(_ bytes: [UInt8]) -> [Console.Key] {
        var decoder = Console.KeyDecoder()
        return decoder.decode(bytes)
    }

    private func keys(_ text: String) -> [Console.Key] { keys(Array(text.utf8)) }

    func testPrintableTextAndEnter() {
        XCTAssertEqual(keys("ab 1\r"), [.character("a"), .character("b"), .character(" "), .character("1"), .enter])
        XCTAssertEqual(keys("\n"), [.enter])
    }

    func testControlKeys() {
        XCTAssertEqual(keys([0x01, 0x05, 0x15, 0x0B, 0x17, 0x03, 0x04]),
                       [.control("a"), .control("e"), .control("u"), .control("k"), .control("w"), .control("c"), .control("d")])
        XCTAssertEqual(keys([0x7F, 0x08, 0x09]), [.backspace, .backspace, .tab])
    }

    func testArrowHomeEndAndDeleteInEveryEncoding() {
        XCTAssertEqual(keys("\u{1B}[A\u{1B}[B\u{1B}[C\u{1B}[D"), [.up, .down, .right, .left])
        XCTAssertEqual(keys("\u{1B}OA\u{1B}OD\u{1B}OH\u{1B}OF"), [.up, .left, .home, .end])
        XCTAssertEqual(keys("\u{1B}[H\u{1B}[F\u{1B}[1~\u{1B}[4~\u{1B}[7~\u{1B}[8~"), [.home, .end, .home, .end, .home, .end])
        XCTAssertEqual(keys("\u{1B}[3~"), [.delete])
        XCTAssertEqual(keys("\u{1B}[1;5C\u{1B}[1;5D\u{1B}b\u{1B}f"), [.wordRight, .wordLeft, .wordLeft, .wordRight])
    }

    func testSequencesSplitAcrossReadsDecodeTheSame() {
        var decoder = Console.KeyDecoder()
        var out: [Console.Key] = []
        for byte in Array("\u{1B}[3~é€😀x".utf8) {
            if let key = decoder.feed(byte) { out.append(key) }
        }
        XCTAssertEqual(out, [.delete, .character("é"), .character("€"), .character("😀"), .character("x")])
    }

    func testUnknownAndMalformedInputNeverBecomesText() {
        // Unknown CSI, an unknown `~` code, a truncated UTF-8 sequence, a stray continuation
        // byte, an overlong encoding, and NUL.
        XCTAssertEqual(keys(Array("\u{1B}[Z\u{1B}[9~".utf8) + [0xC3, 0x41, 0x80, 0xC0, 0xAF, 0x00, 0x42]),
                       [.character("A"), .character("B")])
        // An Escape pressed alone is dropped, and the key after it still counts.
        XCTAssertEqual(keys("\u{1B}x"), [.character("x")])
        // A runaway CSI parameter list is dropped whole rather than buffered, final byte included.
        XCTAssertEqual(keys("\u{1B}[" + String(repeating: "1", count: 40) + "A" + "z"), [.character("z")])
    }
}

// MARK: - Line editor

final class ConsoleLineEditorTests: XCTestCase {
    private func type(_ text: String, into editor: inout Console.LineEditor) {
        for scalar in text.unicodeScalars { _ = editor.handle(.character(scalar)) }
    }

    func testTypingBuildsTheLineWithTheCursorAtTheEnd() {
        var editor = Console.LineEditor()
        type("get k", into: &editor)
        XCTAssertEqual(editor.line, "get k")
        XCTAssertEqual(editor.cursor, 5)
        XCTAssertEqual(editor.handle(.enter), .submit("get k"))
        XCTAssertEqual(editor.line, "")
        XCTAssertEqual(editor.cursor, 0)
    }

    func testCursorMovesAndInsertionInTheMiddle() {
        var editor = Console.LineEditor()
        type("st k v", into: &editor)
        XCTAssertEqual(editor.handle(.home), .redraw)
        XCTAssertEqual(editor.handle(.right), .redraw)
        type("e", into: &editor)
        XCTAssertEqual(editor.line, "set k v")
        XCTAssertEqual(editor.cursor, 2)
        _ = editor.handle(.control("e"))
        XCTAssertEqual(editor.cursor, 7)
        XCTAssertEqual(editor.handle(.right), .bell)
        _ = editor.handle(.control("a"))
        XCTAssertEqual(editor.handle(.left), .bell)
        XCTAssertEqual(editor.cursor, 0)
        _ = editor.handle(.wordRight)
        XCTAssertEqual(editor.cursor, 3)
        _ = editor.handle(.wordRight)
        XCTAssertEqual(editor.cursor, 5)
        _ = editor.handle(.wordLeft)
        XCTAssertEqual(editor.cursor, 4)
    }

    func testBackspaceAndDelete() {
        var editor = Console.LineEditor()
        type("gett", into: &editor)
        XCTAssertEqual(editor.handle(.backspace), .redraw)
        XCTAssertEqual(editor.line, "get")
        _ = editor.handle(.home)
        XCTAssertEqual(editor.handle(.backspace), .bell)
        XCTAssertEqual(editor.handle(.delete), .redraw)
        XCTAssertEqual(editor.line, "et")
        XCTAssertEqual(editor.cursor, 0)
        _ = editor.handle(.end)
        XCTAssertEqual(editor.handle(.delete), .bell)
    }

    func testCombiningMarksMoveAndDeleteWithTheirCharacter() {
        var editor = Console.LineEditor()
        type("xe\u{301}", into: &editor)  // "xé" with a combining acute accent
        XCTAssertEqual(editor.handle(.left), .redraw)
        XCTAssertEqual(editor.cursor, 1)
        _ = editor.handle(.end)
        XCTAssertEqual(editor.handle(.backspace), .redraw)
        XCTAssertEqual(editor.line, "x")
    }

    func testControlKillsAndClear() {
        var editor = Console.LineEditor()
        type("set key value", into: &editor)
        _ = editor.handle(.control("w"))
        XCTAssertEqual(editor.line, "set key ")
        _ = editor.handle(.control("w"))
        XCTAssertEqual(editor.line, "set ")
        type("k v", into: &editor)
        _ = editor.handle(.wordLeft)
        _ = editor.handle(.control("k"))
        XCTAssertEqual(editor.line, "set k ")
        _ = editor.handle(.left)
        _ = editor.handle(.control("u"))
        XCTAssertEqual(editor.line, " ")
        XCTAssertEqual(editor.cursor, 0)
        XCTAssertEqual(editor.handle(.control("l")), .clearScreen)
        XCTAssertEqual(editor.handle(.control("c")), .cancel)
        XCTAssertEqual(editor.line, "")
    }

    func testControlDLeavesOnlyOnAnEmptyLine() {
        var editor = Console.LineEditor()
        XCTAssertEqual(editor.handle(.control("d")), .endOfInput)
        type("ab", into: &editor)
        _ = editor.handle(.home)
        XCTAssertEqual(editor.handle(.control("d")), .redraw)
        XCTAssertEqual(editor.line, "b")
    }

    func testHistoryWalkKeepsTheDraft() {
        var editor = Console.LineEditor(history: Console.CommandHistory(entries: ["get a", "get b"]))
        type("draft", into: &editor)
        XCTAssertEqual(editor.handle(.up), .redraw)
        XCTAssertEqual(editor.line, "get b")
        XCTAssertEqual(editor.cursor, 5)
        _ = editor.handle(.control("p"))
        XCTAssertEqual(editor.line, "get a")
        XCTAssertEqual(editor.handle(.up), .bell)
        XCTAssertEqual(editor.line, "get a")
        _ = editor.handle(.down)
        XCTAssertEqual(editor.line, "get b")
        _ = editor.handle(.control("n"))
        XCTAssertEqual(editor.line, "draft")
        XCTAssertEqual(editor.handle(.down), .bell)
        // An entered line starts the next walk from the newest entry again.
        _ = editor.handle(.up)
        XCTAssertEqual(editor.handle(.enter), .submit("get b"))
        XCTAssertEqual(editor.historyIndex, nil)
        var empty = Console.LineEditor()
        XCTAssertEqual(empty.handle(.up), .bell)
    }

    func testTabCompletesTheCommandWord() {
        var editor = Console.LineEditor(completions: ["get", "hget", "hpdel", "hpsetkv", "info"])
        type("in", into: &editor)
        XCTAssertEqual(editor.handle(.tab), .redraw)
        XCTAssertEqual(editor.line, "info ")
        var ambiguous = Console.LineEditor(completions: ["hpdel", "hpsetkv"])
        type("h", into: &ambiguous)
        XCTAssertEqual(ambiguous.handle(.tab), .redraw)
        XCTAssertEqual(ambiguous.line, "hp")
        XCTAssertEqual(ambiguous.handle(.tab), .bell)
        var argument = Console.LineEditor(completions: ["get"])
        type("get g", into: &argument)
        XCTAssertEqual(argument.handle(.tab), .bell)
        XCTAssertEqual(argument.line, "get g")
    }
}

// MARK: - History, rendering, help

final class ConsoleHistoryAndRenderingTests: XCTestCase {
    func testHistoryIsBoundedAndSkipsBlanksRepeatsAndSecrets() {
        var history = Console.CommandHistory(capacity: 3)
        for line in ["get a", "get a", "  ", "auth hunter2", "AUTH x", "get b", "get c", "get d"] { history.add(line) }
        XCTAssertEqual(history.entries, ["get b", "get c", "get d"])
    }

    func testHistoryFileRoundTripsAndIsPrivate() throws {
        let path = NSTemporaryDirectory() + "brain-history-\(UUID().uuidString)"
        defer { unlink(path) }
        let history = Console.CommandHistory(entries: ["get a", "set k é"])
        XCTAssertTrue(history.save(to: path))
        XCTAssertEqual(Console.CommandHistory.load(from: path).entries, ["get a", "set k é"])
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(Console.CommandHistory.load(from: path + "-missing").entries, [])
        XCTAssertFalse(history.save(to: "/nonexistent-directory/history"))
    }

    func testRenderDrawsPromptLineAndCursor() {
        let bytes = Console.LineRenderer.render(prompt: "brain> ", buffer: Array("get k".unicodeScalars), cursor: 3, columns: 80)
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "\rbrain> get k\u{1B}[0K\r\u{1B}[10C")
    }

    func testRenderScrollsALongLineToKeepTheCursorInView() {
        let buffer = Array("0123456789abcdefghij".unicodeScalars)
        // 20 columns, prompt of 2: 17 columns for text.
        let atEnd = Console.LineRenderer.render(prompt: "> ", buffer: buffer, cursor: 20, columns: 20)
        XCTAssertEqual(String(decoding: atEnd, as: UTF8.self), "\r> 3456789abcdefghij\u{1B}[0K\r\u{1B}[19C")
        let atStart = Console.LineRenderer.render(prompt: "> ", buffer: buffer, cursor: 0, columns: 20)
        XCTAssertEqual(String(decoding: atStart, as: UTF8.self), "\r> 0123456789abcdefg\u{1B}[0K\r\u{1B}[2C")
    }

    func testRenderCountsWideCharactersAsTwoColumns() {
        let bytes = Console.LineRenderer.render(prompt: "> ", buffer: Array("日本".unicodeScalars), cursor: 2, columns: 80)
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "\r> 日本\u{1B}[0K\r\u{1B}[6C")
    }

    func testHelpListsEveryProtocolCommandWithItsSyntax() {
        let help = Console.helpText
        for command in ["auth", "del", "get", "hdel", "help", "hget", "hpdel", "hpsetkv", "hsetkv", "info",
                        "pdel", "pset", "quit", "set", "shutdown", "vdel", "vget", "vset", "with", "?", "exit"] {
            XCTAssertTrue(help.contains("\n  \(command) ") || help.contains("\n  \(command)\n"), "missing \(command)")
        }
        // Each row is the syntax, padded to one column, then the summary.
        let rows = help.split(separator: "\n").map(String.init)
        func row(_ syntax: String) -> String? { rows.first { $0.hasPrefix("  \(syntax)  ") } }
        XCTAssertTrue(row("hsetkv key field value")?.hasSuffix("  set one field of a hash: 1 new field, 0 replaced") ?? false)
        XCTAssertTrue(row("hget key [field ...]")?.hasSuffix("  a hash, or the named fields, as a JSON object, or null") ?? false)
        XCTAssertEqual(rows.filter { $0.hasPrefix("  with durability=") }.count, 1)
    }

    func testEscapeWritesUntypeableBytesAsCEscapes() {
        XCTAssertEqual(Console.escape("a b\\c\r\n\t\0\u{1}é"), #"a b\\c\r\n\t\0\x01é"#)
    }
}

// MARK: - info

final class ConsoleInfoFormatterTests: XCTestCase {
    static let sample = "keys_string_clean:3 keys_string_dirty:1 keys_hash_clean:0 memory_slab_bytes:12939428 "
        + "memory_index_bytes:2048 max_memory:536870912 compression_ratio:2.5 dirty_bytes:512 "
        + "max_dirty_bytes:67108864 writeback_backlog:4 backend_put_ok:17 commands_total:1234 "
        + "ops_per_sec:12.5 evictions:2 uptime_seconds:3725 future_field:x"

    func testInfoIsGroupedAlignedAndShowsHumanSizes() {
        let expected = """
            # keys
            keys_string_clean           3
            keys_string_dirty           1
            keys_hash_clean             0

            # memory
            memory_slab_bytes    12939428  (12.3 MiB)
            memory_index_bytes       2048  (2.0 KiB)
            max_memory          536870912  (512.0 MiB)
            compression_ratio         2.5
            evictions                   2

            # write-back
            dirty_bytes               512
            max_dirty_bytes      67108864  (64.0 MiB)
            writeback_backlog           4

            # backend
            backend_put_ok             17

            # commands
            commands_total           1234
            ops_per_sec              12.5
            uptime_seconds           3725  (1h 2m 5s)

            # other
            future_field                x

            """
        XCTAssertEqual(Console.InfoFormatter.format(Self.sample), expected)
    }

    func testAnErrorReplyIsNotAnInfoLine() {
        XCTAssertNil(Console.InfoFormatter.format("error auth_required: auth first"))
        XCTAssertNil(Console.InfoFormatter.format(""))
    }

    func testHumanUnits() {
        XCTAssertEqual(Console.InfoFormatter.byteSize(512), "512 B")
        XCTAssertEqual(Console.InfoFormatter.byteSize(1024), "1.0 KiB")
        XCTAssertEqual(Console.InfoFormatter.byteSize(1_048_575), "1.0 MiB")
        XCTAssertEqual(Console.InfoFormatter.byteSize(5 * 1_073_741_824 + 107_374_182), "5.1 GiB")
        XCTAssertEqual(Console.InfoFormatter.duration(seconds: 59), "59s")
        XCTAssertEqual(Console.InfoFormatter.duration(seconds: 90_061), "1d 1h 1m 1s")
        XCTAssertEqual(Console.InfoFormatter.duration(seconds: 0), "0s")
    }
}

// MARK: - Piped mode, pure

final class ConsolePipedSessionTests: XCTestCase {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    private func lines(_ lines: [[UInt8]]) -> [String] { lines.map(text) }

    func testLineBufferSplitsAnyChunking() {
        var buffer = Console.LineBuffer()
        buffer.append(Array("get a\r".utf8))
        XCTAssertNil(buffer.nextLine())
        buffer.append(Array("\nget b\nget".utf8))
        XCTAssertEqual(buffer.nextLine().map(text), "get a")
        XCTAssertEqual(buffer.nextLine().map(text), "get b")
        XCTAssertNil(buffer.nextLine())
        XCTAssertEqual(buffer.takeUnterminatedLine().map(text), "get")
        XCTAssertNil(buffer.takeUnterminatedLine())
    }

    func testCommandsArePipelinedAndRepliesMatchedInOrder() {
        var session = Console.PipedSession()
        XCTAssertEqual(text(session.receiveInput(Array("set k v\r\n\n  \nget k\nget".utf8))), "set k v\nget k\n")
        XCTAssertEqual(session.inFlight, 2)
        XCTAssertEqual(text(session.endInput()), "get\n")
        XCTAssertNil(session.outcome)
        XCTAssertEqual(lines(session.receiveReplies(Array("1\r\n-v\r".utf8))), ["1"])
        XCTAssertEqual(lines(session.receiveReplies(Array("\nerror bad_command: get takes a key\r\n".utf8))),
                       ["-v", "error bad_command: get takes a key"])
        XCTAssertEqual(session.outcome, .finished(errorReplies: 1))
        XCTAssertEqual(Console.PipedSession.exitStatus(of: .finished(errorReplies: 1)), 2)
        XCTAssertEqual(Console.PipedSession.exitStatus(of: .finished(errorReplies: 0)), 0)
        XCTAssertEqual(Console.PipedSession.exitStatus(of: .connectionLost), 1)
    }

    func testQuitEndsTheInput() {
        var session = Console.PipedSession()
        XCTAssertEqual(text(session.receiveInput(Array("get a\nQUIT\nget b\n".utf8))), "get a\n")
        XCTAssertFalse(session.wantsInput)
        _ = session.receiveReplies(Array("null\r\n".utf8))
        XCTAssertEqual(session.outcome, .finished(errorReplies: 0))
    }

    func testInputIsPausedAtTheInFlightBound() {
        var session = Console.PipedSession(maximumInFlight: 2)
        _ = session.receiveInput(Array("get a\nget b\n".utf8))
        XCTAssertFalse(session.wantsInput)
        _ = session.receiveReplies(Array("null\r\n".utf8))
        XCTAssertTrue(session.wantsInput)
    }

    func testAClosedConnectionLosesTheSessionOnlyWhenCommandsRemain() {
        var pending = Console.PipedSession()
        _ = pending.receiveInput(Array("get a\n".utf8))
        pending.closeConnection()
        XCTAssertEqual(pending.outcome, .connectionLost)

        var idle = Console.PipedSession()
        _ = idle.receiveInput(Array("shutdown\n".utf8))
        _ = idle.receiveReplies(Array("1\r\n".utf8))
        idle.closeConnection()
        XCTAssertNil(idle.outcome)
        XCTAssertEqual(idle.endInput(), [])
        XCTAssertEqual(idle.outcome, .finished(errorReplies: 0))

        var more = Console.PipedSession()
        more.closeConnection()
        XCTAssertEqual(more.receiveInput(Array("get a\n".utf8)), [])
        XCTAssertEqual(more.outcome, .connectionLost)
    }
}

// MARK: - Against a node

/// A value shared between the test and the threads of its fake node and terminal.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> sending Result {
        mutex.withLock(body)
    }

    var value: Value { mutex.withLock { $0 } }
}

/// A line-protocol node for tests: listens on 127.0.0.1 on a free port and answers each
/// command with the reply `answer` gives, `nil` meaning "close the connection instead".
final class CannedLineServer: Sendable {
    let port: Int
    private let listener: CInt
    private let commands = Locked<[String]>([])

    /// The commands received, in order, over all connections.
    var received: [String] { commands.value }

    init(answer: @escaping @Sendable (String) -> String?) throws {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [commands] in
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                Self.serve(client, commands: commands, answer: answer)
            }
        }
        thread.start()
    }

    /// Stops accepting connections.
    func stop() {
        shutdown(listener, CInt(SHUT_RDWR))
        close(listener)
    }

    private static func serve(_ client: CInt, commands: Locked<[String]>, answer: (String) -> String?) {
        defer { close(client) }
        var buffer = Console.LineBuffer()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            while let line = buffer.nextLine() {
                let command = String(decoding: line, as: UTF8.self)
                commands.withLock { $0.append(command) }
                guard command != "quit", let reply = answer(command) else { return }
                let bytes = Array((reply + "\r\n").utf8)
                guard Console.writeAll(client, bytes) else { return }
            }
            let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            buffer.append(chunk[0..<count])
        }
    }
}

/// A file in the temporary directory, open for reading and writing, removed at `deinit`.
final class ScratchFile {
    let path: String
    let fd: CInt

    init(_ contents: String = "") {
        path = NSTemporaryDirectory() + "brain-console-\(UUID().uuidString)"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        Console.writeAll(fd, Array(contents.utf8))
        lseek(fd, 0, SEEK_SET)
    }

    var contents: String {
        String(decoding: Console.readWholeFile(path) ?? [], as: UTF8.self)
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

/// Canned replies of a small node: strings in memory, `info`, and errors.
private func cannedNode(secret: String? = nil) -> @Sendable (String) -> String? {
    let values = Locked<[String: String]>([:])
    let authenticated = Locked(secret == nil)
    return { command in
        let words = command.split(separator: " ", maxSplits: 2).map(String.init)
        if words.first == "auth" {
            guard words.count == 2, words[1] == secret else { return "error bad_secret: wrong secret" }
            authenticated.withLock { $0 = true }
            return "1"
        }
        guard authenticated.value else { return "error auth_required: send auth <secret> first" }
        switch (words.first, words.count) {
        case ("set", 3):
            return values.withLock { $0.updateValue(words[2], forKey: words[1]) == nil } ? "1" : "0"
        case ("get", 2):
            return values.withLock { $0[words[1]] }.map { "-" + $0 } ?? "null"
        case ("info", 1):
            return "keys_string_clean:1 memory_slab_bytes:2097152"
        case ("hang", _):
            return nil
        default:
            return "error bad_command: unknown command '\(words.first ?? "")'"
        }
    }
}

final class ConsolePipedModeTests: XCTestCase {
    func testPipedCommandsPrintEachReplyInOrderAndExitZero() async throws {
        let server = try CannedLineServer(answer: cannedNode())
        defer { server.stop() }
        let input = ScratchFile("set k hello world\nget k\nset k again\n\nget missing\ninfo")
        let output = ScratchFile()
        let errors = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: server.port, secret: nil, input: input.fd, output: output.fd,
            errorOutput: errors.fd, historyPath: nil)
        XCTAssertEqual(status, 0)
        XCTAssertEqual(output.contents, "1\n-hello world\n0\nnull\nkeys_string_clean:1 memory_slab_bytes:2097152\n")
        XCTAssertEqual(errors.contents, "")
        XCTAssertEqual(server.received, ["set k hello world", "get k", "set k again", "get missing", "info"])
    }

    func testAnErrorReplyMakesTheExitStatusTwo() async throws {
        let server = try CannedLineServer(answer: cannedNode())
        defer { server.stop() }
        let input = ScratchFile("frobnicate\nset a 1\n")
        let output = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: server.port, secret: nil, input: input.fd, output: output.fd,
            errorOutput: output.fd, historyPath: nil)
        XCTAssertEqual(status, 2)
        XCTAssertEqual(output.contents, "error bad_command: unknown command 'frobnicate'\n1\n")
    }

    func testQuitStopsSendingAndExitsZero() async throws {
        let server = try CannedLineServer(answer: cannedNode())
        defer { server.stop() }
        let input = ScratchFile("set a 1\nquit\nset b 2\n")
        let output = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: server.port, secret: nil, input: input.fd, output: output.fd,
            errorOutput: output.fd, historyPath: nil)
        XCTAssertEqual(status, 0)
        XCTAssertEqual(output.contents, "1\n")
        XCTAssertEqual(server.received, ["set a 1"])
    }

    func testALostConnectionIsReportedWithStatusOne() async throws {
        let server = try CannedLineServer(answer: cannedNode())
        defer { server.stop() }
        let input = ScratchFile("set a 1\nhang\nget a\n")
        let output = ScratchFile()
        let errors = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: server.port, secret: nil, input: input.fd, output: output.fd,
            errorOutput: errors.fd, historyPath: nil)
        XCTAssertEqual(status, 1)
        XCTAssertEqual(output.contents, "1\n")
        XCTAssertEqual(errors.contents, "brain console: connection to 127.0.0.1:\(server.port) lost\n")
    }

    func testTheSecretIsSentFirstAndNotPrinted() async throws {
        let server = try CannedLineServer(answer: cannedNode(secret: "s3cret"))
        defer { server.stop() }
        let input = ScratchFile("get k\n")
        let output = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: server.port, secret: "s3cret", input: input.fd, output: output.fd,
            errorOutput: output.fd, historyPath: nil)
        XCTAssertEqual(status, 0)
        XCTAssertEqual(output.contents, "null\n")
        XCTAssertEqual(server.received, ["auth s3cret", "get k"])
    }

    func testAWrongSecretIsReportedWithStatusOne() async throws {
        let server = try CannedLineServer(answer: cannedNode(secret: "s3cret"))
        defer { server.stop() }
        let input = ScratchFile("get k\n")
        let output = ScratchFile()
        let errors = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: server.port, secret: "wrong", input: input.fd, output: output.fd,
            errorOutput: errors.fd, historyPath: nil)
        XCTAssertEqual(status, 1)
        XCTAssertEqual(output.contents, "")
        XCTAssertEqual(errors.contents,
                       "brain console: authentication to 127.0.0.1:\(server.port) failed: bad_secret: wrong secret\n")
        XCTAssertEqual(server.received, ["auth wrong"])
    }

    func testARefusedConnectionSaysHowToStartANode() async throws {
        // A bound socket that does not listen: connecting to its port is refused, and no other
        // process can take the port while the test runs.
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let input = ScratchFile("get k\n")
        let output = ScratchFile()
        let errors = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: port, secret: nil, input: input.fd, output: output.fd,
            errorOutput: errors.fd, historyPath: nil)
        XCTAssertEqual(status, 1)
        XCTAssertEqual(output.contents, "")
        XCTAssertEqual(errors.contents,
                       "brain console: cannot connect to 127.0.0.1:\(port): Connection refused (is a node running? start one with 'brain serve')\n")
    }

    func testAnInvalidPortIsRefusedBeforeConnecting() async {
        let errors = ScratchFile()
        let status = await Console.run(
            host: "127.0.0.1", port: 70000, secret: nil, input: errors.fd, output: errors.fd,
            errorOutput: errors.fd, historyPath: nil)
        XCTAssertEqual(status, 1)
        XCTAssertEqual(errors.contents, "brain console: invalid port 70000: use 1 to 65535\n")
    }
}

// MARK: - Interactive mode, on a pseudo-terminal

#if os(Linux)
/// A pseudo-terminal pair; the test plays the user on `master`, the console gets `slave`.
/// Everything the console writes is collected by a thread, so the console never blocks on a
/// full terminal.
final class PseudoTerminal: Sendable {
    let master: CInt
    let slave: CInt
    private let screen = Locked<[UInt8]>([])

    init() throws {
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: CInt = 0
        var number: CUnsignedInt = 0
        // TIOCSPTLCK and TIOCGPTN, which Swift cannot import from the kernel headers.
        guard master >= 0, ioctl(master, UInt(0x4004_5431), &unlock) == 0,
            ioctl(master, UInt(0x8004_5430), &number) == 0
        else { throw POSIXError(.ENODEV) }
        slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw POSIXError(.ENODEV) }
        let thread = Thread { [master, screen] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
                guard count > 0 else { return }
                screen.withLock { $0.append(contentsOf: chunk[0..<count]) }
            }
        }
        thread.start()
    }

    /// Everything written to the terminal so far.
    var written: String { String(decoding: screen.value, as: UTF8.self) }

    /// Types keys, as the user would.
    func type(_ keys: String) { Console.writeAll(master, Array(keys.utf8)) }

    /// Waits until the terminal has shown `text` `times` times in all, up to five seconds.
    func waitFor(_ text: String, times: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        for _ in 0..<500 {
            if written.components(separatedBy: text).count - 1 >= times { return }
            usleep(10_000)
        }
        XCTFail("the terminal never showed \(text.debugDescription) \(times) times; it showed \(written.debugDescription)",
                file: file, line: line)
    }

    /// Closes the console's side, which ends the collecting thread.
    func close() {
        Glibc.close(slave)
        Glibc.close(master)
    }
}

final class ConsoleInteractiveModeTests: XCTestCase {
    func testPromptEditingHistoryInfoAndHelpOnATerminal() async throws {
        let server = try CannedLineServer(answer: cannedNode(secret: "s3cret"))
        defer { server.stop() }
        let terminal = try PseudoTerminal()
        defer { terminal.close() }
        let history = ScratchFile("get old\n")
        let errors = ScratchFile()
        let prompt = "brain 127.0.0.1:\(server.port)> "

        async let status = Console.run(
            host: "127.0.0.1", port: server.port, secret: "s3cret", input: terminal.slave,
            output: terminal.slave, errorOutput: errors.fd, historyPath: history.path)

        terminal.waitFor(prompt)
        XCTAssertTrue(terminal.written.contains("Connected to 127.0.0.1:\(server.port). Type ? for help"))
        // "st k v", then Home, Right, "e": "set k v".
        terminal.type("st k v\u{1B}[H\u{1B}[Ce\r")
        terminal.waitFor("\r\n1\r\n")
        // Up recalls "set k v"; Ctrl-W and Ctrl-W leave "set "; then "k" and Ctrl-A, Ctrl-K
        // clear it; then a get.
        terminal.type("\u{1B}[A\u{17}\u{17}\u{01}\u{0B}get k\r")
        terminal.waitFor("\r\n-v\r\n")
        terminal.type("info\r")
        terminal.waitFor("(2.0 MiB)")
        terminal.type("?\r")
        terminal.waitFor("hsetkv key field value")
        terminal.type("auth s3cret\r")
        terminal.waitFor("\r\n1\r\n", times: 2)
        terminal.type("\u{04}")
        let exitStatus = await status

        XCTAssertEqual(exitStatus, 0)
        XCTAssertEqual(errors.contents, "")
        XCTAssertEqual(server.received, ["auth s3cret", "set k v", "get k", "info", "auth s3cret"])
        let screen = terminal.written
        XCTAssertTrue(screen.contains("# keys\r\nkeys_string_clean        1\r\n"), screen)
        XCTAssertTrue(screen.contains("memory_slab_bytes  2097152  (2.0 MiB)\r\n"), screen)
        // The history file has the lines entered, but never the secret.
        XCTAssertEqual(history.contents, "get old\nset k v\nget k\ninfo\n?\n")
        // The terminal is back in its own mode: canonical input and echo.
        var settings = termios()
        XCTAssertEqual(tcgetattr(terminal.slave, &settings), 0)
        XCTAssertNotEqual(settings.c_lflag & tcflag_t(ICANON), 0)
        XCTAssertNotEqual(settings.c_lflag & tcflag_t(ECHO), 0)
    }
}
#endif
