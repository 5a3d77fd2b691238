import XCTest
@testable import Engine

final class SlabTests: XCTestCase {
    func testSizeClassesGrowByTheFactorAndEndAtAPage() {
        let classes = SizeClasses(smallest: 48, factor: 1.25)
        XCTAssertEqual(classes.sizes.first, 48)
        XCTAssertEqual(classes.sizes.last, SizeClasses.largestChunk)
        for (smaller, larger) in zip(classes.sizes, classes.sizes.dropFirst()) {
            XCTAssertLessThan(smaller, larger)
            XCTAssertEqual(smaller % 8, 0)
            // Each class wastes at most about a quarter of a chunk.
            XCTAssertLessThanOrEqual(Double(larger), Double(smaller) * 1.3 + 8, "\(smaller) → \(larger)")
        }
    }

    func testClassIndexPicksTheSmallestChunkThatFits() {
        let classes = SizeClasses()
        XCTAssertEqual(classes.index(for: 1), 0)
        XCTAssertEqual(classes.index(for: 48), 0)
        XCTAssertEqual(classes.sizes[classes.index(for: 49)!], 64)
        XCTAssertEqual(classes.index(for: SizeClasses.largestChunk), classes.sizes.count - 1)
        XCTAssertNil(classes.index(for: SizeClasses.largestChunk + 1))
        XCTAssertEqual(classes.pageBytes(forClass: 0), SizeClasses.pageSize)
        XCTAssertEqual(classes.pageBytes(forClass: classes.sizes.count - 1), SizeClasses.largestChunk, "a large chunk has a page of its own")
    }

    func testChunksComeFromPagesWithinTheBudgetAndAreReused() {
        let budget = MemoryBudget(limit: 2 * SizeClasses.pageSize)
        var slab = Slab(classes: SizeClasses(), budget: budget)
        let sizeClass = slab.classes.index(for: 1000)!
        let chunkSize = slab.classes.sizes[sizeClass]
        let perPage = SizeClasses.pageSize / chunkSize
        var chunks: [ChunkRef] = []
        while let chunk = slab.allocate(sizeClass: sizeClass, owner: UInt32(chunks.count)) {
            chunks.append(chunk)
        }
        XCTAssertEqual(chunks.count, 2 * perPage, "two pages' worth of chunks, then the budget is spent")
        XCTAssertEqual(budget.usedBytes, 2 * SizeClasses.pageSize)
        XCTAssertEqual(Set(chunks.map { "\($0.page):\($0.offset)" }).count, chunks.count, "no chunk handed out twice")
        XCTAssertEqual(slab.owner(chunks[5]), 5)
        slab.release(chunks[5])
        XCTAssertEqual(slab.owner(chunks[5]), Slab.freeOwner)
        XCTAssertEqual(slab.allocate(sizeClass: sizeClass, owner: 99), chunks[5])
    }

    func testAnEmptiedPageGoesBackToTheBudget() {
        let budget = MemoryBudget(limit: SizeClasses.pageSize)
        var slab = Slab(classes: SizeClasses(), budget: budget)
        let small = slab.classes.index(for: 100)!
        let large = slab.classes.index(for: 5000)!
        let chunk = slab.allocate(sizeClass: small, owner: 1)!
        XCTAssertNil(slab.allocate(sizeClass: large, owner: 2), "the only page belongs to the small class")
        slab.release(chunk)
        slab.releasePage(chunk.page)
        XCTAssertEqual(budget.usedBytes, 0)
        XCTAssertEqual(slab.classPages[small], [])
        XCTAssertNotNil(slab.allocate(sizeClass: large, owner: 2))
    }
}

final class LZ4Tests: XCTestCase {
    func testCompressibleDataRoundTripsSmaller() {
        let json = Array(String(repeating: #"{"user":"alice","score":100,"items":["sword","shield"]},"#, count: 40).utf8)
        let compressed = LZ4Codec.compress(json)
        XCTAssertNotNil(compressed)
        XCTAssertLessThan(compressed!.count, json.count / 3)
        XCTAssertEqual(LZ4Codec.decompress(compressed!, originalLength: json.count), json)
    }

    func testIncompressibleAndTinyDataAreStoredRaw() {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        XCTAssertNil(LZ4Codec.compress(random), "random bytes do not shrink")
        XCTAssertNil(LZ4Codec.compress(Array("short".utf8)))
        XCTAssertNil(LZ4Codec.compress([]))
    }

    func testCorruptInputIsRefusedNotTrusted() {
        let data = Array(String(repeating: "abcdefgh", count: 100).utf8)
        var compressed = LZ4Codec.compress(data)!
        XCTAssertNil(LZ4Codec.decompress(compressed, originalLength: data.count + 1), "wrong length")
        compressed[compressed.count / 2] ^= 0xFF
        compressed.removeLast(3)
        XCTAssertNil(LZ4Codec.decompress(compressed, originalLength: data.count))
    }
}
