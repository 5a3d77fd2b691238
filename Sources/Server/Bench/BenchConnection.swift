#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A request sent and not yet answered.
struct PendingRequest: Equatable, Sendable {
    /// When it was handed to the kernel (``BenchClock`` nanoseconds).
    var sentAt: UInt64
    /// What it was.
    var kind: OpKind
    /// What the workload needs to handle the reply: the key, or the user of a session.
    var subject: Int32
}

/// The requests of one connection awaiting replies, oldest first: a ring of fixed capacity,
/// so pushing and popping never allocate.
struct PendingQueue: Sendable {
    private var slots: [PendingRequest]
    private var head = 0
    /// How many requests are waiting.
    private(set) var count = 0

    /// A queue holding at most `capacity` requests.
    init(capacity: Int) {
        slots = Array(repeating: PendingRequest(sentAt: 0, kind: .get, subject: 0), count: max(1, capacity))
    }

    /// How many requests it can hold.
    var capacity: Int { slots.count }

    /// Adds `request` as the newest. - Precondition: `count < capacity`.
    mutating func push(_ request: PendingRequest) {
        precondition(count < slots.count, "more requests in flight than the pipeline depth")
        var tail = head + count
        if tail >= slots.count { tail -= slots.count }
        slots[tail] = request
        count += 1
    }

    /// Removes and returns the oldest request, or `nil` when none is waiting.
    mutating func pop() -> PendingRequest? {
        guard count > 0 else { return nil }
        let request = slots[head]
        head += 1
        if head == slots.count { head = 0 }
        count -= 1
        return request
    }
}

/// The monotonic clock every latency is measured with, in nanoseconds.
enum BenchClock {
    /// Now, in nanoseconds since an arbitrary fixed point (`CLOCK_MONOTONIC`).
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

/// One client connection of the load generator: a non-blocking socket with its outbound
/// bytes, the bytes received and not yet parsed, and its requests in flight.
struct BenchConnection {
    /// The socket.
    let fd: CInt
    /// The connection's number in the whole run (0 ..< connections); it picks the
    /// connection's random stream and its share of keys and users.
    let index: Int
    /// Requests encoded and not yet all handed to the kernel.
    var outbox: [UInt8] = []
    /// How much of ``outbox`` the kernel has taken.
    var outboxSent = 0
    /// Received bytes; `inbox[inboxStart..<inboxEnd]` is not yet parsed.
    var inbox: [UInt8]
    /// Where the unparsed bytes of ``inbox`` start.
    var inboxStart = 0
    /// Where the received bytes of ``inbox`` end.
    var inboxEnd = 0
    /// The requests awaiting replies.
    var pending: PendingQueue
    /// Whether the poller is told to report the socket writable (the kernel refused bytes).
    var watchesWritable = false

    /// The first size of ``inbox``; it doubles when a reply does not fit.
    static let initialInboxSize = 64 * 1024
    /// The largest a single reply may be before the run stops with a protocol violation.
    static let maximumReplySize = 16 * 1024 * 1024

    /// A connection over the connected, non-blocking socket `fd`, allowing `pipeline` requests
    /// in flight.
    init(fd: CInt, index: Int, pipeline: Int) {
        self.fd = fd
        self.index = index
        self.inbox = [UInt8](repeating: 0, count: Self.initialInboxSize)
        self.pending = PendingQueue(capacity: pipeline)
        outbox.reserveCapacity(4096)
    }

    /// Hands as much of ``outbox`` to the kernel as it takes.
    /// - Returns: `true` when everything was sent, `false` when the kernel's buffer is full.
    /// - Throws: `connection_lost` when the connection is broken.
    mutating func flush() throws(BenchError) -> Bool {
        while outboxSent < outbox.count {
            let sent = outbox.withUnsafeBytes { buffer in
                send(fd, buffer.baseAddress! + outboxSent, buffer.count - outboxSent, Self.sendFlags)
            }
            if sent > 0 {
                outboxSent += sent
            } else if sent < 0 && errno == EINTR {
                continue
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return false
            } else {
                throw BenchError(.connectionLost, "connection \(index): send failed: \(String(cString: strerror(errno)))")
            }
        }
        outbox.removeAll(keepingCapacity: true)
        outboxSent = 0
        return true
    }

