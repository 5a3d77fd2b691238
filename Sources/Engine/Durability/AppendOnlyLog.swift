#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Logging
import Synchronization

/// When the log reaches the disk, with the meanings of Redis's `appendfsync`.
public enum LogFsync: String, Sendable, CaseIterable {
    /// fsync before a write is acknowledged (several writers share one fsync).
    case always
    /// written to the kernel before acknowledging; fsync once a second. A machine crash may
    /// lose up to about a second of acknowledged writes; a process crash loses none.
    case everysec
    /// written to the kernel before acknowledging; the kernel decides when to sync.
    case no
}

/// An error of the append-only log, naming the file and the cause.
public struct LogError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a log scan found.
public struct LogScan: Sendable {
    /// The latest record of each key, by lsn.
    public var latest: [LogRecord] = []
    /// Records read.
    public var records = 0
    /// The highest lsn seen (0 for an empty log).
    public var lastLSN: UInt64 = 0
    /// Segments read, oldest first, with their sizes.
    public var segments: [(path: String, bytes: Int)] = []
    /// A torn tail found at the end of the newest segment: its path, where the last whole
    /// record ends, and the file's size.
    public var tornTail: (path: String, validBytes: Int, fileBytes: Int)?
    /// Damage before the end of the log: its path, offset and what is wrong.
    public var damage: (path: String, offset: Int, reason: String)?
}

/// The append-only log under `data_dir/log`: every change to a persisted key is appended
/// before it is acknowledged (durability `log`), and replayed at start-up.
///
/// - Appends go to a buffer under a lock, in lsn order; one writer thread writes the buffer
///   out (group commit), and fsyncs per the `fsync` policy.
/// - Segments `<first lsn>.brainlog` rotate at 16 MiB. A segment whose every record is older
///   than the oldest change not yet written back is deleted, so the log stays proportional
///   to the dirty set.
/// - A failed write (a full disk) is cut back to the last whole record, marks the log
///   unavailable (writes that need it are refused), and is retried every second with the
///   same bytes: nothing already appended is dropped.
public final class AppendOnlyLog: Sendable {
    public static let segmentBytes = 16 << 20

    private struct Segment {
        var firstLSN: UInt64
        var path: String
    }

    private struct State {
        var buffer: [UInt8] = []
        var bufferLastLSN: UInt64 = 0
        var nextLSN: UInt64 = 1
        var writtenLSN: UInt64 = 0
        var syncedLSN: UInt64 = 0
        var failure: String? = nil
        var flushScheduled = false
        var waiters: [(lsn: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var segments: [Segment] = []
        var fd: Int32 = -1
        var fileSize = 0
    }

    public let directory: String
    public let fsync: LogFsync
    private let logger: Logger
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "brain.append-only-log")
    private let stopped = Atomic<Bool>(false)

    /// Opens (creating if needed) the log directory. Call ``scan(directory:)`` first to
    /// replay, then ``start(after:)`` to open a new segment for appends.
    public init(directory: String, fsync: LogFsync, logger: Logger) throws(LogError) {
        self.directory = directory
        self.fsync = fsync
        self.logger = logger
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw LogError("cannot create the log directory \(directory): \(Self.errnoText())")
        }
    }

    // MARK: Reading

