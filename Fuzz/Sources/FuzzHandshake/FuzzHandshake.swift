#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Engine
import ErlangTransport
import FuzzSupport
import NIOCore
import NIOEmbedded

/// The process's entry point: SwiftPM links `main` to it (see ``runLibFuzzer(_:_:_:)``).
@_cdecl("FuzzHandshake_main")
func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}

/// Fuzzes the accepting side of the Erlang distribution handshake, with the peer's bytes
/// arriving as a socket delivers them: through ``DistributionFrameDecoder`` (in a NIO
/// pipeline, in pseudo-random reads) into ``DistributionHandshake``, then, once the link is
/// up, each frame through ``DistributionMessage``, ``SignalPolicy`` and
/// ``ClientMessageParser``, as the transport does.
///
/// Input: a mode byte, a chunking seed, then the peer's byte stream.
/// - mode & 3 picks what the harness sends before the stream: 0 nothing (the stream starts
///   with the peer's name message), 1 a valid version 6 name, 2 a valid version 5 name and
///   its complement, 3 a valid version 6 name and challenge reply (the stream is the
///   connected link).
/// - mode bit 2: a challenge reply in the stream gets the right digest written into it, so
///   that the established path is reached (a fuzzer cannot invert MD5).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let chunkSeed = input.byte()
    var stream: [UInt8]
    switch mode & 3 {
    case 0: stream = []
    case 1: stream = framed16(validNameV6)
    case 2: stream = framed16(validNameV5) + framed16(validComplement)
    default: stream = framed16(validNameV6) + framed16(validReply)
    }
    stream += input.rest()

    let (frames, error) = readFrames(stream, chunkSeed: chunkSeed)
    let (expectedFrames, expectedError) = referenceFrames(stream)
    invariant(
        frames == expectedFrames,
        "DistributionFrameDecoder framed \(frames.count) frames, the reference \(expectedFrames.count): \(hex(stream, limit: 64))")
    invariant(error == expectedError, "DistributionFrameDecoder failed with \(String(describing: error)), expected \(String(describing: expectedError))")

    runHandshake(frames, fixDigest: mode & 4 != 0)
    return 0
}

// MARK: The configuration and the valid messages

/// With `FUZZ_TRACE` set in the environment, each message and its directives are printed
/// (`FUZZ_TRACE=1 FuzzHandshake -runs=0 file`).
let tracing = getenv("FUZZ_TRACE") != nil

/// Our cookie, challenge and configuration: Brain's defaults, as the transport builds them.
let cookie = Array("fuzzcookie".utf8)
let challenge: UInt32 = 0x1234_5678
let configuration = DistributionHandshake.Configuration(
    localNode: "brain@127.0.0.1", creation: 0x0102_0304, cookie: cookie)
let maxFrameBytes = 64 << 20
let termLimits = TermLimits(
    maxDepth: TermLimits.default.maxDepth, maxElements: TermLimits.default.maxElements, maxBytes: maxFrameBytes)
let policy = SignalPolicy(servedNames: ["brain", "net_kernel"])

/// The peer of the valid messages: a hidden node with Brain's own flags.
let peerFlags = DistributionFlags.advertised(hidden: true)
let peerName = Array("fuzz@127.0.0.1".utf8)
let peerChallenge: UInt32 = 0xFFFF_FFFF

/// `'N' Flags:64 Creation:32 Nlen:16 Name`.
let validNameV6: [UInt8] =
    [UInt8(ascii: "N")] + bigEndian(peerFlags.rawValue, 8) + bigEndian(7, 4) + bigEndian(UInt64(peerName.count), 2)
    + peerName
/// `'n' 5:16 Flags:32 Name`.
let validNameV5: [UInt8] = [UInt8(ascii: "n")] + bigEndian(5, 2) + bigEndian(peerFlags.rawValue & 0xFFFF_FFFF, 4) + peerName
/// `'c' FlagsHigh:32 Creation:32`.
let validComplement: [UInt8] = [UInt8(ascii: "c")] + bigEndian(peerFlags.rawValue >> 32, 4) + bigEndian(7, 4)
/// `'r' Challenge:32 Digest:16` with the right digest.
let validReply: [UInt8] =
    [UInt8(ascii: "r")] + bigEndian(UInt64(peerChallenge), 4)
    + DistributionHandshake.digest(challenge: challenge, cookie: cookie)

/// The low `count` bytes of `value`, most significant first.
func bigEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
    (0..<count).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// `body` behind its 2-byte length, as a handshake message travels.
func framed16(_ body: [UInt8]) -> [UInt8] {
    bigEndian(UInt64(body.count), 2) + body
}

// MARK: Framing

/// A frame as compared here.
enum Frame: Equatable {
    case handshake([UInt8])
    case tick
    case data([UInt8])
}