    /// Reads what the kernel has for this connection into ``inbox``.
    /// - Returns: `false` when nothing was available.
    /// - Throws: `connection_lost` when the server closed the connection or it broke.
    mutating func receive() throws(BenchError) -> Bool {
        if inboxStart == inboxEnd {
            inboxStart = 0
            inboxEnd = 0
        } else if inboxEnd == inbox.count {
            if inboxStart > 0 {
                // Move the partial reply to the front; it is short unless values are large.
                inbox.withUnsafeMutableBytes { buffer in
                    let base = buffer.baseAddress!
                    _ = memmove(base, base + inboxStart, inboxEnd - inboxStart)
                }
                inboxEnd -= inboxStart
                inboxStart = 0
            } else {
                guard inbox.count < Self.maximumReplySize else {
                    throw BenchError(.protocolViolation, "connection \(index): a reply is longer than \(Self.maximumReplySize) bytes")
                }
                inbox.append(contentsOf: repeatElement(0, count: inbox.count))
            }
        }
        while true {
            let count = inbox.withUnsafeMutableBytes { buffer in
                recv(fd, buffer.baseAddress! + inboxEnd, buffer.count - inboxEnd, 0)
            }
            if count > 0 {
                inboxEnd += count
                return true
            }
            if count == 0 {
                throw BenchError(.connectionLost, "connection \(index): the server closed the connection")
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return false }
            throw BenchError(.connectionLost, "connection \(index): receive failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Flags for `send`: never block, never raise SIGPIPE.
    #if os(Linux)
    static let sendFlags = CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT)
    #else
    static let sendFlags = CInt(MSG_DONTWAIT)
    #endif
}

/// Opening the connections of a run.
enum BenchConnector {
    /// Opens `count` TCP connections to `host:port`, with `TCP_NODELAY`, authenticated with
    /// `auth <secret>` first when `secret` is set (Brain's line protocol only), and returns
    /// their sockets, made non-blocking.
    /// - Throws: `connect_failed` naming the address and the system's reason; every socket
    ///   opened so far is closed first.
    static func open(count: Int, host: String, port: Int, secret: String?) throws(BenchError) -> [CInt] {
        let info: UnsafeMutablePointer<addrinfo>
        switch TCPAddress.resolve(host: host, port: port) {
        case .success(let first): info = first
        case .failure(let failure): throw BenchError(.connectFailed, failure.message)
        }
        defer { freeaddrinfo(info) }
        let address = TCPAddress.display(host: host, port: port)

        var sockets: [CInt] = []
        do throws(BenchError) {
            for _ in 0..<count {
                let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
                guard fd >= 0 else {
                    throw BenchError(.connectFailed, "cannot open a socket: \(String(cString: strerror(errno)))")
                }
                sockets.append(fd)
                // On Linux the send timeout also bounds `connect`.
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                    var message = "cannot connect to \(address): \(String(cString: strerror(errno)))"
                    if sockets.count > 1 { message += " (after \(sockets.count - 1) connections)" }
                    throw BenchError(.connectFailed, message)
                }
                var on: CInt = 1
                setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<CInt>.size))
                if let secret, !secret.isEmpty {
                    try authenticate(fd, secret: secret, address: address)
                }
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
        } catch {
            for fd in sockets { close(fd) }
            throw error
        }
        return sockets
    }

    /// Sends `auth <secret>` on the blocking socket `fd` and waits for `1`.
    private static func authenticate(_ fd: CInt, secret: String, address: String) throws(BenchError) {
        // One token: a space inside the secret travels as `\x20`.
        let token = Console.escape(secret).replacingOccurrences(of: " ", with: "\\x20")
        let line = Array(("auth " + token + "\n").utf8)
        let sent = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, BenchConnection.sendFlags & ~CInt(MSG_DONTWAIT)) }
        guard sent == line.count else {
            throw BenchError(.connectFailed, "cannot send auth to \(address): \(String(cString: strerror(errno)))")
        }
        var reply: [UInt8] = []
        var byte: UInt8 = 0
        while reply.last != 0x0A {
            guard recv(fd, &byte, 1, 0) == 1, reply.count < 4096 else {
                throw BenchError(.connectFailed, "\(address) closed the connection during auth")
            }
            reply.append(byte)
        }
        guard reply == Array("1\r\n".utf8) else {
            let text = String(decoding: reply.dropLast(2), as: UTF8.self)
            throw BenchError(.connectFailed, "authentication to \(address) failed: \(text)")
        }
    }
}
