extension Term {
    /// The term in Erlang's printed syntax on one line, as `io_lib:format("~0p", [Term])` gives
    /// it on OTP 25 with the default Latin-1 printable range: `{hp,100,[sword,<<"shield">>]}`.
    ///
    /// Atoms are quoted when needed (`'Hello World'`, `'[]'`), lists of printable Latin-1
    /// character codes print as `"strings"`, printable binaries as `<<"text">>` and others as
    /// `<<1,2,3>>`, bitstrings as `<<1,2:3>>`, maps as `#{k => v}` with keys in Erlang's map
    /// key order (integers before floats), floats in Erlang's shortest round-trip form (`1.0`,
    /// `0.1`, `1.0e10`, `-3.5e-7`), and bignums in decimal.
    ///
    /// Where the output differs from `erl`'s:
    /// - Pids, ports and references print with node number 0 (`<0.85.0>`, `#Port<0.7>`,
    ///   `#Ref<0.3.2.1>`): erl prints 0 for its own node and, for another node, that node's
    ///   index in its private node table, which has no meaning outside that `erl`.
    /// - Maps of more than 32 keys print in key order; erl prints them in its hash order.
    /// - `'maybe'` and `'else'` print unquoted, as OTP 25 prints them; OTP 27 quotes them.
    public var printed: String {
        var out = ""
        TermPrinter.write(self, to: &out)
        return out
    }
}

/// Writes terms in Erlang's `~0p` syntax.
enum TermPrinter {
    static func write(_ term: Term, to out: inout String) {
        switch term {
        case .integer(let value):
            out += String(value)
        case .bigInteger(let value):
            out += value.decimal
        case .float(let value):
            writeFloat(value, to: &out)
        case .atom(let atom):
            writeAtom(atom, to: &out)
        case .tuple(let elements):
            out += "{"
            writeSequence(elements, to: &out)
            out += "}"
        case .emptyList:
            out += "[]"
        case .list, .string:
            writeList(term, to: &out)
        case .binary(let bytes):
            if bytes.isEmpty {
                out += "<<>>"
            } else if bytes.allSatisfy(isPrintable) {
                out += "<<\""
                for byte in bytes { writeStringCharacter(UInt32(byte), to: &out) }
                out += "\">>"
            } else {
                out += "<<"
                writeIntegers(bytes[...], to: &out)
                out += ">>"
            }
        case .bitBinary(let bytes, let bits):
            out += "<<"
            guard let last = bytes.last, bits >= 1 && bits <= 7 else {
                writeIntegers(bytes[...], to: &out)
                out += ">>"
                return
            }
            if bytes.count > 1 {
                writeIntegers(bytes.dropLast(), to: &out)
                out += ","
            }
            out += "\(last >> (8 - bits)):\(bits)>>"
        case .map(let pairs):
            out += "#{"
            var first = true
            for (key, value) in Term.sortedPairs(pairs) {
                if !first { out += "," }
                first = false
                write(key, to: &out)
                out += " => "
                write(value, to: &out)
            }
            out += "}"
        case .pid(let pid):
            out += "<0.\(pid.id).\(pid.serial)>"
        case .reference(let reference):
            out += "#Ref<0"
            for word in reference.ids.reversed() { out += ".\(word)" }
            out += ">"
        case .port(let port):
            out += "#Port<0.\(port.id)>"
        case .export(let module, let function, let arity):
            out += "fun "
            writeAtom(module, to: &out)
            out += ":"
            writeAtom(function, to: &out)
            out += "/\(arity)"
        case .fun(let fun):
            out += "#Fun<"
            writeAtom(fun.module, to: &out)
            out += ".\(fun.oldIndex).\(fun.oldUniq)>"
        }
    }

    private static func writeSequence(_ elements: [Term], to out: inout String) {
        var first = true
        for element in elements {
            if !first { out += "," }
            first = false
            write(element, to: &out)
        }
    }

    private static func writeIntegers(_ bytes: ArraySlice<UInt8>, to out: inout String) {
        var first = true
        for byte in bytes {
            if !first { out += "," }
            first = false
            out += String(byte)
        }
    }

    // MARK: Lists and strings

    private static func writeList(_ term: Term, to out: inout String) {
        let (elements, tail) = term.flattenedList
        if elements.isEmpty {
            write(tail, to: &out)
            return
        }
        if case .emptyList = tail, elements.allSatisfy(isPrintableCharacter) {
            out += "\""
            for case .integer(let code) in elements { writeStringCharacter(UInt32(code), to: &out) }
            out += "\""
            return
        }
        out += "["
        writeSequence(elements, to: &out)
        if case .emptyList = tail {} else {
            out += "|"
            write(tail, to: &out)
        }
        out += "]"
    }

    private static func isPrintableCharacter(_ term: Term) -> Bool {
        guard case .integer(let code) = term, code >= 0 && code <= 255 else { return false }
        return isPrintable(UInt8(code))
    }

    /// Erlang's printable Latin-1 characters (`io_lib:printable_latin1_list/1`): the graphic
    /// ASCII and Latin-1 ranges and the controls that have a letter escape.
    private static func isPrintable(_ byte: UInt8) -> Bool {
        switch byte {
        case 32...126, 160...255: true
        case 8...13, 27: true  // \b \t \n \v \f \r \e
        default: false
        }
    }

