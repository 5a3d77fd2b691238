extension Console {
    /// The piped mode's protocol logic, as a pure state machine: input bytes in, command bytes
    /// to send out; reply bytes in, lines to print out; and, at the end, the exit status.
    ///
    /// Commands are pipelined: each input line is sent without waiting for the replies to the
    /// ones before, at most ``maximumInFlight`` at a time. The node answers each command with
    /// exactly one line, in order, so the n-th reply belongs to the n-th command.
    ///
    /// - Blank input lines are skipped.
    /// - `quit` or `exit` ends the input: nothing after it is sent.
    /// - A `\r` before the `\n` is dropped; the last line counts even without its `\n`.
    struct PipedSession: Sendable {
        /// How the session ended.
        enum Outcome: Equatable, Sendable {
            /// Every command got its reply. `errorReplies` counts the `error ...` ones.
            case finished(errorReplies: Int)
            /// The connection closed while replies were due, or before commands that were
            /// still to be sent.
            case connectionLost
        }

        /// How many commands may await their replies before the input is read further.
        let maximumInFlight: Int
        /// Commands sent (or handed out to send) whose reply has not arrived.
        private(set) var inFlight = 0
        /// Whether the input has ended (end of file, `quit` or `exit`).
        private(set) var inputEnded = false
        /// Whether the node closed the connection.
        private(set) var connectionClosed = false
        private var lost = false
        private var errorReplies = 0
        private var input = LineBuffer()
        private var replies = LineBuffer()

        init(maximumInFlight: Int = 512) {
            self.maximumInFlight = max(1, maximumInFlight)
        }

        /// Whether the driver should read more input now.
        var wantsInput: Bool { !inputEnded && !lost && inFlight < maximumInFlight }

        /// The end of the session, once it has come.
        var outcome: Outcome? {
            if lost { return .connectionLost }
            return inputEnded && inFlight == 0 ? .finished(errorReplies: errorReplies) : nil
        }

        /// The process exit status for an outcome: 0 all replies fine, 2 some were errors,
        /// 1 the connection was lost.
        static func exitStatus(of outcome: Outcome) -> Int32 {
            switch outcome {
            case .finished(let errors): errors == 0 ? 0 : 2
            case .connectionLost: 1
            }
        }

        /// Takes bytes read from the input; returns the command lines to send, each ending
        /// in `\n`.
        mutating func receiveInput(_ chunk: some Sequence<UInt8>) -> [UInt8] {
            guard !inputEnded else { return [] }
            input.append(chunk)
            var out: [UInt8] = []
            while !inputEnded, let line = input.nextLine() {
                enqueue(line, into: &out)
            }
            return out
        }

        /// The input reached its end; returns the last command when it had no `\n`.
        mutating func endInput() -> [UInt8] {
            guard !inputEnded else { return [] }
            var out: [UInt8] = []
            if let line = input.takeUnterminatedLine() { enqueue(line, into: &out) }
            inputEnded = true
            return out
        }

        /// Takes bytes received from the node; returns the complete reply lines, without
        /// their `\r\n`, to print in order.
        mutating func receiveReplies(_ chunk: some Sequence<UInt8>) -> [[UInt8]] {
            replies.append(chunk)
            var lines: [[UInt8]] = []
            while let line = replies.nextLine() {
                // A line nobody asked for is still shown, but it answers no command.
                if inFlight > 0 { inFlight -= 1 }
                if line.starts(with: Console.errorPrefix) { errorReplies += 1 }
                lines.append(line)
            }
            return lines
        }

        /// The node closed the connection (or it broke). The session is lost when replies
        /// were due; otherwise it is lost only if the input still holds a command.
        mutating func closeConnection() {
            connectionClosed = true
            if inFlight > 0 { lost = true }
        }

        private mutating func enqueue(_ line: [UInt8], into out: inout [UInt8]) {
            let text = String(decoding: line, as: UTF8.self)
            if Console.isBlank(text) { return }
            if Console.isLeaveCommand(text) {
                inputEnded = true
                return
            }
            if connectionClosed {
                lost = true
                inputEnded = true
                return
            }
            out.append(contentsOf: line)
            out.append(UInt8(ascii: "\n"))
            inFlight += 1
        }
    }
}
