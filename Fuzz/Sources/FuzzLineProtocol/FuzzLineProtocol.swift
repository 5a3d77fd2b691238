#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Engine
import FuzzSupport
import LineProtocol
import NIOCore

/// The process's entry point: SwiftPM links `main` to it (see ``runLibFuzzer(_:_:_:)``).
@_cdecl("FuzzLineProtocol_main")
func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}

/// Fuzzes the line protocol's input path: ``LineDecoder`` framing, ``LineSession`` (with and
/// without a secret), ``LineCommandParser``, ``LineEscaping`` and the one-line shape of every
/// reply the session's outcome leads to.
///
/// Input: a settings byte, a chunking seed, then the client's byte stream.
/// - settings bit 7 set: the line limit is `(settings & 0x3F) + 1` bytes, so the limit paths
///   are reached with short inputs; clear: 4096 bytes.
/// - settings bit 6 set: the decoder's buffer drops its read bytes between reads, as NIO's
///   cumulation buffer may.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let settings = input.byte()
    let chunkSeed = input.byte()
    let stream = input.rest()
    let maxLineBytes = settings & 0x80 != 0 ? Int(settings & 0x3F) + 1 : 4096

    let frames = decodeLines(stream, maxLineBytes: maxLineBytes, chunkSeed: chunkSeed, compact: settings & 0x40 != 0)
    let expected = referenceFrames(stream, maxLineBytes: maxLineBytes)
    invariant(
        frames == expected,
        "LineDecoder(maxLineBytes: \(maxLineBytes)) framed \(describe(frames)), expected \(describe(expected))")

    var open = LineSession(secret: nil)
    var secured = LineSession(secret: secret)
    for frame in frames {
        guard case .line(let line) = frame else { break }
        line.withUnsafeBytes { bytes in
            if tracing {
                var traced = open
                print("FuzzLineProtocol: \(hex(bytes, limit: 48)) -> \(traced.receive(bytes).directive)")
            }
            checkOpenSession(&open, bytes)
            checkSecuredSession(&secured, bytes)
            checkEscaping(bytes)
        }
    }
    return 0
}

/// With `FUZZ_TRACE` set in the environment, each line and what a session without a secret
/// makes of it are printed (`FUZZ_TRACE=1 FuzzLineProtocol -runs=0 file`).
let tracing = getenv("FUZZ_TRACE") != nil

/// The secret of the secured session: a client sends `auth fuzz\t!` (or `\x09`).
let secret: [UInt8] = Array("fuzz\t!".utf8)

/// A frame as compared here: a line's bytes, or the end of a too-long stream.
enum Frame: Equatable {
    case line([UInt8])
    case tooLong
}

/// Feeds `stream` to a ``LineDecoder`` in the chunks `chunkSeed` picks, the way
/// `ByteToMessageHandler` does: appended to one cumulation buffer, frames taken until none is
/// complete.
func decodeLines(_ stream: [UInt8], maxLineBytes: Int, chunkSeed: UInt8, compact: Bool) -> [Frame] {
    var decoder = LineDecoder(maxLineBytes: maxLineBytes)
    var buffer = ByteBuffer()
    var frames: [Frame] = []
    for chunk in Chunker(stream, seed: chunkSeed) {
        buffer.writeBytes(chunk)
        while let frame = decoder.nextFrame(&buffer) {
            switch frame {
            case .line(let line):
                invariant(frames.last != .tooLong, "LineDecoder yielded a line after a too-long line")
                invariant(
                    line.readableBytes <= maxLineBytes,
                    "LineDecoder yielded a line of \(line.readableBytes) bytes over its \(maxLineBytes)-byte limit")
                frames.append(.line(Array(line.readableBytesView)))
            case .tooLong(let limit):
                invariant(limit == maxLineBytes, "LineDecoder reported limit \(limit), not \(maxLineBytes)")
                invariant(frames.last != .tooLong, "LineDecoder reported a too-long line twice")
                frames.append(.tooLong)
            }
        }
        // Its documented bound: never more than maxLineBytes + 1 bytes of an unfinished line.
        invariant(
            buffer.readableBytes <= maxLineBytes + 1,
            "LineDecoder left \(buffer.readableBytes) bytes buffered with a \(maxLineBytes)-byte limit")
        if compact { buffer.discardReadBytes() }
    }
    return frames
}

