#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Resolving a TCP address for the line-protocol clients (`brain console`, `brain bench`).
enum TCPAddress {
    /// `host:port`, with an IPv6 literal in brackets, for messages.
    static func display(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The stream-socket addresses `host` resolves to for `port`, to be given back with
    /// `freeaddrinfo`; or the resolver's reason, worded for people, when it does not resolve.
    static func resolve(host: String, port: Int) -> Result<UnsafeMutablePointer<addrinfo>, ResolutionFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            return .failure(ResolutionFailure(message: "cannot resolve '\(host)': \(String(cString: gai_strerror(resolved)))"))
        }
        return .success(first)
    }

    /// Why a name did not resolve.
    struct ResolutionFailure: Error {
        var message: String
    }
}
