/// What the values of a benchmark look like.
enum ValueKind: String, CaseIterable, Sendable {
    /// Random letters and digits: LZ4 finds nothing to compress.
    case random
    /// JSON objects shaped like a game's or a web site's user record (id, name, e-mail,
    /// counters, an inventory, free text): text that compresses as real records do.
    case json
}

/// The values a benchmark writes: a fixed pool drawn once from the seed.
///
/// Guarantees:
/// - The same kind, sizes, count and seed give byte-for-byte the same pool.
/// - Every value's length lies in `sizes`.
/// - No value holds a byte that Brain's line protocol would need to escape (`\`, control
///   bytes, bytes of 0x80 and above), so the same bytes travel raw over every protocol.
/// - A `json` value is a valid JSON object.
///
/// Requests pick values from the pool; making each value once keeps the load generator's
/// own work per request to a copy.
struct ValuePool: Sendable {
    /// The kind of every value.
    let kind: ValueKind
    /// The allowed lengths.
    let sizes: ClosedRange<Int>
    private let storage: [UInt8]
    private let offsets: [Int]

    /// The smallest length a `json` value may have: room for `{"id":N,"notes":""}`.
    static let minimumJSONSize = 40

    /// How many values a pool holds unless told otherwise.
    static let defaultCount = 4096

    /// Makes `count` values of `kind` with lengths drawn uniformly from `sizes`.
    /// - Precondition: `count` > 0, `sizes.lowerBound` ≥ 1, and for `json`
    ///   `sizes.lowerBound` ≥ ``minimumJSONSize``.
    init(kind: ValueKind, sizes: ClosedRange<Int>, count: Int = ValuePool.defaultCount, seed: UInt64) {
        precondition(count > 0 && sizes.lowerBound >= 1)
        precondition(kind != .json || sizes.lowerBound >= Self.minimumJSONSize)
        self.kind = kind
        self.sizes = sizes
        // A stream of its own, so that the values do not depend on what the connections draw.
        var random = BenchRandom(seed: seed, stream: 0xF00D)
        var storage: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(count + 1)
        for index in 0..<count {
            let length = sizes.lowerBound + random.below(sizes.count)
            switch kind {
            case .random: Self.appendRandom(length: length, to: &storage, random: &random)
            case .json: Self.appendJSON(id: index, length: length, to: &storage, random: &random)
            }
            offsets.append(storage.count)
        }
        self.storage = storage
        self.offsets = offsets
    }

    /// How many values the pool holds.
    var count: Int { offsets.count - 1 }

    /// Value number `index` (0 ..< ``count``).
    func value(_ index: Int) -> ArraySlice<UInt8> {
        storage[offsets[index]..<offsets[index + 1]]
    }

    /// The length of value number `index`.
    func length(_ index: Int) -> Int {
        offsets[index + 1] - offsets[index]
    }

    /// The total bytes of every value, for sizing.
    var totalBytes: Int { storage.count }

    private static let alphanumerics: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    private static func appendRandom(length: Int, to out: inout [UInt8], random: inout BenchRandom) {
        for _ in 0..<length {
            out.append(alphanumerics[random.below(alphanumerics.count)])
        }
    }

    private static let firstNames = [
        "ada", "alan", "grace", "edsger", "barbara", "donald", "ken", "dennis", "margaret",
        "linus", "radia", "john", "frances", "niklaus", "leslie", "tony",
    ]
    private static let lastNames = [
        "lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "thompson", "ritchie",
        "hamilton", "torvalds", "perlman", "backus", "allen", "wirth", "lamport", "hoare",
    ]
    private static let items = [
        "sword", "shield", "potion", "arrow", "bow", "helmet", "boots", "ring", "amulet",
        "scroll", "gem", "key", "map", "torch", "rope", "lantern",
    ]
    private static let words = [
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "player", "level",
        "quest", "castle", "dragon", "forest", "river", "village", "gold", "silver", "north",
        "south", "east", "west", "night", "day", "guild", "raid", "boss", "loot", "party",
        "friend", "score", "match",
    ]

    /// A user record of exactly `length` bytes: fixed fields, inventory items while they fit,
    /// then a `notes` string of words cut to the exact length.
    private static func appendJSON(id: Int, length: Int, to out: inout [UInt8], random: inout BenchRandom) {
        let first = firstNames[random.below(firstNames.count)]
        let last = lastNames[random.below(lastNames.count)]
        let month = 1 + random.below(12)
        let day = 1 + random.below(28)
        var head = "{\"id\":\(id),\"name\":\"\(first) \(last)\",\"email\":\"\(first).\(last)\(random.below(1000))@example.com\""
        head += ",\"level\":\(1 + random.below(99)),\"xp\":\(random.below(1_000_000)),\"gold\":\(random.below(100_000))"
        head += ",\"guild\":\"\(words[random.below(words.count)])\",\"online\":\(random.below(2) == 0 ? "true" : "false")"
        head += ",\"created\":\"2024-\(month < 10 ? "0" : "")\(month)-\(day < 10 ? "0" : "")\(day)T12:00:00Z\""
        let notesOpen = ",\"notes\":\""
        let close = "\"}"
        var record: String
        let inventoryOpen = ",\"inventory\":["
        if head.utf8.count + inventoryOpen.utf8.count + 1 + notesOpen.utf8.count + close.utf8.count <= length {
            record = head + inventoryOpen
            var first = true
            while true {
                let item = "\(first ? "" : ","){\"item\":\"\(items[random.below(items.count)])\",\"qty\":\(1 + random.below(99))}"
                if record.utf8.count + item.utf8.count + 1 + notesOpen.utf8.count + close.utf8.count > length { break }
                record += item
                first = false
            }
            record += "]" + notesOpen
        } else {
            record = "{\"id\":\(id)" + notesOpen
        }
        var notes = ""
        let room = length - record.utf8.count - close.utf8.count
        while notes.utf8.count < room {
            if !notes.isEmpty { notes += " " }
            notes += words[random.below(words.count)]
        }
        out.append(contentsOf: record.utf8)
        out.append(contentsOf: notes.utf8.prefix(room))
        out.append(contentsOf: close.utf8)
    }
}
