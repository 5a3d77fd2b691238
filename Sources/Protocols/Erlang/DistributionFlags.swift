/// The capability flags two Erlang nodes exchange in the handshake (OTP's `dist.hrl`).
///
/// A connection uses the intersection of both sides' flags. A peer that lacks one of the
/// ``mandatory25`` flags is refused with the status `not_allowed`.
public struct DistributionFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The flags as the 64-bit field of the handshake.
    public let rawValue: UInt64

    /// The flags whose bits are set in `rawValue`; unknown bits are kept.
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// The node is visible (`nodes()` lists it); hidden nodes and C nodes leave it out.
    public static let published = DistributionFlags(rawValue: 0x1)
    /// The old atom cache; never set by Brain.
    public static let atomCache = DistributionFlags(rawValue: 0x2)
    /// References of more than one word.
    public static let extendedReferences = DistributionFlags(rawValue: 0x4)
    /// Monitors of remote processes.
    public static let distMonitor = DistributionFlags(rawValue: 0x8)
    /// Funs in the `NEW_FUN_EXT`/`FUN_EXT` tags.
    public static let funTags = DistributionFlags(rawValue: 0x10)
    /// Monitors of remote processes by registered name.
    public static let distMonitorName = DistributionFlags(rawValue: 0x20)
    /// The hidden atom cache; never set by Brain.
    public static let hiddenAtomCache = DistributionFlags(rawValue: 0x40)
    /// Funs in `NEW_FUN_EXT`.
    public static let newFunTags = DistributionFlags(rawValue: 0x80)
    /// Pids and ports with extended node information.
    public static let extendedPidsPorts = DistributionFlags(rawValue: 0x100)
    /// `EXPORT_EXT`.
    public static let exportPtrTag = DistributionFlags(rawValue: 0x200)
    /// Bitstrings (`BIT_BINARY_EXT`).
    public static let bitBinaries = DistributionFlags(rawValue: 0x400)
    /// `NEW_FLOAT_EXT`.
    public static let newFloats = DistributionFlags(rawValue: 0x800)
    /// Unicode I/O.
    public static let unicodeIO = DistributionFlags(rawValue: 0x1000)
    /// The atom cache in the distribution header; never set by Brain, so every frame is a
    /// pass-through frame.
    public static let distHeaderAtomCache = DistributionFlags(rawValue: 0x2000)
    /// `SMALL_ATOM_EXT` and `SMALL_ATOM_UTF8_EXT`, which Brain writes.
    public static let smallAtomTags = DistributionFlags(rawValue: 0x4000)
    /// UTF-8 atoms.
    public static let utf8Atoms = DistributionFlags(rawValue: 0x10000)
    /// Maps (`MAP_EXT`).
    public static let mapTag = DistributionFlags(rawValue: 0x20000)
    /// 32-bit creations in pids, ports and references.
    public static let bigCreation = DistributionFlags(rawValue: 0x40000)
    /// `SEND_SENDER`; never set by Brain.
    public static let sendSender = DistributionFlags(rawValue: 0x80000)
    /// Large sequential-trace labels.
    public static let bigSeqtraceLabels = DistributionFlags(rawValue: 0x100000)
    /// Exit reasons as a separate payload term.
    public static let exitPayload = DistributionFlags(rawValue: 0x400000)
    /// Fragmented messages; never set by Brain.
    public static let fragments = DistributionFlags(rawValue: 0x800000)
    /// The OTP 23 handshake (`'N'` names and challenges, 32-bit creations).
    public static let handshake23 = DistributionFlags(rawValue: 0x1000000)
    /// `UNLINK_ID` and `UNLINK_ID_ACK`.
    public static let unlinkID = DistributionFlags(rawValue: 0x2000000)
    /// Tells the peer this node requires every OTP 25 mandatory flag.
    public static let mandatory25Digest = DistributionFlags(rawValue: 0x4000000)
    /// `SPAWN_REQUEST`; never set by Brain.
    public static let spawn = DistributionFlags(rawValue: 1 << 32)
    /// The peer asks the acceptor to pick its name; Brain refuses such peers.
    public static let nameMe = DistributionFlags(rawValue: 2 << 32)
    /// 64-bit pid and port numbers (`V4_PORT_EXT`).
    public static let v4NC = DistributionFlags(rawValue: 4 << 32)
    /// Process aliases (`ALIAS_SEND`); never set by Brain.
    public static let alias = DistributionFlags(rawValue: 8 << 32)

    /// The flags every OTP 25 node requires of its peer (`0x1070F94`).
    public static let mandatory25: DistributionFlags = [
        .extendedReferences, .funTags, .newFunTags, .extendedPidsPorts, .exportPtrTag,
        .bitBinaries, .newFloats, .utf8Atoms, .mapTag, .bigCreation, .handshake23,
    ]

    /// The flags every OTP 26 and later node requires of its peer (`0x403070F94`).
    public static let mandatory26: DistributionFlags = mandatory25.union([.unlinkID, .v4NC])

    /// What Brain advertises: the OTP 26 mandatory set with the OTP 25 digest marker (so
    /// OTP 25–28 and erl_interface accept it), monitors (which it answers), small atom tags
    /// (which it writes), and `published` for a visible node. No atom cache, no fragments.
    public static func advertised(hidden: Bool) -> DistributionFlags {
        var flags = mandatory26.union([.mandatory25Digest, .distMonitor, .distMonitorName, .smallAtomTags])
        if !hidden { flags.insert(.published) }
        return flags
    }

    /// `0x…` in hexadecimal.
    public var description: String { "0x" + String(rawValue, radix: 16) }
}