    /// Segment files in `directory`, oldest first.
    public static func segmentPaths(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name.hasSuffix(".brainlog") { names.append(name) }
        }
        return names.sorted().map { directory + "/" + $0 }
    }

    /// Reads every segment and reports the latest record of each key, a torn tail, or damage.
    public static func scan(directory: String) throws(LogError) -> LogScan {
        var scan = LogScan()
        var latest: [LogKey: LogRecord] = [:]
        let paths = segmentPaths(in: directory)
        for (index, path) in paths.enumerated() {
            let bytes = try readFile(path)
            scan.segments.append((path, bytes.count))
            var offset = 0
            var stop = false
            bytes.withUnsafeBytes { raw in
                while offset < raw.count && !stop {
                    switch LogRecord.decode(raw, at: offset) {
                    case .record(let record, let next):
                        scan.records += 1
                        scan.lastLSN = max(scan.lastLSN, record.lsn)
                        let key = LogKey(namespace: Namespace(record.type), key: record.key)
                        if let existing = latest[key], existing.lsn > record.lsn { break }
                        latest[key] = record
                        offset = next
                        continue
                    case .truncated:
                        if index == paths.count - 1 {
                            scan.tornTail = (path, offset, raw.count)
                        } else {
                            scan.damage = (path, offset, "a segment ends inside a record, and newer segments follow")
                        }
                    case .damaged(let reason):
                        let declared = raw.count - offset >= 4 ? Int(LogRecord.read32(raw, offset)) : 0
                        if index == paths.count - 1 && offset + 4 + declared >= raw.count {
                            // The last record of the log, cut short by a crash mid-write.
                            scan.tornTail = (path, offset, raw.count)
                        } else {
                            scan.damage = (path, offset, reason)
                        }
                    }
                    stop = true
                }
            }
            if scan.damage != nil { break }
        }
        scan.latest = latest.values.sorted { $0.lsn < $1.lsn }
        return scan
    }

    /// Cuts the newest segment back to its last whole record (after a torn write).
    public static func cutTornTail(_ tail: (path: String, validBytes: Int, fileBytes: Int)) throws(LogError) {
        guard truncate(tail.path, off_t(tail.validBytes)) == 0 else {
            throw LogError("cannot truncate \(tail.path): \(errnoText())")
        }
    }

    /// Repairs damage found by ``scan(directory:)``: the damaged segment is cut at the damage,
    /// and the bytes from there on are kept aside in `<segment>.damaged` for inspection.
    /// Returns how many bytes were set aside.
    public static func repair(_ damage: (path: String, offset: Int, reason: String)) throws(LogError) -> Int {
        let bytes = try readFile(damage.path)
        let rest = Array(bytes[damage.offset...])
        let aside = damage.path + ".damaged"
        let fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw LogError("cannot create \(aside): \(errnoText())") }
        defer { Glibc.close(fd) }
        guard writeAll(fd, rest), Glibc.fsync(fd) == 0 else { throw LogError("cannot write \(aside): \(errnoText())") }
        guard truncate(damage.path, off_t(damage.offset)) == 0 else {
            throw LogError("cannot truncate \(damage.path): \(errnoText())")
        }
        return rest.count
    }

    // MARK: Appending

    /// Opens a new segment whose records follow `lastLSN`, and starts the writer.
    public func start(after lastLSN: UInt64) throws(LogError) {
        let existing = Self.segmentPaths(in: directory).map { path in
            Segment(firstLSN: Self.firstLSN(of: path) ?? 0, path: path)
        }
        let result: Result<Void, LogError> = state.withLock { state in
            state.segments = existing
            state.nextLSN = lastLSN + 1
            state.writtenLSN = lastLSN
            state.syncedLSN = lastLSN
            state.bufferLastLSN = lastLSN
            do throws(LogError) {
                try openSegment(&state, firstLSN: lastLSN + 1)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
        if fsync == .everysec { scheduleSync() }
    }

    /// Whether appends are accepted: `false` while the disk refuses writes.
    public var isAccepting: Bool { state.withLock { $0.failure == nil } }

    /// The lsn the next change will get.
    public var nextLSN: UInt64 { state.withLock { $0.nextLSN } }

    /// Appends a change and returns its lsn. Called under a shard lock, so changes of one key
    /// enter the log in the order they were made.
    public func append(type: EntryType, key: [UInt8], value: [UInt8]?, encoding: ValueEncoding) -> UInt64 {
        let (lsn, schedule) = state.withLock { state -> (UInt64, Bool) in
            let lsn = state.nextLSN
            state.nextLSN += 1
            LogRecord(lsn: lsn, type: type, key: key, value: value, encoding: encoding).encode(into: &state.buffer)
            state.bufferLastLSN = lsn
            let schedule = !state.flushScheduled && state.failure == nil
            if schedule { state.flushScheduled = true }
            return (lsn, schedule)
        }
        if schedule { queue.async { [self] in flush() } }
        return lsn
    }

    /// Waits until the change `lsn` is as durable as the policy promises: fsynced for
    /// `always`, written to the kernel otherwise. Returns `false` if the disk refused it.
    public func waitDurable(_ lsn: UInt64) async -> Bool {
        await withCheckedContinuation { continuation in
            let ready: Bool? = state.withLock { state in
                if reached(state, lsn) { return true }
                if state.failure != nil { return false }
                state.waiters.append((lsn, continuation))
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Deletes segments whose every record is older than `lsn` (the oldest change not yet
    /// written back), rotating the current segment first if it holds only such records.
    public func discard(olderThan lsn: UInt64) {
        queue.async { [self] in
            let doomed: [String] = state.withLock { state in
                if state.fileSize > 0, state.bufferLastLSN < lsn, state.buffer.isEmpty, state.failure == nil {
                    try? openSegment(&state, firstLSN: state.nextLSN)
                }
                var doomed: [String] = []
                while state.segments.count > 1, state.segments[1].firstLSN <= lsn {
                    doomed.append(state.segments.removeFirst().path)
                }
                return doomed
            }
            for path in doomed { unlink(path) }
        }
    }

    /// Stops the writer after writing what is buffered; with `removeSegments` (every change is
    /// in the backend) the log files are deleted.
    public func close(removeSegments: Bool) {
        stopped.store(true, ordering: .releasing)
        queue.sync {
            flush()
            syncNow()
            state.withLock { state in
                if state.fd >= 0 { Glibc.close(state.fd) }
                state.fd = -1
                if removeSegments {
                    for segment in state.segments { unlink(segment.path) }
                    state.segments = []
                }
            }
        }
    }

    /// Returns once the writer has done everything asked of it so far (for tests).
    func waitForWriter() {
        queue.sync {}
    }

    // MARK: The writer (runs on `queue`)

    private func flush() {
        let (bytes, lastLSN, fd) = state.withLock { state -> ([UInt8], UInt64, Int32) in
            state.flushScheduled = false
            defer { state.buffer = [] }
            return (state.buffer, state.bufferLastLSN, state.fd)
        }
        guard !bytes.isEmpty else { return }
        let sizeBefore = state.withLock { $0.fileSize }
        var ok = Self.writeAll(fd, bytes)
        if ok && fsync == .always { ok = Glibc.fsync(fd) == 0 }
        let reason = ok ? nil : Self.errnoText()
        if !ok {
            // Keep the file a sequence of whole records: cut back what this write added.
            _ = ftruncate(fd, off_t(sizeBefore))
            _ = lseek(fd, off_t(sizeBefore), SEEK_SET)
        }
        let (resumed, failedNow) = state.withLock { state -> ([(CheckedContinuation<Bool, Never>, Bool)], Bool) in
            if ok {
                let wasFailed = state.failure != nil
                state.failure = nil
                state.fileSize += bytes.count
                state.writtenLSN = lastLSN
                if fsync == .always { state.syncedLSN = lastLSN }
                if wasFailed { logger.notice("append-only log: writes succeed again") }
                let limit = durableLimit(state)
                var ready: [(CheckedContinuation<Bool, Never>, Bool)] = []
                state.waiters.removeAll { waiter in
                    guard waiter.lsn <= limit else { return false }
                    ready.append((waiter.continuation, true))
                    return true
                }
                if !state.buffer.isEmpty && !state.flushScheduled {
                    state.flushScheduled = true
                    queue.async { [self] in flush() }
                }
                if state.fileSize >= AppendOnlyLog.segmentBytes {
                    try? openSegment(&state, firstLSN: lastLSN + 1)
                }
                return (ready, false)
            }
            // Put the bytes back in front of anything appended meanwhile, and fail waiters.
            let firstFailure = state.failure == nil
            state.failure = reason
            state.buffer = bytes + state.buffer
            let failed = state.waiters.map { ($0.continuation, false) }
            state.waiters = []
            return (failed, firstFailure)
        }
        for (continuation, value) in resumed { continuation.resume(returning: value) }
        if !ok {
            if failedNow {
                logger.error("append-only log: cannot write \(directory): \(reason ?? "?"); writes needing the log are refused until it succeeds")
            }
            queue.asyncAfter(deadline: .now() + 1) { [self] in flush() }
        }
    }

    /// Every second while open: fsync what was written (`everysec`).
    private func scheduleSync() {
        queue.asyncAfter(deadline: .now() + 1) { [self] in
            guard !stopped.load(ordering: .acquiring) else { return }
            syncNow()
            scheduleSync()
        }
    }

    private func syncNow() {
        let (fd, written) = state.withLock { ($0.fd, $0.writtenLSN) }
        guard fd >= 0, Glibc.fsync(fd) == 0 else { return }
        let ready: [CheckedContinuation<Bool, Never>] = state.withLock { state in
            state.syncedLSN = max(state.syncedLSN, written)
            let limit = durableLimit(state)
            var ready: [CheckedContinuation<Bool, Never>] = []
            state.waiters.removeAll { waiter in
                guard waiter.lsn <= limit else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    private func reached(_ state: State, _ lsn: UInt64) -> Bool {
        durableLimit(state) >= lsn
    }

    /// The highest lsn as durable as the policy promises.
    private func durableLimit(_ state: State) -> UInt64 {
        fsync == .always ? state.syncedLSN : state.writtenLSN
    }

    /// Closes the current segment (fsynced) and opens a new one named by `firstLSN`.
    private func openSegment(_ state: inout State, firstLSN: UInt64) throws(LogError) {
        if state.fd >= 0 {
            _ = Glibc.fsync(state.fd)
            Glibc.close(state.fd)
        }
        let digits = String(firstLSN)
        let path = directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".brainlog"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw LogError("cannot create \(path): \(Self.errnoText())") }
        PosixFile.syncDirectory(directory)
        state.fd = fd
        state.fileSize = Int(lseek(fd, 0, SEEK_END))
        if state.segments.last?.path != path {
            state.segments.append(Segment(firstLSN: firstLSN, path: path))
        }
    }

    // MARK: Files

    static func firstLSN(of path: String) -> UInt64? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return UInt64(name.prefix { $0 != "." })
    }

    static func readFile(_ path: String) throws(LogError) -> [UInt8] {
        switch PosixFile.read(path) {
        case .success(let bytes): return bytes
        case .failure(let error): throw LogError(error.message)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool { PosixFile.writeAll(fd, bytes) }

    static func errnoText() -> String { PosixFile.errnoText() }
}

/// A key with its namespace, for the latest-record map of a scan.
struct LogKey: Hashable {
    var namespace: Namespace
    var key: [UInt8]
}
