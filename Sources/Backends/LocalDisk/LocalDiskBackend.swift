import Crypto
import Engine
import Logging
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A ``Backend`` over a directory: the development backend, `file:///path` in configuration.
///
/// Guarantees:
/// - **Readable from outside.** An object is the file `<directory>/<type>/<encoded key>`
///   (long names are cut into segment directories, see ``LocalDiskLayout``), and a string's
///   file holds exactly its bytes.
/// - **Atomic writes.** A put writes a temporary file next to the target, flushes it,
///   renames it over the target and flushes the directory, so a reader or a crash sees the
///   old object or the new one, never a mix. With `fsync` off the flushes are skipped:
///   still atomic for readers, but not durable across a power loss.
/// - **Conditions.** `ifMatch` and `ifNoneExists` are checked and applied under a per-key
///   lock, so of concurrent conditional writes of one key exactly those consistent with one
///   order succeed; the others throw ``BackendError/Code/preconditionFailed``.
/// - **ETags** are the quoted hex MD5 of the content, as S3 reports for single-part uploads.
/// - **Off the cooperative pool.** Every blocking call runs on a NIO thread pool,
///   `NIOThreadPool.singleton` unless another is given.
/// - **Errors** are ``BackendError``s naming the file and the system's reason:
///   `.unavailable` (retryable) for a full disk, an I/O error or too many open files,
///   `.failed` otherwise.
public final class LocalDiskBackend: Backend {
    /// The directory that holds the objects, as given.
    public let directory: String

    /// Whether writes are flushed to stable storage (`fsync` of the file and its directory).
    public let fsync: Bool

    /// `file://<directory>`.
    public var description: String { "file://" + directory }

    private let logger: Logger
    private let pool: NIOThreadPool
    private let stripes: [KeyLock]
    private let activity = Mutex(Activity())

    /// How many locks keys are spread over. Two keys sharing a lock only wait for each other.
    private static let stripeCount = 64

    /// How often a put recreates its directories when a concurrent delete of a sibling key
    /// removed them (an empty segment directory is removed by the delete of its last file).
    private static let directoryRaceAttempts = 16

    /// Opens the backend over `directory`, creating it (and its parents) if needed, and
    /// removes temporary files left by a crash, logging how many.
    ///
    /// This runs blocking file I/O on the calling thread; call it at start-up.
    ///
    /// - Parameters:
    ///   - directory: Where the objects live; created with its parents if missing.
    ///   - fsync: Whether writes are flushed to stable storage; turn off only in tests.
    ///   - threadPool: Where the blocking file I/O runs. The backend never shuts it down.
    ///   - logger: Receives start-up findings and housekeeping trouble.
    /// - Throws: a ``BackendError`` naming the path when the directory cannot be created,
    ///   is not a directory, or is not writable.
    public init(
        directory: String,
        fsync: Bool = true,
        threadPool: NIOThreadPool = .singleton,
        logger: Logger
    ) throws(BackendError) {
        var trimmed = directory
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard !trimmed.isEmpty else { throw BackendError(.failed, "the backend directory is empty") }
        self.directory = trimmed
        self.fsync = fsync
        self.logger = logger
        pool = threadPool
        stripes = (0..<Self.stripeCount).map { _ in KeyLock() }

        do {
            try POSIXFiles.makeDirectories(trimmed)
        } catch {
            throw BackendError(error.code, "cannot use backend directory \(trimmed): \(error.message)")
        }
        guard access(trimmed, W_OK | X_OK) == 0 else {
            throw POSIXFiles.error("cannot write to backend directory", trimmed, errno: errno)
        }
        let removed = try Self.removeDebris(in: trimmed)
        if removed > 0 {
            logger.notice(
                "removed leftover temporary files",
                metadata: ["directory": "\(trimmed)", "count": "\(removed)"]
            )
        } else {
            logger.debug("no leftover temporary files", metadata: ["directory": "\(trimmed)"])
        }
    }

