import Engine
import NIOCore
import NIOEmbedded
import XCTest

@testable import ErlangTransport

/// Hostile and broken input on the distribution port, one case per test: each is answered
/// with an error reply or a closed connection, never a crash, a hang or an allocation of
/// the size the input declares. Every live test ends by showing that the node still serves a
/// fresh peer (a handshake, then an `s` and a `g`).
final class ErlangBadInputTests: XCTestCase {

    // MARK: Handshake

    func testHandshakeWithAWrongDigestIsClosedWithoutAnAck() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.send(framed2(nameMessage(Array(peer.name.utf8))))
                let status = try await peer.readHandshakeMessage()
                XCTAssertEqual(status, Array("sok".utf8))
                let challenge = try await peer.readHandshakeMessage()
                XCTAssertEqual(challenge?.first, UInt8(ascii: "N"))
                // A reply of the right shape whose digest is not the cookie's.
                let reply = [UInt8(ascii: "r")] + bigEndian(1, 4) + [UInt8](repeating: 0xAB, count: 16)
                try await peer.send(framed2(reply))
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [], "the node answered a wrong digest, or did not close the connection")
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("wrong_cookie") }, "\(node.logs.all)")
            XCTAssertTrue(node.transport.connectedNodes.isEmpty)
            try await expectServesAGoodPeer(node)
        }
    }

    func testUnknownFlagsAreLeftOutOfTheNegotiatedFlags() {
        let unknown: UInt64 = 0xFFFF_FF00_0000_0000
        var machine = DistributionHandshake(configuration: handshakeConfiguration(), challenge: 1)
        _ = machine.receive(nameMessage(Array("client@127.0.0.1".utf8), flags: RawPeer.otp25Flags | unknown))
        let reply = [UInt8(ascii: "r")] + bigEndian(2, 4) + DistributionHandshake.digest(challenge: 1, cookie: [67])
        guard case .established(let peer) = machine.receive(reply).last else { return XCTFail("the handshake failed") }
        XCTAssertEqual(peer.flags.rawValue, RawPeer.otp25Flags | unknown)
        XCTAssertEqual(peer.negotiatedFlags.rawValue & unknown, 0)
        XCTAssertEqual(peer.negotiatedFlags, DistributionFlags(rawValue: RawPeer.otp25Flags).intersection(.advertised(hidden: false)))
    }

    func testPeerAnnouncingUnknownFlagsIsServed() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                let accepted = try await peer.handshake(flags: RawPeer.otp25Flags | 0xFFFF_FF00_0000_0000)
                XCTAssertTrue(accepted)
                try await peer.registeredSend(.tuple([.atom("s"), erlString("flags"), .binary([1])]))
                let reply = try await peer.get("flags")
                XCTAssertEqual(reply, .tuple([.atom("ok"), .binary([1])]))
            }
            try await expectServesAGoodPeer(node)
        }
    }

    func testPeerAnnouncingEveryFlagIsNotAllowed() async throws {
        // All 64 bits set: unknown ones, but also NAME_ME, which asks the node for a name.
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.send(framed2(nameMessage(Array(peer.name.utf8), flags: UInt64.max)))
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, DistributionHandshake.status("not_allowed"))
            }
            try await expectServesAGoodPeer(node)
        }
    }

    func testNodeNameOver255CharactersIsNotAllowedWhateverItsBytes() {
        let cases: [(name: String, accepted: Bool)] = [
            (String(repeating: "a", count: 245) + "@127.0.0.1", true),  // 255 characters
            (String(repeating: "a", count: 246) + "@127.0.0.1", false),  // 256, in 256 bytes
            (String(repeating: "\u{E9}", count: 245) + "@127.0.0.1", true),  // 255, in 500 bytes
            (String(repeating: "\u{E9}", count: 246) + "@127.0.0.1", false),  // 256, in 502 bytes
            (String(repeating: "\u{1F600}", count: 245) + "@127.0.0.1", true),  // 255, in 990 bytes
        ]
        for (name, accepted) in cases {
            var machine = DistributionHandshake(configuration: handshakeConfiguration(), challenge: 1)
            let directives = machine.receive(nameMessage(Array(name.utf8)))
            if accepted {
                XCTAssertEqual(directives.first, .send(DistributionHandshake.status("ok")), "\(name.unicodeScalars.count) characters")
                continue
            }
            XCTAssertEqual(directives.first, .send(DistributionHandshake.status("not_allowed")), "\(name.unicodeScalars.count) characters")
            guard case .close(let error) = directives.last else { return XCTFail("expected a close") }
            XCTAssertEqual(error.code, .handshakeNotAllowed)
            XCTAssertTrue(error.message.contains("256 characters"), error.message)
        }
    }

    func testNodeNamesOverTheLimitsAreRefused() async throws {
        try await withNode { node in
            // Over 255 characters, within the byte limit: refused with a status.
            for name in [String(repeating: "a", count: 246) + "@127.0.0.1", String(repeating: "\u{E9}", count: 246) + "@127.0.0.1"] {
                try await RawPeer.connect(port: node.port) { peer in
                    try await peer.send(framed2(nameMessage(Array(name.utf8))))
                    let rest = await peer.bytesUntilClosedByServer(within: 5)
                    XCTAssertEqual(rest, DistributionHandshake.status("not_allowed"), "\(name.unicodeScalars.count) characters")
                }
            }
            // A name declared over the 1020-byte limit: refused on its length, none of it sent.
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.send(framed2(nameMessage([], declaredLength: 1021)))
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, DistributionHandshake.status("not_allowed"))
            }
            // A name message declaring 65535 bytes, over the 2048-byte handshake limit: closed.
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.send([0xFF, 0xFF, UInt8(ascii: "N"), 0, 0])
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            XCTAssertTrue(node.transport.connectedNodes.isEmpty)
            // The longest names are served, the pid's node being that 255-character atom.
            for name in [String(repeating: "a", count: 245) + "@127.0.0.1", String(repeating: "\u{E9}", count: 245) + "@127.0.0.1"] {
                try await RawPeer.connect(port: node.port, name: name) { peer in
                    try await peer.shake()
                    let reply = try await peer.get("missing")
                    XCTAssertEqual(reply, .atom("ko"))
                }
            }
            try await expectServesAGoodPeer(node)
        }
    }

    func testHandshakeMessageCutShortThenSilentIsClosedAfterTheSetupTime() async throws {
        try await withNode({ $0.setupTime = .milliseconds(300) }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                // A name message declaring 40 bytes, of which 3 arrive.
                try await peer.send([0, 40, UInt8(ascii: "N"), 0, 0])
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            let logged = try await waitUntil(seconds: 5) { node.logs.all.contains { $0.contains("handshake_timeout") } }
            XCTAssertTrue(logged, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    // MARK: Frame lengths

    func testFrameLengthOf2To32Minus1FailsOnTheLengthAlone() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(
            maxFrameBytes: ErlangTransportConfiguration.defaultMaxFrameBytes, connected: true)))
        XCTAssertThrowsError(try channel.writeInbound(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF]))) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .frameTooLarge)
        }
        XCTAssertNil(try channel.readInbound(as: DistributionFrame.self))
        _ = try? channel.finish()
    }

    func testFrameLengthOf2To32Minus1ClosesTheLink() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                try await peer.send([0xFF, 0xFF, 0xFF, 0xFF, 112, 131])
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("frame_too_large") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    func testDeclaredFrameLengthIsNotReservedBeforeItsBytesArrive() throws {
        // A limit that lets the declared length through: only the missing bytes hold it back.
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FrameSink())
        let context = try channel.pipeline.syncOperations.context(handlerType: FrameSink.self)
        var decoder = DistributionFrameDecoder(maxFrameBytes: Int(UInt32.max), connected: true)
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFE, 112, 131, 104, 1])
        let capacity = buffer.capacity
        XCTAssertEqual(try decoder.decode(context: context, buffer: &buffer), .needMoreData)
        XCTAssertEqual(buffer.readerIndex, 0, "the decoder consumed part of an incomplete frame")
        XCTAssertEqual(buffer.readableBytes, 8)
        XCTAssertEqual(buffer.capacity, capacity, "the decoder grew the buffer toward the declared length")
        XCTAssertLessThan(capacity, 1 << 16)
        // More bytes, still far from the declared length: still nothing reserved for it.
        buffer.writeBytes([UInt8](repeating: 97, count: 100))
        let grown = buffer.capacity
        XCTAssertEqual(try decoder.decode(context: context, buffer: &buffer), .needMoreData)
        XCTAssertEqual(buffer.capacity, grown)
        // At the end of the connection the partial frame is dropped, and nothing is yielded.
        XCTAssertEqual(try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: true), .needMoreData)
        XCTAssertNil(try channel.readInbound(as: DistributionFrame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testFrameLengthFarBeyondTheBytesSentThenCloseLeavesTheNodeServing() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                // Exactly the 64 MiB limit is declared, so the length alone is accepted.
                try await peer.send(bigEndian(UInt64(ErlangTransportConfiguration.defaultMaxFrameBytes), 4) + [112, 131, 104, 4, 97, 6])
            }
            try await expectServesAGoodPeer(node)
            XCTAssertFalse(node.logs.all.contains { $0.contains("frame_too_large") }, "\(node.logs.all)")
        }
    }

    func testFrameLengthFarBeyondTheBytesSentThenSilentIsDroppedAfterTheTickTime() async throws {
        try await withNode({ $0.tickTime = .milliseconds(400) }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                try await peer.send(bigEndian(UInt64(ErlangTransportConfiguration.defaultMaxFrameBytes), 4) + [112, 131, 104, 4, 97, 6])
                // Brain's ticks may come before it closes the link.
                await peer.expectClosedByServer(within: 10)
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("link_silent") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    func testFrameTrickledOverSeveralTickTimesKeepsItsLinkAndIsCarriedOut() async throws {
        let control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(RawPeer.testPid), .atom(""), .atom("brain")]))
        let message = ExternalTermFormat.encode(
            .tuple([.atom("g"), .atom("true"), .binary(Array(repeating: UInt8(ascii: "k"), count: 200)), .pid(RawPeer.testPid), .atom("null")]))
        let body = [112] + control + message
        let frame = bigEndian(UInt64(body.count), 4) + body
        try await withNode({ $0.tickTime = .milliseconds(400) }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                // 8 bytes every 50 ms: the frame takes over 1.5 s, about 4 tick times, and no
                // whole frame arrives meanwhile.
                var offset = 0
                while offset < frame.count {
                    try await peer.send(Array(frame[offset..<min(offset + 8, frame.count)]))
                    offset += 8
                    try await Task.sleep(for: .milliseconds(50))
                }
                guard let reply = try await peer.readSend() else {
                    return XCTFail("the link was dropped while its frame arrived: \(node.logs.all)")
                }
                XCTAssertEqual(reply.message, .atom("ko"))
            }
            XCTAssertFalse(node.logs.all.contains { $0.contains("link_silent") }, "\(node.logs.all)")
        }
    }

    // MARK: Frames

    func testFrameWithoutThePassThroughByteClosesTheLink() async throws {
        let control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(RawPeer.testPid), .atom(""), .atom("brain")]))
        let message = ExternalTermFormat.encode(.tuple([.atom("s"), erlString("k"), .binary([1])]))
        let bodies: [[UInt8]] = [
            control + message,  // the control straight after the length
            [113] + control + message,  // another first byte
            [0],
            [112],  // the pass-through byte and nothing after it
        ]
        try await withNode { node in
            for body in bodies {
                try await RawPeer.connect(port: node.port) { peer in
                    try await peer.shake()
                    try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                    let rest = await peer.bytesUntilClosedByServer(within: 5)
                    XCTAssertEqual(rest, [], "first byte \(body[0])")
                }
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("malformed_frame") }, "\(node.logs.all)")
            XCTAssertNil(node.store.value("k"))
            try await expectServesAGoodPeer(node)
        }
    }

    // MARK: Terms

    func testTermsNested100000DeepAreDroppedAndAsAControlCloseTheLink() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                for (index, body) in nested100000.enumerated() {
                    try await peer.send(registeredSendFrame(from: peer.pid, message: setMessage(key: "deep\(index)", valueBody: body)))
                }
                // The link still works, and none of them was stored.
                let reply = try await peer.get("deep0")
                XCTAssertEqual(reply, .atom("ko"))
            }
            for index in nested100000.indices { XCTAssertNil(node.store.value("deep\(index)")) }
            XCTAssertTrue(node.logs.all.contains { $0.contains("depth_limit") }, "\(node.logs.all)")
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                let body = [112, 131] + nested100000[0]
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("malformed_frame") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    func testDeclaredLengthsBeyondTheFrameAreTruncatedTerms() throws {
        let control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(RawPeer.testPid), .atom(""), .atom("brain")]))
        for (name, body) in overlongTerms {
            let message = try ([112] + control + [131] + body).withUnsafeBytes {
                try DistributionMessage.decode($0, limits: .default)
            }
            guard case .failure(let error)? = message.payload else {
                XCTFail("\(name) decoded")
                continue
            }
            XCTAssertEqual(error.code, .truncated, name)
            // In the control's place, the frame itself is refused.
            XCTAssertThrowsError(try ([112, 131] + body).withUnsafeBytes { try DistributionMessage.decode($0, limits: .default) }, name) {
                XCTAssertEqual(($0 as? ErlangTransportError)?.code, .malformedFrame, name)
            }
        }
    }

    func testDeclaredLengthsBeyondTheFrameAreDroppedAndAsAControlCloseTheLink() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                for (name, body) in overlongTerms {
                    try await peer.send(registeredSendFrame(from: peer.pid, message: setMessage(key: name, valueBody: body)))
                }
                for (name, _) in overlongTerms {
                    let reply = try await peer.get(name)
                    XCTAssertEqual(reply, .atom("ko"), name)
                }
            }
            for (name, _) in overlongTerms { XCTAssertNil(node.store.value(name), name) }
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                // A control tuple declaring 1000 elements, in a frame of 8 bytes.
                let body: [UInt8] = [112, 131, 105, 0, 0, 3, 232, 97, 6]
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("malformed_frame") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    func testAtomsOver255CharactersAreRejectedInEveryAtomForm() throws {
        let control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(RawPeer.testPid), .atom(""), .atom("brain")]))
        for sample in atomSamples {
            let message = try ([112] + control + [131] + sample.body).withUnsafeBytes {
                try DistributionMessage.decode($0, limits: .default)
            }
            switch (message.payload, sample.expected) {
            case (.success(let term)?, let expected?):
                XCTAssertEqual(term, .atom(expected), sample.name)
            case (.failure(let error)?, nil):
                XCTAssertEqual(error.code, sample.name.contains("cut") ? .truncated : .invalidAtom, sample.name)
            default:
                XCTFail("\(sample.name): \(String(describing: message.payload))")
            }
        }
    }

    func testAtomsOver255CharactersAreDroppedAndThe255CharacterOnesStored() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                for sample in atomSamples {
                    try await peer.send(registeredSendFrame(from: peer.pid, message: setMessage(key: sample.name, valueBody: sample.body)))
                }
                for sample in atomSamples {
                    let reply = try await peer.get(sample.name)
                    let expected: Term = sample.expected.map { .tuple([.atom("ok"), .atom($0)]) } ?? .atom("ko")
                    XCTAssertEqual(reply, expected, sample.name)
                }
            }
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                // A REG_SEND to a registered name of 256 characters: the control does not decode.
                let name = [UInt8](repeating: 97, count: 256)
                var control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(peer.pid), .atom(""), .atom("x")]))
                control.removeLast(3)
                control += [118, 1, 0] + name
                let body = [112] + control + ExternalTermFormat.encode(.atom("hello"))
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("malformed_frame") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    func testCompressedTermDeclaringAHugeSizeIsRefusedBeforeInflating() throws {
        let control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(RawPeer.testPid), .atom(""), .atom("brain")]))
        let inner = Array(setMessage(key: "c", valueBody: [109, 0, 0, 0, 1, 7]).dropFirst())
        let expectations: [(size: UInt32, code: TermError.Code?)] = [
            (UInt32(inner.count), nil),  // the true size: decoded
            (UInt32.max, .sizeLimit),  // refused on the size alone
            (60 << 20, .invalidCompressed),  // within the limit: inflating stops at the real data
            (3, .invalidCompressed),  // smaller than the data: inflating stops at 3 bytes
        ]
        for (size, code) in expectations {
            let compressed = [131, 80] + bigEndian(UInt64(size), 4) + storedZlib(inner)
            let message = try ([112] + control + compressed).withUnsafeBytes {
                try DistributionMessage.decode($0, limits: .default)
            }
            switch message.payload {
            case .success(let term)?:
                XCTAssertNil(code, "declared \(size)")
                XCTAssertEqual(term, .tuple([.atom("s"), erlString("c"), .binary([7])]))
            case .failure(let error)?:
                XCTAssertEqual(error.code, code, "declared \(size)")
            case nil:
                XCTFail("no payload")
            }
        }
        // With no zlib data at all.
        let bare = try ([112] + control + [131, 80, 255, 255, 255, 255]).withUnsafeBytes {
            try DistributionMessage.decode($0, limits: .default)
        }
        guard case .failure(let error)? = bare.payload else { return XCTFail("decoded") }
        XCTAssertEqual(error.code, .sizeLimit)
    }

    func testCompressedTermDeclaringAHugeSizeIsDroppedAndAsAControlClosesTheLink() async throws {
        let inner = Array(setMessage(key: "c", valueBody: [109, 0, 0, 0, 1, 7]).dropFirst())
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                for size in [UInt32.max, 60 << 20, 3] {
                    let compressed = [131, 80] + bigEndian(UInt64(size), 4) + storedZlib(inner)
                    try await peer.send(registeredSendFrame(from: peer.pid, message: compressed))
                }
                try await peer.send(registeredSendFrame(from: peer.pid, message: [131, 80, 255, 255, 255, 255]))
                var reply = try await peer.get("c")
                XCTAssertEqual(reply, .atom("ko"))
                // The same term declaring its true size is stored.
                let compressed = [131, 80] + bigEndian(UInt64(inner.count), 4) + storedZlib(inner)
                try await peer.send(registeredSendFrame(from: peer.pid, message: compressed))
                reply = try await peer.get("c")
                XCTAssertEqual(reply, .tuple([.atom("ok"), .binary([7])]))
            }
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                let body: [UInt8] = [112, 131, 80, 255, 255, 255, 255, 0x78, 0x9C, 3, 0, 0, 0, 0, 1]
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("malformed_frame") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    // MARK: Truncation

    func testValidFrameCutAtEveryOffsetNeedsMoreDataInTheFrameDecoder() throws {
        let frame = validGetFrame(from: RawPeer.testPid)
        for length in 0...frame.count {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 1024, connected: true)))
            try channel.writeInbound(ByteBuffer(bytes: frame[..<length]))
            let decoded = try channel.readInbound(as: DistributionFrame.self)
            if length == frame.count {
                XCTAssertEqual(decoded, .data(ByteBuffer(bytes: frame[4...])))
            } else {
                XCTAssertNil(decoded, "a frame came out of \(length) of its \(frame.count) bytes")
            }
            // The connection ends there: the partial frame is dropped without an error.
            XCTAssertNoThrow(try channel.finish(), "cut at \(length)")
            XCTAssertNil(try channel.readInbound(as: DistributionFrame.self))
        }
    }

    func testValidFrameBodyCutAtEveryOffsetIsACleanErrorInTheMessageParser() throws {
        let frame = validGetFrame(from: RawPeer.testPid)
        let body = Array(frame[4...])
        let controlEnd = 1 + ExternalTermFormat.encode(getControl(from: RawPeer.testPid)).count
        for length in 0..<body.count {
            let cut = Array(body[..<length])
            if length < controlEnd {
                // Cut inside the control message: the frame is refused and the link closed.
                XCTAssertThrowsError(try cut.withUnsafeBytes { try DistributionMessage.decode($0, limits: .default) }, "cut at \(length)") {
                    XCTAssertEqual(($0 as? ErlangTransportError)?.code, .malformedFrame, "cut at \(length)")
                }
                continue
            }
            // Cut inside the message: the frame stands, its message is dropped.
            let message = try cut.withUnsafeBytes { try DistributionMessage.decode($0, limits: .default) }
            XCTAssertEqual(message.control, .registeredSend(from: RawPeer.testPid, to: "brain"))
            guard case .failure(let error)? = message.payload else {
                XCTFail("the message cut at \(length) decoded")
                continue
            }
            XCTAssertEqual(error.code, .truncated, "cut at \(length)")
        }
        // Whole, it is the get it was.
        let whole = try body.withUnsafeBytes { try DistributionMessage.decode($0, limits: .default) }
        let term = try XCTUnwrap(whole.payload).get()
        guard case .success(let client) = ClientMessageParser.parse(term) else { return XCTFail("the whole message is not a get") }
        XCTAssertEqual(client.commandName, .g)
    }

    func testTruncatedFramesLeaveTheNodeServing() async throws {
        try await withNode { node in
            // Cut anywhere, then the peer leaves.
            let frame = validGetFrame(from: RawPeer.testPid)
            for length in [1, 3, 4, 5, 20, frame.count / 2, frame.count - 1] {
                try await RawPeer.connect(port: node.port) { peer in
                    try await peer.shake()
                    try await peer.send(Array(frame[..<length]))
                }
            }
            // Cut inside the message, with a length that says so: dropped, the link stays up.
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                let body = Array(validGetFrame(from: peer.pid)[4...])
                let controlEnd = 1 + ExternalTermFormat.encode(getControl(from: peer.pid)).count
                for length in controlEnd..<body.count {
                    try await peer.send(bigEndian(UInt64(length), 4) + body[..<length])
                }
                // The only answer is the one to the whole get.
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                let reply = try await peer.readSend()
                XCTAssertEqual(reply?.message, .atom("ko"))
                try await peer.registeredSend(.tuple([.atom("s"), erlString("after"), .binary([1])]))
                let stored = try await peer.get("after")
                XCTAssertEqual(stored, .tuple([.atom("ok"), .binary([1])]))
            }
            XCTAssertEqual(node.count(.g), 2)
            // Cut inside the control, with a length that says so: the link is closed.
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                let body = Array(frame[4..<20])
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                let rest = await peer.bytesUntilClosedByServer(within: 5)
                XCTAssertEqual(rest, [])
            }
            try await expectServesAGoodPeer(node)
        }
    }

    // MARK: Connections

    func testConnectionBeyondALimitOfOneIsClosedAndTheSlotFreedWhenTheFirstLeaves() async throws {
        try await withNode({ $0.maxConnections = 1 }) { node in
            try await RawPeer.connect(port: node.port, name: "first@127.0.0.1") { first in
                try await first.shake()
                try await RawPeer.connect(port: node.port, name: "second@127.0.0.1") { second in
                    // Closed before any handshake byte: not even a status.
                    let rest = await second.bytesUntilClosedByServer(within: 5)
                    XCTAssertEqual(rest, [])
                }
                let reply = try await first.get("k")
                XCTAssertEqual(reply, .atom("ko"))
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("refused a connection") }, "\(node.logs.all)")
            try await expectServesAGoodPeer(node)
        }
    }

    func testConnectionBeyondALimitOfTwoIsClosedAndTheOthersKeepWorking() async throws {
        try await withNode({ $0.maxConnections = 2 }) { node in
            try await RawPeer.connect(port: node.port, name: "first@127.0.0.1") { first in
                try await first.shake()
                try await RawPeer.connect(port: node.port, name: "second@127.0.0.1") { second in
                    try await second.shake()
                    try await RawPeer.connect(port: node.port, name: "third@127.0.0.1") { third in
                        let rest = await third.bytesUntilClosedByServer(within: 5)
                        XCTAssertEqual(rest, [])
                    }
                    try await second.registeredSend(.tuple([.atom("s"), erlString("k"), .binary([2])]))
                    let reply = try await second.get("k")
                    XCTAssertEqual(reply, .tuple([.atom("ok"), .binary([2])]))
                }
                let reply = try await first.get("k")
                XCTAssertEqual(reply, .tuple([.atom("ok"), .binary([2])]))
                // The second's slot is free again while the first stays.
                try await expectServesAGoodPeer(node)
            }
        }
    }
}

