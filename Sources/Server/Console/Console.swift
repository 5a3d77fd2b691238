#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// `brain console`: a client of a node's line protocol, for people and for scripts.
///
/// - Interactive mode (the input is a terminal): a prompt, a line editor with history kept
///   in `~/.brain_history`, a local help table (`?`, `help`) and `info` shown as a table.
/// - Piped mode (the input is a file or a pipe): each input line is sent as a command and
///   each reply is printed as it came, one line per command, in order.
///
/// See `docs/console.md` for keys and exit statuses.
enum Console {
    /// Runs a console session against the node at `host:port` and returns the process exit
    /// status.
    ///
    /// - Parameters:
    ///   - host: the node's host name or address.
    ///   - port: the node's line-protocol port.
    ///   - secret: when set and not empty, `auth <secret>` is sent first; a refusal ends the
    ///     session with status 1.
    ///   - input: where commands come from. A terminal selects interactive mode; anything
    ///     else selects piped mode.
    ///   - output: where replies (and, interactively, the prompt and the editor) go.
    ///   - errorOutput: where `brain console: ...` failures go.
    ///   - historyPath: the history file of interactive mode; `nil` keeps history in memory
    ///     only.
    /// - Returns: 0 when the session ended normally; 1 when the node could not be reached,
    ///   refused the secret, or the connection was lost; 2 in piped mode when at least one
    ///   reply was an `error ...` line.
    ///
    /// The session runs on a thread of its own: it blocks on the terminal and the socket, and
    /// must not hold up Swift's cooperative thread pool meanwhile.
    static func run(
        host: String,
        port: Int,
        secret: String?,
        input: CInt = STDIN_FILENO,
        output: CInt = STDOUT_FILENO,
        errorOutput: CInt = STDERR_FILENO,
        historyPath: String? = Console.defaultHistoryPath
    ) async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                let status = runSession(
                    host: host, port: port, secret: secret, input: input, output: output,
                    errorOutput: errorOutput, historyPath: historyPath)
                continuation.resume(returning: status)
            }
            thread.name = "brain-console"
            thread.start()
        }
    }

    /// The session itself, blocking the calling thread until it ends.
    static func runSession(
        host: String, port: Int, secret: String?, input: CInt, output: CInt, errorOutput: CInt,
        historyPath: String?
    ) -> Int32 {
        do {
            let connection = try NodeConnection.connect(host: host, port: port)
            if let secret, !secret.isEmpty {
                try authenticate(connection, secret: secret)
            }
            if isatty(input) == 1 {
                let session = InteractiveSession(
                    connection: connection, input: input, output: output, errorOutput: errorOutput,
                    historyPath: historyPath)
                return session.run()
            }
            return runPiped(connection: connection, input: input, output: output, errorOutput: errorOutput)
        } catch {
            report(error, to: errorOutput)
            return 1
        }
    }

    /// Sends `auth <secret>` and waits for `1`.
    /// - Throws: ``ConsoleError`` `authentication_failed` with the node's reason, or
    ///   `connection_lost`.
    static func authenticate(_ connection: NodeConnection, secret: String) throws(ConsoleError) {
        try connection.send(line: "auth " + escape(secret))
        let reply = String(decoding: try connection.readReply(), as: UTF8.self)
        guard reply == "1" else {
            let reason = reply.hasPrefix("error ") ? String(reply.dropFirst("error ".count)) : "the node replied '\(reply)'"
            throw ConsoleError(.authenticationFailed, "authentication to \(connection.address) failed: \(reason)")
        }
    }

    /// Prints `brain console: <message>` on `fd`.
    static func report(_ error: ConsoleError, to fd: CInt) {
        writeAll(fd, Array("brain console: \(error.message)\n".utf8))
    }

    // MARK: - Piped mode

    /// Pipelines the input's commands to the node and prints the replies in order, until the
    /// input ends and every reply has come, or the connection is lost.
    static func runPiped(connection: NodeConnection, input: CInt, output: CInt, errorOutput: CInt) -> Int32 {
        var session = PipedSession()
        var outbox: [UInt8] = []
        var outboxStart = 0
        var socketOpen = true
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)

        func show(_ lines: [[UInt8]]) {
            guard !lines.isEmpty else { return }
            var text: [UInt8] = []
            for line in lines {
                text.append(contentsOf: line)
                text.append(UInt8(ascii: "\n"))
            }
            writeAll(output, text)
        }
        func closeSocket() {
            socketOpen = false
            session.closeConnection()
            outbox = []
            outboxStart = 0
        }

        show(session.receiveReplies(connection.takeReceivedBytes()))
        while session.outcome == nil {
            var watched: [pollfd] = []
            if socketOpen {
                let events = POLLIN | (outboxStart < outbox.count ? POLLOUT : 0)
                watched.append(pollfd(fd: connection.fd, events: Int16(events), revents: 0))
            }
            let inputSlot = session.wantsInput ? watched.count : nil
            if inputSlot != nil { watched.append(pollfd(fd: input, events: Int16(POLLIN), revents: 0)) }
            guard !watched.isEmpty else { break }
            if poll(&watched, nfds_t(watched.count), -1) < 0 {
                if errno == EINTR { continue }
                closeSocket()
                break
            }

            if socketOpen {
                let events = CInt(watched[0].revents)
                if events & (POLLIN | POLLHUP | POLLERR) != 0 {
                    let count = chunk.withUnsafeMutableBytes {
                        recv(connection.fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT))
                    }
                    if count > 0 {
                        show(session.receiveReplies(chunk[0..<count]))
                    } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                        closeSocket()
                    }
                }
                if socketOpen, events & POLLOUT != 0 {
                    let sent = outbox.withUnsafeBytes {
                        send(connection.fd, $0.baseAddress! + outboxStart, $0.count - outboxStart, sendFlags | CInt(MSG_DONTWAIT))
                    }
                    if sent > 0 {
                        outboxStart += sent
                        if outboxStart == outbox.count {
                            outbox.removeAll(keepingCapacity: true)
                            outboxStart = 0
                        }
                    } else if sent < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR {
                        closeSocket()
                    }
                }
            }

            if let slot = inputSlot, watched[slot].revents != 0, session.wantsInput {
                let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count > 0 {
                    outbox.append(contentsOf: session.receiveInput(chunk[0..<count]))
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    outbox.append(contentsOf: session.endInput())
                }
                if !socketOpen {
                    // Commands for a closed connection are never sent; the session knows.
                    outbox = []
                }
            }
        }

        let outcome = session.outcome ?? .connectionLost
        if outcome == .connectionLost { report(connection.lost(), to: errorOutput) }
        return PipedSession.exitStatus(of: outcome)
    }

    // MARK: - Shared helpers

    /// `error`: how every error reply starts.
    static let errorPrefix: [UInt8] = Array("error".utf8)

    /// Whether `scalar` separates words on a command line (space or tab).
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t"
    }

    /// Whether `line` holds nothing but spaces and tabs.
    static func isBlank(_ line: String) -> Bool {
        line.unicodeScalars.allSatisfy(isSpace)
    }

    /// The words of a command line, split on spaces and tabs.
    static func words(of line: String) -> [Substring] {
        line.split(whereSeparator: { $0 == " " || $0 == "\t" })
    }

    /// Whether `line` is `quit` or `exit`, the console's ways to leave.
    static func isLeaveCommand(_ line: String) -> Bool {
        let words = words(of: line)
        guard words.count == 1 else { return false }
        let word = words[0].lowercased()
        return word == "quit" || word == "exit"
    }

    /// `text` with the line protocol's C escapes for the bytes that cannot appear raw on a
    /// line: `\\`, `\r`, `\n`, `\t`, `\0`, and `\xHH` for the other control bytes.
    static func escape(_ text: String) -> String {
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out += Array(#"\\"#.utf8)
            case UInt8(ascii: "\r"): out += Array(#"\r"#.utf8)
            case UInt8(ascii: "\n"): out += Array(#"\n"#.utf8)
            case UInt8(ascii: "\t"): out += Array(#"\t"#.utf8)
            case 0: out += Array(#"\0"#.utf8)
            case 0x01..<0x20, 0x7F:
                let digits = Array("0123456789abcdef".utf8)
                out += [UInt8(ascii: "\\"), UInt8(ascii: "x"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes `bytes` whole to `fd`, retrying after interruptions and short writes. Returns
    /// whether every byte was written.
    @discardableResult
    static func writeAll(_ fd: CInt, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}
