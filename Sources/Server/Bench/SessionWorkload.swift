/// The shape of a session replay: users arrive evenly over `ramp`; each reads its record
/// once (a cold read), then `updates` times reads it and writes it back, evenly over
/// `sessionTime`, then goes idle.
struct SessionPlan: Equatable, Sendable {
    /// How many users; user `u` has key number `u`.
    var users: Int
    /// How many read-then-write updates each user makes after its first read.
    var updates: Int
    /// From a user's first read to its last update, in nanoseconds.
    var sessionTime: UInt64
    /// From the first user's arrival to the last one's, in nanoseconds.
    var ramp: UInt64

    /// When user `user` arrives, in nanoseconds after the start.
    func arrival(of user: Int) -> UInt64 {
        users <= 1 ? 0 : UInt64((Double(ramp) * Double(user) / Double(users - 1)).rounded())
    }

    /// When user `user` starts update `step` (1 ... updates), in nanoseconds after the start.
    func updateTime(of user: Int, step: Int) -> UInt64 {
        arrival(of: user) + UInt64((Double(sessionTime) * Double(step) / Double(max(updates, 1))).rounded())
    }

    /// How long the whole replay lasts, in nanoseconds.
    var totalTime: UInt64 { ramp + (updates > 0 ? sessionTime : 0) }
}

/// A min-heap of (due time, slot): the next scheduled request of each user.
struct TimerHeap: Sendable {
    private var entries: [(due: UInt64, slot: Int32)] = []

    /// Whether nothing is scheduled.
    var isEmpty: Bool { entries.isEmpty }

    /// The earliest due time, or `nil`.
    var earliest: UInt64? { entries.first?.due }

    /// Schedules `slot` at `due`.
    mutating func push(due: UInt64, slot: Int32) {
        entries.append((due, slot))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].due < entries[parent].due else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due by `now`.
    mutating func popDue(now: UInt64) -> (due: UInt64, slot: Int32)? {
        guard let first = entries.first, first.due <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < entries.count else { break }
                var smallest = left
                if left + 1 < entries.count, entries[left + 1].due < entries[left].due { smallest = left + 1 }
                guard entries[smallest].due < entries[parent].due else { break }
                entries.swapAt(smallest, parent)
                parent = smallest
            }
        }
        return first
    }
}

/// The session replay over one thread's connections. User `u` talks over connection
/// `u mod connections`, so its requests keep their order; a connection carries many users,
/// up to the pipeline depth at once.
///
/// Open loop: requests leave at their scheduled time, not when the previous reply came (a
/// user's write waits only for its own read). How late they left is recorded as lag.
struct SessionWorkload: BenchWorkload {
    private struct User {
        var key: Int
        var local: Int
        /// 0 before the cold read; k after update k's write was answered.
        var step: Int
        var next: OpKind
        var dueAt: UInt64
    }

    private let encoder: RequestEncoder
    private let plan: SessionPlan
    private let start: UInt64
    private var users: [User] = []
    private var timers = TimerHeap()
    private var ready: [[Int32]]
    private var readyHeads: [Int]
    private var marked: [Bool]
    private var done = 0
    private var random: BenchRandom
    private(set) var stats = BenchStats()

    /// The users of the connections numbered `connectionIndexes` out of `connections`, the
    /// replay starting at `start` (``BenchClock`` ns).
    init(encoder: RequestEncoder, plan: SessionPlan, start: UInt64, seed: UInt64, connections: Int, connectionIndexes: [Int]) {
        self.encoder = encoder
        self.plan = plan
        self.start = start
        self.ready = Array(repeating: [], count: connectionIndexes.count)
        self.readyHeads = Array(repeating: 0, count: connectionIndexes.count)
        self.marked = Array(repeating: false, count: connectionIndexes.count)
        self.random = BenchRandom(seed: seed, stream: UInt64(connectionIndexes.first ?? 0) | 0x5E55_0000_0000)
        for (local, index) in connectionIndexes.enumerated() {
            var user = index
            while user < plan.users {
                let due = start + plan.arrival(of: user)
                timers.push(due: due, slot: Int32(users.count))
                users.append(User(key: user, local: local, step: 0, next: .coldGet, dueAt: due))
                user += connections
            }
        }
    }

    mutating func issue(local: Int, connection: inout BenchConnection, room: Int, now: UInt64) {
        var left = room
        while left > 0, readyHeads[local] < ready[local].count {
            let slot = ready[local][readyHeads[local]]
            readyHeads[local] += 1
            let user = users[Int(slot)]
            switch user.next {
            case .set:
                encoder.appendSet(key: user.key, value: random.below(encoder.values.count), to: &connection.outbox)
            default:
                encoder.appendGet(key: user.key, to: &connection.outbox)
            }
            connection.pending.push(PendingRequest(sentAt: now, kind: user.next, subject: slot))
            stats.recordLag(now > user.dueAt ? now - user.dueAt : 0)
            left -= 1
        }
        if readyHeads[local] == ready[local].count {
            ready[local].removeAll(keepingCapacity: true)
            readyHeads[local] = 0
        } else if readyHeads[local] >= 1024, readyHeads[local] * 2 >= ready[local].count {
            // A connection that never empties its queue: drop what was taken.
            ready[local].removeFirst(readyHeads[local])
            readyHeads[local] = 0
        }
    }

    mutating func complete(_ request: PendingRequest, reply: BenchReply, local: Int, now: UInt64) {
        stats.record(reply, kind: request.kind, sentAt: request.sentAt, receivedAt: now)
        let slot = Int(request.subject)
        switch request.kind {
        case .coldGet:
            advance(slot)
        case .warmGet:
            // The write of this update leaves as soon as its read is answered.
            users[slot].next = .set
            users[slot].dueAt = now
            ready[local].append(Int32(slot))
        default:
            users[slot].step += 1
            advance(slot)
        }
    }

    /// Schedules the user's next update, or ends its session.
    private mutating func advance(_ slot: Int) {
        let step = users[slot].step + 1
        guard step <= plan.updates else {
            done += 1
            return
        }
        let due = start + plan.updateTime(of: users[slot].key, step: step)
        users[slot].next = .warmGet
        users[slot].dueAt = due
        timers.push(due: due, slot: Int32(slot))
    }

    mutating func takeDue(now: UInt64, into connections: inout [Int]) {
        while let (_, slot) = timers.popDue(now: now) {
            let local = users[Int(slot)].local
            ready[local].append(slot)
            if !marked[local] {
                marked[local] = true
                connections.append(local)
            }
        }
        for local in connections { marked[local] = false }
    }

    var nextDue: UInt64? { timers.earliest }

    func isFinished(now: UInt64) -> Bool { done == users.count }
}
