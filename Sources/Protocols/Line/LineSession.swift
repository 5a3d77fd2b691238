import Engine

/// The state of one line-protocol connection, as a pure state machine.
///
/// It turns each line into a ``Directive`` for the connection to carry out, and tracks
/// authentication: when a secret is configured, every command but `auth`, `quit` and `help`
/// is refused with `auth_required` until `auth` succeeds. Secrets are compared in constant
/// time. A failed `auth` leaves the state as it was.
public struct LineSession: Sendable {
    /// What the connection must do for one line.
    public enum Directive: Sendable {
        /// Nothing: the line was empty.
        case ignore
        /// Execute the command on the store, with the durability override if one was given,
        /// and reply with its ``Reply``.
        case execute(Command, durability: Durability?)
        /// Reply `1`.
        case replyOK
        /// Reply with this error.
        case replyError(LineProtocolError)
        /// Reply with the command list.
        case replyHelp
        /// Reply with the store's `info`.
        case replyInfo
        /// Send no reply; close the connection once earlier replies are flushed.
        case quit
        /// Reply `1`, then ask the node to shut down.
        case shutdown
    }

    /// One line's outcome: what to do, and the command to count (`nil` when the line named
    /// no command).
    public struct Step: Sendable {
        public var command: LineCommandName?
        public var directive: Directive
    }

    private let secret: [UInt8]?
    /// Whether commands are accepted: always when no secret is configured.
    public private(set) var isAuthenticated: Bool

    /// A new connection's state. `secret` is the shared secret clients must send with `auth`,
    /// or `nil` when none is required.
    public init(secret: [UInt8]?) {
        self.secret = secret
        self.isAuthenticated = secret == nil
    }

    /// Handles one line (without its terminator).
    public mutating func receive(_ line: UnsafeRawBufferPointer) -> Step {
        switch LineCommandParser.head(of: line) {
        case .empty:
            return Step(command: nil, directive: .ignore)
        case .unknown(let error):
            // Before auth, nothing about the command set is revealed.
            return Step(command: nil, directive: .replyError(isAuthenticated ? error : .authRequired))
        case .command(let command, let argumentsAt):
            guard isAuthenticated || command.allowedBeforeAuth else {
                return Step(command: command, directive: .replyError(.authRequired))
            }
            let request: LineRequest
            var counted = command
            do {
                if command == .with {
                    (counted, request) = try LineCommandParser.prefixed(in: line, at: argumentsAt)
                } else {
                    request = try LineCommandParser.arguments(of: command, in: line, at: argumentsAt)
                }
            } catch {
                return Step(command: command, directive: .replyError(error))
            }
            return Step(command: counted, directive: directive(for: request))
        }
    }

    private mutating func directive(for request: LineRequest) -> Directive {
        switch request {
        case .store(let command, let durability): return .execute(command, durability: durability)
        case .help: return .replyHelp
        case .info: return .replyInfo
        case .quit: return .quit
        case .shutdown: return .shutdown
        case .auth(let candidate):
            guard let secret else { return .replyOK }
            guard Self.secretsMatch(expected: secret, candidate: candidate) else {
                return .replyError(.authFailed)
            }
            isAuthenticated = true
            return .replyOK
        }
    }

    /// Compares a candidate secret with the expected one in time that depends only on the
    /// candidate's length, never on where the two differ.
    public static func secretsMatch(expected: [UInt8], candidate: [UInt8]) -> Bool {
        guard !expected.isEmpty else { return candidate.isEmpty }
        var difference = UInt(bitPattern: expected.count ^ candidate.count)
        for index in 0..<candidate.count {
            difference |= UInt(candidate[index] ^ expected[index % expected.count])
        }
        return difference == 0
    }
}