    // MARK: Backend

    /// Reads an object and its ETag. Returns `nil` when it does not exist.
    public func get(_ key: ObjectKey) async throws -> BackendObject? {
        let path = try self.path(of: key)
        return try await run { () throws(BackendError) -> BackendObject? in
            guard let bytes = try POSIXFiles.readFile(path) else { return nil }
            return BackendObject(bytes: bytes, etag: Self.etag(of: bytes))
        }
    }

    /// Reads an object's ETag and size. Returns `nil` when it does not exist.
    public func head(_ key: ObjectKey) async throws -> ObjectMetadata? {
        let path = try self.path(of: key)
        return try await run { () throws(BackendError) -> ObjectMetadata? in
            guard let bytes = try POSIXFiles.readFile(path) else { return nil }
            return ObjectMetadata(etag: Self.etag(of: bytes), size: bytes.count)
        }
    }

    /// Replaces an object atomically and returns its new ETag and size.
    ///
    /// - Throws: ``BackendError/Code/preconditionFailed`` when `condition` does not hold:
    ///   `ifMatch` on a missing object or one with another ETag, `ifNoneExists` on an
    ///   existing object. The object is then unchanged.
    public func put(_ key: ObjectKey, bytes: [UInt8], condition: WriteCondition) async throws -> ObjectMetadata {
        let components = try self.components(of: key)
        return try await run { () throws(BackendError) in
            try self.blockingPut(key, components: components, bytes: bytes, condition: condition)
        }
    }

    /// Deletes an object, and the segment directories a long key leaves empty. Deleting a
    /// missing object succeeds.
    ///
    /// - Throws: ``BackendError/Code/preconditionFailed`` when `condition` does not hold:
    ///   `ifMatch` on a missing object or one with another ETag, `ifNoneExists` on an
    ///   existing object (which is then kept).
    public func delete(_ key: ObjectKey, condition: WriteCondition) async throws {
        let components = try self.components(of: key)
        try await run { () throws(BackendError) in
            try self.blockingDelete(key, components: components, condition: condition)
        }
    }

