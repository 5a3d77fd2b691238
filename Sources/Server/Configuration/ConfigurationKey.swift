/// Every setting Brain reads, with the three names it goes by.
///
/// The raw value is the key's name in the TOML file; a key of a section is written
/// `section.key` (`s3.endpoint` is `endpoint` under `[s3]`). From it follow, with no
/// exceptions, the environment variable (`BRAIN_` + the name in upper case, `.` → `_`) and
/// the flag (`--` + the name with `_` and `.` → `-`).
enum ConfigurationKey: String, CaseIterable, Sendable {
    case backend
    case linePort = "line_port"
    case adminPort = "admin_port"
    case erlangNode = "erlang_node"
    case erlangPort = "erlang_port"
    case erlangName = "erlang_name"
    case bind
    case secret
    case dataDirectory = "data_dir"
    case maxMemory = "max_memory"
    case maxDirtyBytes = "max_dirty_bytes"
    case idleTTL = "idle_ttl"
    case flushDelay = "flush_delay"
    case maxDirtyAge = "max_dirty_age"
    case shutdownTimeout = "shutdown_timeout"
    case maxConnections = "max_connections"
    case clientIdleTimeout = "client_idle_timeout"
    case clientOutputTimeout = "client_output_timeout"
    case durability
    case fsync
    case logLevel = "log_level"
    case s3Endpoint = "s3.endpoint"
    case s3Region = "s3.region"

    /// The full name, `section.key` for a key of a section; used in messages and docs.
    var name: String { rawValue }

    /// The section the key lives in (`s3`), or `nil` for a top-level key.
    var section: String? {
        switch self {
        case .s3Endpoint, .s3Region: "s3"
        default: nil
        }
    }

    /// The key's name inside its section (or at top level).
    var tomlName: String {
        switch self {
        case .s3Endpoint: "endpoint"
        case .s3Region: "region"
        default: rawValue
        }
    }

    /// The environment variable that sets this key, e.g. `BRAIN_MAX_MEMORY`, `BRAIN_S3_ENDPOINT`.
    var environmentVariable: String { ConfigurationNaming.environmentVariable(for: rawValue) }

    /// The flag that sets this key, e.g. `--max-memory`, `--s3-endpoint`.
    var flag: String { ConfigurationNaming.flag(for: rawValue) }

    /// The placeholder shown after the flag in help, e.g. `SIZE`.
    var valuePlaceholder: String {
        switch self {
        case .backend, .s3Endpoint: "URL"
        case .linePort, .adminPort, .erlangPort: "PORT"
        case .erlangNode: "NAME@HOST"
        case .erlangName: "NAME"
        case .bind: "ADDRESS"
        case .secret: "SECRET"
        case .dataDirectory: "PATH"
        case .maxMemory, .maxDirtyBytes: "SIZE"
        case .idleTTL, .flushDelay, .maxDirtyAge, .shutdownTimeout, .clientIdleTimeout, .clientOutputTimeout: "DURATION"
        case .maxConnections: "COUNT"
        case .durability: "memory|log|backend"
        case .fsync: "always|everysec|no"
        case .logLevel: "LEVEL"
        case .s3Region: "REGION"
        }
    }

