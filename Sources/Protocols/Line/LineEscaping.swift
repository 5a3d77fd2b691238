import NIOCore

/// The C-style escapes of the line protocol, in both directions.
///
/// Accepted on input: `\\`, `\r`, `\n`, `\t`, `\0` and `\xHH` (two hex digits, either case).
/// Any other byte stands for itself. Written on output: a byte is escaped when it is `\`, a
/// control byte (below 0x20, or 0x7F) or not part of a valid UTF-8 sequence; `\r \n \t \0 \\`
/// take their short forms and every other escaped byte is `\xHH` in lower-case hex. So a
/// reply never spans lines, valid UTF-8 text reads as itself, and
/// `unescape(escape(bytes)) == bytes` for every byte string.
public enum LineEscaping {
    /// Which part of a command a token is, for error messages.
    public enum Part: String, Sendable {
        case key, field, value, secret
    }

    /// Decodes the escapes of one token.
    ///
    /// - Parameters:
    ///   - token: the raw bytes of the token.
    ///   - part: the token's role, named in the error message.
    ///   - column: the 1-based column of the token's first byte in the line, so that the error
    ///     message points at the faulty escape.
    /// - Throws: ``LineProtocolError/Code/badEscape`` for an unknown escape, `\x` without two
    ///   hex digits, or a `\` that ends the token.
    public static func unescape(
        _ token: UnsafeRawBufferPointer, part: Part, column: Int
    ) throws(LineProtocolError) -> [UInt8] {
        // Most tokens hold no escape at all: copy them in one go.
        guard let firstEscape = token.firstIndex(of: backslash) else {
            return [UInt8](token)
        }
        var out: [UInt8] = []
        out.reserveCapacity(token.count)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: token[..<firstEscape]))
        var index = firstEscape
        while index < token.count {
            let byte = token[index]
            guard byte == backslash else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < token.count else {
                throw LineProtocolError(
                    .badEscape, "line ends inside an escape \(location(part, column + index))")
            }
            let kind = token[index + 1]
            switch kind {
            case backslash: out.append(backslash)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "0"): out.append(0x00)
            case UInt8(ascii: "x"):
                guard index + 3 < token.count, let high = hexValue(token[index + 2]),
                    let low = hexValue(token[index + 3])
                else {
                    throw LineProtocolError(
                        .badEscape, "escape 'x' needs two hex digits \(location(part, column + index))")
                }
                out.append(high << 4 | low)
                index += 4
                continue
            default:
                throw LineProtocolError(
                    .badEscape, "unknown escape \(shown(kind)) \(location(part, column + index))")
            }
            index += 2
        }
        return out
    }

    /// Appends `bytes` to `buffer`, escaped as described on the type.
    ///
    /// Runs of bytes that need no escape are copied in one write.
    public static func escape(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        let count = bytes.count
        var index = 0
        var runStart = 0
        while index < count {
            let byte = bytes[index]
            if byte >= 0x20 && byte < 0x7F && byte != backslash {
                index += 1
                continue
            }
            if byte >= 0x80 {
                let length = validUTF8SequenceLength(bytes, at: index)
                if length > 0 {
                    index += length
                    continue
                }
            }
            if runStart < index {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            }
            writeEscape(of: byte, into: &buffer)
            index += 1
            runStart = index
        }
        if runStart < count {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
        }
    }

    /// Appends `bytes` to `buffer`, escaped as described on the type.
    public static func escape(_ bytes: [UInt8], into buffer: inout ByteBuffer) {
        bytes.withUnsafeBytes { escape($0, into: &buffer) }
    }

    /// Appends the UTF-8 of `text` to `buffer`, escaped as described on the type.
    public static func escape(_ text: String, into buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { escape(UnsafeRawBufferPointer($0), into: &buffer) }
    }

    /// `bytes` escaped, as a string: for tests, logs and messages, not the hot path.
    public static func escaped(_ bytes: [UInt8]) -> String {
        var buffer = ByteBuffer()
        escape(bytes, into: &buffer)
        return String(buffer: buffer)
    }

    static let backslash = UInt8(ascii: "\\")

    static func writeEscape(of byte: UInt8, into buffer: inout ByteBuffer) {
        switch byte {
        case backslash: buffer.writeInteger(UInt16(backslash) << 8 | UInt16(backslash))
        case 0x0D: buffer.writeInteger(UInt16(backslash) << 8 | UInt16(UInt8(ascii: "r")))
        case 0x0A: buffer.writeInteger(UInt16(backslash) << 8 | UInt16(UInt8(ascii: "n")))
        case 0x09: buffer.writeInteger(UInt16(backslash) << 8 | UInt16(UInt8(ascii: "t")))
        case 0x00: buffer.writeInteger(UInt16(backslash) << 8 | UInt16(UInt8(ascii: "0")))
        default:
            let high = UInt32(hexDigit(byte >> 4))
            let low = UInt32(hexDigit(byte & 0x0F))
            buffer.writeInteger(
                UInt32(backslash) << 24 | UInt32(UInt8(ascii: "x")) << 16 | high << 8 | low)
        }
    }

    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A byte as it can appear inside an error message's quotes.
    /// Where a bad escape is, for its error message. Built only on failure, so that escapes on
    /// the hot path cost no string.
    static func location(_ part: Part, _ column: Int) -> String {
        "in the \(part.rawValue) at column \(column)"
    }

    /// A byte as an error message shows it: `'q'` when printable ASCII, `byte 0x01` otherwise,
    /// so that the message needs no escaping of its own.
    static func shown(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))'"
        }
        let digits = [hexDigit(byte >> 4), hexDigit(byte & 0x0F)]
        return "byte 0x" + String(decoding: digits, as: UTF8.self)
    }

    /// The length of the valid UTF-8 sequence that starts at `index` with a byte ≥ 0x80, or 0
    /// when that byte does not start one (Unicode's table 3-7: no overlong forms, no
    /// surrogates, nothing above U+10FFFF).
    static func validUTF8SequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        var secondLow: UInt8 = 0x80
        var secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            secondHigh = 0x9F
        case 0xF0:
            length = 4
            secondLow = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            secondHigh = 0x8F
        default: return 0
        }
        guard index + length <= bytes.count else { return 0 }
        let second = bytes[index + 1]
        guard second >= secondLow && second <= secondHigh else { return 0 }
        var next = index + 2
        while next < index + length {
            guard bytes[next] & 0xC0 == 0x80 else { return 0 }
            next += 1
        }
        return length
    }
}
