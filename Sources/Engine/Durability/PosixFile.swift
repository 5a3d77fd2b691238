#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few blocking file operations the spill file and the append-only log share. Errors are
/// the `strerror` text of the failed call.
enum PosixFile {
    /// Reads a whole file.
    static func read(_ path: String) -> Result<[UInt8], PosixFileError> {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .failure(PosixFileError("cannot open \(path): \(errnoText())")) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(PosixFileError("cannot read \(path): \(errnoText())"))
            }
            if n == 0 { return .success(bytes) }
            bytes += chunk[0..<n]
        }
    }

    /// Writes every byte, retrying short writes and EINTR. Returns `false` on an error (see
    /// `errno`).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            written += n
        }
        return true
    }

    /// fsyncs a directory, so that a file created or renamed in it survives a crash.
    static func syncDirectory(_ path: String) {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A failed file operation, naming the file and the cause.
struct PosixFileError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