    /// One line saying what the key does (help, rendered config, sample file).
    var summary: String {
        switch self {
        case .backend:
            "where records are stored: file:///abs/path, s3://bucket/prefix or memory://"
        case .linePort: "TCP port of the line protocol; 0 turns it off"
        case .adminPort: "HTTP port serving /metrics, /health and /ready; 0 turns it off"
        case .erlangNode: "Erlang node name, e.g. brain@127.0.0.1; unset turns the Erlang transport off"
        case .erlangPort: "distribution port of the Erlang node; 0 picks any free port"
        case .erlangName: "registered name Erlang clients send to: {brain, 'brain@127.0.0.1'} ! Msg"
        case .bind: "address every port listens on; a non-loopback address requires secret"
        case .secret: "password line clients must `auth` with, and the Erlang cookie"
        case .dataDirectory: "directory for local state: the log, the spill file, the default file backend"
        case .maxMemory: "memory for values; clean entries are evicted beyond it"
        case .maxDirtyBytes: "bytes not yet written back; writes are refused beyond it (at most max_memory)"
        case .idleTTL:
            "idle time after which a dirty entry is written back, and after another a clean one leaves memory"
        case .flushDelay: "how long a written entry waits, to coalesce later writes, before write-back"
        case .maxDirtyAge: "longest an entry stays dirty however often it is written (at least flush_delay)"
        case .shutdownTimeout: "time to write back every dirty entry on shutdown before spilling to data_dir"
        case .maxConnections: "most connections each transport serves at once; more are refused"
        case .clientIdleTimeout: "a line client that sends nothing for this long is disconnected; 0 never"
        case .clientOutputTimeout: "a line client that reads none of its waiting replies for this long is disconnected"
        case .durability: "when a write is acknowledged: memory, log (local append-only log) or backend"
        case .fsync: "how the log is synced when durability = log: always, everysec or no"
        case .logLevel: "least severe log level written to standard error: trace, debug, info, notice, warning, error or critical"
        case .s3Endpoint: "URL of an S3-compatible server, addressed path style; unset: AWS S3"
        case .s3Region: "region used to sign S3 requests; unset: AWS_REGION from the environment"
        }
    }

    /// The default as shown to people (help, docs, rendered config).
    var defaultDescription: String {
        switch self {
        case .backend: "file://<data_dir>/backend"
        case .linePort: "3697"
        case .adminPort: "3698"
        case .erlangNode, .secret, .s3Endpoint, .s3Region: "unset"
        case .erlangPort: "0"
        case .erlangName: "brain"
        case .bind: "127.0.0.1"
        case .dataDirectory: "./brain-data"
        case .maxMemory: "1gb"
        case .maxDirtyBytes: "256mb"
        case .idleTTL: "5m"
        case .flushDelay: "2s"
        case .maxDirtyAge: "60s"
        case .shutdownTimeout: "30s"
        case .maxConnections: "10000"
        case .clientIdleTimeout: "0"
        case .clientOutputTimeout: "30s"
        case .durability: "memory"
        case .fsync: "everysec"
        case .logLevel: "info"
        }
    }

    /// The key that a name in the TOML file (`section` is `nil` at top level) stands for,
    /// with the alias it was spelled as, if any.
    static func lookup(tomlName: String, section: String?) -> ConfigurationName? {
        let full = section.map { "\($0).\(tomlName)" } ?? tomlName
        // A quoted top-level key "s3.endpoint" is not the section's key: require the section.
        guard let name = byName[full], name.key.section == section else { return nil }
        return name
    }

    /// The key (or alias) an environment variable sets, if it is one of Brain's.
    static func lookup(environmentVariable: String) -> ConfigurationName? {
        byEnvironmentVariable[environmentVariable]
    }

    /// The key (or alias) a flag (`--line-port`) sets, if it is one of Brain's.
    static func lookup(flag: String) -> ConfigurationName? {
        byFlag[flag]
    }

    private static let allNames: [ConfigurationName] =
        allCases.map { ConfigurationName(key: $0, alias: nil) }
        + ConfigurationAlias.allCases.map { ConfigurationName(key: $0.key, alias: $0) }

    private static let byName: [String: ConfigurationName] =
        Dictionary(uniqueKeysWithValues: allNames.map { ($0.spelling, $0) })
    private static let byEnvironmentVariable: [String: ConfigurationName] =
        Dictionary(uniqueKeysWithValues: allNames.map { ($0.environmentVariable, $0) })
    private static let byFlag: [String: ConfigurationName] =
        Dictionary(uniqueKeysWithValues: allNames.map { ($0.flag, $0) })

