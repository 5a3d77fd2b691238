import Foundation

/// The cookie file `erl` reads, `~/.erlang.cookie`, read the way `erl` reads it.
public enum ErlangCookie {
    /// The cookie in the contents of a cookie file: its printable ASCII characters (spaces
    /// included) up to the first line break, tab or other whitespace, after which only
    /// whitespace may follow. Nil when the file holds no such cookie.
    public static func parse(_ contents: [UInt8]) -> String? {
        let cookie = contents.prefix { $0 >= 0x20 && $0 <= 0x7E }
        let rest = contents[cookie.endIndex...]
        guard !cookie.isEmpty,
            rest.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        else { return nil }
        return String(decoding: cookie, as: UTF8.self)
    }

    /// The path of the cookie file for the home directory `home`.
    public static func path(home: String) -> String {
        (home.hasSuffix("/") ? home : home + "/") + ".erlang.cookie"
    }

    /// The cookie in `~/.erlang.cookie` for the home directory `home`.
    ///
    /// - Throws: ``ErlangTransportError`` (`invalid_configuration`) when the file cannot be
    ///   read or holds no valid cookie; the message names the file.
    public static func load(home: String) throws(ErlangTransportError) -> String {
        let file = path(home: home)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ErlangTransportError(.invalidConfiguration, "\(file) does not exist or cannot be read")
        }
        guard let cookie = parse(Array(data)) else {
            throw ErlangTransportError(
                .invalidConfiguration, "\(file) does not hold a cookie (printable ASCII on its first line)")
        }
        return cookie
    }
}
