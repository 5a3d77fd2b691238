/// The one error type of the line protocol: what the transport itself refuses, before or
/// instead of asking the engine.
///
/// It reaches the client as one line, `error <code>: <message>` (or `error <code>` when the
/// message is empty). Codes are stable and documented in `docs/protocol.md`; messages are for
/// humans and may be reworded.
public struct LineProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong. The raw value is the code sent on the wire.
    public enum Code: String, Sendable, CaseIterable {
        /// The first word of the line is not a command.
        case unknownCommand = "unknown_command"
        /// The command got too few or too many arguments.
        case wrongArity = "wrong_arity"
        /// A key, field, value or secret holds an invalid backslash escape.
        case badEscape = "bad_escape"
        /// A secret is configured and the connection has not authenticated yet.
        case authRequired = "auth_required"
        /// `auth` was sent with the wrong secret.
        case authFailed = "auth_failed"
        /// The line is longer than the configured limit; the connection is closed.
        case lineTooLong = "line_too_long"
        /// The node already serves its maximum number of connections; the connection is closed.
        case tooManyConnections = "too_many_connections"
        /// `with` names an option or a value it does not know, or precedes a command it
        /// does not apply to.
        case badOption = "bad_option"
        /// A stored Erlang term could not be decoded for printing.
        case badTerm = "bad_term"
    }

    /// The stable code.
    public var code: Code
    /// A human-readable account; may be empty.
    public var message: String

    /// An error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `<code>: <message>`, or `<code>` alone when the message is empty.
    public var description: String {
        message.isEmpty ? code.rawValue : "\(code.rawValue): \(message)"
    }

    static let authRequired = LineProtocolError(.authRequired, "send auth <secret> first")
    static let authFailed = LineProtocolError(.authFailed, "wrong secret")
    static let tooManyConnections = LineProtocolError(.tooManyConnections, "")

    static func lineTooLong(limit: Int) -> LineProtocolError {
        LineProtocolError(.lineTooLong, "limit is \(limit) bytes")
    }
}