/// The frames of `stream` by the documented rules, computed on the whole stream at once: the
/// decoder must find the same ones whatever the reads.
func referenceFrames(_ stream: [UInt8], maxLineBytes: Int) -> [Frame] {
    var frames: [Frame] = []
    var start = 0
    while start < stream.count {
        guard let newline = stream[start...].firstIndex(of: UInt8(ascii: "\n")) else {
            // An unfinished last line counts only when it is already too long, a trailing
            // `\r` aside (it may be the start of `\r\n`).
            let rest = stream.count - start
            if rest > maxLineBytes + (stream[stream.count - 1] == 0x0D ? 1 : 0) { frames.append(.tooLong) }
            return frames
        }
        var end = newline
        if end > start && stream[end - 1] == 0x0D { end -= 1 }
        if end - start > maxLineBytes {
            frames.append(.tooLong)
            return frames
        }
        frames.append(.line(Array(stream[start..<end])))
        start = newline + 1
    }
    return frames
}

/// Frames as invariant messages show them.
func describe(_ frames: [Frame]) -> String {
    let parts = frames.map { frame -> String in
        switch frame {
        case .line(let bytes): "line(\(hex(bytes, limit: 32)))"
        case .tooLong: "tooLong"
        }
    }
    return "[" + parts.joined(separator: ", ") + "]"
}

/// Without a secret, the session's directive is exactly what the parser makes of the line.
func checkOpenSession(_ session: inout LineSession, _ line: UnsafeRawBufferPointer) {
    let step = session.receive(line)
    invariant(session.isAuthenticated, "a session without a secret became unauthenticated")
    checkAgainstParser(step, line, secretMatches: nil)
    checkReply(step.directive)
}

/// With a secret, nothing but `auth`, `quit` and `help` gets through before the right secret,
/// and only the right secret authenticates.
func checkSecuredSession(_ session: inout LineSession, _ line: UnsafeRawBufferPointer) {
    let wasAuthenticated = session.isAuthenticated
    let step = session.receive(line)
    var sentSecret: [UInt8]?
    if case (.auth, .auth(let candidate))? = try? LineCommandParser.parse(line) { sentSecret = candidate }
    if wasAuthenticated {
        invariant(session.isAuthenticated, "an authenticated session lost its authentication")
        checkAgainstParser(step, line, secretMatches: sentSecret.map { $0 == secret })
    } else {
        invariant(
            session.isAuthenticated == (sentSecret == secret),
            "a session without auth became authenticated=\(session.isAuthenticated) on line \(hex(line))")
        switch step.directive {
        case .execute, .replyInfo, .shutdown:
            invariant(false, "an unauthenticated session let through \(step.directive) for line \(hex(line))")
        case .ignore, .replyOK, .replyError, .replyHelp, .quit:
            break
        }
        if let command = step.command, !command.allowedBeforeAuth {
            guard case .replyError(let error) = step.directive, error.code == .authRequired else {
                invariant(false, "\(command) before auth answered \(step.directive), not auth_required")
                return
            }
        }
        if case .unknown = LineCommandParser.head(of: line) {
            guard case .replyError(let error) = step.directive, error.code == .authRequired else {
                invariant(false, "an unknown command before auth answered \(step.directive), not auth_required")
                return
            }
        }
    }
    checkReply(step.directive)
}