// MARK: - Inputs

/// Term bodies (no version byte) nested 100,000 deep: tuples, lists and maps.
private let nested100000: [[UInt8]] = {
    var tuples: [UInt8] = []
    for _ in 0..<100_000 { tuples += [104, 1] }
    tuples.append(106)
    var lists: [UInt8] = []
    for _ in 0..<100_000 { lists += [108, 0, 0, 0, 1] }
    lists += [UInt8](repeating: 106, count: 100_001)
    var maps: [UInt8] = []
    for _ in 0..<100_000 { maps += [116, 0, 0, 0, 1, 97, 1] }
    maps.append(106)
    return [tuples, lists, maps]
}()

/// Term bodies (no version byte) that declare more than the frame holds, with a name each.
private let overlongTerms: [(name: String, body: [UInt8])] = [
    ("binary", [109, 0, 0, 3, 232, 1, 2, 3]),
    ("binary 2^32-1", [109, 255, 255, 255, 255, 1]),
    ("bit binary", [77, 255, 255, 255, 255, 3, 1]),
    ("list", [108, 0, 0, 3, 232, 97, 1, 106]),
    ("list 2^32-1", [108, 255, 255, 255, 255, 97, 1]),
    ("string", [107, 3, 232, 97, 98]),
    ("string 65535", [107, 255, 255]),
    ("small tuple", [104, 200, 97, 1]),
    ("large tuple", [105, 0, 0, 3, 232, 97, 1]),
    ("large tuple 2^32-1", [105, 255, 255, 255, 255, 97, 1]),
    ("map", [116, 0, 0, 3, 232, 97, 1, 97, 2]),
    ("map 2^32-1", [116, 255, 255, 255, 255, 97, 1, 97, 2]),
    ("bignum 2^32-1", [111, 255, 255, 255, 255, 0, 1]),
]

