/// The one error type of the Erlang transport: why the node could not start, why a peer's
/// handshake was refused, or why a link was closed.
///
/// The ``code`` is stable and documented in `docs/erlang.md`; the message is for people
/// and may be reworded.
public struct ErlangTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong. The raw value is the code written in logs.
    public enum Code: String, Sendable, CaseIterable {
        /// No epmd answers on its port, and none could be started.
        case epmdUnavailable = "epmd_unavailable"
        /// epmd refused the registration: another node already uses the name on this host.
        case nameInUse = "name_in_use"
        /// epmd answered something that is not an epmd reply, or nothing in time.
        case epmdProtocol = "epmd_protocol"
        /// The node's own configuration cannot work (a node name without `@`, a registered
        /// name that is not an atom, no cookie).
        case invalidConfiguration = "invalid_configuration"
        /// A handshake message is malformed or comes out of turn.
        case handshakeMalformed = "handshake_malformed"
        /// The peer is refused: a mandatory capability flag is missing, or its name is not a
        /// valid node name.
        case handshakeNotAllowed = "handshake_not_allowed"
        /// The peer's challenge digest does not match our cookie: it has another cookie.
        case wrongCookie = "wrong_cookie"
        /// A handshake step did not arrive within the setup time.
        case handshakeTimeout = "handshake_timeout"
        /// A frame declares a length beyond the configured maximum.
        case frameTooLarge = "frame_too_large"
        /// A frame of a connected link is not a distribution message (no pass-through byte,
        /// a control message that does not decode or is not a control tuple).
        case malformedFrame = "malformed_frame"
        /// The peer sent nothing, not even a tick, for longer than the tick time.
        case linkSilent = "link_silent"
    }

    /// The stable code.
    public var code: Code
    /// A human-readable account.
    public var message: String

    /// An error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `<code>: <message>`.
    public var description: String { "\(code.rawValue): \(message)" }
}