    /// Waits for every operation in progress to finish; later calls throw a
    /// ``BackendError/Code/failed`` error. When it returns, nothing is pending and no
    /// temporary file of this backend remains.
    public func shutdown() async throws {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = activity.withLock { state in
                state.closed = true
                if state.inFlight == 0 { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    // MARK: ETags

    /// The ETag of some bytes: their MD5 in lower-case hex, in double quotes.
    public static func etag(of bytes: [UInt8]) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(34)
        for byte in Insecure.MD5.hash(data: bytes) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether two ETags name the same content, ignoring surrounding quotes and hex case.
    static func etagsMatch(_ lhs: String, _ rhs: String) -> Bool {
        func bare(_ tag: String) -> Substring {
            var tag = Substring(tag)
            if tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\"") { tag = tag.dropFirst().dropLast() }
            return tag
        }
        return bare(lhs).lowercased() == bare(rhs).lowercased()
    }

    // MARK: Paths

    private func components(of key: ObjectKey) throws(BackendError) -> [String] {
        guard !key.key.isEmpty else {
            throw BackendError(.failed, "cannot store an empty key under \(directory)/\(key.type.folder)")
        }
        return LocalDiskLayout.components(of: key)
    }

    private func path(of key: ObjectKey) throws(BackendError) -> String {
        directory + "/" + (try components(of: key)).joined(separator: "/")
    }

    /// `<directory>/<first count components>`.
    private func path(_ components: [String], count: Int) -> String {
        var path = directory
        for component in components.prefix(count) {
            path += "/"
            path += component
        }
        return path
    }

    private func lock(for key: ObjectKey) -> KeyLock {
        stripes[Int(UInt(bitPattern: key.hashValue) % UInt(Self.stripeCount))]
    }

    // MARK: Blocking work (thread pool only)

    private func blockingPut(
        _ key: ObjectKey,
        components: [String],
        bytes: [UInt8],
        condition: WriteCondition
    ) throws(BackendError) -> ObjectMetadata {
        let parent = path(components, count: components.count - 1)
        let target = parent + "/" + components[components.count - 1]
        // Fail fast before writing anything; the check that counts is repeated under the lock.
        if condition == .ifNoneExists, try POSIXFiles.exists(target) {
            throw preconditionFailed(condition, target)
        }
        let temporary = try writeTemporary(bytes, components: components, parent: parent)
        do {
            try lock(for: key).mutex.withLock { _ throws(BackendError) in
                try check(condition, target)
                if rename(temporary, target) != 0 {
                    throw POSIXFiles.error("cannot rename \(temporary) to", target, errno: errno)
                }
            }
        } catch {
            _ = unlink(temporary)
            throw error
        }
        if fsync { try POSIXFiles.syncDirectory(parent) }
        return ObjectMetadata(etag: Self.etag(of: bytes), size: bytes.count)
    }

    /// Writes `bytes` to a new temporary file in `parent`, creating the directories on the
    /// way when they are missing, flushes it, and returns its path.
    private func writeTemporary(
        _ bytes: [UInt8],
        components: [String],
        parent: String
    ) throws(BackendError) -> String {
        var attempt = 0
        while true {
            attempt += 1
            let temporary = parent + "/" + LocalDiskLayout.temporaryPrefix + Self.randomSuffix()
            switch POSIXFiles.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644) {
            case .success(let fd):
                do {
                    try POSIXFiles.writeAll(fd, bytes, path: temporary)
                    if fsync { try POSIXFiles.sync(fd, path: temporary) }
                } catch {
                    _ = close(fd)
                    _ = unlink(temporary)
                    throw error
                }
                if close(fd) != 0 {
                    let failure = errno
                    _ = unlink(temporary)
                    throw POSIXFiles.error("cannot close", temporary, errno: failure)
                }
                return temporary
            case .failure(let error) where error.code == EEXIST && attempt < Self.directoryRaceAttempts:
                continue
            case .failure(let error) where error.code == ENOENT && attempt < Self.directoryRaceAttempts:
                try createDirectories(components)
            case .failure(let error):
                throw POSIXFiles.error("cannot create", temporary, errno: error.code)
            }
        }
    }

    /// Creates the type folder and segment directories of an object, flushing each new
    /// directory's parent so the new entry survives a crash.
    private func createDirectories(_ components: [String]) throws(BackendError) {
        for depth in 1..<components.count {
            let directoryPath = path(components, count: depth)
            switch POSIXFiles.makeDirectory(directoryPath) {
            case .success(true):
                if fsync { try POSIXFiles.syncDirectory(path(components, count: depth - 1)) }
            case .success(false):
                continue
            case .failure(let error) where error.code == ENOENT:
                // A concurrent delete removed a parent that had just become empty: the
                // caller's next attempt starts again from the top.
                return
            case .failure(let error):
                throw POSIXFiles.error("cannot create directory", directoryPath, errno: error.code)
            }
        }
    }

    private func blockingDelete(
        _ key: ObjectKey,
        components: [String],
        condition: WriteCondition
    ) throws(BackendError) {
        let parentDepth = components.count - 1
        let parent = path(components, count: parentDepth)
        let target = parent + "/" + components[parentDepth]
        let removed = try lock(for: key).mutex.withLock { _ throws(BackendError) -> Bool in
            try check(condition, target)
            if unlink(target) == 0 { return true }
            let failure = errno
            if failure == ENOENT { return false }
            throw POSIXFiles.error("cannot delete", target, errno: failure)
        }
        guard removed else { return }
        if fsync { try POSIXFiles.syncDirectory(parent) }
        // Remove segment directories left empty, deepest first; the type folder stays. A
        // directory that is not empty, or already gone, ends the walk.
        var depth = parentDepth
        while depth > 1 {
            let directoryPath = path(components, count: depth)
            if rmdir(directoryPath) != 0 {
                let failure = errno
                if failure != ENOTEMPTY && failure != EEXIST && failure != ENOENT {
                    logger.debug(
                        "could not remove empty segment directory",
                        metadata: ["path": "\(directoryPath)", "errno": "\(failure)"]
                    )
                }
                break
            }
            depth -= 1
        }
    }

    /// Throws ``BackendError/Code/preconditionFailed`` unless `condition` holds for the
    /// object at `target` now.
    private func check(_ condition: WriteCondition, _ target: String) throws(BackendError) {
        switch condition {
        case .none:
            return
        case .ifNoneExists:
            if try POSIXFiles.exists(target) { throw preconditionFailed(condition, target) }
        case .ifMatch(let expected):
            guard let current = try POSIXFiles.readFile(target),
                Self.etagsMatch(Self.etag(of: current), expected)
            else { throw preconditionFailed(condition, target) }
        }
    }

    private func preconditionFailed(_ condition: WriteCondition, _ target: String) -> BackendError {
        switch condition {
        case .ifNoneExists:
            BackendError(.preconditionFailed, "\(target) already exists")
        case .ifMatch(let expected):
            BackendError(.preconditionFailed, "\(target) is missing or its ETag is not \(expected)")
        case .none:
            BackendError(.preconditionFailed, "\(target): no condition")
        }
    }

    private static func randomSuffix() -> String {
        let value = UInt64.random(in: .min ... .max)
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Removes `.tmp-*` regular files anywhere under `root`; returns how many it removed.
    private static func removeDebris(in root: String) throws(BackendError) -> Int {
        var removed = 0
        var pending = [root]
        while let directory = pending.popLast() {
            for name in try POSIXFiles.listDirectory(directory) {
                let path = directory + "/" + name
                switch try POSIXFiles.kind(path) {
                case S_IFDIR:
                    pending.append(path)
                case S_IFREG where name.hasPrefix(LocalDiskLayout.temporaryPrefix):
                    if unlink(path) == 0 {
                        removed += 1
                        continue
                    }
                    let failure = errno
                    if failure != ENOENT {
                        throw POSIXFiles.error("cannot remove leftover temporary file", path, errno: failure)
                    }
                default:
                    continue
                }
            }
        }
        return removed
    }

    // MARK: Activity

    /// Runs blocking work on the thread pool, counted so ``shutdown()`` can wait for it.
    private func run<T: Sendable>(
        _ body: @escaping @Sendable () throws(BackendError) -> T
    ) async throws(BackendError) -> T {
        try enter()
        defer { leave() }
        do {
            return try await pool.runIfActive { () throws -> T in try body() }
        } catch let error as BackendError {
            throw error
        } catch is CancellationError {
            throw BackendError(.failed, "\(description): the operation was cancelled before it ran")
        } catch {
            throw BackendError(.failed, "\(description): \(error)")
        }
    }

    /// How many calls are running now; zero once ``shutdown()`` has returned.
    var operationsInFlight: Int { activity.withLock { $0.inFlight } }

    private func enter() throws(BackendError) {
        let open = activity.withLock { state in
            if state.closed { return false }
            state.inFlight += 1
            return true
        }
        guard open else { throw BackendError(.failed, "\(description) is shut down") }
    }

    private func leave() {
        let waiters = activity.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inFlight -= 1
            guard state.closed, state.inFlight == 0 else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Operations in progress, and who waits for them to end.
private struct Activity {
    var inFlight = 0
    var closed = false
    var drainWaiters: [CheckedContinuation<Void, Never>] = []
}

/// One stripe of the per-key locks: held across a conditional write's check and rename.
private final class KeyLock: Sendable {
    let mutex = Mutex(())
}
