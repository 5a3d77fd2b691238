/// The commands of the line protocol: Brain2's commands plus `auth`, `help` and the `with`
/// prefix, which gives the command after it options (`with durability=backend set k v`).
///
/// The raw value indexes the `brain_commands_total{transport="line",cmd}` counters, so a
/// command is counted with no string hashing.
public enum LineCommandName: Int, CaseIterable, Sendable, CustomStringConvertible {
    case auth, del, get, hdel, help, hget, hpdel, hpsetkv, hsetkv, info, pdel, pset, quit, set
    case shutdown, vdel, vget, vset, with

    /// The command as written on the wire, in lower case.
    public var text: String {
        switch self {
        case .auth: "auth"
        case .del: "del"
        case .get: "get"
        case .hdel: "hdel"
        case .help: "help"
        case .hget: "hget"
        case .hpdel: "hpdel"
        case .hpsetkv: "hpsetkv"
        case .hsetkv: "hsetkv"
        case .info: "info"
        case .pdel: "pdel"
        case .pset: "pset"
        case .quit: "quit"
        case .set: "set"
        case .shutdown: "shutdown"
        case .vdel: "vdel"
        case .vget: "vget"
        case .vset: "vset"
        case .with: "with"
        }
    }

    public var description: String { text }

    /// The arguments the command takes, as quoted by `wrong_arity` errors.
    public var usage: String {
        switch self {
        case .get, .del, .pdel, .vget, .vdel: "<key>"
        case .set, .pset, .vset: "<key> <value>"
        case .hget, .hdel, .hpdel: "<key> [<field> ...]"
        case .hsetkv, .hpsetkv: "<key> <field> <value>"
        case .auth: "<secret>"
        case .help, .info, .quit, .shutdown: "no arguments"
        case .with: "durability=memory|log|backend <command> <arguments>"
        }
    }

    /// Whether a client that has not authenticated may send the command.
    public var allowedBeforeAuth: Bool {
        switch self {
        case .auth, .quit, .help: true
        default: false
        }
    }

    /// The `help` reply's text: every command, sorted, after `commands:`.
    public static let helpLine: String =
        "commands: " + allCases.map(\.text).sorted().joined(separator: " ")

    /// Finds the command spelled by `name`, ignoring ASCII case. Allocates nothing.
    public static func lookup(_ name: UnsafeRawBufferPointer) -> LineCommandName? {
        guard let packed = pack(name) else { return nil }
        for (key, command) in packedNames where key == packed {
            return command
        }
        return nil
    }

    /// A name of at most 8 bytes folded to lower case and packed into an integer, so that
    /// lookup is a handful of integer comparisons. `nil` for a name no command can match.
    static func pack(_ name: UnsafeRawBufferPointer) -> UInt64? {
        guard !name.isEmpty, name.count <= 8 else { return nil }
        var packed: UInt64 = 0
        for (index, byte) in name.enumerated() {
            // A zero byte would make "get\0" pack like "get"; no command contains one.
            guard byte != 0 else { return nil }
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            packed |= UInt64(lower) << (8 * UInt64(index))
        }
        return packed
    }

    static let packedNames: [(UInt64, LineCommandName)] = allCases.map { command in
        let bytes = Array(command.text.utf8)
        let packed = bytes.withUnsafeBytes { pack($0) }
        return (packed!, command)
    }
}
