import Engine
import NIOCore

/// Writes replies in the line protocol's wire format: every reply is exactly one line ended
/// by `\r\n`, whatever bytes it carries. Pure: it only appends to a buffer.
///
/// | reply | wire |
/// | --- | --- |
/// | a string or volatile value | `-<escaped bytes>` |
/// | an Erlang term | `-<the term in Erlang syntax, escaped>` |
/// | not found | `null` |
/// | written, persisted, deleted | `1` or `0` |
/// | a hash | its JSON object, escaped |
/// | an error | `error <code>: <message>` |
public enum LineReplyEncoder {
    /// Appends the line for an engine reply.
    public static func encode(_ reply: Reply, into buffer: inout ByteBuffer) {
        switch reply {
        case .value(let value):
            switch value.type {
            case .term:
                encodeTerm(value.bytes, into: &buffer)
            case .string, .volatile, .hash:
                buffer.writeInteger(UInt8(ascii: "-"))
                LineEscaping.escape(value.bytes, into: &buffer)
                writeEnd(into: &buffer)
            }
        case .notFound:
            buffer.writeStaticString("null\r\n")
        case .written(let flag), .persisted(let flag), .deleted(let flag):
            encodeFlag(flag, into: &buffer)
        case .hash(let json):
            LineEscaping.escape(json, into: &buffer)
            writeEnd(into: &buffer)
        case .error(let error):
            encodeError(code: error.code.rawValue, message: error.message, into: &buffer)
        }
    }

    /// Appends `1` or `0`.
    public static func encodeFlag(_ flag: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(flag ? "1\r\n" : "0\r\n")
    }

    /// Appends `error <code>: <message>`, or `error <code>` when the message is empty.
    public static func encode(_ error: LineProtocolError, into buffer: inout ByteBuffer) {
        encodeError(code: error.code.rawValue, message: error.message, into: &buffer)
    }

    /// Appends the `help` reply: `commands: ` and every command, sorted.
    public static func encodeHelp(into buffer: inout ByteBuffer) {
        buffer.writeString(LineCommandName.helpLine)
        writeEnd(into: &buffer)
    }

    /// Appends the `info` reply: `name:value` pairs separated by single spaces.
    public static func encodeInfo(_ fields: [(String, String)], into buffer: inout ByteBuffer) {
        for (index, (name, value)) in fields.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: " ")) }
            LineEscaping.escape(name, into: &buffer)
            buffer.writeInteger(UInt8(ascii: ":"))
            LineEscaping.escape(value, into: &buffer)
        }
        writeEnd(into: &buffer)
    }

    /// Appends a stored Erlang term printed in Erlang syntax, or `bad_term` when its bytes
    /// are not valid External Term Format.
    static func encodeTerm(_ bytes: [UInt8], into buffer: inout ByteBuffer) {
        let term: Term
        do {
            term = try ExternalTermFormat.decode(bytes)
        } catch {
            encode(LineProtocolError(.badTerm, "the stored term cannot be decoded: \(error)"), into: &buffer)
            return
        }
        buffer.writeInteger(UInt8(ascii: "-"))
        LineEscaping.escape(term.printed, into: &buffer)
        writeEnd(into: &buffer)
    }

    static func encodeError(code: String, message: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("error ")
        buffer.writeString(code)
        if !message.isEmpty {
            buffer.writeStaticString(": ")
            LineEscaping.escape(message, into: &buffer)
        }
        writeEnd(into: &buffer)
    }

    static func writeEnd(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0x0D0A))
    }
}
