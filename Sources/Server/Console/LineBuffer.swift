extension Console {
    /// Splits a byte stream into lines: bytes go in as they arrive, in any split; complete
    /// lines come out without their `\n` and without a `\r` just before it.
    struct LineBuffer: Sendable {
        private var bytes: [UInt8] = []
        /// Where the first byte not yet returned is.
        private var start = 0
        /// Bytes before this index (from `start`) are known to hold no `\n`.
        private var scanned = 0

        init() {}

        /// Whether bytes of an unfinished line are waiting.
        var hasPartialLine: Bool { start < bytes.count }

        /// Appends bytes read from the stream.
        mutating func append(_ chunk: some Sequence<UInt8>) {
            bytes.append(contentsOf: chunk)
        }

        /// The next complete line, or `nil` until its `\n` has arrived.
        mutating func nextLine() -> [UInt8]? {
            guard let newline = bytes[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = bytes.count
                compact()
                return nil
            }
            var end = newline
            if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = Array(bytes[start..<end])
            start = newline + 1
            scanned = start
            compact()
            return line
        }

        /// At the end of the stream: the last line when it had no `\n`, else `nil`.
        mutating func takeUnterminatedLine() -> [UInt8]? {
            guard hasPartialLine else { return nil }
            var line = Array(bytes[start...])
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            bytes = []
            start = 0
            scanned = 0
            return line
        }

        /// Everything not yet returned as a line, as it arrived; the buffer is empty after.
        mutating func takeUnread() -> [UInt8] {
            defer {
                bytes = []
                start = 0
                scanned = 0
            }
            return Array(bytes[start...])
        }

        /// Moves the unread bytes to the front once the consumed part dominates, so the
        /// buffer stays proportional to the unread bytes.
        private mutating func compact() {
            guard start > 0, start >= bytes.count / 2 || start == bytes.count else { return }
            bytes.removeSubrange(0..<start)
            scanned -= start
            start = 0
        }
    }
}