/// An atom in each form at and over 255 characters, with the atom it decodes to (nil when it
/// must be refused).
private let atomSamples: [(name: String, body: [UInt8], expected: Atom?)] = {
    let e = "\u{E9}"  // é: 2 bytes in UTF-8, 1 in Latin-1
    let grin = "\u{1F600}"  // 4 bytes in UTF-8
    func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }
    func long(_ text: String) -> [UInt8] { [118] + bigEndian(UInt64(text.utf8.count), 2) + utf8(text) }
    return [
        ("ATOM_UTF8_EXT 255 ascii", long(String(repeating: "a", count: 255)), Atom(String(repeating: "a", count: 255))),
        ("ATOM_UTF8_EXT 256 ascii", long(String(repeating: "a", count: 256)), nil),
        ("ATOM_UTF8_EXT 255 two-byte", long(String(repeating: e, count: 255)), Atom(String(repeating: e, count: 255))),
        ("ATOM_UTF8_EXT 256 two-byte", long(String(repeating: e, count: 256)), nil),
        ("ATOM_UTF8_EXT 255 four-byte", long(String(repeating: grin, count: 255)), Atom(String(repeating: grin, count: 255))),
        ("ATOM_UTF8_EXT 256 four-byte", long(String(repeating: grin, count: 256)), nil),
        ("ATOM_UTF8_EXT 65535 cut", [118, 255, 255, 97, 98], nil),
        ("ATOM_UTF8_EXT split character", [118, 0, 3, 97, 0xC3, 0x28], nil),
        // A one-byte length says at most 255 bytes: 255 characters of ASCII, fewer of anything else.
        ("SMALL_ATOM_UTF8_EXT 255 ascii", [119, 255] + [UInt8](repeating: 98, count: 255), Atom(String(repeating: "b", count: 255))),
        ("SMALL_ATOM_UTF8_EXT 127 two-byte", [119, 255] + utf8(String(repeating: e, count: 127) + "c"), Atom(String(repeating: e, count: 127) + "c")),
        ("SMALL_ATOM_UTF8_EXT 255 cut", [119, 255, 97], nil),
        ("ATOM_EXT 255 latin-1", [100, 0, 255] + [UInt8](repeating: 0xE9, count: 255), Atom(String(repeating: e, count: 255))),
        ("ATOM_EXT 256 latin-1", [100, 1, 0] + [UInt8](repeating: 0xE9, count: 256), nil),
        ("ATOM_EXT 256 ascii", [100, 1, 0] + [UInt8](repeating: 100, count: 256), nil),
        ("SMALL_ATOM_EXT 255 latin-1", [115, 255] + [UInt8](repeating: 0xE8, count: 255), Atom(String(repeating: "\u{E8}", count: 255))),
    ]
}()

