import Engine

/// Where an object lives under a ``LocalDiskBackend``'s directory: pure path arithmetic, no I/O.
///
/// An object is stored at `<directory>/<type folder>/<encoded key>`, the same relative name
/// it has in S3 (``ObjectKey/relativeName``), so any program can read it without knowing
/// Brain. An encoded key can reach 750 characters while a file name is limited to 255 bytes,
/// so an encoded name longer than ``maxSegmentLength`` is cut into segments: every segment
/// but the last is a directory whose name ends in ``directorySuffix`` (`+`), and the last is
/// the file. `ObjectName` never produces `+`, so a segment directory can never collide with
/// the file of a shorter key, and the encoded name is the segments joined with their `+`
/// suffixes removed.
///
/// A cut is never placed inside a `%XX` escape (every segment decodes on its own) and never
/// right before a `.`, so no segment starts with `.`: none is `.` or `..`, none is hidden,
/// and none can be mistaken for a temporary file (``temporaryPrefix``). A segment is at most
/// ``maxSegmentLength`` characters, with one exception forced by the second rule: when
/// everything after a segment's first character (or first escape) up to the limit is dots,
/// the segment runs on to the end of those dots. Keys are at most 250 bytes, so such a
/// segment is at most 252 characters, 253 with its `+`: still a valid file name.
public enum LocalDiskLayout {
    /// The longest segment, in characters, that a cut produces (see the type's description
    /// for the one exception).
    public static let maxSegmentLength = 200

    /// The suffix of every segment directory. `ObjectName` never produces it.
    public static let directorySuffix = "+"

    /// The prefix of temporary files; a leading `.` is always encoded, so no object's file
    /// or segment starts with it.
    public static let temporaryPrefix = ".tmp-"

    /// The object's path components relative to the backend's directory: the type folder,
    /// then zero or more segment directories (each ending in `+`), then the file name.
    ///
    /// The key must not be empty (an empty key has no file name); ``LocalDiskBackend``
    /// rejects it before asking.
    public static func components(of key: ObjectKey) -> [String] {
        [key.type.folder] + segments(ofEncodedName: ObjectName.encode(key.key))
    }

    /// The object's path relative to the backend's directory, components joined by `/`.
    public static func relativePath(of key: ObjectKey) -> String {
        components(of: key).joined(separator: "/")
    }

    /// Cuts an encoded name into path segments: directories ending in `+`, then the file
    /// name. A name of at most ``maxSegmentLength`` characters is returned whole.
    public static func segments(ofEncodedName name: String) -> [String] {
        let bytes = Array(name.utf8)
        guard bytes.count > maxSegmentLength else { return [name] }
        var result: [String] = []
        var start = 0
        while bytes.count - start > maxSegmentLength {
            guard let cut = cutPoint(in: bytes, segmentStart: start) else { break }
            result.append(String(decoding: bytes[start..<cut], as: UTF8.self) + directorySuffix)
            start = cut
        }
        result.append(String(decoding: bytes[start...], as: UTF8.self))
        return result
    }

    /// Where the segment starting at `segmentStart` ends: the last allowed cut at most
    /// ``maxSegmentLength`` characters in, or failing that the first allowed cut after it;
    /// `nil` when no cut is allowed before the end of the name.
    private static func cutPoint(in bytes: [UInt8], segmentStart start: Int) -> Int? {
        let limit = start + maxSegmentLength
        var cut = limit
        while cut > start {
            if isAllowedCut(bytes, at: cut) { return cut }
            cut -= 1
        }
        cut = limit + 1
        while cut < bytes.count {
            if isAllowedCut(bytes, at: cut) { return cut }
            cut += 1
        }
        return nil
    }

    /// Whether a segment may start at `index`: not inside a `%XX` escape and not at a `.`.
    /// A `%` always starts an escape and hex digits are never `%`, so position `index` is
    /// inside an escape exactly when one of the two bytes before it is `%`.
    private static func isAllowedCut(_ bytes: [UInt8], at index: Int) -> Bool {
        let percent = UInt8(ascii: "%")
        if bytes[index] == UInt8(ascii: ".") { return false }
        if bytes[index - 1] == percent { return false }
        if index >= 2, bytes[index - 2] == percent { return false }
        return true
    }
}
