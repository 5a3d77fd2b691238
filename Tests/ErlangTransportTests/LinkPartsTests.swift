import Foundation
import XCTest

@testable import ErlangTransport

/// The small pure parts of a link and of start-up: ticks, lanes, epmd's
/// messages, the cookie file.
final class LinkPartsTests: XCTestCase {
    // MARK: Ticks

    func testTickIsSentOnlyAfterAnIntervalWithoutWriting() {
        var ticker = LinkTicker()
        // Something was read and written in the interval: nothing to do.
        XCTAssertEqual(ticker.check(received: 1, framesWritten: 1, readerBusy: false), .init(sendTick: false, close: false))
        // Nothing written since: a tick.
        XCTAssertEqual(ticker.check(received: 2, framesWritten: 1, readerBusy: false), .init(sendTick: true, close: false))
        // The tick itself was the interval's write.
        XCTAssertEqual(ticker.check(received: 3, framesWritten: 2, readerBusy: false), .init(sendTick: true, close: false))
        XCTAssertEqual(ticker.check(received: 4, framesWritten: 5, readerBusy: false), .init(sendTick: false, close: false))
    }

    func testSilentPeerIsDroppedAfterMoreThanFourSilentIntervals() {
        var ticker = LinkTicker(received: 10, framesWritten: 0)
        for interval in 1...4 {
            let decision = ticker.check(received: 10, framesWritten: UInt64(interval), readerBusy: false)
            XCTAssertFalse(decision.close, "interval \(interval)")
        }
        // Four whole intervals of silence have passed (60 s at the default tick time): the fifth
        // check closes.
        XCTAssertEqual(ticker.check(received: 10, framesWritten: 5, readerBusy: false), .init(sendTick: false, close: true))
    }

    func testAnyReadRestartsTheSilenceCount() {
        var ticker = LinkTicker()
        for _ in 1...4 { _ = ticker.check(received: 0, framesWritten: 0, readerBusy: false) }
        XCTAssertFalse(ticker.check(received: 1, framesWritten: 0, readerBusy: false).close)
        for _ in 1...4 { XCTAssertFalse(ticker.check(received: 1, framesWritten: 0, readerBusy: false).close) }
        XCTAssertTrue(ticker.check(received: 1, framesWritten: 0, readerBusy: false).close)
    }

    func testBusyReaderIsNotSilence() {
        var ticker = LinkTicker()
        for _ in 1...20 {
            XCTAssertFalse(ticker.check(received: 0, framesWritten: 0, readerBusy: true).close)
        }
    }

    // MARK: epmd

    func testAlive2RequestBytes() {
        // 2-byte length, 120, port 0x1234, normal node 77, protocol 0, versions 6 and 6,
        // name length 5, "brain", no extra.
        XCTAssertEqual(
            EPMDProtocol.alive2Request(name: "brain", port: 0x1234, hidden: false),
            [0, 18, 120, 0x12, 0x34, 77, 0, 0, 6, 0, 6, 0, 5] + Array("brain".utf8) + [0, 0])
        XCTAssertEqual(EPMDProtocol.alive2Request(name: "c", port: 1, hidden: true)[5], 72)
    }

    func testAlive2Responses() throws {
        XCTAssertNil(try EPMDProtocol.parseAlive2Response([]))
        XCTAssertNil(try EPMDProtocol.parseAlive2Response([118, 0, 0x6b]))
        // Captured from Debian's epmd (OTP 25).
        XCTAssertEqual(
            try EPMDProtocol.parseAlive2Response([0x76, 0x00, 0x6b, 0x06, 0xfa, 0x86]), .registered(creation: 0x6b06_fa86))
        XCTAssertEqual(try EPMDProtocol.parseAlive2Response([121, 0, 0, 3]), .registered(creation: 3))
        XCTAssertEqual(try EPMDProtocol.parseAlive2Response([118, 1]), .refused(result: 1))
        XCTAssertThrowsError(try EPMDProtocol.parseAlive2Response([72, 84, 84, 80])) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .epmdProtocol)
        }
        XCTAssertEqual(EPMDProtocol.aliveName(of: "brain@127.0.0.1"), "brain")
    }

    // MARK: Cookie

    func testCookieFileIsReadAsErlReadsIt() {
        XCTAssertEqual(ErlangCookie.parse(Array("ABCDEF\n".utf8)), "ABCDEF")
        XCTAssertEqual(ErlangCookie.parse(Array("with space \r\n  \n".utf8)), "with space ")
        XCTAssertEqual(ErlangCookie.parse(Array("noeol".utf8)), "noeol")
        XCTAssertNil(ErlangCookie.parse([]))
        XCTAssertNil(ErlangCookie.parse(Array("\nlate".utf8)))
        XCTAssertNil(ErlangCookie.parse(Array("two\nlines".utf8)))
        XCTAssertNil(ErlangCookie.parse([0x41, 0x00]))
        XCTAssertEqual(ErlangCookie.path(home: "/home/u"), "/home/u/.erlang.cookie")
    }

    func testCookieLoadNamesTheFile() throws {
        let directory = NSTemporaryDirectory() + "brain-cookie-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        XCTAssertThrowsError(try ErlangCookie.load(home: directory)) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .invalidConfiguration)
            XCTAssertTrue("\(error)".contains(directory + "/.erlang.cookie"), "\(error)")
        }
        try Data("SECRETCOOKIE\n".utf8).write(to: URL(fileURLWithPath: directory + "/.erlang.cookie"))
        XCTAssertEqual(try ErlangCookie.load(home: directory), "SECRETCOOKIE")
    }

    // MARK: Configuration

    func testConfigurationChecks() {
        XCTAssertNoThrow(try ErlangTransportConfiguration(nodeName: "brain@127.0.0.1", cookie: "C").validate())
        for configuration in [
            ErlangTransportConfiguration(nodeName: "brain", cookie: "C"),
            ErlangTransportConfiguration(nodeName: "brain@127.0.0.1", cookie: ""),
            ErlangTransportConfiguration(nodeName: "brain@127.0.0.1", cookie: "C", registeredName: ""),
            ErlangTransportConfiguration(nodeName: "brain@127.0.0.1", cookie: "C", registeredName: "a\u{7}"),
        ] {
            XCTAssertThrowsError(try configuration.validate()) { error in
                XCTAssertEqual((error as? ErlangTransportError)?.code, .invalidConfiguration)
            }
        }
        let configuration = ErlangTransportConfiguration(nodeName: "b@h", cookie: "C", maxFrameBytes: 1024)
        XCTAssertEqual(configuration.termLimits.maxBytes, 1024)
    }

    func testLanesKeepOneKeyInOneLane() {
        let key = Array("player:42".utf8)
        XCTAssertEqual(ErlangConnectionHandler.lane(for: key), ErlangConnectionHandler.lane(for: key))
        let lanes = Set((0..<200).map { ErlangConnectionHandler.lane(for: Array("key\($0)".utf8)) })
        XCTAssertEqual(lanes, Set(0..<ErlangConnectionHandler.laneCount))
    }
}
