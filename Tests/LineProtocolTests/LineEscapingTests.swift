import NIOCore
import XCTest

@testable import LineProtocol

final class LineEscapingTests: XCTestCase {
    private func unescape(_ text: String, part: LineEscaping.Part = .value) throws -> [UInt8] {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw in
            try LineEscaping.unescape(raw, part: part, column: 1)
        }
    }

    private func unescapeError(_ text: String, part: LineEscaping.Part = .value) -> LineProtocolError? {
        do {
            _ = try unescape(text, part: part)
            return nil
        } catch {
            return error as? LineProtocolError
        }
    }

    func testEveryByteRoundTripsAlone() throws {
        for byte in UInt8.min...UInt8.max {
            let escaped = LineEscaping.escaped([byte])
            XCTAssertFalse(escaped.utf8.contains(0x0A), "byte \(byte) escaped to a line break")
            XCTAssertFalse(escaped.utf8.contains(0x0D), "byte \(byte) escaped to a carriage return")
            XCTAssertEqual(try unescape(escaped), [byte], "byte \(byte) does not round-trip")
        }
    }

    func testEveryPairOfBytesRoundTrips() throws {
        // Pairs cover a lead byte followed by each possible continuation, valid or not.
        for first in UInt8.min...UInt8.max {
            for second in UInt8.min...UInt8.max {
                let bytes = [first, second]
                XCTAssertEqual(try unescape(LineEscaping.escaped(bytes)), bytes)
            }
        }
    }

    func testShortFormsAndHexForOtherControlBytes() {
        XCTAssertEqual(LineEscaping.escaped(Array("a\\b".utf8)), #"a\\b"#)
        XCTAssertEqual(LineEscaping.escaped([0x0D, 0x0A, 0x09, 0x00]), #"\r\n\t\0"#)
        XCTAssertEqual(LineEscaping.escaped([0x01, 0x1F, 0x7F, 0x1B]), #"\x01\x1f\x7f\x1b"#)
    }

    func testPrintableASCIIAndValidUTF8StayRaw() {
        let text = "hello {\"a\": 1} ~ é ✓ 😀"
        XCTAssertEqual(LineEscaping.escaped(Array(text.utf8)), text)
    }

    func testInvalidUTF8IsEscapedByteByByte() {
        // A lone continuation byte, a truncated sequence, an overlong form, a surrogate and a
        // code point above U+10FFFF.
        XCTAssertEqual(LineEscaping.escaped([0x80]), #"\x80"#)
        XCTAssertEqual(LineEscaping.escaped([0xE2, 0x9C]), #"\xe2\x9c"#)
        XCTAssertEqual(LineEscaping.escaped([0xC0, 0xAF]), #"\xc0\xaf"#)
        XCTAssertEqual(LineEscaping.escaped([0xED, 0xA0, 0x80]), #"\xed\xa0\x80"#)
        XCTAssertEqual(LineEscaping.escaped([0xF4, 0x90, 0x80, 0x80]), #"\xf4\x90\x80\x80"#)
        XCTAssertEqual(LineEscaping.escaped([0xFF, 0x41]), #"\xffA"#)
        // A valid sequence right after an invalid byte is kept raw.
        XCTAssertEqual(LineEscaping.escaped([0xFE] + Array("é".utf8)), #"\xfe"# + "é")
    }

    func testASpaceIsNotEscapedButCanBeSent() throws {
        XCTAssertEqual(LineEscaping.escaped(Array("a b".utf8)), "a b")
        XCTAssertEqual(try unescape(#"a\x20b"#, part: .key), Array("a b".utf8))
    }

    func testUnescapeAcceptsEveryForm() throws {
        XCTAssertEqual(try unescape(#"\\\r\n\t\0"#), [0x5C, 0x0D, 0x0A, 0x09, 0x00])
        XCTAssertEqual(try unescape(#"\x41\x6a\x6A\xff\x00"#), [0x41, 0x6A, 0x6A, 0xFF, 0x00])
        XCTAssertEqual(try unescape("plain"), Array("plain".utf8))
        XCTAssertEqual(try unescape(""), [])
    }

    func testUnescapeOfEscapedBytesThatDecodeToNothing() throws {
        XCTAssertEqual(try unescape(#"\0"#, part: .key), [0])
    }

    func testBadEscapesNameWhatAndWhere() {
        XCTAssertEqual(
            unescapeError(#"ab\q"#, part: .key),
            LineProtocolError(.badEscape, "unknown escape 'q' in the key at column 3"))
        XCTAssertEqual(
            unescapeError(#"\x4"#, part: .value),
            LineProtocolError(.badEscape, "escape 'x' needs two hex digits in the value at column 1"))
        XCTAssertEqual(
            unescapeError(#"\x4g"#, part: .field),
            LineProtocolError(.badEscape, "escape 'x' needs two hex digits in the field at column 1"))
        XCTAssertEqual(
            unescapeError(#"abc\"#, part: .secret),
            LineProtocolError(.badEscape, "line ends inside an escape in the secret at column 4"))
        // A byte that is not printable is shown by its value.
        XCTAssertEqual(
            unescapeError("\\\u{1}"),
            LineProtocolError(.badEscape, "unknown escape byte 0x01 in the value at column 1"))
    }

    func testEscapeWritesIntoAnExistingBuffer() {
        var buffer = ByteBuffer(string: "-")
        LineEscaping.escape([0x61, 0x0A, 0x62], into: &buffer)
        XCTAssertEqual(String(buffer: buffer), #"-a\nb"#)
    }
}
