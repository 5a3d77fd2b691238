/// The one error type of `brain console`. Its ``message`` is what the user reads after
/// `brain console: `; its ``code`` says what kind of failure it was.
struct ConsoleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    enum Code: String, Sendable {
        /// The host or port is not valid, or the host name does not resolve.
        case invalidAddress = "invalid_address"
        /// No TCP connection could be made.
        case connectFailed = "connect_failed"
        /// The node closed the connection, or it broke, while replies were due.
        case connectionLost = "connection_lost"
        /// The node refused `auth <secret>`.
        case authenticationFailed = "authentication_failed"
    }

    /// What went wrong.
    var code: Code
    /// The text for the user.
    var message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { message }
}