    /// Every spelling accepted in the file, for "did you mean" hints.
    static var allTOMLNames: [String] { allNames.map(\.spelling) }
    /// Every `BRAIN_*` variable Brain reads (`BRAIN_CONFIG` included), for hints.
    static var allEnvironmentVariables: [String] {
        allNames.map(\.environmentVariable) + [ConfigurationNaming.configEnvironmentVariable]
    }
    /// Every flag Brain reads (`--config` included), for hints.
    static var allFlags: [String] { allNames.map(\.flag) + [ConfigurationNaming.configFlag] }
}

/// Names kept from Brain2's `brain_node.conf`, accepted wherever the key they stand for is
/// (file, `BRAIN_<ALIAS>`, `--<alias>`). Brain2's `secret` is the same key in both.
enum ConfigurationAlias: String, CaseIterable, Sendable {
    /// Brain2's idle time in integer milliseconds; ours is `idle_ttl` (bare integers are
    /// milliseconds there too, so Brain2's values carry over unchanged).
    case keyTTL = "key_ttl"
    /// Brain2's line-protocol port.
    case serverPort = "server_port"

    /// The key this alias stands for.
    var key: ConfigurationKey {
        switch self {
        case .keyTTL: .idleTTL
        case .serverPort: .linePort
        }
    }
}

/// A key as some source spelled it: either its own name or one of its Brain2 aliases.
struct ConfigurationName: Sendable, Equatable {
    /// The key the name sets.
    var key: ConfigurationKey
    /// The alias used, or `nil` when the key's own name was used.
    var alias: ConfigurationAlias?

    /// The name as written in a file (`key_ttl`, `idle_ttl`, `s3.endpoint`).
    var spelling: String { alias?.rawValue ?? key.rawValue }
    /// The environment variable for this spelling.
    var environmentVariable: String { ConfigurationNaming.environmentVariable(for: spelling) }
    /// The flag for this spelling.
    var flag: String { ConfigurationNaming.flag(for: spelling) }
}

/// The naming rules shared by keys and aliases.
enum ConfigurationNaming {
    /// The flag naming the configuration file.
    static let configFlag = "--config"
    /// The environment variable naming the configuration file.
    static let configEnvironmentVariable = "BRAIN_CONFIG"
    /// The prefix of every environment variable Brain reads.
    static let environmentPrefix = "BRAIN_"

    /// `BRAIN_` + the name in upper case, with `.` replaced by `_`.
    static func environmentVariable(for name: String) -> String {
        environmentPrefix + String(name.uppercased().map { $0 == "." ? "_" : $0 })
    }

    /// `--` + the name with `_` and `.` replaced by `-`.
    static func flag(for name: String) -> String {
        "--" + String(name.map { $0 == "_" || $0 == "." ? "-" : $0 })
    }

    /// The candidate closest to `name` (by edit distance), if it is close enough to be a
    /// likely typo; used to add "did you mean ...?" to unknown-name errors.
    static func closest(to name: String, among candidates: [String]) -> String? {
        let target = Array(name.lowercased().utf8)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.lowercased().utf8))
            if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        guard let best else { return nil }
        let allowed = max(1, min(3, target.count / 3))
        return best.distance <= allowed ? best.candidate : nil
    }

    /// Levenshtein distance between two byte strings.
    private static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// Where a setting's value came from. Shown in error messages (`(from brain.toml)`) and in
/// `brain config print`.
enum ConfigurationSource: Sendable, Equatable, CustomStringConvertible {
    /// Brain's built-in default.
    case defaultValue
    /// The TOML file at `path` (as given by `--config` or `BRAIN_CONFIG`), under the name
    /// `spelling` (the key or a Brain2 alias).
    case file(path: String, spelling: String)
    /// The environment variable named.
    case environment(variable: String)
    /// The flag named (`--line-port`).
    case flag(String)

    /// `default`, the file's path, `env BRAIN_X` or `flag --x`.
    var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let path, _): path
        case .environment(let variable): "env \(variable)"
        case .flag(let flag): "flag \(flag)"
        }
    }
}
