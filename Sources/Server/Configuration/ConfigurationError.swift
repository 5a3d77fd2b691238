/// The one error type of Brain's configuration: why start-up (or `brain config print`) stopped.
///
/// ``message`` is the complete text shown to the operator. It always starts with `config: `,
/// names the key (or variable, or flag) at fault and the source it came from, and, where it
/// can, says what a good value looks like, e.g.
/// `config: max_memory = "12qb" (from brain.toml): not a size; use e.g. 512mb or 2gb`.
/// ``code`` classifies the failure for programs; both are documented in
/// `docs/configuration.md`.
struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem the configuration has. The raw values are stable.
    enum Code: String, Sendable {
        /// The configuration file could not be read (missing, unreadable, not UTF-8).
        case unreadableFile = "unreadable_file"
        /// The configuration file is not valid TOML.
        case invalidTOML = "invalid_toml"
        /// The file holds a key (or section) that Brain does not know.
        case unknownKey = "unknown_key"
        /// The environment holds a `BRAIN_*` variable that Brain does not know.
        case unknownEnvironmentVariable = "unknown_environment_variable"
        /// A flag that Brain does not know.
        case unknownFlag = "unknown_flag"
        /// A flag was given without its value.
        case missingValue = "missing_value"
        /// An argument that is not a `--flag`.
        case unexpectedArgument = "unexpected_argument"
        /// One source sets a key twice: a key and its Brain2 alias, or one flag repeated.
        case duplicateSetting = "duplicate_setting"
        /// A value has the wrong type or form, or is out of range.
        case invalidValue = "invalid_value"
        /// Values that are each valid but contradict one another (e.g. two ports equal).
        case conflictingValues = "conflicting_values"
        /// `bind` is not a loopback address and no `secret` is set.
        case secretRequired = "secret_required"
    }

    /// What kind of problem this is.
    var code: Code
    /// The operator-facing text; it names the key and where the value came from.
    var message: String

    /// Creates an error with its code and the full message.
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message, as printed by `brain` before it exits.
    var description: String { message }
}
