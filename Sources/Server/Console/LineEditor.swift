extension Console {
    /// The line editor of the interactive console, as a pure state machine.
    ///
    /// Keys go in (``handle(_:)``); the buffer, the cursor and what the terminal must do come
    /// out. It does no I/O: ``LineRenderer`` turns its state into bytes for the terminal.
    ///
    /// The cursor counts Unicode scalars. It never rests between a character and the
    /// combining marks that follow it: moves and deletions take them together.
    struct LineEditor: Sendable {
        /// What the terminal should do after a key.
        enum Action: Equatable, Sendable {
            /// Nothing changed.
            case none
            /// The line or the cursor changed: redraw the line.
            case redraw
            /// Clear the screen, then redraw the line (Ctrl-L).
            case clearScreen
            /// The key did nothing here (no more history, nothing to delete): ring the bell.
            case bell
            /// Ctrl-C: the line was abandoned and the editor is empty again. The terminal shows
            /// `^C` and starts a fresh line.
            case cancel
            /// Enter: this line was entered, and the editor is empty again.
            case submit(String)
            /// Ctrl-D on an empty line: the user is done.
            case endOfInput
        }

        /// The line being edited.
        private(set) var buffer: [Unicode.Scalar] = []
        /// Where the next character goes: an index into ``buffer``, `0...buffer.count`.
        private(set) var cursor = 0
        /// The lines entered before; Up and Down walk them. The caller adds entered lines.
        var history: CommandHistory
        /// The history entry shown, or `nil` while editing a new line.
        private(set) var historyIndex: Int?
        /// The new line being edited when the walk through history began.
        private var draft: [Unicode.Scalar] = []
        /// The words Tab completes at the start of the line.
        private let completions: [String]

        init(history: CommandHistory = CommandHistory(), completions: [String] = []) {
            self.history = history
            self.completions = completions
        }

        /// The line being edited, as text.
        var line: String {
            var text = ""
            text.unicodeScalars.append(contentsOf: buffer)
            return text
        }

        /// Applies one key.
        mutating func handle(_ key: Key) -> Action {
            switch key {
            case .character(let scalar):
                buffer.insert(scalar, at: cursor)
                cursor += 1
                return .redraw
            case .enter:
                let entered = line
                reset()
                return .submit(entered)
            case .tab:
                return complete()
            case .backspace, .control("h"):
                guard cursor > 0 else { return .bell }
                let start = previousBoundary(before: cursor)
                buffer.removeSubrange(start..<cursor)
                cursor = start
                return .redraw
            case .delete:
                return deleteForward()
            case .left, .control("b"):
                guard cursor > 0 else { return .bell }
                cursor = previousBoundary(before: cursor)
                return .redraw
            case .right, .control("f"):
                guard cursor < buffer.count else { return .bell }
                cursor = nextBoundary(after: cursor)
                return .redraw
            case .home, .control("a"):
                cursor = 0
                return .redraw
            case .end, .control("e"):
                cursor = buffer.count
                return .redraw
            case .wordLeft:
                cursor = wordStart(before: cursor)
                return .redraw
            case .wordRight:
                cursor = wordEnd(after: cursor)
                return .redraw
            case .up, .control("p"):
                return historyBack()
            case .down, .control("n"):
                return historyForward()
            case .control("c"):
                reset()
                return .cancel
            case .control("d"):
                return buffer.isEmpty ? .endOfInput : deleteForward()
            case .control("u"):
                buffer.removeSubrange(0..<cursor)
                cursor = 0
                return .redraw
            case .control("k"):
                buffer.removeSubrange(cursor...)
                return .redraw
            case .control("w"):
                let start = wordStart(before: cursor)
                guard start < cursor else { return .bell }
                buffer.removeSubrange(start..<cursor)
                cursor = start
                return .redraw
            case .control("l"):
                return .clearScreen
            case .control:
                return .none
            }
        }

        private mutating func reset() {
            buffer = []
            cursor = 0
            historyIndex = nil
            draft = []
        }

        private mutating func deleteForward() -> Action {
            guard cursor < buffer.count else { return .bell }
            buffer.removeSubrange(cursor..<nextBoundary(after: cursor))
            return .redraw
        }

        private mutating func historyBack() -> Action {
            let entries = history.entries
            let target: Int
            if let index = historyIndex {
                guard index > 0 else { return .bell }
                target = index - 1
            } else {
                guard !entries.isEmpty else { return .bell }
                draft = buffer
                target = entries.count - 1
            }
            historyIndex = target
            show(Array(entries[target].unicodeScalars))
            return .redraw
        }

        private mutating func historyForward() -> Action {
            guard let index = historyIndex else { return .bell }
            if index + 1 < history.entries.count {
                historyIndex = index + 1
                show(Array(history.entries[index + 1].unicodeScalars))
            } else {
                historyIndex = nil
                show(draft)
                draft = []
            }
            return .redraw
        }

        private mutating func show(_ scalars: [Unicode.Scalar]) {
            buffer = scalars
            cursor = buffer.count
        }

        /// Completes the first word from ``completions``: all of it when one word matches,
        /// else as far as the matches agree.
        private mutating func complete() -> Action {
            let typed = buffer[0..<cursor]
            guard !typed.isEmpty, cursor == buffer.count, !typed.contains(where: Console.isSpace) else {
                return .bell
            }
            var prefix = ""
            prefix.unicodeScalars.append(contentsOf: typed)
            let lowered = prefix.lowercased()
            let matches = completions.filter { $0.hasPrefix(lowered) }
            guard let first = matches.first else { return .bell }
            var common = Array(first.unicodeScalars)
            for match in matches.dropFirst() {
                common = Array(zip(common, match.unicodeScalars).prefix { $0 == $1 }.map(\.0))
            }
            if matches.count == 1 { common.append(" ") }
            guard common.count > typed.count else { return .bell }
            buffer = common
            cursor = buffer.count
            return .redraw
        }

        private func previousBoundary(before index: Int) -> Int {
            var position = index - 1
            while position > 0, LineRenderer.width(of: buffer[position]) == 0 { position -= 1 }
            return max(position, 0)
        }

        private func nextBoundary(after index: Int) -> Int {
            var position = index + 1
            while position < buffer.count, LineRenderer.width(of: buffer[position]) == 0 { position += 1 }
            return position
        }

        /// The start of the word before `index`, skipping blanks first (as Ctrl-W in a shell).
        private func wordStart(before index: Int) -> Int {
            var position = index
            while position > 0, Console.isSpace(buffer[position - 1]) { position -= 1 }
            while position > 0, !Console.isSpace(buffer[position - 1]) { position -= 1 }
            return position
        }

        /// The end of the word after `index`, skipping blanks first.
        private func wordEnd(after index: Int) -> Int {
            var position = index
            while position < buffer.count, Console.isSpace(buffer[position]) { position += 1 }
            while position < buffer.count, !Console.isSpace(buffer[position]) { position += 1 }
            return position
        }
    }
}
