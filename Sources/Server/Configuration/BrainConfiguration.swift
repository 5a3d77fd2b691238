import Engine
import LineProtocol

/// How the append-only log is synced to disk when `durability = log`.
/// `log_level`: the least severe level written to standard error (swift-log's levels).
enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

enum FsyncPolicy: String, Sendable, CaseIterable {
    /// After every append, before the write is acknowledged.
    case always
    /// Once a second: a crash may lose the last second of acknowledged writes.
    case everysec
    /// Never explicitly; the operating system decides.
    case no
}

/// The `[s3]` section: how to reach S3. Credentials are never here; the S3 backend reads
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` from the environment.
struct S3Settings: Sendable, Equatable {
    /// `http(s)://host[:port]` of an S3-compatible server, addressed path style, without a
    /// trailing `/`; `nil` means AWS S3 itself.
    var endpoint: String?
    /// The region requests are signed for; `nil` leaves it to the S3 backend (`AWS_REGION`).
    var region: String?
}

/// Brain's effective configuration: every setting, checked, with where its value came from.
///
/// Build it with ``load(arguments:environment:currentDirectory:)``; a value that exists is
/// valid (ranges, units, and the rules between keys all hold). Two configurations are equal
/// when their settings are, wherever the values came from.
struct BrainConfiguration: Sendable, Equatable {
    /// Where records are stored.
    var backend: BackendLocation
    /// The line protocol's TCP port; 0 means the transport is off.
    var linePort: Int
    /// The admin HTTP port (`/metrics`, `/health`, `/ready`); 0 means off.
    var adminPort: Int
    /// The Erlang node name (`name@host`); `nil` means the Erlang transport is off.
    var erlangNode: String?
    /// The Erlang node's distribution port; 0 means any free port.
    var erlangPort: Int
    /// The registered name the Erlang transport serves (`{brain, Node} ! Msg`).
    var erlangName: String = "brain"
    /// The address every port binds to: an IP literal or a host name.
    var bind: String
    /// The shared secret: `auth` password for line clients and Erlang cookie; `nil` if unset.
    /// Never `nil` when ``bind`` is not a loopback address.
    var secret: String?
    /// The data directory, absolute and normalized.
    var dataDirectory: String
    /// The memory bound for values, in bytes (at least `EngineConfiguration.minimumMemory`).
    var maxMemory: Int
    /// The bound on bytes not yet written back, in bytes (> 0, ≤ ``maxMemory``).
    var maxDirtyBytes: Int
    /// Idle time before write-back, and again before eviction (> 0).
    var idleTTL: Duration
    /// How long a write waits to coalesce before write-back (≥ 0).
    var flushDelay: Duration
    /// The longest an entry stays dirty (≥ ``flushDelay``, > 0).
    var maxDirtyAge: Duration
    /// Time allowed to drain dirty entries at shutdown before spilling (> 0).
    var shutdownTimeout: Duration
    /// The most connections each transport serves at once (≥ 1).
    var maxConnections: Int = LineTransportConfiguration.defaultMaxConnections
    /// A line client silent for this long is disconnected; `.zero` never.
    var clientIdleTimeout: Duration = .zero
    /// A line client that reads none of its waiting replies for this long is disconnected (> 0).
    var clientOutputTimeout: Duration = LineTransportConfiguration.defaultOutputTimeout
    /// When a write is acknowledged.
    var durability: Durability
    /// How the log is synced when ``durability`` is `log`.
    var fsync: FsyncPolicy
    /// The least severe level logged.
    var logLevel: LogLevel = .info
    /// The `[s3]` section.
    var s3: S3Settings

    /// The configuration file that was read, as the user named it; `nil` when none was.
    var configurationFile: String?
    /// Where each key's value came from; a key missing here has its default.
    var origins: [ConfigurationKey: ConfigurationSource] = [:]

    /// Where `key`'s value came from.
    func origin(of key: ConfigurationKey) -> ConfigurationSource { origins[key] ?? .defaultValue }