/// The frames a NIO pipeline with the decoder yields for `stream` read in chunks, and the
/// error code that stopped it, if any.
func readFrames(_ stream: [UInt8], chunkSeed: UInt8) -> ([Frame], ErlangTransportError.Code?) {
    let channel = EmbeddedChannel(
        handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: maxFrameBytes)))
    defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
    var frames: [Frame] = []
    var failure: ErlangTransportError.Code?
    for chunk in Chunker(stream, seed: chunkSeed) {
        do {
            try channel.writeInbound(ByteBuffer(bytes: chunk))
        } catch let error as ErlangTransportError {
            failure = error.code
        } catch {
            invariant(false, "the frame decoder threw \(error), not an ErlangTransportError")
        }
        while let frame = try? channel.readInbound(as: DistributionFrame.self) {
            switch frame {
            case .handshake(let body): frames.append(.handshake(Array(body.readableBytesView)))
            case .tick: frames.append(.tick)
            case .data(let body): frames.append(.data(Array(body.readableBytesView)))
            }
        }
        if failure != nil { break }
    }
    return (frames, failure)
}

/// The frames of `stream` by the documented rules, from the whole stream at once.
func referenceFrames(_ stream: [UInt8]) -> ([Frame], ErlangTransportError.Code?) {
    var frames: [Frame] = []
    var position = 0
    var connected = false
    while true {
        let header = connected ? 4 : 2
        guard stream.count - position >= header else { return (frames, nil) }
        let length = stream[position..<position + header].reduce(0) { $0 << 8 | Int($1) }
        if !connected && length > 2048 { return (frames, .frameTooLarge) }
        if connected && length > maxFrameBytes { return (frames, .frameTooLarge) }
        if connected && length == 0 {
            frames.append(.tick)
            position += 4
            continue
        }
        guard stream.count - position - header >= length else { return (frames, nil) }
        let body = Array(stream[position + header..<position + header + length])
        position += header + length
        if connected {
            frames.append(.data(body))
        } else {
            frames.append(.handshake(body))
            if body.first == UInt8(ascii: "r") { connected = true }
        }
    }
}

// MARK: The handshake

/// Where the handshake should be, by the protocol; checked against what it does.
enum Expected {
    case name, complement, reply, established, closed
}

/// Drives the handshake with the frames, as the transport's connection does, and checks each
/// step's directives.
func runHandshake(_ frames: [Frame], fixDigest: Bool) {
    var handshake = DistributionHandshake(configuration: configuration, challenge: challenge)
    var expected = Expected.name
    for frame in frames {
        switch frame {
        case .handshake(var message):
            invariant(expected != .established, "a 2-byte-length frame was read after the handshake")
            if fixDigest, expected == .reply, message.count == 21, message.first == UInt8(ascii: "r") {
                message.replaceSubrange(5..<21, with: DistributionHandshake.digest(challenge: challenge, cookie: cookie))
            }
            let directives = handshake.receive(message)
            if tracing { print("FuzzHandshake: \(hex(message, limit: 32)) -> \(directives)") }
            expected = check(directives, for: message, at: expected)
            invariant(handshake.isFinished == (expected == .established || expected == .closed), "isFinished is wrong")
            if message.first == UInt8(ascii: "r") {
                invariant(handshake.isFinished, "the handshake goes on after a challenge reply")
            }
            if expected == .closed {
                // The transport closes the connection; a further message would be refused.
                let after = handshake.receive(validReply)
                guard case .close(let error)? = after.first, after.count == 1, error.code == .handshakeMalformed else {
                    invariant(false, "a closed handshake answered \(after)")
                    return
                }
                return
            }
        case .tick:
            invariant(expected == .established, "a tick was read before the handshake ended")
        case .data(let body):
            invariant(expected == .established, "a 4-byte-length frame was read before the handshake ended")
            if tracing { print("FuzzHandshake: link frame \(hex(body, limit: 32))") }
            receiveOnLink(body)
        }
    }
}

/// Checks the directives for one message and returns the state the handshake must now be in.
func check(_ directives: [DistributionHandshake.Directive], for message: [UInt8], at state: Expected) -> Expected {
    for (index, directive) in directives.enumerated() {
        switch directive {
        case .send(let bytes):
            invariant(
                bytes.count >= 3 && Int(bytes[0]) << 8 | Int(bytes[1]) == bytes.count - 2,
                "a handshake send is not framed: \(hex(bytes))")
        case .close(let error):
            invariant(index == directives.count - 1, "directives go on after a close: \(directives)")
            let allowed: [ErlangTransportError.Code] = [.handshakeMalformed, .handshakeNotAllowed, .wrongCookie]
            invariant(allowed.contains(error.code), "the handshake closed with \(error)")
            if error.code == .wrongCookie {
                invariant(
                    state == .reply && message.count == 21 && message.first == UInt8(ascii: "r"),
                    "wrong_cookie for a message that is no challenge reply: \(hex(message))")
            }
            if error.code == .handshakeNotAllowed, index > 0 {
                invariant(
                    directives[index - 1] == .send([0, 12] + Array("snot_allowed".utf8)),
                    "not_allowed without its status: \(directives)")
            }
            return .closed
        case .established(let peer):
            invariant(index == directives.count - 1, "directives go on after established: \(directives)")
            checkEstablished(peer, directives: directives, reply: message, at: state)
            return .established
        }
    }
    switch state {
    case .name:
        invariant(directives.count == 2, "an accepted name got \(directives)")
        invariant(directives[0] == .send([0, 3] + Array("sok".utf8)), "an accepted name got \(directives[0]), not ok")
        guard case .send(let challengeMessage) = directives[1] else { return .closed }
        let ours = Array(configuration.localNode.utf8)
        let body =
            [UInt8(ascii: "N")] + bigEndian(configuration.flags.rawValue, 8) + bigEndian(UInt64(challenge), 4)
            + bigEndian(UInt64(configuration.creation), 4) + bigEndian(UInt64(ours.count), 2) + ours
        invariant(challengeMessage == framed16(body), "the challenge message is \(hex(challengeMessage))")
        checkName(message)
        return message.first == UInt8(ascii: "n") ? .complement : .reply
    case .complement:
        invariant(directives.isEmpty, "an accepted complement got \(directives)")
        return .reply
    case .reply, .established, .closed:
        invariant(false, "a message in state \(state) was neither refused nor established the link: \(directives)")
        return .closed
    }
}

