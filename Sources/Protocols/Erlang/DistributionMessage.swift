import Engine

/// The control message that heads every frame of a connected link: what the frame means.
///
/// Only the messages Brain acts on are taken apart; every other operation is kept as its
/// number, so that a newer peer's signals are tolerated rather than fatal.
public enum ControlMessage: Sendable, Equatable {
    /// `LINK {1, From, To}`: `From` links to our process `To`.
    case link(from: Pid, to: Pid)
    /// `SEND {2, _, To}` (and `SEND_TT`, `SEND_SENDER`, `SEND_SENDER_TT`): a message to the
    /// process `To`.
    case send(to: Term)
    /// `REG_SEND {6, From, _, ToName}` (and `REG_SEND_TT`): `{ToName, Node} ! Message`.
    case registeredSend(from: Pid, to: Atom)
    /// `MONITOR_P {19, From, Target, Ref}`: `From` monitors our `Target`, a pid or a
    /// registered name.
    case monitor(from: Pid, target: Term, reference: Term)
    /// `UNLINK_ID {35, Id, From, To}`: `From` unlinks from our `To`; must be acknowledged.
    case unlinkID(id: Term, from: Pid, to: Pid)
    /// Any other operation (`EXIT`, `UNLINK`, `GROUP_LEADER`, `EXIT2`, `DEMONITOR_P`,
    /// `MONITOR_P_EXIT`, spawn and alias operations, ...): tolerated, and ignored.
    case other(operation: Int)

    /// The control message in `term`, a tuple whose first element is the operation number.
    ///
    /// - Throws: ``ErlangTransportError`` (`malformed_frame`) when `term` is not such a tuple,
    ///   or when a message Brain acts on has fields of the wrong types.
    public static func parse(_ term: Term) throws(ErlangTransportError) -> ControlMessage {
        guard case .tuple(let fields) = term, let first = fields.first, case .integer(let operation) = first else {
            throw ErlangTransportError(.malformedFrame, "the control message \(term.printed) is not {Operation, ...}")
        }
        func malformed() -> ErlangTransportError {
            ErlangTransportError(.malformedFrame, "malformed control message \(term.printed)")
        }
        switch operation {
        case 1:
            guard fields.count == 3, case .pid(let from) = fields[1], case .pid(let to) = fields[2] else { throw malformed() }
            return .link(from: from, to: to)
        case 2, 22:
            guard fields.count == 3 else { throw malformed() }
            return .send(to: fields[2])
        case 12, 23:
            guard fields.count == 4 else { throw malformed() }
            return .send(to: fields[2])
        case 6, 16:
            guard fields.count == (operation == 6 ? 4 : 5), case .pid(let from) = fields[1],
                case .atom(let name) = fields[3]
            else { throw malformed() }
            return .registeredSend(from: from, to: name)
        case 19:
            guard fields.count == 4, case .pid(let from) = fields[1] else { throw malformed() }
            return .monitor(from: from, target: fields[2], reference: fields[3])
        case 35:
            guard fields.count == 4, case .pid(let from) = fields[2], case .pid(let to) = fields[3] else {
                throw malformed()
            }
            return .unlinkID(id: fields[1], from: from, to: to)
        default:
            guard operation > 0 && operation <= Int64(UInt8.max) else { throw malformed() }
            return .other(operation: Int(operation))
        }
    }

    /// True when the control message is followed by a message term in the same frame:
    /// sends, payload exits, spawn requests and alias sends.
    public var hasPayload: Bool {
        switch self {
        case .send, .registeredSend: true
        case .link, .monitor, .unlinkID: false
        case .other(let operation): (24...30).contains(operation) || operation == 33 || operation == 34
        }
    }
}

/// A decoded frame of a connected link: the control message and, when it has one, the
/// message that follows it.
public struct DistributionMessage: Sendable {
    /// The pass-through byte every frame starts with when neither the atom cache nor
    /// fragments are negotiated.
    public static let passThrough: UInt8 = 112

    /// What the frame means.
    public var control: ControlMessage
    /// The message term; `nil` when the control message carries none. A message that does
    /// not decode is kept as its error: the frame was well formed up to it, so the link
    /// stays up and only the message is dropped.
    public var payload: Result<Term, TermError>?

    /// Decodes the body of one frame: `112, 131 Control [, 131 Message]`.
    ///
    /// - Throws: ``ErlangTransportError`` (`malformed_frame`) when the pass-through byte is
    ///   missing, the control message does not decode within `limits`, or bytes follow a
    ///   control message that takes no payload. These close the link.
    public static func decode(
        _ frame: UnsafeRawBufferPointer, limits: TermLimits
    ) throws(ErlangTransportError) -> DistributionMessage {
        guard frame.first == passThrough else {
            let first = frame.first.map(String.init) ?? "nothing"
            throw ErlangTransportError(
                .malformedFrame, "frame starts with \(first), not the pass-through byte 112 (atom cache frames are not negotiated)")
        }
        let afterTag = UnsafeRawBufferPointer(rebasing: frame[1...])
        let decoded: (term: Term, consumed: Int)
        do throws(TermError) {
            decoded = try ExternalTermFormat.decodePrefix(afterTag, limits: limits)
        } catch {
            throw ErlangTransportError(.malformedFrame, "the control message does not decode: \(error)")
        }
        let control = try ControlMessage.parse(decoded.term)
        let consumed = decoded.consumed
        let rest = UnsafeRawBufferPointer(rebasing: afterTag[consumed...])
        guard control.hasPayload else {
            guard rest.isEmpty else {
                throw ErlangTransportError(.malformedFrame, "\(rest.count) bytes follow a control message that takes no message")
            }
            return DistributionMessage(control: control, payload: nil)
        }
        let payload: Result<Term, TermError>
        do throws(TermError) {
            let decoded = try ExternalTermFormat.decodePrefix(rest, limits: limits)
            if decoded.consumed != rest.count {
                throw TermError(.trailingBytes, at: decoded.consumed, "\(rest.count - decoded.consumed) bytes follow the message")
            }
            payload = .success(decoded.term)
        } catch {
            payload = .failure(error)
        }
        return DistributionMessage(control: control, payload: payload)
    }
}

