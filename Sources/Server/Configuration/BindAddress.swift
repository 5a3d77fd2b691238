#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Classifies the `bind` setting, which decides whether a `secret` is required.
enum BindAddress {
    /// Whether `text` is a loopback address: IPv4 `127.0.0.0/8`, IPv6 `::1` (also as the
    /// IPv4-mapped `::ffff:127.x.y.z`), or the host name `localhost`. Any other IP literal or
    /// host name is not: a name may resolve anywhere.
    ///
    /// - Throws: ``InvalidValue`` when `text` is neither an IP literal nor a host name.
    static func isLoopback(_ text: String) throws(InvalidValue) -> Bool {
        if let octets = ipv4(text) { return octets.0 == 127 }
        if let bytes = ipv6(text) {
            let isUnspecifiedPrefix = bytes[0..<10].allSatisfy { $0 == 0 }
            if isUnspecifiedPrefix && bytes[10..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            if isUnspecifiedPrefix && bytes[10] == 0xFF && bytes[11] == 0xFF { return bytes[12] == 127 }
            return false
        }
        guard isHostName(text) else {
            throw InvalidValue("not an IP address or host name; use e.g. 127.0.0.1, ::1 or 0.0.0.0 (with a secret)")
        }
        return text.lowercased() == "localhost"
    }

    /// The four octets of a dotted-decimal IPv4 address (each 0...255, 1 to 3 digits).
    private static func ipv4(_ text: String) -> (UInt8, UInt8, UInt8, UInt8)? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count),
                part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let value = UInt8(part)
            else { return nil }
            octets.append(value)
        }
        return (octets[0], octets[1], octets[2], octets[3])
    }

    /// The 16 bytes of an IPv6 literal (without brackets), parsed by the C library.
    private static func ipv6(_ text: String) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        var address = in6_addr()
        let parsed = text.withCString { inet_pton(AF_INET6, $0, &address) }
        guard parsed == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// A DNS host name: dot-separated labels of letters, digits and inner hyphens, each 1 to
    /// 63 bytes, 253 in all, the last not all digits (so `127.0.0.256` is a bad address, not
    /// a name).
    private static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        if let last = labels.last, last.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return false
        }
        for label in labels {
            let bytes = Array(label.utf8)
            guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-")
            else { return false }
            for byte in bytes {
                let isLetter = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
                let isDigit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                guard isLetter || isDigit || byte == UInt8(ascii: "-") else { return false }
            }
        }
        return true
    }
}
