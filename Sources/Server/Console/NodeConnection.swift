#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Console {
    /// A TCP connection to a node's line-protocol port, over blocking POSIX sockets.
    ///
    /// The console is one user at a terminal or one script on a pipe, so a thread that waits
    /// for each reply is the simplest correct client. The socket is closed on `deinit`.
    final class NodeConnection {
        /// The socket.
        let fd: CInt
        /// `host:port` (`[host]:port` for an IPv6 literal), for messages.
        let address: String
        private var replies = LineBuffer()

        /// How long a connection attempt may take before it is given up.
        static let connectTimeoutMilliseconds: CInt = 5000

        private init(fd: CInt, address: String) {
            self.fd = fd
            self.address = address
        }

        deinit { close(fd) }

        /// `host:port`, with brackets around an IPv6 literal.
        static func address(host: String, port: Int) -> String {
            TCPAddress.display(host: host, port: port)
        }

        /// Connects to `host:port`, trying each address the name resolves to in turn.
        ///
        /// - Throws: ``ConsoleError`` `invalid_address` when the port is out of range or the
        ///   name does not resolve; `connect_failed` with the system's reason otherwise (and
        ///   a hint to start a node when the connection was refused).
        static func connect(host: String, port: Int) throws(ConsoleError) -> NodeConnection {
            let address = address(host: host, port: port)
            guard (1...65535).contains(port) else {
                throw ConsoleError(.invalidAddress, "invalid port \(port): use 1 to 65535")
            }
            let first: UnsafeMutablePointer<addrinfo>
            switch TCPAddress.resolve(host: host, port: port) {
            case .success(let list): first = list
            case .failure(let failure): throw ConsoleError(.invalidAddress, failure.message)
            }
            defer { freeaddrinfo(first) }

            var lastError: CInt = ECONNREFUSED
            var candidate: UnsafeMutablePointer<addrinfo>? = first
            while let info = candidate {
                candidate = info.pointee.ai_next
                let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | CInt(SOCK_CLOEXEC_FLAG), info.pointee.ai_protocol)
                guard fd >= 0 else {
                    lastError = errno
                    continue
                }
                let error = connectWithTimeout(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
                if error == 0 {
                    var on: CInt = 1
                    setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<CInt>.size))
                    #if canImport(Darwin)
                    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<CInt>.size))
                    #endif
                    return NodeConnection(fd: fd, address: address)
                }
                close(fd)
                lastError = error
            }
            var message = "cannot connect to \(address): \(String(cString: strerror(lastError)))"
            if lastError == ECONNREFUSED {
                message += " (is a node running? start one with 'brain serve')"
            }
            throw ConsoleError(.connectFailed, message)
        }

        /// Connects a blocking socket, giving up after ``connectTimeoutMilliseconds``.
        /// Returns 0 or an `errno` value; the socket is blocking again on return.
        private static func connectWithTimeout(_ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: socklen_t) -> CInt {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            defer { _ = fcntl(fd, F_SETFL, flags) }
            if posixConnect(fd, address, length) == 0 { return 0 }
            guard errno == EINPROGRESS else { return errno }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: CInt
            repeat {
                ready = poll(&poller, 1, connectTimeoutMilliseconds)
            } while ready < 0 && errno == EINTR
            if ready == 0 { return ETIMEDOUT }
            if ready < 0 { return errno }
            var error: CInt = 0
            var size = socklen_t(MemoryLayout<CInt>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 else { return errno }
            return error
        }

        /// Sends `bytes` whole.
        /// - Throws: ``ConsoleError`` `connection_lost` when the connection is broken.
        func send(_ bytes: [UInt8]) throws(ConsoleError) {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes.withUnsafeBytes { buffer in
                    posixSend(fd, buffer.baseAddress! + offset, buffer.count - offset, Console.sendFlags)
                }
                if sent > 0 {
                    offset += sent
                } else if sent < 0 && errno == EINTR {
                    continue
                } else {
                    throw lost()
                }
            }
        }

        /// Sends one command line, ending it with `\n`.
        func send(line: String) throws(ConsoleError) {
            try send(Array(line.utf8) + [UInt8(ascii: "\n")])
        }

        /// Waits for the next reply line and returns it without its `\r\n`.
        /// - Throws: ``ConsoleError`` `connection_lost` when the node closes the connection
        ///   or it breaks before a whole line arrived.
        func readReply() throws(ConsoleError) -> [UInt8] {
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                if let line = replies.nextLine() { return line }
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    replies.append(chunk[0..<count])
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    throw lost()
                }
            }
        }

        /// Hands over what was received but not yet returned as a line, for a reader that
        /// takes over the socket.
        func takeReceivedBytes() -> [UInt8] {
            replies.takeUnread()
        }

        /// The error for a connection that broke or was closed by the node.
        func lost() -> ConsoleError {
            ConsoleError(.connectionLost, "connection to \(address) lost")
        }
    }

    /// Flags for `send`: never raise SIGPIPE on a closed connection; the error is handled.
    #if os(Linux)
    static let sendFlags = CInt(MSG_NOSIGNAL)
    #else
    static let sendFlags: CInt = 0
    #endif
}

#if canImport(Glibc)
private let SOCK_CLOEXEC_FLAG = CInt(SOCK_CLOEXEC.rawValue)
#else
private let SOCK_CLOEXEC_FLAG: CInt = 0
#endif

/// The C library's `connect`, which `NodeConnection.connect(host:port:)` hides inside the type.
private func posixConnect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> CInt {
    connect(fd, address, length)
}

/// The C library's `send`, which `NodeConnection.send` hides inside the type.
private func posixSend(_ fd: CInt, _ bytes: UnsafeRawPointer, _ count: Int, _ flags: CInt) -> Int {
    send(fd, bytes, count, flags)
}