/// The frames Brain writes on a connected link, each with its 4-byte length.
public enum OutgoingFrame {
    /// An empty frame: tells the peer we are alive.
    public static let tick: [UInt8] = [0, 0, 0, 0]

    /// `SEND {2, '', To}` + `message`: delivers `message` to the process `to`.
    public static func send(to: Pid, message: Term) -> [UInt8] {
        frame(control: .tuple([.integer(2), .atom(""), .pid(to)]), message: message)
    }

    /// `EXIT {3, From, To, Reason}`: our process `from` tells `to` it exited with `reason`.
    public static func exit(from: Pid, to: Pid, reason: Term) -> [UInt8] {
        frame(control: .tuple([.integer(3), .pid(from), .pid(to), reason]), message: nil)
    }

    /// `MONITOR_P_EXIT {21, Target, To, Ref, Reason}`: the monitored `target` is gone (or
    /// never was).
    public static func monitorExit(target: Term, to: Pid, reference: Term, reason: Term) -> [UInt8] {
        frame(control: .tuple([.integer(21), target, .pid(to), reference, reason]), message: nil)
    }

    /// `UNLINK_ID_ACK {36, Id, From, To}`.
    public static func unlinkIDAck(id: Term, from: Pid, to: Pid) -> [UInt8] {
        frame(control: .tuple([.integer(36), id, .pid(from), .pid(to)]), message: nil)
    }

    /// Appends the frame of ``send(to:message:)`` to `out`: for a writer that reuses one
    /// buffer for every reply.
    public static func appendSend(to: Pid, message: Term, into out: inout [UInt8]) {
        appendFrame(control: .tuple([.integer(2), .atom(""), .pid(to)]), message: message, into: &out)
    }

    /// `Len:32, 112, 131 control [, 131 message]`.
    static func frame(control: Term, message: Term?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        appendFrame(control: control, message: message, into: &out)
        return out
    }

    /// Appends `Len:32, 112, 131 control [, 131 message]` to `out`.
    static func appendFrame(control: Term, message: Term?, into out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: [0, 0, 0, 0, DistributionMessage.passThrough])
        ExternalTermFormat.encode(control, into: &out)
        if let message { ExternalTermFormat.encode(message, into: &out) }
        let length = UInt32(out.count - start - 4)
        out[start] = UInt8(length >> 24)
        out[start + 1] = UInt8(truncatingIfNeeded: length >> 16)
        out[start + 2] = UInt8(truncatingIfNeeded: length >> 8)
        out[start + 3] = UInt8(truncatingIfNeeded: length)
    }
}

/// How a link answers the signals of its peer: a pure function of the control message.
///
/// Brain has no processes of its own besides its registered names, so a link to one of its
/// pids is answered with an exit `noproc`, a monitor of anything but a served name with a
/// monitor exit `noproc`, and an `UNLINK_ID` with its acknowledgement. A monitor of a served
/// name is accepted silently: it fires (`noconnection`) when the link goes down.
public struct SignalPolicy: Sendable {
    /// What to do with one control message.
    public enum Action: Sendable, Equatable {
        /// Hand the frame's message to the served name `name`; it came from `from`.
        case deliver(to: Atom, from: Pid)
        /// Write this frame back on the same link.
        case answer([UInt8])
        /// Nothing to do: a send to a name or process Brain does not have (dropped, as Erlang
        /// drops it), or a signal that needs no answer.
        case ignore
    }

    /// The registered names the node serves (the Brain name, `net_kernel`).
    public let servedNames: Set<Atom>

    /// A policy serving `servedNames`.
    public init(servedNames: Set<Atom>) {
        self.servedNames = servedNames
    }

    /// The action for `control`.
    public func action(for control: ControlMessage) -> Action {
        switch control {
        case .registeredSend(let from, let name):
            return servedNames.contains(name) ? .deliver(to: name, from: from) : .ignore
        case .link(let from, let to):
            return .answer(OutgoingFrame.exit(from: to, to: from, reason: .atom("noproc")))
        case .monitor(let from, let target, let reference):
            if case .atom(let name) = target, servedNames.contains(name) { return .ignore }
            return .answer(OutgoingFrame.monitorExit(target: target, to: from, reference: reference, reason: .atom("noproc")))
        case .unlinkID(let id, let from, let to):
            return .answer(OutgoingFrame.unlinkIDAck(id: id, from: to, to: from))
        case .send, .other:
            return .ignore
        }
    }

    /// The answer to a message sent to `net_kernel`: `net_adm:ping/1` calls it with
    /// `{'$gen_call', {Pid, Tag}, {is_auth, Node}}` and expects `{Tag, yes}`. Nil for any other
    /// message, which is dropped.
    public static func netKernelReply(to message: Term) -> (to: Pid, message: Term)? {
        guard case .tuple(let fields) = message, fields.count == 3, fields[0] == .atom("$gen_call"),
            case .tuple(let from) = fields[1], from.count == 2, case .pid(let caller) = from[0],
            case .tuple(let request) = fields[2], request.count == 2, request[0] == .atom("is_auth")
        else { return nil }
        return (caller, .tuple([from[1], .atom("yes")]))
    }
}
