/// Parsing and printing of the unit forms used in Brain's configuration. Pure functions.
///
/// - Sizes: a non-negative integer, optionally followed by `b`, `kb`, `mb`, `gb` or `tb`
///   (powers of 1024; any case; spaces allowed before the unit). A bare integer is bytes.
/// - Durations: a non-negative integer, optionally followed by `ms`, `s`, `m` or `h` (any
///   case; spaces allowed before the unit). A bare integer is milliseconds, as in Brain2.
enum ConfigurationUnits {
    private static let sizeUnits: [(suffix: String, multiplier: Int)] = [
        ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("b", 1),
    ]

    private static let durationUnits: [(suffix: String, milliseconds: Int)] = [
        ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1),
    ]

    /// The number of bytes `text` denotes, or `nil` when it is not a size or overflows `Int`.
    static func parseSize(_ text: String) -> Int? {
        guard let (number, unit) = splitNumber(text) else { return nil }
        let multiplier: Int
        if unit.isEmpty {
            multiplier = 1
        } else if let match = sizeUnits.first(where: { $0.suffix == unit }) {
            multiplier = match.multiplier
        } else {
            return nil
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    /// The duration `text` denotes (whole milliseconds), or `nil` when it is not a duration.
    static func parseDuration(_ text: String) -> Duration? {
        guard let (number, unit) = splitNumber(text) else { return nil }
        let perUnit: Int
        if unit.isEmpty {
            perUnit = 1
        } else if let match = durationUnits.first(where: { $0.suffix == unit }) {
            perUnit = match.milliseconds
        } else {
            return nil
        }
        let (milliseconds, overflow) = number.multipliedReportingOverflow(by: perUnit)
        return overflow ? nil : .milliseconds(milliseconds)
    }

    /// The shortest exact text for `bytes` in the largest unit that divides it (`1gb`,
    /// `256mb`, `1000b`); ``parseSize(_:)`` reads it back to the same number.
    static func formatSize(_ bytes: Int) -> String {
        if bytes > 0, let unit = sizeUnits.first(where: { bytes % $0.multiplier == 0 }) {
            return "\(bytes / unit.multiplier)\(unit.suffix)"
        }
        return "\(bytes)b"
    }

    /// The shortest exact text for `duration` in the largest unit that divides it (`5m`,
    /// `2s`, `1500ms`); sub-millisecond parts are dropped. ``parseDuration(_:)`` reads it
    /// back to the same duration.
    static func formatDuration(_ duration: Duration) -> String {
        let milliseconds = Self.milliseconds(duration)
        if milliseconds > 0,
            let unit = durationUnits.first(where: { milliseconds % $0.milliseconds == 0 })
        {
            return "\(milliseconds / unit.milliseconds)\(unit.suffix)"
        }
        return "\(milliseconds)ms"
    }

    /// Whole milliseconds in `duration`, rounded toward zero.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Splits `text` (trimmed of spaces) into its leading decimal digits and the lower-cased
    /// unit after them (spaces between the two allowed). `nil` without digits, with a sign,
    /// a fraction, or digits that overflow `Int`.
    private static func splitNumber(_ text: String) -> (Int, String)? {
        let bytes = Array(text.utf8)
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") {
            start += 1
        }
        while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") {
            end -= 1
        }
        var index = start
        var number = 0
        while index < end, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let (times10, overflow1) = number.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(bytes[index] - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            number = sum
            index += 1
        }
        guard index > start else { return nil }
        while index < end, bytes[index] == UInt8(ascii: " ") { index += 1 }
        var unit = ""
        unit.reserveCapacity(end - index)
        for byte in bytes[index..<end] {
            // Setting bit 5 lower-cases an ASCII letter and maps nothing else into a...z.
            guard (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) else { return nil }
            unit.unicodeScalars.append(Unicode.Scalar(byte | 0x20))
        }
        return (number, unit)
    }
}