// MARK: - Helpers

extension RawPeer {
    /// A pid for frames built without a connection.
    static let testPid = Pid(node: "tester@127.0.0.1", id: 85, serial: 0, creation: 7)

    /// Asks for `key` with `{g, true, Key, Pid, null}` and returns the reply; nil when the link
    /// closed first.
    mutating func get(_ key: String) async throws -> Term? {
        try await registeredSend(.tuple([.atom("g"), .atom("true"), erlString(key), .pid(pid), .atom("null")]))
        return try await readSend()?.message
    }
}

/// A sink for the frames a decoder yields, giving it a context to run in.
private final class FrameSink: ChannelInboundHandler {
    typealias InboundIn = DistributionFrame
}

/// The handshake settings of the node the unit tests talk to; the cookie is "C".
private func handshakeConfiguration() -> DistributionHandshake.Configuration {
    DistributionHandshake.Configuration(localNode: "brain@127.0.0.1", creation: 1, cookie: [67])
}

/// A version 6 name message `'N' Flags Creation Nlen Name`; `declaredLength` overrides Nlen.
private func nameMessage(_ name: [UInt8], flags: UInt64 = RawPeer.otp25Flags, declaredLength: Int? = nil) -> [UInt8] {
    [UInt8(ascii: "N")] + bigEndian(flags, 8) + bigEndian(7, 4) + bigEndian(UInt64(declaredLength ?? name.count), 2) + name
}

