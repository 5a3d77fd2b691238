import Engine
import NIOCore
import XCTest

@testable import LineProtocol

final class LineReplyEncoderTests: XCTestCase {
    private func wire(_ reply: Reply) -> String {
        var buffer = ByteBuffer()
        LineReplyEncoder.encode(reply, into: &buffer)
        return String(buffer: buffer)
    }

    func testValues() {
        XCTAssertEqual(wire(.value(StoredValue(type: .string, bytes: Array("hello world".utf8)))), "-hello world\r\n")
        XCTAssertEqual(wire(.value(StoredValue(type: .volatile, bytes: Array("v".utf8)))), "-v\r\n")
        XCTAssertEqual(wire(.value(StoredValue(type: .string, bytes: []))), "-\r\n")
        XCTAssertEqual(
            wire(.value(StoredValue(type: .string, bytes: [0x61, 0x0D, 0x0A, 0x5C, 0xFF, 0x00]))),
            #"-a\r\n\\\xff\0"# + "\r\n")
        XCTAssertEqual(
            wire(.value(StoredValue(type: .string, bytes: Array("naïve ✓".utf8), encoding: .erlangString))),
            "-naïve ✓\r\n")
    }

    func testTermsPrintInErlangSyntax() {
        let term = Term.tuple([.atom("hp"), .integer(100), .properList([.atom("sword"), .binary("shield")])])
        let bytes = ExternalTermFormat.encode(term)
        XCTAssertEqual(
            wire(.value(StoredValue(type: .term, bytes: bytes))), #"-{hp,100,[sword,<<"shield">>]}"# + "\r\n")
        // Printed text that holds a backslash or a line break stays on one line.
        let text = ExternalTermFormat.encode(.atom("a\nb"))
        let line = wire(.value(StoredValue(type: .term, bytes: text)))
        XCTAssertEqual(line, #"-'a\\nb'"# + "\r\n")
    }

    func testUndecodableTermIsABadTermError() {
        let line = wire(.value(StoredValue(type: .term, bytes: [131, 104])))
        XCTAssertTrue(line.hasPrefix("error bad_term: the stored term cannot be decoded: "), line)
        XCTAssertTrue(line.hasSuffix("\r\n"))
        XCTAssertEqual(line.utf8.filter { $0 == 0x0A }.count, 1)
    }

    func testFlagsAndNotFound() {
        XCTAssertEqual(wire(.notFound), "null\r\n")
        XCTAssertEqual(wire(.written(created: true)), "1\r\n")
        XCTAssertEqual(wire(.written(created: false)), "0\r\n")
        XCTAssertEqual(wire(.persisted(true)), "1\r\n")
        XCTAssertEqual(wire(.persisted(false)), "0\r\n")
        XCTAssertEqual(wire(.deleted(true)), "1\r\n")
        XCTAssertEqual(wire(.deleted(false)), "0\r\n")
    }

    func testHashIsItsJSONOnOneLine() {
        XCTAssertEqual(wire(.hash(Array(#"{"a":"1","b c":"x"}"#.utf8))), #"{"a":"1","b c":"x"}"# + "\r\n")
        XCTAssertEqual(wire(.hash(Array("{\"a\":\n\"\\n\"}".utf8))), #"{"a":\n"\\n"}"# + "\r\n")
    }

    func testEngineErrors() {
        XCTAssertEqual(
            wire(.error(EngineError(.dirtyLimit, "too many bytes waiting for write-back"))),
            "error dirty_limit: too many bytes waiting for write-back\r\n")
        XCTAssertEqual(
            wire(.error(EngineError(.emptyKey, "the key is empty"))), "error empty_key: the key is empty\r\n")
        XCTAssertEqual(
            wire(.error(EngineError(.backendUnavailable, "line one\nline two"))),
            #"error backend_unavailable: line one\nline two"# + "\r\n")
    }

    func testProtocolErrorsAndTransportReplies() {
        var buffer = ByteBuffer()
        LineReplyEncoder.encode(LineProtocolError(.unknownCommand, "bo\u{1}gus"), into: &buffer)
        LineReplyEncoder.encode(LineProtocolError.tooManyConnections, into: &buffer)
        LineReplyEncoder.encode(LineProtocolError.lineTooLong(limit: 16), into: &buffer)
        LineReplyEncoder.encodeHelp(into: &buffer)
        LineReplyEncoder.encodeInfo([("keys_string_clean", "3"), ("uptime_seconds", "12")], into: &buffer)
        LineReplyEncoder.encodeFlag(true, into: &buffer)
        XCTAssertEqual(
            String(buffer: buffer),
            #"error unknown_command: bo\x01gus"# + "\r\n"
                + "error too_many_connections\r\n"
                + "error line_too_long: limit is 16 bytes\r\n"
                + "commands: auth del get hdel help hget hpdel hpsetkv hsetkv info pdel pset quit set shutdown vdel vget vset with\r\n"
                + "keys_string_clean:3 uptime_seconds:12\r\n"
                + "1\r\n")
    }

    func testInfoOfARealSnapshotIsOneLineOfPairs() {
        let info = StoreInfo(keys: [.string: (clean: 2, dirty: 1)], slabBytes: 1_048_576, uptimeSeconds: 5)
        var buffer = ByteBuffer()
        LineReplyEncoder.encodeInfo(info.fields, into: &buffer)
        let line = String(buffer: buffer)
        XCTAssertTrue(line.hasSuffix("\r\n"))
        let pairs = String(decoding: line.utf8.dropLast(2), as: UTF8.self).split(separator: " ")
        XCTAssertEqual(pairs.count, info.fields.count)
        XCTAssertTrue(pairs.contains("keys_string_clean:2"))
        XCTAssertTrue(pairs.contains("keys_string_dirty:1"))
        XCTAssertTrue(pairs.contains("memory_slab_bytes:1048576"))
        XCTAssertTrue(pairs.contains("uptime_seconds:5"))
    }
}
