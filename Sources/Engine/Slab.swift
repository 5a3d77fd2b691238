#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The bytes every shard may use, slab pages and index together, against `max_memory`.
public final class MemoryBudget: Sendable {
    /// The bound, in bytes.
    public let limit: Int
    private let used = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes accounted so far.
    public var usedBytes: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` from the budget if they fit under the limit.
    func tryReserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while current + bytes <= limit {
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Accounts bytes that must be taken whatever the limit (index growth), or returns them
    /// when `bytes` is negative.
    func force(_ bytes: Int) {
        used.wrappingAdd(bytes, ordering: .relaxed)
    }
}

/// The chunk sizes slab pages are cut into, as memcached's slab classes: from `smallest`
/// upwards by `factor`, each a multiple of 8, up to ``largestChunk``.
///
/// Chunks up to half a page share ``pageSize`` pages; a larger chunk gets a page of its own,
/// of exactly its size, so large values do not pin many small pages.
public struct SizeClasses: Sendable {
    /// The size of a slab page shared by small chunks.
    public static let pageSize = 1 << 16
    /// The largest chunk: a value of 1,000,000 bytes with a 250-byte key fits.
    public static let largestChunk = 1 << 20

    /// Chunk sizes in ascending order.
    public let sizes: [Int]

    public init(smallest: Int = 48, factor: Double = 1.25) {
        precondition(smallest >= 16 && factor > 1)
        var sizes: [Int] = []
        var size = Double(smallest)
        while Int(size) < SizeClasses.largestChunk {
            let aligned = (Int(size) + 7) & ~7
            if sizes.last != aligned { sizes.append(aligned) }
            size *= factor
        }
        sizes.append(SizeClasses.largestChunk)
        self.sizes = sizes
    }

    /// The smallest class whose chunks hold `size` bytes, or `nil` when `size` exceeds the
    /// largest chunk.
    public func index(for size: Int) -> Int? {
        var low = 0
        var high = sizes.count
        while low < high {
            let mid = (low + high) / 2
            if sizes[mid] < size { low = mid + 1 } else { high = mid }
        }
        return low < sizes.count ? low : nil
    }

    /// The bytes of a page cut for `sizeClass`.
    public func pageBytes(forClass sizeClass: Int) -> Int {
        let size = sizes[sizeClass]
        return size <= SizeClasses.pageSize / 2 ? SizeClasses.pageSize : size
    }
}

/// Where a chunk lives: a page number and a byte offset within that page.
struct ChunkRef: Equatable {
    var page: UInt32
    var offset: UInt32
}

/// One shard's slab pages, cut into chunks by size class. Not thread-safe: the shard's lock
/// guards it. Pages come from and go back to the shared ``MemoryBudget``.
///
/// Every chunk starts with a 4-byte owner field: the id of the entry that uses it, or
/// ``Slab/freeOwner``. Eviction walks chunks and reads it.
struct Slab: ~Copyable {
    static let freeOwner = UInt32.max
    static let headerSize = 4

    let classes: SizeClasses
    let budget: MemoryBudget
    /// Page memory by page number; `nil` for a page number returned to the budget.
    private(set) var pages: [UnsafeMutableRawPointer?] = []
    /// The class each page is cut for.
    private(set) var pageClass: [Int] = []
    /// Chunks in use per page.
    private(set) var pageUsed: [Int] = []
    /// Bytes of each page.
    private(set) var pageSizes: [Int] = []
    /// Page numbers per class, in the order they were assigned.
    private(set) var classPages: [[UInt32]]
    private var freeChunks: [[ChunkRef]]
    /// The page each class is still carving fresh chunks from, and the next offset.
    private var carving: [ChunkRef?]
    private var releasedPageNumbers: [UInt32] = []
    /// Bytes of pages this slab holds.
    private(set) var pageBytes = 0

    init(classes: SizeClasses, budget: MemoryBudget) {
        self.classes = classes
        self.budget = budget
        classPages = Array(repeating: [], count: classes.sizes.count)
        freeChunks = Array(repeating: [], count: classes.sizes.count)
        carving = Array(repeating: nil, count: classes.sizes.count)
    }

    deinit {
        for page in pages {
            if let page { free(page) }
        }
        budget.force(-pageBytes)
    }

    /// The memory of a chunk.
    @inline(__always)
    func pointer(_ chunk: ChunkRef) -> UnsafeMutableRawPointer {
        pages[Int(chunk.page)].unsafelyUnwrapped + Int(chunk.offset)
    }

    /// The entry that owns a chunk, or ``freeOwner``.
    @inline(__always)
    func owner(_ chunk: ChunkRef) -> UInt32 {
        pointer(chunk).loadUnaligned(as: UInt32.self)
    }

    /// Takes a chunk of `sizeClass` for `owner` without evicting anything: from the free
    /// list, from the page being carved, or from a new page if the budget allows.
    mutating func allocate(sizeClass: Int, owner: UInt32) -> ChunkRef? {
        if let chunk = freeChunks[sizeClass].popLast() {
            return claim(chunk, owner: owner)
        }
        if let chunk = carve(sizeClass) {
            return claim(chunk, owner: owner)
        }
        guard budget.tryReserve(classes.pageBytes(forClass: sizeClass)) else { return nil }
        addPage(for: sizeClass)
        return claim(carve(sizeClass)!, owner: owner)
    }

    /// Returns a chunk to its class's free list.
    mutating func release(_ chunk: ChunkRef) {
        pointer(chunk).storeBytes(of: Slab.freeOwner, as: UInt32.self)
        let page = Int(chunk.page)
        pageUsed[page] -= 1
        freeChunks[pageClass[page]].append(chunk)
    }

    /// Every chunk of a page that is carved, in order: for eviction scans.
    func carvedChunks(ofPage page: UInt32) -> [ChunkRef] {
        let size = classes.sizes[pageClass[Int(page)]]
        var end = pageSizes[Int(page)] / size * size
        if let current = carving[pageClass[Int(page)]], current.page == page {
            end = Int(current.offset)
        }
        return stride(from: 0, to: end, by: size).map { ChunkRef(page: page, offset: UInt32($0)) }
    }

    /// Returns a page whose chunks are all free (the caller evicted their owners) to the
    /// budget, so that any class of any shard may use its bytes.
    mutating func releasePage(_ page: UInt32) {
        let old = pageClass[Int(page)]
        precondition(pageUsed[Int(page)] == 0, "releasing a page with live chunks")
        freeChunks[old].removeAll { $0.page == page }
        classPages[old].removeAll { $0 == page }
        if carving[old]?.page == page { carving[old] = nil }
        free(pages[Int(page)])
        pages[Int(page)] = nil
        releasedPageNumbers.append(page)
        pageBytes -= pageSizes[Int(page)]
        budget.force(-pageSizes[Int(page)])
    }

    /// Whether `sizeClass` could get a chunk without eviction.
    func hasFreeChunk(sizeClass: Int) -> Bool {
        !freeChunks[sizeClass].isEmpty || carving[sizeClass] != nil
    }

    private mutating func claim(_ chunk: ChunkRef, owner: UInt32) -> ChunkRef {
        pointer(chunk).storeBytes(of: owner, as: UInt32.self)
        pageUsed[Int(chunk.page)] += 1
        return chunk
    }

    private mutating func carve(_ sizeClass: Int) -> ChunkRef? {
        guard let current = carving[sizeClass] else { return nil }
        let size = classes.sizes[sizeClass]
        let next = Int(current.offset) + size
        carving[sizeClass] = next + size <= pageSizes[Int(current.page)]
            ? ChunkRef(page: current.page, offset: UInt32(next)) : nil
        return current
    }

    private mutating func addPage(for sizeClass: Int) {
        let bytes = classes.pageBytes(forClass: sizeClass)
        guard let page = malloc(bytes) else {
            fatalError("out of memory allocating a slab page of \(bytes) bytes")
        }
        let number: UInt32
        if let reused = releasedPageNumbers.popLast() {
            number = reused
            pages[Int(number)] = page
            pageClass[Int(number)] = sizeClass
            pageUsed[Int(number)] = 0
            pageSizes[Int(number)] = bytes
        } else {
            number = UInt32(pages.count)
            pages.append(page)
            pageClass.append(sizeClass)
            pageUsed.append(0)
            pageSizes.append(bytes)
        }
        pageBytes += bytes
        classPages[sizeClass].append(number)
        carving[sizeClass] = ChunkRef(page: number, offset: 0)
    }
}
