import XCTest

@testable import Engine

final class HashDocumentTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func text(_ document: HashDocument) -> String {
        String(decoding: document.json(), as: UTF8.self)
    }

    private func assertInvalid(
        _ json: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let document = try HashDocument(json: json)
            XCTFail("parsed \(text(document))", file: file, line: line)
        } catch {
            XCTAssertEqual(error.code, .invalidHash, file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), error.message, file: file, line: line)
        }
    }

    func testParsesAndPrintsInOrder() throws {
        let document = try HashDocument(json: bytes(#" { "name" : "Ann", "hp":"100" ,"zone":"b" } "#))
        XCTAssertEqual(document.count, 3)
        XCTAssertEqual(document.fields, [bytes("name"), bytes("hp"), bytes("zone")])
        XCTAssertEqual(document[bytes("hp")], .string(bytes("100")))
        XCTAssertNil(document[bytes("missing")])
        XCTAssertEqual(text(document), #"{"name":"Ann","hp":"100","zone":"b"}"#)
        XCTAssertEqual(text(try HashDocument(json: bytes("{}"))), "{}")
        XCTAssertTrue(try HashDocument(json: bytes(" {\n} ")).isEmpty)
    }

    func testSetAppendsNewFieldsAndReplacesInPlace() throws {
        var document = try HashDocument(json: bytes(#"{"a":"1","b":"2"}"#))
        XCTAssertFalse(try document.set(field: bytes("a"), value: bytes("one")))
        XCTAssertTrue(try document.set(field: bytes("c"), value: bytes("3")))
        XCTAssertEqual(text(document), #"{"a":"one","b":"2","c":"3"}"#)
        var empty = HashDocument()
        XCTAssertTrue(try empty.set(field: [], value: []))
        XCTAssertEqual(text(empty), #"{"":""}"#)
    }

    func testRemoveAndSubset() throws {
        var document = try HashDocument(json: bytes(#"{"a":"1","b":"2","c":"3","d":"4"}"#))
        let subset = document.subset(fields: [bytes("c"), bytes("x"), bytes("a"), bytes("c")])
        XCTAssertEqual(subset.json(), bytes(#"{"c":"3","a":"1"}"#))
        XCTAssertEqual(document.remove(fields: [bytes("b"), bytes("x"), bytes("d"), bytes("b")]), 2)
        XCTAssertEqual(text(document), #"{"a":"1","c":"3"}"#)
        XCTAssertEqual(document.remove(fields: [bytes("x")]), 0)
        XCTAssertTrue(try document.set(field: bytes("b"), value: bytes("again")))
        XCTAssertEqual(text(document), #"{"a":"1","c":"3","b":"again"}"#)
        XCTAssertEqual(document.remove(fields: document.fields), 3)
        XCTAssertTrue(document.isEmpty)
        XCTAssertEqual(text(document), "{}")
    }

    func testEscapesOnOutput() throws {
        var document = HashDocument()
        let controls: [UInt8] = [0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x08, 0x0C, 0x00, 0x1F, 0x7F, 0x2F]
        try document.set(field: bytes("q\"b\\"), value: controls)
        try document.set(field: bytes("ünï"), value: bytes("世界 ✓"))
        let expected = #"{"q\"b\\":"\"\\\n\r\t\b\f\u0000\u001f"# + "\u{7F}/\",\"ünï\":\"世界 ✓\"}"
        XCTAssertEqual(text(document), expected)
        XCTAssertEqual(try HashDocument(json: document.json()), document)
    }

    func testDecodesEscapesOnInput() throws {
        let document = try HashDocument(json: bytes(#"{"k":"\"\\\/\b\f\n\r\t\u0041\u00e9\u4e16\ud83d\ude00"}"#))
        XCTAssertEqual(document[bytes("k")], .string(bytes("\"\\/\u{8}\u{C}\n\r\tAé世😀")))
    }

    func testKeepsOtherValuesVerbatim() throws {
        let json = #"{"n": -1.5e+3 ,"t":true,"f":false,"z":null,"a":[1, "x", {"y" : [ ]}],"o":{"k":"v\u0041"},"s":"x"}"#
        var document = try HashDocument(json: bytes(json))
        XCTAssertEqual(document[bytes("n")], .json(bytes("-1.5e+3")))
        XCTAssertEqual(document[bytes("a")], .json(bytes(#"[1, "x", {"y" : [ ]}]"#)))
        XCTAssertEqual(document[bytes("o")], .json(bytes(#"{"k":"v\u0041"}"#)))
        try document.set(field: bytes("s"), value: bytes("y"))
        XCTAssertEqual(
            text(document),
            #"{"n":-1.5e+3,"t":true,"f":false,"z":null,"a":[1, "x", {"y" : [ ]}],"o":{"k":"v\u0041"},"s":"y"}"#)
    }

    func testDuplicateFieldKeepsFirstPositionAndLastValue() throws {
        let document = try HashDocument(json: bytes(#"{"a":"1","b":"2","a":"3"}"#))
        XCTAssertEqual(text(document), #"{"a":"3","b":"2"}"#)
    }

    func testRejectsInvalidUTF8NamingTheField() throws {
        assertInvalid([0x7B, 0x22, 0x61, 0xFF, 0x22, 0x3A, 0x22, 0x22, 0x7D], #"field "a\xFF" is not valid UTF-8"#)
        assertInvalid(bytes(#"{"hp":""#) + [0xC3, 0x28] + bytes(#""}"#), #"value of field "hp" is not valid UTF-8"#)
        assertInvalid(bytes(#"{"hp":[""#) + [0xED, 0xA0, 0x80] + bytes(#""]}"#), #"value of field "hp""#)  // surrogate
        assertInvalid(bytes(#"{"k":"\ud800"}"#), "unpaired surrogate")
        var document = HashDocument()
        XCTAssertThrowsError(try document.set(field: [0xC0, 0x80], value: [])) { error in
            XCTAssertEqual((error as? EngineError)?.code, .invalidHash)
            XCTAssertEqual((error as? EngineError)?.message, #"field "\xC0\x80" is not valid UTF-8"#)
        }
        XCTAssertThrowsError(try document.set(field: bytes("hp"), value: [0xF4, 0x90, 0x80, 0x80])) { error in
            XCTAssertEqual((error as? EngineError)?.message, #"value of field "hp" is not valid UTF-8"#)
        }
        XCTAssertTrue(document.isEmpty)
    }

    func testRejectsWhatIsNotOneObject() {
        assertInvalid([], "empty")
        assertInvalid(bytes("null"), "not an object")
        assertInvalid(bytes(#"["a"]"#), "not an object")
        assertInvalid(bytes(#""a""#), "not an object")
        assertInvalid(bytes(#"{"a":"1"} {}"#), "bytes follow")
        assertInvalid(bytes(#"{"a":"1",}"#), "expected a field name")
        assertInvalid(bytes(#"{"a" "1"}"#), "expected ':'")
        assertInvalid(bytes(#"{"a":"1""#), "JSON ends")
        assertInvalid(bytes(#"{"a":"1}"#), "unterminated string")
        assertInvalid(bytes("{\"a\":\"\n\"}"), "control character")
        assertInvalid(bytes(#"{"a":01}"#), "expected ',' or '}'")
        assertInvalid(bytes(#"{"a":1.}"#), "invalid number")
        assertInvalid(bytes(#"{"a":tru}"#), "invalid JSON value")
        assertInvalid(bytes(#"{"a":[1,]}"#), "invalid JSON value")
        assertInvalid(bytes(#"{"a":"\x"}"#), "invalid escape")
        assertInvalid(bytes(#"{1:"a"}"#), "expected a field name")
    }

    func testDepthAndSizeAreBounded() throws {
        let nesting = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let deep = bytes(#"{"a":"# + nesting + "}")
        assertInvalid(deep, "nests deeper than 64 levels")
        let limited = HashDocument.Limits(maxDepth: 3, maxBytes: 20)
        XCTAssertNoThrow(try HashDocument(json: bytes(#"{"a":[[[]]]}"#), limits: limited))
        XCTAssertThrowsError(try HashDocument(json: bytes(#"{"a":[[[[]]]]}"#), limits: limited))
        XCTAssertThrowsError(try HashDocument(json: bytes(#"{"a":"0123456789abcdef"}"#), limits: limited)) { error in
            XCTAssertEqual((error as? EngineError)?.code, .invalidHash)
        }
    }
}
