#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Engine
import ErlangTransport
import FuzzSupport

/// The process's entry point: SwiftPM links `main` to it (see ``runLibFuzzer(_:_:_:)``).
@_cdecl("FuzzTermDecoder_main")
func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}

/// Fuzzes the External Term Format decoder and what the Erlang transport builds on it.
///
/// The input is taken as it is, with no steering byte, so that any `term_to_binary` output is
/// a seed:
/// - as one term (``ExternalTermFormat/decode(_:limits:)``) with the default limits and with
///   small ones; a term that decodes is printed, re-encoded and decoded again, and must come
///   back equal, with the same encoding;
/// - as a prefix (``ExternalTermFormat/decodePrefix(_:at:limits:)``), the way a distribution
///   frame holds a control term and a message;
/// - as the body of a distribution frame (`112` and the input), through
///   ``DistributionMessage``, ``SignalPolicy`` and ``ClientMessageParser``.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let bytes = input.rest()

    let decoded = try? ExternalTermFormat.decode(bytes)
    if tracing {
        let outcome = Result { () throws(TermError) in try ExternalTermFormat.decode(bytes) }
        print("FuzzTermDecoder: \(outcome.map(\.printed))")
    }
    if let term = decoded {
        checkRoundTrip(term, from: bytes)
        checkTransport(term)
    }
    checkSmallLimits(bytes, decoded: decoded)
    checkPrefix(bytes)
    checkFrame([DistributionMessage.passThrough] + bytes)
    return 0
}

/// With `FUZZ_TRACE` set in the environment, each input's outcome is printed: for reading
/// what a seed or a reproducer decodes to (`FUZZ_TRACE=1 FuzzTermDecoder -runs=0 file`).
let tracing = getenv("FUZZ_TRACE") != nil

/// Limits loose enough for anything the encoder writes: re-encoding may grow a term (Latin-1
/// atoms become UTF-8), and the answers Brain writes wrap a peer's terms in one more tuple.
let roomy = TermLimits(maxDepth: TermLimits.default.maxDepth + 2, maxElements: .max, maxBytes: .max)

/// Small limits, so that the depth, element and size checks are reached by small inputs.
let small = TermLimits(maxDepth: 6, maxElements: 48, maxBytes: 600)

/// A decoded term prints, re-encodes, and decodes back to itself; encoding is deterministic.
func checkRoundTrip(_ term: Term, from bytes: [UInt8]) {
    _ = term.printed
    let encoded = ExternalTermFormat.encode(term)
    let again: Term
    do {
        again = try ExternalTermFormat.decode(encoded, limits: roomy)
    } catch {
        invariant(false, "the encoding \(hex(encoded)) of a term decoded from \(hex(bytes)) does not decode: \(error)")
        return
    }
    invariant(again == term, "\(hex(bytes)) decodes to \(term.printed), its re-encoding to \(again.printed)")
    invariant(again.hashValue == term.hashValue, "equal terms \(term.printed) hash differently")
    let reencoded = ExternalTermFormat.encode(again)
    invariant(reencoded == encoded, "\(term.printed) encodes as \(hex(encoded)) and as \(hex(reencoded))")
}

/// A term that decodes within small limits decodes the same within the default ones; one
/// that does not decode at all does not decode within small limits either.
func checkSmallLimits(_ bytes: [UInt8], decoded: Term?) {
    guard let term = try? ExternalTermFormat.decode(bytes, limits: small) else { return }
    invariant(decoded != nil, "\(hex(bytes)) decodes within small limits but not within the default ones")
    invariant(decoded == term, "\(hex(bytes)) decodes differently within small limits")
}

/// The term at the start of the input, decoded as a prefix, is the term its bytes alone make.
func checkPrefix(_ bytes: [UInt8]) {
    guard let (term, consumed) = try? ExternalTermFormat.decodePrefix(bytes) else { return }
    invariant(consumed >= 2 && consumed <= bytes.count, "decodePrefix consumed \(consumed) of \(bytes.count) bytes")
    let alone = Array(bytes[..<consumed])
    do {
        let again = try ExternalTermFormat.decode(alone)
        invariant(again == term, "the prefix \(hex(alone)) decodes differently on its own")
    } catch {
        invariant(false, "the prefix \(hex(alone)) of \(hex(bytes)) does not decode on its own: \(error)")
    }
    if consumed < bytes.count {
        // The rest of a frame: a message term, or garbage.
        _ = try? ExternalTermFormat.decodePrefix(bytes, at: consumed)
    }
}

/// A frame body decodes or is refused with an error; whatever Brain would answer is itself a
/// well-formed frame.
func checkFrame(_ frame: [UInt8]) {
    let message: DistributionMessage
    do {
        message = try frame.withUnsafeBytes { bytes throws(ErlangTransportError) in
            try DistributionMessage.decode(bytes, limits: .default)
        }
    } catch let error as ErlangTransportError {
        invariant(error.code == .malformedFrame, "a frame was refused with \(error), not malformed_frame")
        return
    } catch {
        invariant(false, "a frame was refused with \(error), not an ErlangTransportError")
        return
    }
    checkAnswer(to: message.control)
    if case .success(let term)? = message.payload {
        checkTransport(term)
    }
}

/// What the transport makes of a term: a control message, a message to `net_kernel`, a
/// message to Brain. Every reply it would send must encode to a term that decodes.
func checkTransport(_ term: Term) {
    if let control = try? ControlMessage.parse(term) {
        checkAnswer(to: control)
    }
    if let reply = SignalPolicy.netKernelReply(to: term) {
        checkEncodes(reply.message, "the net_kernel reply")
    }
    switch ClientMessageParser.parse(term) {
    case .success(let message):
        if case .set(.setTerm(_, let stored, _)) = message {
            invariant(
                (try? ExternalTermFormat.decode(stored, limits: roomy)) != nil,
                "the term stored for \(term.printed) does not decode: \(hex(stored))")
        }
        _ = (message.key, message.commandName)
    case .failure(let malformed):
        if let reply = malformed.replyMessage {
            checkEncodes(reply, "the error reply")
        }
    }
}

/// The frame a link would write back for `control` is `Len:32` and a frame body that decodes.
func checkAnswer(to control: ControlMessage) {
    let policy = SignalPolicy(servedNames: ["brain", "net_kernel"])
    guard case .answer(let frame) = policy.action(for: control) else { return }
    invariant(frame.count >= 5, "an answer frame of \(frame.count) bytes")
    let length = frame[0..<4].reduce(0) { $0 << 8 | Int($1) }
    invariant(length == frame.count - 4, "an answer frame declares \(length) bytes and holds \(frame.count - 4)")
    do {
        _ = try frame[4...].withUnsafeBytes { bytes throws(ErlangTransportError) in
            try DistributionMessage.decode(bytes, limits: roomy)
        }
    } catch {
        invariant(false, "the answer to \(control) does not decode: \(error); frame \(hex(frame))")
    }
}

/// A term Brain builds to store or send decodes back to itself.
func checkEncodes(_ term: Term, _ what: String) {
    let encoded = ExternalTermFormat.encode(term)
    let again = try? ExternalTermFormat.decode(encoded, limits: roomy)
    invariant(again == term, "\(what) \(term.printed) does not survive encoding: \(hex(encoded))")
}