/// `body` behind its 2-byte length: a handshake message.
private func framed2(_ body: [UInt8]) -> [UInt8] {
    bigEndian(UInt64(body.count), 2) + body
}

/// The control of a `{brain, Node} ! Message` from `pid`.
private func getControl(from pid: Pid) -> Term {
    .tuple([.integer(6), .pid(pid), .atom(""), .atom("brain")])
}

/// A whole frame, length first, of `{brain, Node} ! {g, true, "k", Pid, null}` from `pid`.
private func validGetFrame(from pid: Pid) -> [UInt8] {
    OutgoingFrame.frame(
        control: getControl(from: pid), message: .tuple([.atom("g"), .atom("true"), erlString("k"), .pid(pid), .atom("null")]))
}

/// A whole frame, length first, of `{brain, Node} ! Message` from `pid`, the message given as
/// raw bytes (its version byte included).
private func registeredSendFrame(from pid: Pid, message: [UInt8]) -> [UInt8] {
    let body = [112] + ExternalTermFormat.encode(getControl(from: pid)) + message
    return bigEndian(UInt64(body.count), 4) + body
}

/// The encoding of `{s, Key, Value}` whose value is the raw term body `valueBody`.
private func setMessage(key: String, valueBody: [UInt8]) -> [UInt8] {
    [131, 104, 3, 119, 1, UInt8(ascii: "s")] + Array(ExternalTermFormat.encode(erlString(key)).dropFirst()) + valueBody
}

