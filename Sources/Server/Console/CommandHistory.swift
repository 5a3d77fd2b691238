#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Console {
    /// The lines the user entered, oldest first, bounded to ``capacity``.
    ///
    /// Blank lines and a repeat of the previous line are not kept, nor is any `auth` line: it
    /// carries the secret, which must not end up in a history file.
    struct CommandHistory: Equatable, Sendable {
        /// How many lines are kept, in memory and in the file.
        let capacity: Int
        /// The lines, oldest first.
        private(set) var entries: [String]

        init(capacity: Int = 1000, entries: [String] = []) {
            self.capacity = max(1, capacity)
            self.entries = []
            for entry in entries { add(entry) }
        }

        /// Adds `line` unless it is blank, repeats the last entry, or is an `auth` command.
        /// Drops the oldest entry past ``capacity``.
        mutating func add(_ line: String) {
            guard !Console.isBlank(line), line != entries.last, !Self.holdsSecret(line) else { return }
            entries.append(line)
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }

        /// Whether `line` is an `auth` command, whatever its case and leading blanks.
        static func holdsSecret(_ line: String) -> Bool {
            Console.words(of: line).first?.lowercased() == "auth"
        }

        /// The history stored in `path`, one entry per line; empty when the file cannot be read.
        static func load(from path: String, capacity: Int = 1000) -> CommandHistory {
            guard let bytes = Console.readWholeFile(path) else { return CommandHistory(capacity: capacity) }
            let lines = bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
            return CommandHistory(capacity: capacity, entries: lines)
        }

        /// Writes the history to `path`, readable by its owner only, replacing the file
        /// atomically. Returns whether it was written; a console goes on either way.
        @discardableResult
        func save(to path: String) -> Bool {
            var bytes: [UInt8] = []
            for entry in entries {
                bytes.append(contentsOf: entry.utf8)
                bytes.append(UInt8(ascii: "\n"))
            }
            // A name of this process's own, so that two consoles saving at once do not mix.
            let temporary = path + ".\(getpid()).tmp"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return false }
            let written = Console.writeAll(fd, bytes)
            guard close(fd) == 0, written, rename(temporary, path) == 0 else {
                unlink(temporary)
                return false
            }
            return true
        }
    }

    /// The history file: `~/.brain_history`, or none when `HOME` is not set.
    static var defaultHistoryPath: String? {
        guard let home = getenv("HOME"), home.pointee != 0 else { return nil }
        let directory = String(cString: home)
        return directory.hasSuffix("/") ? directory + ".brain_history" : directory + "/.brain_history"
    }

    /// The bytes of a file, or `nil` when it cannot be opened or read.
    static func readWholeFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: chunk[0..<count])
            } else if count == 0 {
                return bytes
            } else if errno != EINTR {
                return nil
            }
        }
    }
}
