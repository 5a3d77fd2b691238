#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One reply to a `get` or a `set`, as `brain bench` counts it.
enum BenchReply: Equatable, Sendable {
    /// A `set` succeeded (Brain `1` or `0`, memcached `STORED`, Redis `+OK`).
    case stored
    /// A `get` found a value of `length` bytes (as sent: escapes uncounted).
    case value(length: Int)
    /// A `get` found nothing (Brain `null`, memcached a bare `END`, Redis `$-1`).
    case missing
    /// The server refused the request. `code` is what the report groups errors by: Brain's
    /// error code (`dirty_limit`), memcached's whole error line (`SERVER_ERROR out of memory
    /// storing object`), Redis's error line without its `-`.
    case error(code: String)
}

/// What ``ReplyParser/parse(_:)`` found at the start of the received bytes.
enum ParseOutcome: Equatable, Sendable {
    /// The bytes do not yet hold a whole reply.
    case incomplete
    /// A whole reply, taking the first `consumed` bytes.
    case reply(BenchReply, consumed: Int)
    /// The bytes are no reply of the protocol; `detail` says what was wrong.
    case malformed(detail: String)
}

/// Splits the bytes a server sent into replies to `get` and `set`. Pure and stateless: it
/// looks at the start of the bytes not yet consumed, so a reply cut anywhere by the network
/// parses once the rest has arrived.
struct ReplyParser: Sendable {
    /// The protocol the replies belong to.
    let wire: WireProtocol

    /// Parses the first reply in `bytes`.
    func parse(_ bytes: UnsafeRawBufferPointer) -> ParseOutcome {
        guard let newline = Self.firstNewline(bytes, from: 0) else { return .incomplete }
        switch wire {
        case .brain: return parseBrain(bytes, newline: newline)
        case .memcached: return parseMemcached(bytes, newline: newline)
        case .redis: return parseRedis(bytes, newline: newline)
        }
    }

    /// Convenience for tests and tools: parses the first reply in `bytes`.
    func parse(_ bytes: [UInt8]) -> ParseOutcome {
        bytes.withUnsafeBytes { parse($0) }
    }

    // MARK: - Brain

