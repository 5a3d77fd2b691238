import Engine

/// The settings of the Erlang distribution transport.
public struct ErlangTransportConfiguration: Sendable {
    /// The full node name, `name@host` (e.g. `brain@127.0.0.1`). Peers dial exactly this
    /// name; the part before `@` is registered with epmd.
    public var nodeName: String
    /// The address to listen on. Loopback by default.
    public var host: String
    /// The distribution port; 0 lets the system pick one, which epmd tells peers about.
    public var port: Int
    /// The cookie peers must share (Brain's `secret`, or `~/.erlang.cookie`).
    public var cookie: String
    /// The registered name Brain's messages are sent to: `{brain, 'brain@127.0.0.1'} ! Msg`.
    public var registeredName: String
    /// The port of the local epmd (`ERL_EPMD_PORT`, 4369 by default).
    public var epmdPort: Int
    /// Whether to run `epmd -daemon` when no epmd answers, as `erl` does.
    public var startEPMD: Bool
    /// `net_ticktime`: a tick is sent after a quarter of it without writing, and a peer
    /// silent for longer than it is dropped.
    public var tickTime: Duration
    /// The time each handshake step (and epmd's answer) may take (`net_setuptime`).
    public var setupTime: Duration
    /// The longest frame accepted from a peer; a longer one closes its link.
    public var maxFrameBytes: Int
    /// Bounds on each term decoded from a peer (depth, element count, size).
    public var termLimits: TermLimits
    /// The bytes of messages a link may hold read but not yet handled; past it, the link
    /// stops reading until its commands catch up.
    public var maxPendingBytesPerLink: Int
    /// The most connections (links and handshakes) at once; more are closed at once.
    public var maxConnections: Int

    /// 64 MiB.
    public static let defaultMaxFrameBytes = 64 << 20
    /// 16 MiB.
    public static let defaultMaxPendingBytesPerLink = 16 << 20
    /// "brain".
    public static let defaultRegisteredName = "brain"

    /// Settings with the documented defaults for everything not given.
    public init(
        nodeName: String, cookie: String, host: String = "127.0.0.1", port: Int = 0,
        registeredName: String = defaultRegisteredName, epmdPort: Int = EPMDProtocol.defaultPort,
        startEPMD: Bool = true, tickTime: Duration = .seconds(60), setupTime: Duration = .seconds(7),
        maxFrameBytes: Int = defaultMaxFrameBytes, termLimits: TermLimits? = nil,
        maxPendingBytesPerLink: Int = defaultMaxPendingBytesPerLink, maxConnections: Int = 10_000
    ) {
        self.nodeName = nodeName
        self.cookie = cookie
        self.host = host
        self.port = port
        self.registeredName = registeredName
        self.epmdPort = epmdPort
        self.startEPMD = startEPMD
        self.tickTime = tickTime
        self.setupTime = setupTime
        self.maxFrameBytes = maxFrameBytes
        self.termLimits =
            termLimits ?? TermLimits(
                maxDepth: TermLimits.default.maxDepth, maxElements: TermLimits.default.maxElements,
                maxBytes: maxFrameBytes)
        self.maxPendingBytesPerLink = maxPendingBytesPerLink
        self.maxConnections = maxConnections
    }

    /// Checks the settings that could not work: a node name that is not `name@host` with a
    /// valid epmd name, an empty cookie, a registered name that is not an atom.
    public func validate() throws(ErlangTransportError) {
        let parts = nodeName.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[0].utf8.count <= 255 else {
            throw ErlangTransportError(.invalidConfiguration, "the node name \(nodeName) is not name@host")
        }
        guard !cookie.isEmpty else {
            throw ErlangTransportError(.invalidConfiguration, "the cookie is empty")
        }
        guard !registeredName.isEmpty, registeredName.unicodeScalars.count <= Atom.maximumLength,
            !registeredName.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw ErlangTransportError(
                .invalidConfiguration, "the registered name \"\(registeredName)\" is not an atom of 1 to 255 printable characters")
        }
        guard maxFrameBytes >= 1, maxConnections >= 1, tickTime >= .milliseconds(4) else {
            throw ErlangTransportError(
                .invalidConfiguration, "max frame bytes and max connections must be at least 1, the tick time at least 4 ms")
        }
    }
}
