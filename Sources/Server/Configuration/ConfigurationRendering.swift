extension BrainConfiguration {
    /// The text `secret` is shown as when masked.
    static let maskedSecret = "********"

    /// The effective configuration as a TOML document (`brain config print`).
    ///
    /// Every key appears, in the order of ``ConfigurationKey``, followed by a comment naming
    /// where its value came from (`default`, the file, `env BRAIN_X`, `flag --x`). A key
    /// without a value (`erlang_node`, `secret`, `s3.*` when unset) appears as a comment.
    /// With `maskSecret` (the default) a set secret is shown as `"********"`. Without it,
    /// loading the text as a configuration file gives a configuration equal to this one.
    func rendered(maskSecret: Bool = true) -> String {
        var lines = [
            "# Brain: effective configuration (brain config print). Valid TOML: usable with --config.",
            "# Precedence: default < file < environment (BRAIN_*) < flags; each value says where it came from.",
        ]
        if let configurationFile {
            lines.append("# Configuration file: \(configurationFile)")
        } else {
            lines.append("# Configuration file: none")
        }
        var entries: [(text: String, comment: String)] = []
        var sectionStarted = false
        for key in ConfigurationKey.allCases {
            if key.section != nil && !sectionStarted {
                sectionStarted = true
                entries.append(("", ""))
                entries.append(("[\(key.section ?? "")]", ""))
            }
            let origin = originComment(key)
            if let value = renderedValue(of: key, maskSecret: maskSecret) {
                entries.append(("\(key.tomlName) = \(value)", origin))
            } else {
                entries.append(("# \(key.tomlName) is unset", origin))
            }
        }
        let width = entries.filter { !$0.comment.isEmpty }.map(\.text.count).max() ?? 0
        lines.append("")
        for entry in entries {
            if entry.comment.isEmpty {
                lines.append(entry.text)
            } else {
                let padding = String(repeating: " ", count: width - entry.text.count + 2)
                lines.append("\(entry.text)\(padding)# \(entry.comment)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `key`'s effective value as a TOML literal (`3697`, `"1gb"`, `"file:///x"`), or `nil`
    /// when the key is unset.
    func renderedValue(of key: ConfigurationKey, maskSecret: Bool) -> String? {
        switch key {
        case .backend: TOMLText.quoted(backend.description)
        case .linePort: String(linePort)
        case .adminPort: String(adminPort)
        case .erlangNode: erlangNode.map(TOMLText.quoted)
        case .erlangPort: String(erlangPort)
        case .erlangName: TOMLText.quoted(erlangName)
        case .bind: TOMLText.quoted(bind)
        case .secret: secret.map { TOMLText.quoted(maskSecret ? Self.maskedSecret : $0) }
        case .dataDirectory: TOMLText.quoted(dataDirectory)
        case .maxMemory: TOMLText.quoted(ConfigurationUnits.formatSize(maxMemory))
        case .maxDirtyBytes: TOMLText.quoted(ConfigurationUnits.formatSize(maxDirtyBytes))
        case .idleTTL: TOMLText.quoted(ConfigurationUnits.formatDuration(idleTTL))
        case .flushDelay: TOMLText.quoted(ConfigurationUnits.formatDuration(flushDelay))
        case .maxDirtyAge: TOMLText.quoted(ConfigurationUnits.formatDuration(maxDirtyAge))
        case .shutdownTimeout: TOMLText.quoted(ConfigurationUnits.formatDuration(shutdownTimeout))
        case .maxConnections: String(maxConnections)
        case .clientIdleTimeout: TOMLText.quoted(ConfigurationUnits.formatDuration(clientIdleTimeout))
        case .clientOutputTimeout: TOMLText.quoted(ConfigurationUnits.formatDuration(clientOutputTimeout))
        case .durability: TOMLText.quoted(durability.rawValue)
        case .fsync: TOMLText.quoted(fsync.rawValue)
        case .logLevel: TOMLText.quoted(logLevel.rawValue)
        case .s3Endpoint: s3.endpoint.map(TOMLText.quoted)
        case .s3Region: s3.region.map(TOMLText.quoted)
        }
    }

    private func originComment(_ key: ConfigurationKey) -> String {
        switch origin(of: key) {
        case .defaultValue:
            key == .backend ? "default: file://<data_dir>/backend" : "default"
        case .file(let path, let spelling):
            spelling == key.tomlName || spelling == key.name ? "from \(path)" : "from \(path) (as \(spelling))"
        case .environment(let variable):
            "from env \(variable)"
        case .flag(let flag):
            "from flag \(flag)"
        }
    }

    /// Every configuration flag with its value, one-line meaning and default, for
    /// `brain serve --help` and `brain config print --help`.
    static var flagsHelp: String {
        let rows: [(String, String)] =
            [("\(ConfigurationNaming.configFlag) PATH", "TOML configuration file to read (also BRAIN_CONFIG) [default: none]")]
            + ConfigurationKey.allCases.map { key in
                ("\(key.flag) \(key.valuePlaceholder)", "\(key.summary) [default: \(key.defaultDescription)]")
            }
            + ConfigurationAlias.allCases.map { alias in
                let name = ConfigurationName(key: alias.key, alias: alias)
                return ("\(name.flag) \(alias.key.valuePlaceholder)", "Brain2's name for \(alias.key.flag)")
            }
        let width = rows.map(\.0.count).max() ?? 0
        var lines = [
            "Configuration (precedence: default < TOML file < environment < flags):",
            "  Each flag --some-key is also the environment variable BRAIN_SOME_KEY and the key",
            "  some_key in the file; --key=VALUE works too.",
        ]
        for (flag, meaning) in rows {
            lines.append("  \(flag)\(String(repeating: " ", count: width - flag.count + 2))\(meaning)")
        }
        lines.append("  Sizes: 512mb, 2gb, 64kb or bytes (1048576); b, kb, mb, gb, tb are powers of 1024.")
        lines.append("  Durations: 500ms, 60s, 5m, 1h; a bare number is milliseconds.")
        lines.append("  S3 credentials come only from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.")
        return lines.joined(separator: "\n")
    }
}

/// TOML literal syntax for the values Brain prints.
enum TOMLText {
    /// `text` as a TOML basic string: in double quotes, with `"`, `\` and control characters
    /// escaped, so any text reads back unchanged.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
