/// The one error type of the engine. Its ``code`` and ``message`` reach clients
/// (`error <code>: <message>` on the line protocol) and are documented in
/// `docs/protocol.md`; they are stable.
public struct EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The dirty set is at `max_dirty_bytes`: the write is refused until the backlog drains.
        case dirtyLimit = "dirty_limit"
        /// No memory could be freed for the value: everything evictable is dirty.
        case outOfMemory = "out_of_memory"
        /// The key is empty.
        case emptyKey = "empty_key"
        /// The key is longer than the maximum (250 bytes).
        case keyTooLong = "key_too_long"
        /// The value is larger than the maximum.
        case valueTooLarge = "value_too_large"
        /// A hash's stored JSON is not an object of strings, or a field is not UTF-8.
        case invalidHash = "invalid_hash"
        /// The backend could not be read for a key not in memory.
        case backendUnavailable = "backend_unavailable"
        /// A persist-now command's backend write was not acknowledged in time. The change is
        /// kept in memory and written back later.
        case persistFailed = "persist_failed"
        /// The append-only log cannot be written (durability `log`): the write is refused.
        case logUnavailable = "log_unavailable"
        /// A per-command option that does not apply: a durability override on a command
        /// that writes nothing persisted, or `log` on a node that keeps no log.
        case badOption = "bad_option"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