    /// One character inside `"..."`: only printable characters reach here.
    private static func writeStringCharacter(_ code: UInt32, to out: inout String) {
        switch code {
        case 0x22: out += "\\\""
        case 0x5C: out += "\\\\"
        default: writeCharacter(code, to: &out)
        }
    }

    /// A character inside a quoted string or atom, escaped as `io_lib` escapes it.
    private static func writeCharacter(_ code: UInt32, to out: inout String) {
        switch code {
        case 10: out += "\\n"
        case 13: out += "\\r"
        case 9: out += "\\t"
        case 11: out += "\\v"
        case 8: out += "\\b"
        case 12: out += "\\f"
        case 27: out += "\\e"
        case 127: out += "\\d"
        case 0..<32, 128..<160:
            let octal = String(code, radix: 8)
            out += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
        case 256...:
            out += "\\x{" + String(code, radix: 16, uppercase: true) + "}"
        default:
            if let scalar = Unicode.Scalar(code) { out.unicodeScalars.append(scalar) }
        }
    }

    // MARK: Atoms

    /// Erlang's reserved words, which print quoted (OTP 25's list).
    private static let reservedWords: Set<String> = [
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
        "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
        "rem", "try", "when", "xor",
    ]

    static func writeAtom(_ atom: Atom, to out: inout String) {
        if needsQuotes(atom.name) {
            out += "'"
            for scalar in atom.name.unicodeScalars {
                switch scalar.value {
                case 0x27: out += "\\'"
                case 0x5C: out += "\\\\"
                default: writeCharacter(scalar.value, to: &out)
                }
            }
            out += "'"
        } else {
            out += atom.name
        }
    }

    /// True unless the name is a lowercase letter followed by letters, digits, `_` and `@`
    /// (Latin-1 letters included) and is not a reserved word.
    private static func needsQuotes(_ name: String) -> Bool {
        var scalars = name.unicodeScalars.makeIterator()
        guard let first = scalars.next(), isLowercaseLetter(first.value) else { return true }
        while let scalar = scalars.next() {
            let code = scalar.value
            let isNameCharacter =
                isLowercaseLetter(code) || (code >= 0x41 && code <= 0x5A) || (code >= 0x30 && code <= 0x39)
                || code == 0x5F || code == 0x40 || (code >= 0xC0 && code <= 0xDE && code != 0xD7)
            if !isNameCharacter { return true }
        }
        return reservedWords.contains(name)
    }

    private static func isLowercaseLetter(_ code: UInt32) -> Bool {
        (code >= 0x61 && code <= 0x7A) || (code >= 0xDF && code <= 0xFF && code != 0xF7)
    }

    // MARK: Floats

    /// Writes a float as Erlang's `io_lib_format:fwrite_g/1` does: the shortest digits that
    /// read back as the same double, placed in whichever of the plain (`123.0`, `0.001`) and
    /// exponent (`1.0e10`) forms is shorter, the plain one on a tie; integral values of 2^53
    /// and more always take the exponent form.
    static func writeFloat(_ value: Double, to out: inout String) {
        if value.sign == .minus { out += "-" }
        if value == 0 {
            out += "0.0"
            return
        }
        let (digits, place) = shortestDigits(value.magnitude)
        let count = digits.count
        if place > 0 && place < count {
            out += digits.prefix(place) + "." + digits.dropFirst(place)
            return
        }
        if place == 0 {
            out += "0." + digits
            return
        }
        let exponent = String(place - 1)
        // The exponent form is "d.ddd" + "e" + exponent, with ".0" added for a single digit.
        let exponentCost = exponent.count + 1 + (count == 1 ? 2 : 1)
        if place < 0 {
            if 2 - place <= exponentCost {
                out += "0." + String(repeating: "0", count: -place) + digits
                return
            }
        } else if place - count + 2 <= exponentCost && value.magnitude < 9_007_199_254_740_992.0 {
            // Plain form only below 2^53, where every integer is exact.
            out += digits + String(repeating: "0", count: place - count) + ".0"
            return
        }
        out += digits.prefix(1) + "." + (count == 1 ? "0" : digits.dropFirst(1)) + "e" + exponent
    }

    /// The shortest decimal digits that round-trip to `value` (positive and finite), without
    /// leading or trailing zeros, and the position of the decimal point: the value is
    /// `0.digits × 10^place`. Swift's own description already finds the shortest round-trip
    /// digits; this only takes its text apart.
    private static func shortestDigits(_ value: Double) -> (String, Int) {
        var digits = ""
        var integerDigits = 0
        var seenPoint = false
        var exponent = 0
        var text = value.description.utf8[...]
        if let e = text.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            exponent = Int(String(decoding: text[text.index(after: e)...], as: UTF8.self)) ?? 0
            text = text[..<e]
        }
        for byte in text {
            if byte == UInt8(ascii: ".") {
                seenPoint = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits.unicodeScalars.append(Unicode.Scalar(byte))
                if !seenPoint { integerDigits += 1 }
            }
        }
        var place = integerDigits + exponent
        while digits.hasPrefix("0") {
            digits.removeFirst()
            place -= 1
        }
        while digits.hasSuffix("0") { digits.removeLast() }
        return (digits, place)
    }
}
