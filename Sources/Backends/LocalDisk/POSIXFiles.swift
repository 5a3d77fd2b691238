import Engine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blocking POSIX file operations for ``LocalDiskBackend``, each throwing a ``BackendError``
/// that names the path and the system's reason. Callers run them on a thread pool, never on
/// Swift's cooperative pool.
enum POSIXFiles {
    /// The backend code of a failed system call: `.unavailable` (retryable) for errors that
    /// come and go with the machine's state (a full disk, an I/O error, too many open
    /// files), `.failed` for everything else.
    static func code(forErrno error: Int32) -> BackendError.Code {
        switch error {
        case ENOSPC, EDQUOT, EIO, EMFILE, ENFILE, ENOMEM, EAGAIN, EBUSY, EINTR, ETIMEDOUT, ESTALE:
            .unavailable
        default:
            .failed
        }
    }

    /// A backend error for a failed system call: `<action> <path>: <reason> (errno N)`.
    static func error(_ action: String, _ path: String, errno error: Int32) -> BackendError {
        let reason = String(cString: strerror(error))
        return BackendError(code(forErrno: error), "\(action) \(path): \(reason) (errno \(error))")
    }

    /// Opens a file, retrying on `EINTR`. Returns the descriptor or the `errno` of the failure.
    static func open(_ path: String, flags: Int32, mode: mode_t = 0) -> Result<Int32, Errno> {
        while true {
            let fd: Int32
            if flags & O_CREAT != 0 {
                fd = systemOpen(path, flags | O_CLOEXEC, mode)
            } else {
                fd = systemOpen(path, flags | O_CLOEXEC)
            }
            if fd >= 0 { return .success(fd) }
            let error = errno
            if error != EINTR { return .failure(Errno(error)) }
        }
    }

    /// Reads a whole file. Returns `nil` when it does not exist.
    static func readFile(_ path: String) throws(BackendError) -> [UInt8]? {
        let fd: Int32
        switch open(path, flags: O_RDONLY) {
        case .success(let descriptor): fd = descriptor
        case .failure(let error) where error.code == ENOENT: return nil
        case .failure(let error): throw self.error("cannot open", path, errno: error.code)
        }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw self.error("cannot stat", path, errno: errno) }
        // Objects are replaced by rename and never written in place, so the size is the
        // size of what this descriptor reads; the loop still stops at end of file.
        let size = Int(info.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let got = read(fd, buffer.baseAddress! + count, size - count)
                if got > 0 {
                    count += got
                } else if got == 0 {
                    return
                } else if errno != EINTR {
                    failure = errno
                    return
                }
            }
        }
        if failure != 0 { throw error("cannot read", path, errno: failure) }
        return bytes
    }

    /// Writes all of `bytes` to a descriptor, retrying short writes and `EINTR`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(BackendError) {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let wrote = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if wrote >= 0 {
                    offset += wrote
                } else if errno != EINTR {
                    failure = errno
                    return
                }
            }
        }
        if failure != 0 { throw error("cannot write", path, errno: failure) }
    }

    /// Flushes a descriptor's data to stable storage, retrying on `EINTR`.
    static func sync(_ fd: Int32, path: String) throws(BackendError) {
        while fsync(fd) != 0 {
            let failure = errno
            if failure != EINTR { throw error("cannot fsync", path, errno: failure) }
        }
    }

    /// Makes a directory's entries (a rename, a new file, a new subdirectory) durable.
    static func syncDirectory(_ path: String) throws(BackendError) {
        let fd: Int32
        switch open(path, flags: O_RDONLY | O_DIRECTORY) {
        case .success(let descriptor): fd = descriptor
        case .failure(let error): throw self.error("cannot open directory", path, errno: error.code)
        }
        defer { _ = close(fd) }
        try sync(fd, path: path)
    }

    /// Whether anything exists at `path` (without following a final symbolic link).
    static func exists(_ path: String) throws(BackendError) -> Bool {
        var info = stat()
        if lstat(path, &info) == 0 { return true }
        let failure = errno
        if failure == ENOENT { return false }
        throw error("cannot stat", path, errno: failure)
    }

    /// Creates one directory. Returns `true` if it created it, `false` if it existed.
    static func makeDirectory(_ path: String) -> Result<Bool, Errno> {
        if mkdir(path, 0o755) == 0 { return .success(true) }
        let failure = errno
        if failure == EEXIST { return .success(false) }
        return .failure(Errno(failure))
    }

    /// Creates a directory and its missing parents, like `mkdir -p`.
    static func makeDirectories(_ path: String) throws(BackendError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += component
            if case .failure(let error) = makeDirectory(prefix) {
                throw self.error("cannot create directory", prefix, errno: error.code)
            }
            prefix += "/"
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw error("cannot stat", path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw BackendError(.failed, "cannot use \(path): it is not a directory")
        }
    }

    /// The names in a directory, without `.` and `..`.
    static func listDirectory(_ path: String) throws(BackendError) -> [String] {
        guard let dir = opendir(path) else { throw error("cannot list", path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: pointer.pointee)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The kind of file at `path`, not following a final symbolic link; `nil` if it is gone.
    static func kind(_ path: String) throws(BackendError) -> mode_t? {
        var info = stat()
        if lstat(path, &info) == 0 { return info.st_mode & S_IFMT }
        let failure = errno
        if failure == ENOENT { return nil }
        throw error("cannot stat", path, errno: failure)
    }

    /// An `errno` value carried through a `Result`.
    struct Errno: Error {
        var code: Int32
        init(_ code: Int32) { self.code = code }
    }
}

// `open` is variadic in C; Swift imports two overloads, named apart here so the wrapper
// above can keep the name.
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 {
    open(path, flags)
}

private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