/// Checks an authenticated session's step against ``LineCommandParser/parse(_:)``.
///
/// `secretMatches` is nil without a secret, else whether an `auth` line's secret is right.
func checkAgainstParser(_ step: LineSession.Step, _ line: UnsafeRawBufferPointer, secretMatches: Bool?) {
    let parsed: (LineCommandName, LineRequest)?
    do {
        parsed = try LineCommandParser.parse(line)
    } catch {
        guard case .replyError(let reported) = step.directive, reported == error else {
            invariant(false, "the parser fails with \(error) but the session answered \(step.directive)")
            return
        }
        if case .command(let command, _) = LineCommandParser.head(of: line) {
            invariant(step.command == command, "the session counted \(String(describing: step.command)), not \(command)")
        } else {
            invariant(step.command == nil, "the session counted \(String(describing: step.command)) for an unknown command")
        }
        return
    }
    guard let (command, request) = parsed else {
        guard case .ignore = step.directive, step.command == nil else {
            invariant(false, "an empty line got \(step.directive)")
            return
        }
        return
    }
    // A `with` prefix counts the command it precedes.
    var counted = command
    if command == .with, case .command(_, let argumentsAt) = LineCommandParser.head(of: line),
        let (inner, _) = try? LineCommandParser.prefixed(in: line, at: argumentsAt)
    {
        counted = inner
    }
    invariant(step.command == counted, "the session counted \(String(describing: step.command)), not \(counted)")
    switch (request, step.directive) {
    case (.store(let expected, let expectedDurability), .execute(let got, let durability)):
        invariant(same(expected, got), "the session executes \(got), the parser reads \(expected)")
        invariant(durability == expectedDurability, "the session executes with \(String(describing: durability))")
    case (.auth, .replyOK):
        invariant(secretMatches != false, "a wrong secret was answered 1")
    case (.auth, .replyError(let error)):
        invariant(secretMatches == false && error.code == .authFailed, "auth was answered \(error)")
    case (.help, .replyHelp), (.info, .replyInfo), (.quit, .quit), (.shutdown, .shutdown):
        break
    default:
        invariant(false, "the parser reads \(request), the session answered \(step.directive)")
    }
}

/// Whether two commands are the same (``Command`` is not `Equatable`; its description would
/// do, but at the cost of reflection on every line).
func same(_ lhs: Command, _ rhs: Command) -> Bool {
    switch (lhs, rhs) {
    case (.get(let a), .get(let b)), (.persist(let a), .persist(let b)), (.volatileGet(let a), .volatileGet(let b)),
        (.volatileDelete(let a), .volatileDelete(let b)):
        return a == b
    case (.set(let k1, let v1, let e1, let p1), .set(let k2, let v2, let e2, let p2)):
        return k1 == k2 && v1 == v2 && e1 == e2 && p1 == p2
    case (.setTerm(let k1, let t1, let p1), .setTerm(let k2, let t2, let p2)):
        return k1 == k2 && t1 == t2 && p1 == p2
    case (.delete(let k1, let p1), .delete(let k2, let p2)):
        return k1 == k2 && p1 == p2
    case (.volatileSet(let k1, let v1), .volatileSet(let k2, let v2)):
        return k1 == k2 && v1 == v2
    case (.hashGet(let k1, let f1), .hashGet(let k2, let f2)):
        return k1 == k2 && f1 == f2
    case (.hashSet(let k1, let f1, let v1, let p1), .hashSet(let k2, let f2, let v2, let p2)):
        return k1 == k2 && f1 == f2 && v1 == v2 && p1 == p2
    case (.hashDelete(let k1, let f1, let p1), .hashDelete(let k2, let f2, let p2)):
        return k1 == k2 && f1 == f2 && p1 == p2
    default:
        return false
    }
}

/// Every reply a step leads to is one line: it ends with `\r\n` and holds no other `\r` or
/// `\n`. For a store command, the replies carrying its key and value are checked too.
func checkReply(_ directive: LineSession.Directive) {
    var buffer = ByteBuffer()
    switch directive {
    case .replyError(let error):
        LineReplyEncoder.encode(error, into: &buffer)
        checkOneLine(buffer, "the error \(error)")
    case .replyHelp:
        LineReplyEncoder.encodeHelp(into: &buffer)
        checkOneLine(buffer, "help")
    case .execute(let command, _):
        if case .set(_, let value, _, _) = command {
            for type in [EntryType.string, .volatile, .term] {
                buffer.clear()
                LineReplyEncoder.encode(.value(StoredValue(type: type, bytes: value)), into: &buffer)
                checkOneLine(buffer, "a \(type) value reply")
                if type != .term { checkValueReply(buffer, value) }
            }
        }
        buffer.clear()
        LineReplyEncoder.encode(.hash(command.key), into: &buffer)
        checkOneLine(buffer, "a hash reply")
        buffer.clear()
        LineReplyEncoder.encodeInfo([(String(decoding: command.key, as: UTF8.self), "1")], into: &buffer)
        checkOneLine(buffer, "an info reply")
    case .ignore, .replyOK, .replyInfo, .quit, .shutdown:
        break
    }
}

