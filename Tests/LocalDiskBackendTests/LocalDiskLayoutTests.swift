import Engine
import XCTest

@testable import LocalDiskBackend

/// The path arithmetic, checked without touching a disk.
final class LocalDiskLayoutTests: XCTestCase {
    func testShortKeyIsOneFileUnderItsTypeFolder() {
        let key = ObjectKey(type: .string, key: Array("user:42".utf8))
        XCTAssertEqual(LocalDiskLayout.components(of: key), ["string", "user%3A42"])
        XCTAssertEqual(LocalDiskLayout.relativePath(of: key), key.relativeName)
        XCTAssertEqual(
            LocalDiskLayout.relativePath(of: ObjectKey(type: .term, key: Array("a/b".utf8))),
            "term/a%2Fb"
        )
    }

    func testNameOfExactlyTheLimitIsNotCut() {
        let name = String(repeating: "a", count: LocalDiskLayout.maxSegmentLength)
        XCTAssertEqual(LocalDiskLayout.segments(ofEncodedName: name), [name])
    }

    func testLongNameIsCutIntoPlusDirectories() {
        let name = String(repeating: "a", count: 450)
        let segments = LocalDiskLayout.segments(ofEncodedName: name)
        XCTAssertEqual(
            segments,
            [
                String(repeating: "a", count: 200) + "+",
                String(repeating: "a", count: 200) + "+",
                String(repeating: "a", count: 50),
            ]
        )
    }

    func testCutsNeverSplitAnEscape() {
        // 250 `%` bytes encode to 750 characters of `%25`; 200 is not a multiple of 3.
        let name = ObjectName.encode([UInt8](repeating: UInt8(ascii: "%"), count: 250))
        let segments = LocalDiskLayout.segments(ofEncodedName: name)
        XCTAssertEqual(segments.count, 4)
        for segment in segments {
            let bare = segment.hasSuffix("+") ? String(segment.dropLast()) : segment
            XCTAssertNotNil(ObjectName.decode(bare), "segment \(segment) does not decode on its own")
        }
        XCTAssertEqual(segments[0], String(repeating: "%25", count: 66) + "+")
    }

    func testNoSegmentStartsWithADot() {
        // A cut at 200 would land on a dot: it moves back to the last non-dot.
        let name = String(repeating: "a", count: 190) + String(repeating: ".", count: 20) + "b"
        let segments = LocalDiskLayout.segments(ofEncodedName: name)
        XCTAssertEqual(
            segments,
            [String(repeating: "a", count: 189) + "+", "a" + String(repeating: ".", count: 20) + "b"]
        )
    }

    func testARunOfDotsTooLongToCutStaysInOneSegment() {
        // "a" followed by 249 dots: any cut within 200 characters would start a segment
        // with a dot, so the segment runs to the end of the dots.
        let key = [UInt8(ascii: "a")] + [UInt8](repeating: UInt8(ascii: "."), count: 249)
        let name = ObjectName.encode(key)
        XCTAssertEqual(LocalDiskLayout.segments(ofEncodedName: name), [name])
        let withTail = name + "xyz" + String(repeating: "q", count: 10)
        XCTAssertEqual(
            LocalDiskLayout.segments(ofEncodedName: withTail),
            [name + "+", "xyz" + String(repeating: "q", count: 10)]
        )
    }

    func testEverySegmentIsAValidFileNameAndTheNameIsRecoverable() {
        var generator = SplitMix64(seed: 7)
        let alphabet: [UInt8] = Array("a.%/-_~".utf8) + [0, 255, 46, 46, 46]
        for _ in 0..<2_000 {
            let length = Int(generator.next() % 250) + 1
            let key = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            let name = ObjectName.encode(key)
            let segments = LocalDiskLayout.segments(ofEncodedName: name)
            for (index, segment) in segments.enumerated() {
                XCTAssertLessThanOrEqual(segment.utf8.count, 255, "segment too long for a file name")
                XCTAssertFalse(segment.hasPrefix("."), "segment \(segment) starts with a dot")
                XCTAssertFalse(segment.contains("/"))
                XCTAssertEqual(segment.hasSuffix("+"), index < segments.count - 1)
            }
            let rejoined = segments.map { $0.hasSuffix("+") ? String($0.dropLast()) : $0 }.joined()
            XCTAssertEqual(rejoined, name)
            XCTAssertEqual(ObjectName.decode(rejoined), key)
        }
    }
}

/// A small deterministic generator, so the property test is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