/// An accepted name message has a node name with an `@` inside, within the length limit.
func checkName(_ message: [UInt8]) {
    let name: ArraySlice<UInt8>
    if message.first == UInt8(ascii: "N") {
        let length = Int(message[13]) << 8 | Int(message[14])
        name = message[15..<15 + length]
    } else {
        name = message[7...]
    }
    invariant(name.count <= configuration.maxNameBytes, "a name of \(name.count) bytes was accepted")
    guard let at = name.firstIndex(of: UInt8(ascii: "@")) else {
        invariant(false, "the name \(hex(name)) without '@' was accepted")
        return
    }
    invariant(at > name.startIndex && at < name.endIndex - 1, "the name \(hex(name)) was accepted")
}

/// The link is up only for the right digest, and our answer proves we hold the cookie too.
func checkEstablished(
    _ peer: DistributionHandshake.Peer, directives: [DistributionHandshake.Directive], reply: [UInt8],
    at state: Expected
) {
    invariant(state == .reply, "established in state \(state)")
    invariant(reply.count == 21 && reply.first == UInt8(ascii: "r"), "established by \(hex(reply))")
    let expectedDigest = DistributionHandshake.digest(challenge: challenge, cookie: cookie)
    invariant(Array(reply[5..<21]) == expectedDigest, "established with a wrong digest: \(hex(reply))")
    let theirChallenge = reply[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    let ack = [UInt8(ascii: "a")] + DistributionHandshake.digest(challenge: theirChallenge, cookie: cookie)
    invariant(directives == [.send(framed16(ack)), .established(peer)], "established with \(directives)")
    invariant(peer.flags.isSuperset(of: configuration.requiredFlags), "a peer without the mandatory flags: \(peer.flags)")
    invariant(!peer.flags.contains(.nameMe), "a peer asking for a name was accepted")
    invariant(peer.negotiatedFlags == peer.flags.intersection(configuration.flags), "negotiated \(peer.negotiatedFlags)")
    invariant(peer.name.utf8.count <= configuration.maxNameBytes, "a peer name of \(peer.name.utf8.count) bytes")
    invariant(peer.version == 5 || peer.version == 6, "version \(peer.version)")
}

// MARK: The link

/// One frame of a connected link, as the transport handles it.
func receiveOnLink(_ body: [UInt8]) {
    let message: DistributionMessage
    do {
        message = try body.withUnsafeBytes { bytes throws(ErlangTransportError) in
            try DistributionMessage.decode(bytes, limits: termLimits)
        }
    } catch let error as ErlangTransportError {
        invariant(error.code == .malformedFrame, "a frame was refused with \(error), not malformed_frame")
        return
    } catch {
        invariant(false, "a frame was refused with \(error), not an ErlangTransportError")
        return
    }
    switch policy.action(for: message.control) {
    case .ignore:
        return
    case .answer(let frame):
        let length = frame[0..<4].reduce(0) { $0 << 8 | Int($1) }
        invariant(length == frame.count - 4, "an answer frame declares \(length) bytes and holds \(frame.count - 4)")
        let roomy = TermLimits(maxDepth: termLimits.maxDepth + 2, maxElements: .max, maxBytes: .max)
        let decoded = try? frame[4...].withUnsafeBytes { bytes throws(ErlangTransportError) in
            try DistributionMessage.decode(bytes, limits: roomy)
        }
        invariant(decoded != nil, "the answer to \(message.control) does not decode: \(hex(frame))")
    case .deliver(let name, _):
        guard case .success(let term)? = message.payload else { return }
        if name == "net_kernel" {
            _ = SignalPolicy.netKernelReply(to: term)
            return
        }
        switch ClientMessageParser.parse(term) {
        case .success(let client):
            _ = client.key
        case .failure(let malformed):
            if let reply = malformed.replyMessage {
                _ = ExternalTermFormat.encode(reply)
            }
        }
    }
}