/// The reply in `buffer` is one line: `\r\n` at its end and nowhere else.
func checkOneLine(_ buffer: ByteBuffer, _ what: @autoclosure () -> String) {
    let bytes = Array(buffer.readableBytesView)
    let count = bytes.count
    invariant(
        count >= 2 && bytes[count - 2] == 0x0D && bytes[count - 1] == 0x0A,
        "\(what()) does not end with CRLF: \(hex(bytes))")
    invariant(
        !bytes[..<(count - 2)].contains(where: { $0 == 0x0D || $0 == 0x0A }),
        "\(what()) spans lines: \(hex(bytes))")
}

/// A value reply is `-`, the escaped value and `\r\n`: unescaping gives the value back.
func checkValueReply(_ buffer: ByteBuffer, _ value: [UInt8]) {
    let bytes = Array(buffer.readableBytesView)
    invariant(bytes.first == UInt8(ascii: "-"), "a value reply does not start with '-': \(hex(bytes))")
    let body = bytes[1..<(bytes.count - 2)]
    let decoded = body.withUnsafeBytes { try? LineEscaping.unescape($0, part: .value, column: 2) }
    invariant(decoded == value, "the value reply \(hex(bytes)) does not unescape to \(hex(value))")
}

/// ``LineEscaping``'s documented properties, on the whole line and on each of its tokens:
/// - `unescape(escape(bytes)) == bytes`;
/// - the escaped form is valid UTF-8 without control bytes (so a reply never spans lines);
/// - valid UTF-8 without control bytes or `\` escapes to itself;
/// - escaping an unescaped token again and unescaping it gives the same bytes.
func checkEscaping(_ line: UnsafeRawBufferPointer) {
    checkEscaping(bytes: line)
    var start = 0
    while start < line.count {
        var end = start
        while end < line.count && line[end] != UInt8(ascii: " ") { end += 1 }
        if end > start {
            let token = UnsafeRawBufferPointer(rebasing: line[start..<end])
            checkEscaping(bytes: token)
            if let unescaped = try? LineEscaping.unescape(token, part: .key, column: start + 1) {
                unescaped.withUnsafeBytes { checkEscaping(bytes: $0) }
                invariant(
                    unescaped.count <= token.count,
                    "unescaping \(hex(token)) grew it to \(unescaped.count) bytes")
            }
        }
        start = end + 1
    }
}

/// ``LineEscaping``'s properties on one byte string (see ``checkEscaping(_:)``).
func checkEscaping(bytes: UnsafeRawBufferPointer) {
    var buffer = ByteBuffer()
    LineEscaping.escape(bytes, into: &buffer)
    let escaped = Array(buffer.readableBytesView)
    invariant(
        !escaped.contains(where: { $0 < 0x20 || $0 == 0x7F }),
        "escape(\(hex(bytes))) holds a control byte: \(hex(escaped))")
    invariant(
        String(validating: escaped, as: UTF8.self) != nil,
        "escape(\(hex(bytes))) is not valid UTF-8: \(hex(escaped))")
    let roundTrip = escaped.withUnsafeBytes { try? LineEscaping.unescape($0, part: .value, column: 1) }
    invariant(
        roundTrip.map { $0.elementsEqual(bytes) } == true,
        "unescape(escape(\(hex(bytes)))) gave \(roundTrip.map { hex($0) } ?? "an error")")
    let plain =
        String(validating: bytes, as: UTF8.self) != nil
        && !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") })
    if plain {
        invariant(escaped.elementsEqual(bytes), "escape(\(hex(bytes))) changed text that needs no escape")
    }
}
