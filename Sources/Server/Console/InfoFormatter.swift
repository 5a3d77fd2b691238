extension Console {
    /// Turns the one-line `info` reply (`name:value` pairs separated by spaces) into a table
    /// for people: one `name  value` per line, grouped under headings, names left-aligned and
    /// values right-aligned, sizes and durations also shown in human units.
    enum InfoFormatter {
        /// The groups, in the order they are shown. A field no group claims goes under
        /// `other`, so fields added to `info` later still show.
        static let groups: [(title: String, claims: @Sendable (String) -> Bool)] = [
            ("keys", { $0.hasPrefix("keys_") }),
            ("memory", { $0.hasPrefix("memory_") || $0 == "max_memory" || $0 == "compression_ratio" || $0 == "evictions" }),
            ("write-back", { $0.contains("dirty") || $0.hasPrefix("writeback_") }),
            ("backend", { $0.hasPrefix("backend_") }),
            ("commands", { $0.hasPrefix("commands_") || $0 == "ops_per_sec" || $0 == "uptime_seconds" }),
        ]

        /// The `name:value` pairs of an `info` reply, in order; `nil` when the line is not one
        /// (an `error ...` reply, or anything without pairs).
        static func parse(_ reply: String) -> [(name: String, value: String)]? {
            var pairs: [(name: String, value: String)] = []
            for token in reply.split(separator: " ", omittingEmptySubsequences: true) {
                guard let colon = token.firstIndex(of: ":"), colon != token.startIndex else { return nil }
                pairs.append((String(token[..<colon]), String(token[token.index(after: colon)...])))
            }
            return pairs.isEmpty ? nil : pairs
        }

        /// The table for an `info` reply, each line ending in `\n`; `nil` when the reply is not
        /// an `info` line, so that the caller prints it as it came.
        static func format(_ reply: String) -> String? {
            guard let pairs = parse(reply) else { return nil }
            var grouped: [(title: String, rows: [(name: String, value: String)])] =
                groups.map { ($0.title, []) } + [("other", [])]
            for pair in pairs {
                let group = groups.firstIndex { $0.claims(pair.name) } ?? groups.count
                grouped[group].rows.append(pair)
            }
            let nameWidth = pairs.map(\.name.count).max() ?? 0
            let valueWidth = pairs.map(\.value.count).max() ?? 0

            var out = ""
            for (title, rows) in grouped where !rows.isEmpty {
                if !out.isEmpty { out += "\n" }
                out += "# \(title)\n"
                for (name, value) in rows {
                    out += pad(name, to: nameWidth) + "  " + padLeft(value, to: valueWidth)
                    if let human = humanReading(name: name, value: value) { out += "  (\(human))" }
                    out += "\n"
                }
            }
            return out
        }

        /// The human reading of a field, when it helps: a size (`*_bytes`, `max_memory`) of at
        /// least 1 KiB in binary units, or the uptime of at least a minute in days, hours,
        /// minutes and seconds.
        static func humanReading(name: String, value: String) -> String? {
            guard let number = Int(value) else { return nil }
            if name.hasSuffix("_bytes") || name == "max_memory" {
                return number >= 1024 ? byteSize(number) : nil
            }
            if name == "uptime_seconds" {
                return number >= 60 ? duration(seconds: number) : nil
            }
            return nil
        }

        /// A byte count in binary units with one decimal: `12.3 MiB`. Below 1 KiB: `512 B`.
        static func byteSize(_ bytes: Int) -> String {
            let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
            guard bytes >= 1024 else { return "\(bytes) B" }
            var scaled = Double(bytes)
            var unit = 0
            while scaled >= 1024, unit < units.count - 1 {
                scaled /= 1024
                unit += 1
            }
            var tenths = Int((scaled * 10).rounded())
            // 1023.96 KiB rounds to 1024.0 KiB: show it as 1.0 MiB instead.
            if tenths >= 10240, unit < units.count - 1 {
                unit += 1
                tenths = Int((scaled / 1024 * 10).rounded())
            }
            return "\(tenths / 10).\(tenths % 10) \(units[unit])"
        }

        /// A duration as `3d 4h 5m 6s`, leaving out the leading zero units.
        static func duration(seconds total: Int) -> String {
            let parts = [(total / 86_400, "d"), (total % 86_400 / 3600, "h"), (total % 3600 / 60, "m"), (total % 60, "s")]
            let shown = parts.drop { $0.0 == 0 }
            return shown.isEmpty ? "0s" : shown.map { "\($0.0)\($0.1)" }.joined(separator: " ")
        }

        private static func pad(_ text: String, to width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.count))
        }

        private static func padLeft(_ text: String, to width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
    }
}