    /// The built-in defaults, with `data_dir` (`./brain-data`) and the default backend
    /// (`file://<data_dir>/backend`) made absolute from `currentDirectory`.
    static func defaults(currentDirectory: String) -> BrainConfiguration {
        let dataDirectory = ConfigurationPaths.absolute("brain-data", from: currentDirectory)
        return BrainConfiguration(
            backend: defaultBackend(dataDirectory: dataDirectory),
            linePort: 3697,
            adminPort: 3698,
            erlangNode: nil,
            erlangPort: 0,
            bind: "127.0.0.1",
            secret: nil,
            dataDirectory: dataDirectory,
            maxMemory: 1 << 30,
            maxDirtyBytes: 256 << 20,
            idleTTL: .seconds(300),
            flushDelay: .seconds(2),
            maxDirtyAge: .seconds(60),
            shutdownTimeout: .seconds(30),
            durability: .memory,
            fsync: .everysec,
            s3: S3Settings(endpoint: nil, region: nil),
            configurationFile: nil
        )
    }

    /// The effective configuration from, in increasing precedence, the defaults, the TOML
    /// file (`--config PATH`, else `BRAIN_CONFIG`), the `BRAIN_*` environment variables and
    /// the flags.
    ///
    /// - Parameters:
    ///   - arguments: the flags after the subcommand, e.g. `["--config", "x.toml", "--line-port", "0"]`.
    ///   - environment: the process environment; only `BRAIN_*` variables are read.
    ///   - currentDirectory: the absolute directory relative paths are taken from.
    /// - Throws: ``ConfigurationError`` naming the key and source of the first problem. Every
    ///   value of every source is checked, also one that a later source overrides.
    static func load(
        arguments: [String], environment: [String: String], currentDirectory: String
    ) throws(ConfigurationError) -> BrainConfiguration {
        let flags = try ConfigurationSources.flags(arguments)
        let variables = try ConfigurationSources.environment(environment)
        var configuration = defaults(currentDirectory: currentDirectory)
        var fileSettings: [RawSetting] = []
        let file =
            flags.configPath.map { ($0, "flag --config") }
            ?? variables.configPath.map { ($0, "env BRAIN_CONFIG") }
        if let (path, namedBy) = file {
            let text = try ConfigurationSources.readFile(path: path, currentDirectory: currentDirectory, namedBy: namedBy)
            fileSettings = try ConfigurationSources.file(text: text, path: path)
            configuration.configurationFile = path
        }
        for setting in fileSettings + variables.settings + flags.settings {
            try configuration.apply(setting, currentDirectory: currentDirectory)
        }
        if configuration.origins[.backend] == nil {
            configuration.backend = defaultBackend(dataDirectory: configuration.dataDirectory)
        }
        try configuration.validate()
        return configuration
    }

    /// Equality of the settings; ``origins`` and ``configurationFile`` are not compared.
    static func == (lhs: BrainConfiguration, rhs: BrainConfiguration) -> Bool {
        lhs.backend == rhs.backend && lhs.linePort == rhs.linePort && lhs.adminPort == rhs.adminPort
            && lhs.erlangNode == rhs.erlangNode && lhs.erlangPort == rhs.erlangPort && lhs.bind == rhs.bind
            && lhs.secret == rhs.secret && lhs.dataDirectory == rhs.dataDirectory
            && lhs.maxMemory == rhs.maxMemory && lhs.maxDirtyBytes == rhs.maxDirtyBytes
            && lhs.idleTTL == rhs.idleTTL && lhs.flushDelay == rhs.flushDelay
            && lhs.maxDirtyAge == rhs.maxDirtyAge && lhs.shutdownTimeout == rhs.shutdownTimeout
            && lhs.durability == rhs.durability && lhs.fsync == rhs.fsync && lhs.s3 == rhs.s3 && lhs.logLevel == rhs.logLevel
            && lhs.erlangName == rhs.erlangName && lhs.maxConnections == rhs.maxConnections
            && lhs.clientIdleTimeout == rhs.clientIdleTimeout && lhs.clientOutputTimeout == rhs.clientOutputTimeout
    }

