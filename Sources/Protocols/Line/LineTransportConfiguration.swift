/// The settings of the line-protocol transport.
public struct LineTransportConfiguration: Sendable {
    /// The address to bind. Loopback by default; the server refuses other addresses without
    /// a secret.
    public var host: String
    /// The TCP port; 0 lets the system pick one (see ``LineTransport/boundPort()``).
    public var port: Int
    /// The shared secret clients must send with `auth` before any other command, or `nil`
    /// when none is required.
    public var secret: String?
    /// The longest line accepted, terminator excluded. A longer line gets
    /// `error line_too_long: limit is N bytes` and the connection is closed; no more than
    /// this many bytes of a line are ever buffered.
    public var maxLineBytes: Int
    /// The most connections served at once. One more gets `error too_many_connections` and is
    /// closed.
    public var maxConnections: Int
    /// A client that sends nothing for this long is disconnected; `.zero` means never.
    public var idleTimeout: Duration
    /// A client whose replies wait unread, with the socket's buffer full, for this long is
    /// disconnected.
    public var outputTimeout: Duration

    /// Brain2's default port.
    public static let defaultPort = 3697
    /// 4 MiB.
    public static let defaultMaxLineBytes = 4 * 1024 * 1024
    /// 10,000 connections.
    public static let defaultMaxConnections = 10_000
    /// 30 seconds.
    public static let defaultOutputTimeout = Duration.seconds(30)
    /// Replies waiting for the socket beyond which a connection stops reading commands until
    /// the client has read some: 64 KiB (it starts reading again under 32 KiB).
    public static let outputHighWaterMark = 64 * 1024

    /// Settings with the documented defaults for everything not given.
    public init(
        host: String = "127.0.0.1", port: Int = defaultPort, secret: String? = nil,
        maxLineBytes: Int = defaultMaxLineBytes, maxConnections: Int = defaultMaxConnections,
        idleTimeout: Duration = .zero, outputTimeout: Duration = defaultOutputTimeout
    ) {
        self.host = host
        self.port = port
        self.secret = secret
        self.maxLineBytes = maxLineBytes
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.outputTimeout = outputTimeout
    }
}
