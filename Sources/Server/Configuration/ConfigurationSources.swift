#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TOMLKit

/// One value for one key, as a source gave it, before it is checked.
struct RawSetting: Sendable, Equatable {
    /// The key set, and the alias it was spelled as, if any.
    var name: ConfigurationName
    /// The value as given.
    var value: RawValue
    /// Where it came from.
    var source: ConfigurationSource
}

/// A value as a source gave it: the environment and flags give text, a TOML file gives text,
/// integers or (always rejected) other TOML types.
enum RawValue: Sendable, Equatable {
    /// A string (every environment variable and flag value; a TOML string).
    case text(String)
    /// A TOML integer.
    case integer(Int)
    /// Any other TOML type (boolean, float, array, table, date), named with its article for
    /// messages ("a boolean", "an array").
    case other(typeName: String)
}

/// Reading the three sources into ``RawSetting``s. The checks here are about names (unknown,
/// duplicated); values are checked when they are applied (``BrainConfiguration``).
enum ConfigurationSources {
    /// The settings given as flags, and the configuration file named by `--config`.
    ///
    /// Accepts `--key VALUE` and `--key=VALUE`. A separate value may not start with `--`
    /// (that is taken as a forgotten value); `--key=--x` passes such a value.
    static func flags(_ arguments: [String]) throws(ConfigurationError) -> (configPath: String?, settings: [RawSetting]) {
        var configPath: String?
        var settings: [RawSetting] = []
        var seen: [ConfigurationKey: ConfigurationName] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ConfigurationError(
                    .unexpectedArgument,
                    "config: unexpected argument \"\(argument)\"; settings are given as --key VALUE")
            }
            let flag: String
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                flag = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            } else {
                flag = argument
            }
            let name: ConfigurationName?
            if flag == ConfigurationNaming.configFlag {
                name = nil
            } else if let known = ConfigurationKey.lookup(flag: flag) {
                name = known
            } else {
                let hint = ConfigurationNaming.closest(to: flag, among: ConfigurationKey.allFlags)
                    .map { "; did you mean \($0)?" } ?? ""
                throw ConfigurationError(.unknownFlag, "config: unknown flag \(flag)\(hint)")
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                    throw ConfigurationError(
                        .missingValue, "config: flag \(flag) needs a value: \(flag) \(name?.key.valuePlaceholder ?? "PATH")")
                }
                value = arguments[index]
                index += 1
            }
            guard let name else {
                guard configPath == nil else {
                    throw ConfigurationError(.duplicateSetting, "config: flag --config is given twice")
                }
                guard !value.isEmpty else {
                    throw ConfigurationError(.missingValue, "config: flag --config needs a path: --config PATH")
                }
                configPath = value
                continue
            }
            if let earlier = seen[name.key] {
                if earlier == name {
                    throw ConfigurationError(.duplicateSetting, "config: flag \(flag) is given twice")
                }
                throw aliasConflict(earlier, name, both: (earlier.flag, name.flag), place: "are both given")
            }
            seen[name.key] = name
            settings.append(RawSetting(name: name, value: .text(value), source: .flag(flag)))
        }
        return (configPath, settings)
    }

    /// The settings given as `BRAIN_*` environment variables, and the configuration file
    /// named by `BRAIN_CONFIG` (an empty `BRAIN_CONFIG` names none). Any other `BRAIN_*`
    /// variable that Brain does not know is an error; variables without the prefix are ignored.
    static func environment(_ environment: [String: String]) throws(ConfigurationError) -> (configPath: String?, settings: [RawSetting]) {
        var configPath: String?
        var settings: [RawSetting] = []
        var seen: [ConfigurationKey: ConfigurationName] = [:]
        for (variable, value) in environment.sorted(by: { $0.key < $1.key })
        where variable.hasPrefix(ConfigurationNaming.environmentPrefix) {
            if variable == ConfigurationNaming.configEnvironmentVariable {
                configPath = value.isEmpty ? nil : value
                continue
            }
            guard let name = ConfigurationKey.lookup(environmentVariable: variable) else {
                let hint = ConfigurationNaming.closest(to: variable, among: ConfigurationKey.allEnvironmentVariables)
                    .map { "; did you mean \($0)?" } ?? ""
                throw ConfigurationError(
                    .unknownEnvironmentVariable,
                    "config: unknown environment variable \(variable)\(hint) (every BRAIN_* variable must be one of Brain's)")
            }
            if let earlier = seen[name.key] {
                throw aliasConflict(
                    earlier, name, both: (earlier.environmentVariable, name.environmentVariable),
                    place: "are both set in the environment")
            }
            seen[name.key] = name
            settings.append(RawSetting(name: name, value: .text(value), source: .environment(variable: variable)))
        }
        return (configPath, settings)
    }

    /// The settings in a TOML document; `path` names it in messages (as the user gave it).
    ///
    /// Top-level keys and aliases, and the `[s3]` section; any other key or section is an
    /// error naming it.
    static func file(text: String, path: String) throws(ConfigurationError) -> [RawSetting] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                .invalidTOML,
                "config: \(path) is not valid TOML: line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw ConfigurationError(.invalidTOML, "config: \(path) is not valid TOML: \(error)")
        }
        var settings: [RawSetting] = []
        var seen: [ConfigurationKey: ConfigurationName] = [:]
        func add(_ name: ConfigurationName, _ value: TOMLValueConvertible) throws(ConfigurationError) {
            if let earlier = seen[name.key] {
                throw aliasConflict(earlier, name, both: (earlier.spelling, name.spelling), place: "are both set in \(path)")
            }
            seen[name.key] = name
            settings.append(RawSetting(name: name, value: rawValue(value), source: .file(path: path, spelling: name.spelling)))
        }
        for key in table.keys {
            guard let value = table[key] else { continue }
            if let name = ConfigurationKey.lookup(tomlName: key, section: nil) {
                try add(name, value)
                continue
            }
            guard key == "s3" else { throw unknownKey(key, in: path) }
            guard let section = value.table else {
                throw ConfigurationError(
                    .invalidValue, "config: s3 in \(path) must be a section ([s3] with endpoint and region), not \(typeName(value.type))")
            }
            for subkey in section.keys {
                guard let subvalue = section[subkey] else { continue }
                guard let name = ConfigurationKey.lookup(tomlName: subkey, section: key) else {
                    throw unknownKey("\(key).\(subkey)", in: path)
                }
                try add(name, subvalue)
            }
        }
        return settings
    }

    /// The text of the configuration file at `path` (relative paths are taken from
    /// `currentDirectory`); `source` says who named it, for messages.
    static func readFile(path: String, currentDirectory: String, namedBy source: String) throws(ConfigurationError) -> String {
        let absolute = ConfigurationPaths.absolute(path, from: currentDirectory)
        let descriptor = open(absolute, O_RDONLY)
        guard descriptor >= 0 else { throw unreadable(path, source, errno) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw unreadable(path, source, errno)
            }
            bytes.append(contentsOf: chunk[..<count])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(.unreadableFile, "config: \(path) (from \(source)) is not UTF-8 text")
        }
        return text
    }

    private static func unreadable(_ path: String, _ source: String, _ code: Int32) -> ConfigurationError {
        ConfigurationError(
            .unreadableFile, "config: cannot read \(path) (from \(source)): \(String(cString: strerror(code)))")
    }

    private static func rawValue(_ value: TOMLValueConvertible) -> RawValue {
        if let text = value.string { return .text(text) }
        if let integer = value.int { return .integer(integer) }
        return .other(typeName: typeName(value.type))
    }

    /// The TOML type as messages name it, with its article.
    private static func typeName(_ type: TOMLType) -> String {
        switch type {
        case .table: "a table"
        case .array: "an array"
        case .string: "a string"
        case .int: "an integer"
        case .double: "a floating-point number"
        case .bool: "a boolean"
        case .date: "a date"
        case .time: "a time"
        case .dateTime: "a date-time"
        }
    }

    private static func unknownKey(_ key: String, in path: String) -> ConfigurationError {
        var hint = ""
        if let sectioned = ConfigurationKey.allCases.first(where: {
            $0.section != nil && ($0.tomlName == key || $0.name == key)
        }) {
            hint = "; did you mean \(sectioned.tomlName) under [\(sectioned.section ?? "")]?"
        } else if let close = ConfigurationNaming.closest(to: key, among: ConfigurationKey.allTOMLNames) {
            hint = "; did you mean \(close)?"
        }
        return ConfigurationError(.unknownKey, "config: unknown key \"\(key)\" in \(path)\(hint)")
    }

    /// Two spellings of one key in one source: name both, and say which one is the alias.
    private static func aliasConflict(
        _ first: ConfigurationName, _ second: ConfigurationName, both names: (String, String), place: String
    ) -> ConfigurationError {
        let aliasName = first.alias != nil ? names.0 : names.1
        return ConfigurationError(
            .duplicateSetting,
            "config: \(names.0) and \(names.1) \(place); \(aliasName) is Brain2's name for \(first.key.name), keep only one")
    }
}

/// Lexical path handling for configuration paths (no file-system access).
enum ConfigurationPaths {
    /// `path` made absolute from `directory` and normalized: no `.` or empty components,
    /// `..` removes the component before it, no trailing `/` (except the root itself).
    static func absolute(_ path: String, from directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var components: [Substring] = []
        for component in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": _ = components.popLast()
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }
}