    private static func defaultBackend(dataDirectory: String) -> BackendLocation {
        .file(path: dataDirectory == "/" ? "/backend" : dataDirectory + "/backend")
    }

    // MARK: - Applying one setting

    /// Checks `setting`'s value and makes it the value of its key.
    private mutating func apply(_ setting: RawSetting, currentDirectory: String) throws(ConfigurationError) {
        let key = setting.name.key
        do throws(InvalidValue) {
            let value = setting.value
            switch key {
            case .backend:
                backend = try BackendLocation.parse(value.text(expecting: "a URL such as \"file:///var/lib/brain\""))
            case .linePort:
                linePort = try Self.port(value, zero: "0 turns the line protocol off")
            case .adminPort:
                adminPort = try Self.port(value, zero: "0 turns the admin port off")
            case .erlangPort:
                erlangPort = try Self.port(value, zero: "0 picks any free port")
            case .erlangNode:
                erlangNode = try Self.erlangNode(value.text(expecting: "a node name such as \"brain@127.0.0.1\""))
            case .erlangName:
                erlangName = try Self.erlangName(value.text(expecting: "a name such as \"brain\""))
            case .bind:
                let address = try value.text(expecting: "an address such as \"127.0.0.1\"")
                _ = try BindAddress.isLoopback(address)
                bind = address
            case .secret:
                secret = try Self.secret(value.text(expecting: "a string in quotes"))
            case .dataDirectory:
                let path = try value.text(expecting: "a path such as \"/var/lib/brain\"")
                guard !path.isEmpty else { throw InvalidValue("must not be empty") }
                guard !Self.hasControlCharacter(path) else { throw InvalidValue("holds a control character") }
                dataDirectory = ConfigurationPaths.absolute(path, from: currentDirectory)
            case .maxMemory:
                maxMemory = try Self.size(value)
            case .maxDirtyBytes:
                maxDirtyBytes = try Self.size(value)
            case .idleTTL:
                idleTTL = try Self.duration(value, allowZero: false)
            case .flushDelay:
                flushDelay = try Self.duration(value, allowZero: true)
            case .maxDirtyAge:
                maxDirtyAge = try Self.duration(value, allowZero: false)
            case .shutdownTimeout:
                shutdownTimeout = try Self.duration(value, allowZero: false)
            case .maxConnections:
                maxConnections = try Self.count(value)
            case .clientIdleTimeout:
                clientIdleTimeout = try Self.duration(value, allowZero: true)
            case .clientOutputTimeout:
                clientOutputTimeout = try Self.duration(value, allowZero: false)
            case .durability:
                durability = try Self.choice(value, among: Durability.allCases)
            case .fsync:
                fsync = try Self.choice(value, among: FsyncPolicy.allCases)
            case .logLevel:
                logLevel = try Self.choice(value, among: LogLevel.allCases)
            case .s3Endpoint:
                s3.endpoint = try Self.endpoint(value.text(expecting: "a URL such as \"http://127.0.0.1:5000\""))
            case .s3Region:
                s3.region = try Self.region(value.text(expecting: "a region such as \"us-east-1\""))
            }
        } catch {
            throw ConfigurationError(.invalidValue, "config: \(Self.describe(setting)): \(error.reason)")
        }
        origins[key] = setting.source
    }

    /// `name = value (from source)`, with the value hidden for `secret`.
    private static func describe(_ setting: RawSetting) -> String {
        let spelling = setting.name.spelling
        switch setting.value {
        case .text(let text) where setting.name.key != .secret:
            return "\(spelling) = \(TOMLText.quoted(text)) (from \(setting.source))"
        case .integer(let integer) where setting.name.key != .secret:
            return "\(spelling) = \(integer) (from \(setting.source))"
        default:
            return "\(spelling) (from \(setting.source))"
        }
    }

