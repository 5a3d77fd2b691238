/// The one error type of `brain bench`. Its ``message`` is what the user reads after
/// `brain bench: `; its ``code`` says what kind of failure it was.
struct BenchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    enum Code: String, Sendable {
        /// An option has a value outside its range, or options contradict each other.
        case invalidOption = "invalid_option"
        /// The host does not resolve, or a connection could not be opened.
        case connectFailed = "connect_failed"
        /// The server closed a connection, or it broke, while the run was going on.
        case connectionLost = "connection_lost"
        /// The server sent bytes that are not a reply of the protocol being driven.
        case protocolViolation = "protocol_violation"
        /// Requests were outstanding and no reply came for longer than the stall limit.
        case stalled = "stalled"
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