/// `data` as a zlib stream of one stored block (at most 65535 bytes).
private func storedZlib(_ data: [UInt8]) -> [UInt8] {
    let length = UInt16(data.count)
    var a: UInt32 = 1
    var b: UInt32 = 0
    for byte in data {
        a = (a + UInt32(byte)) % 65521
        b = (b + a) % 65521
    }
    return [0x78, 0x01, 0x01, UInt8(truncatingIfNeeded: length), UInt8(length >> 8),
            UInt8(truncatingIfNeeded: ~length), UInt8(~length >> 8)] + data + bigEndian(UInt64(b << 16 | a), 4)
}

/// Fails the test unless a fresh peer completes a handshake with `node` within `seconds` and
/// reads back with `g` what it stored with `s`: the node has survived what came before. It
/// tries again while the node refuses it, since a closed connection frees its slot a moment
/// after the peer sees it closed.
func expectServesAGoodPeer(
    _ node: RunningNode, seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line
) async throws {
    let key = "good-\(UInt32.random(in: 0...UInt32.max))"
    let value = Term.binary(Array(key.utf8))
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    var lastError: (any Error)?
    repeat {
        do {
            let reply = try await RawPeer.connect(port: node.port, name: "good\(UInt32.random(in: 0...UInt32.max))@127.0.0.1") {
                peer -> Term? in
                try await peer.shake()
                try await peer.registeredSend(.tuple([.atom("s"), erlString(key), value]))
                return try await peer.get(key)
            }
            XCTAssertEqual(reply, .tuple([.atom("ok"), value]), "the good peer's get", file: file, line: line)
            return
        } catch {
            lastError = error
            try await Task.sleep(for: .milliseconds(50))
        }
    } while ContinuousClock.now < deadline
    XCTFail("no good peer was served within \(seconds) s: \(String(describing: lastError))", file: file, line: line)
}