    private static func port(_ value: RawValue, zero: String) throws(InvalidValue) -> Int {
        let usage = "use a port number 0..65535 (\(zero))"
        let number: Int
        switch value {
        case .integer(let integer):
            number = integer
        case .text(let text):
            let trimmed = text.trimmingSpaces()
            guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let parsed = Int(trimmed)
            else { throw InvalidValue("not a port; \(usage)") }
            number = parsed
        case .other(let typeName):
            throw InvalidValue("expected a port number, not \(typeName); \(usage)")
        }
        guard (0...65535).contains(number) else { throw InvalidValue("out of range; \(usage)") }
        return number
    }

    private static func size(_ value: RawValue) throws(InvalidValue) -> Int {
        let usage = "use e.g. 512mb or 2gb (b, kb, mb, gb, tb are powers of 1024; a bare number is bytes)"
        let bytes: Int
        switch value {
        case .integer(let integer):
            bytes = integer
        case .text(let text):
            guard let parsed = ConfigurationUnits.parseSize(text) else { throw InvalidValue("not a size; \(usage)") }
            bytes = parsed
        case .other(let typeName):
            throw InvalidValue("expected a size, not \(typeName); \(usage)")
        }
        guard bytes > 0 else { throw InvalidValue("must be more than 0; \(usage)") }
        return bytes
    }

    /// A whole number of at least 1, written as a TOML integer or as digits.
    private static func count(_ value: RawValue) throws(InvalidValue) -> Int {
        let usage = "use a whole number of at least 1, e.g. 10000"
        let number: Int
        switch value {
        case .integer(let integer):
            number = integer
        case .text(let text):
            guard let parsed = Int(text.trimmingSpaces()) else { throw InvalidValue("not a number; \(usage)") }
            number = parsed
        case .other(let typeName):
            throw InvalidValue("expected a number, not \(typeName); \(usage)")
        }
        guard number >= 1 else { throw InvalidValue("must be at least 1; \(usage)") }
        return number
    }

    private static func duration(_ value: RawValue, allowZero: Bool) throws(InvalidValue) -> Duration {
        let usage = "use e.g. 500ms, 60s, 5m or 1h (a bare number is milliseconds)"
        let milliseconds: Int
        switch value {
        case .integer(let integer):
            milliseconds = integer
        case .text(let text):
            guard let parsed = ConfigurationUnits.parseDuration(text) else {
                throw InvalidValue("not a duration; \(usage)")
            }
            milliseconds = ConfigurationUnits.milliseconds(parsed)
        case .other(let typeName):
            throw InvalidValue("expected a duration, not \(typeName); \(usage)")
        }
        guard milliseconds >= 0 else { throw InvalidValue("must not be negative; \(usage)") }
        guard allowZero || milliseconds > 0 else { throw InvalidValue("must be more than 0; \(usage)") }
        return .milliseconds(milliseconds)
    }

    private static func choice<Choice: RawRepresentable<String> & CaseIterable>(
        _ value: RawValue, among choices: Choice.AllCases
    ) throws(InvalidValue) -> Choice {
        let names = choices.map(\.rawValue)
        let list = names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
        let text = try value.text(expecting: "one of \(list)")
        guard let choice = Choice(rawValue: text.trimmingSpaces().lowercased()) else {
            throw InvalidValue("must be \(list)")
        }
        return choice
    }