    private func parseBrain(_ bytes: UnsafeRawBufferPointer, newline: Int) -> ParseOutcome {
        // Every reply ends with "\r\n"; a bare "\n" would be another server's.
        guard newline >= 1, bytes[newline - 1] == 0x0D else {
            return .malformed(detail: "a reply line does not end with \\r\\n")
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<(newline - 1)])
        let consumed = newline + 1
        if line.first == UInt8(ascii: "-") { return .reply(.value(length: line.count - 1), consumed: consumed) }
        if line.count == 1, line[0] == UInt8(ascii: "1") || line[0] == UInt8(ascii: "0") {
            return .reply(.stored, consumed: consumed)
        }
        if Self.equals(line, Self.null) { return .reply(.missing, consumed: consumed) }
        if Self.hasPrefix(line, Self.brainError) {
            // `error <code>: <message>` or `error <code>`.
            var end = Self.brainError.count
            while end < line.count, line[end] != UInt8(ascii: ":") { end += 1 }
            let code = String(decoding: line[Self.brainError.count..<end], as: UTF8.self)
            return .reply(.error(code: code), consumed: consumed)
        }
        return .malformed(detail: "unexpected reply '\(Self.printable(line))'")
    }

    // MARK: - memcached

    private func parseMemcached(_ bytes: UnsafeRawBufferPointer, newline: Int) -> ParseOutcome {
        guard newline >= 1, bytes[newline - 1] == 0x0D else {
            return .malformed(detail: "a reply line does not end with \\r\\n")
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<(newline - 1)])
        let consumed = newline + 1
        if Self.equals(line, Self.stored) { return .reply(.stored, consumed: consumed) }
        if Self.equals(line, Self.end) { return .reply(.missing, consumed: consumed) }
        if Self.hasPrefix(line, Self.valuePrefix) {
            // VALUE <key> <flags> <bytes> [<cas unique>]
            guard let lengthField = Self.field(3, of: line), Self.field(5, of: line) == nil,
                let length = Self.decimal(line[lengthField])
            else {
                return .malformed(detail: "bad VALUE line '\(Self.printable(line))'")
            }
            let dataEnd = consumed + length
            let total = dataEnd + 2 + Self.endLine.count
            guard bytes.count >= total else { return .incomplete }
            guard bytes[dataEnd] == 0x0D, bytes[dataEnd + 1] == 0x0A,
                Self.equals(UnsafeRawBufferPointer(rebasing: bytes[(dataEnd + 2)..<total]), Self.endLine)
            else {
                return .malformed(detail: "a value of \(length) bytes is not followed by \\r\\nEND\\r\\n")
            }
            return .reply(.value(length: length), consumed: total)
        }
        if Self.equals(line, Self.memcachedError) || Self.hasPrefix(line, Self.clientError)
            || Self.hasPrefix(line, Self.serverError) || Self.equals(line, Self.notStored)
            || Self.equals(line, Self.exists) || Self.equals(line, Self.notFound)
        {
            return .reply(.error(code: String(decoding: line, as: UTF8.self)), consumed: consumed)
        }
        return .malformed(detail: "unexpected reply '\(Self.printable(line))'")
    }

    // MARK: - Redis

    private func parseRedis(_ bytes: UnsafeRawBufferPointer, newline: Int) -> ParseOutcome {
        guard newline >= 1, bytes[newline - 1] == 0x0D else {
            return .malformed(detail: "a reply line does not end with \\r\\n")
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<(newline - 1)])
        let consumed = newline + 1
        switch line.first {
        case UInt8(ascii: "+"):
            return .reply(.stored, consumed: consumed)
        case UInt8(ascii: "-"):
            return .reply(.error(code: String(decoding: line.dropFirst(), as: UTF8.self)), consumed: consumed)
        case UInt8(ascii: "$"):
            let digits = UnsafeRawBufferPointer(rebasing: line[1...])
            if Self.equals(digits, Self.minusOne) { return .reply(.missing, consumed: consumed) }
            guard let length = Self.decimal(digits[...]) else {
                return .malformed(detail: "bad bulk string header '\(Self.printable(line))'")
            }
            let total = consumed + length + 2
            guard bytes.count >= total else { return .incomplete }
            guard bytes[total - 2] == 0x0D, bytes[total - 1] == 0x0A else {
                return .malformed(detail: "a bulk string of \(length) bytes is not followed by \\r\\n")
            }
            return .reply(.value(length: length), consumed: total)
        default:
            return .malformed(detail: "unexpected reply '\(Self.printable(line))'")
        }
    }

    // MARK: - Bytes

    private static let null: [UInt8] = Array("null".utf8)
    private static let brainError: [UInt8] = Array("error ".utf8)
    private static let stored: [UInt8] = Array("STORED".utf8)
    private static let end: [UInt8] = Array("END".utf8)
    private static let endLine: [UInt8] = Array("END\r\n".utf8)
    private static let valuePrefix: [UInt8] = Array("VALUE ".utf8)
    private static let memcachedError: [UInt8] = Array("ERROR".utf8)
    private static let clientError: [UInt8] = Array("CLIENT_ERROR".utf8)
    private static let serverError: [UInt8] = Array("SERVER_ERROR".utf8)
    private static let notStored: [UInt8] = Array("NOT_STORED".utf8)
    private static let exists: [UInt8] = Array("EXISTS".utf8)
    private static let notFound: [UInt8] = Array("NOT_FOUND".utf8)
    private static let minusOne: [UInt8] = Array("-1".utf8)

    /// The index of the first `\n` at or after `start`, found with `memchr`.
    static func firstNewline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        bytes.count == expected.count && hasPrefix(bytes, expected)
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        for index in 0..<prefix.count where bytes[index] != prefix[index] { return false }
        return true
    }

    /// The range of the space-separated field number `index` (from 0) of `line`, or `nil`
    /// when the line has fewer fields. Walks the bytes: no allocation on the hot path.
    private static func field(_ index: Int, of line: UnsafeRawBufferPointer) -> Range<Int>? {
        var position = 0
        var current = 0
        while position < line.count {
            while position < line.count, line[position] == UInt8(ascii: " ") { position += 1 }
            guard position < line.count else { return nil }
            let start = position
            while position < line.count, line[position] != UInt8(ascii: " ") { position += 1 }
            if current == index { return start..<position }
            current += 1
        }
        return nil
    }

    /// A non-negative decimal of at most 10 digits, or `nil`.
    private static func decimal(_ digits: Slice<UnsafeRawBufferPointer>) -> Int? {
        guard !digits.isEmpty, digits.count <= 10 else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// At most 80 bytes of `bytes` for a message, control and non-ASCII bytes as `\xHH`.
    private static func printable(_ bytes: UnsafeRawBufferPointer) -> String {
        var text = ""
        for byte in bytes.prefix(80) {
            if byte >= 0x20, byte < 0x7F {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789abcdef".unicodeScalars)
                text += "\\x"
                text.unicodeScalars.append(hex[Int(byte >> 4)])
                text.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return bytes.count > 80 ? text + "..." : text
    }
}
