extension Console {
    /// Draws the editor's line on a terminal: a pure function from the prompt, the buffer, the
    /// cursor and the terminal's width to the bytes that redraw the line.
    ///
    /// The line always fits on one terminal row: when it is wider, it scrolls horizontally so
    /// that the cursor stays in view, as in linenoise's single-line mode.
    enum LineRenderer {
        /// The bytes that redraw the current row with `prompt` and the visible part of
        /// `buffer`, clear what is left of the row, and put the cursor at `cursor`.
        static func render(prompt: String, buffer: [Unicode.Scalar], cursor: Int, columns: Int) -> [UInt8] {
            let promptWidth = prompt.unicodeScalars.reduce(0) { $0 + width(of: $1) }
            // One column stays free so that a cursor after the last character does not wrap.
            let available = max(1, columns - promptWidth - 1)
            let widths = buffer.map(width(of:))

            // The first visible scalar: the smallest that keeps the cursor in view.
            var start = 0
            var beforeCursor = widths[0..<cursor].reduce(0, +)
            while beforeCursor > available, start < cursor {
                beforeCursor -= widths[start]
                start += 1
            }
            // Never start on a combining mark: show it with its base character or not at all.
            while start < cursor, widths[start] == 0 { start += 1 }
            beforeCursor = widths[start..<cursor].reduce(0, +)

            var end = start
            var used = 0
            while end < buffer.count, used + widths[end] <= available {
                used += widths[end]
                end += 1
            }

            var visible = ""
            visible.unicodeScalars.append(contentsOf: buffer[start..<end])
            var out: [UInt8] = [0x0D]
            out.append(contentsOf: prompt.utf8)
            out.append(contentsOf: visible.utf8)
            out.append(contentsOf: "\u{1B}[0K\r".utf8)
            let column = promptWidth + beforeCursor
            if column > 0 { out.append(contentsOf: "\u{1B}[\(column)C".utf8) }
            return out
        }

        /// The bytes that clear the screen and put the cursor home (Ctrl-L), before a redraw.
        static let clearScreen: [UInt8] = Array("\u{1B}[H\u{1B}[2J".utf8)

        /// How many terminal columns a scalar takes: 0 for combining marks and format
        /// characters, 2 for East Asian wide characters and emoji, 1 otherwise.
        static func width(of scalar: Unicode.Scalar) -> Int {
            let value = scalar.value
            if value < 0x300 { return 1 }
            switch scalar.properties.generalCategory {
            case .nonspacingMark, .enclosingMark, .format:
                return 0
            default:
                break
            }
            if scalar.properties.isEmojiPresentation { return 2 }
            switch value {
            case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
                0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
                0xFFE0...0xFFE6, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
                return 2
            default:
                return 1
            }
        }
    }
}