    private static func erlangNode(_ text: String) throws(InvalidValue) -> String? {
        if text.isEmpty { return nil }
        let usage = "use name@host, e.g. brain@127.0.0.1"
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw InvalidValue("not a node name; \(usage)")
        }
        guard parts[0].utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { throw InvalidValue("the name before @ may hold only letters, digits, '_' and '-'; \(usage)") }
        guard parts[1].utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { throw InvalidValue("the host after @ may hold only letters, digits, '.' and '-'; \(usage)") }
        return text
    }

    private static func erlangName(_ text: String) throws(InvalidValue) -> String {
        guard !text.isEmpty else { throw InvalidValue("must not be empty; use a name such as brain") }
        guard !hasControlCharacter(text) else { throw InvalidValue("holds a control character") }
        guard text.unicodeScalars.count <= 255 else {
            throw InvalidValue("is longer than 255 characters, the most an Erlang atom holds")
        }
        return text
    }

    private static func secret(_ text: String) throws(InvalidValue) -> String? {
        if text.isEmpty { return nil }
        guard !hasControlCharacter(text) else { throw InvalidValue("holds a control character") }
        return text
    }

    private static func endpoint(_ text: String) throws(InvalidValue) -> String? {
        if text.isEmpty { return nil }
        let usage = "use http://host:port or https://host, e.g. http://127.0.0.1:5000"
        let lowered = text.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lowered.hasPrefix($0) }) else {
            throw InvalidValue("not an http(s) URL; \(usage)")
        }
        var trimmed = Substring(text)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let authority = trimmed.dropFirst(scheme.count).prefix { $0 != "/" }
        guard !authority.isEmpty, !text.contains(where: { $0 == " " || $0.isNewline }),
            !hasControlCharacter(text)
        else { throw InvalidValue("needs a host; \(usage)") }
        return String(trimmed)
    }

    private static func region(_ text: String) throws(InvalidValue) -> String? {
        if text.isEmpty { return nil }
        guard text.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else {
            throw InvalidValue("a region holds only letters, digits and '-', e.g. us-east-1")
        }
        return text
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func hasControlCharacter(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    // MARK: - Rules between keys

    /// Checks the rules that involve more than one key, once every source is applied.
    private func validate() throws(ConfigurationError) {
        if maxMemory < EngineConfiguration.minimumMemory {
            throw ConfigurationError(
                .invalidValue,
                "config: \(stated(.maxMemory)) is below the minimum, \(ConfigurationUnits.formatSize(EngineConfiguration.minimumMemory)) (a few slab pages)")
        }
        if maxDirtyBytes > maxMemory {
            throw ConfigurationError(
                .conflictingValues,
                "config: \(stated(.maxDirtyBytes)) is more than \(stated(.maxMemory)); max_dirty_bytes must be at most max_memory")
        }
        if maxDirtyAge < flushDelay {
            throw ConfigurationError(
                .conflictingValues,
                "config: \(stated(.maxDirtyAge)) is less than \(stated(.flushDelay)); max_dirty_age must be at least flush_delay")
        }
        var ports: [(ConfigurationKey, Int)] = [(.linePort, linePort), (.adminPort, adminPort)]
        if erlangNode != nil { ports.append((.erlangPort, erlangPort)) }
        for (index, (key, port)) in ports.enumerated() where port != 0 {
            if let other = ports[(index + 1)...].first(where: { $0.1 == port }) {
                throw ConfigurationError(
                    .conflictingValues,
                    "config: \(stated(key)) and \(stated(other.0)) are the same port; give each its own, or 0 to turn one off")
            }
        }
        // `bind` was checked when applied, so classifying it again cannot fail.
        let loopback = (try? BindAddress.isLoopback(bind)) ?? false
        if !loopback && secret == nil {
            throw ConfigurationError(
                .secretRequired,
                "config: \(stated(.bind)) is not a loopback address, so secret is required; set secret (BRAIN_SECRET, --secret) or bind to 127.0.0.1")
        }
    }

    /// `key = value (from source)`, or `(default)`, with the effective value, for messages
    /// about two keys.
    private func stated(_ key: ConfigurationKey) -> String {
        let value = renderedValue(of: key, maskSecret: true) ?? "unset"
        let origin = origin(of: key)
        return "\(key.name) = \(value) \(origin == .defaultValue ? "(default)" : "(from \(origin))")"
    }
}

extension RawValue {
    /// The text of a value that must be a string; a TOML integer or other type is refused
    /// with `expecting` saying what to write instead.
    fileprivate func text(expecting: String) throws(InvalidValue) -> String {
        switch self {
        case .text(let text): return text
        case .integer: throw InvalidValue("expected a string, not an integer; use \(expecting)")
        case .other(let typeName): throw InvalidValue("expected a string, not \(typeName); use \(expecting)")
        }
    }
}

extension String {
    /// The text without leading and trailing spaces and tabs.
    fileprivate func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
