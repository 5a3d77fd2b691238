/// The commands' effect on one shard, decided under its lock. Pure: no I/O, time comes in.
extension ShardState {
    /// Applies `command` to the entry of `key`, or says what must happen first.
    mutating func apply(
        _ command: Command, key: UnsafeRawBufferPointer, hash: UInt64, prepared: PreparedValue?,
        now: Int64, durability: Durability, maxValueBytes: Int
    ) -> Step {
        let alwaysPersist = durability == .backend
        switch command {
        case .get:
            guard let id = present(.value, key, hash, now) else { return .load }
            let entry = meta[packed: Int(id)]
            guard entry.isLive else { return .reply(.notFound) }
            touch(id, now)
            return .reply(.value(StoredValue(
                type: entry.type, bytes: value(of: id),
                encoding: entry.flags.contains(.erlangString) ? .erlangString : .bytes)))

        case .set(_, _, let encoding, let persist):
            return write(
                .value, .string, key, hash, prepared!, erlangString: encoding == .erlangString, now: now,
                persist: persist || alwaysPersist, persistReplies: persist ? .persisted : .written)

        case .setTerm(_, _, let persist):
            return write(
                .value, .term, key, hash, prepared!, erlangString: false, now: now,
                persist: persist || alwaysPersist, persistReplies: persist ? .persisted : .written)

        case .delete(_, let persist):
            guard let id = present(.value, key, hash, now) else { return .load }
            return deleteEntry(id, now: now, persist: persist || alwaysPersist, persistReplies: persist ? .persisted : .written)

        case .persist:
            guard let id = present(.value, key, hash, now) else { return .load }
            let entry = meta[packed: Int(id)]
            guard entry.isLive else { return .reply(.notFound) }
            touch(id, now)
            if entry.state != .dirty { return .reply(.persisted(true)) }
            return .persist(id: id, version: entry.version, success: .persisted(true), failure: .persisted(false))

        case .volatileGet:
            guard let id = lookup(.volatile, key, hash: hash), meta[packed: Int(id)].isLive else { return .reply(.notFound) }
            touch(id, now)
            return .reply(.value(StoredValue(type: .volatile, bytes: value(of: id))))

        case .volatileSet:
            if let id = lookup(.volatile, key, hash: hash) {
                do throws(EngineError) { try replaceValue(id, prepared!) } catch { return .reply(.error(error)) }
                touch(id, now)
                return .reply(.written(created: false))
            }
            do throws(EngineError) {
                _ = try insert(namespace: .volatile, type: .volatile, key: key, hash: hash, value: prepared!, state: .clean, now: now)
            } catch {
                return .reply(.error(error))
            }
            return .reply(.written(created: true))

        case .volatileDelete:
            guard let id = lookup(.volatile, key, hash: hash) else { return .reply(.deleted(false)) }
            remove(id)
            return .reply(.deleted(true))

        case .hashGet(_, let fields):
            guard let id = present(.hash, key, hash, now) else { return .load }
            guard meta[packed: Int(id)].isLive else { return .reply(.notFound) }
            touch(id, now)
            let json = value(of: id)
            if fields.isEmpty { return .reply(.hash(json)) }
            do throws(EngineError) {
                let document = try HashDocument(json: json)
                return .reply(.hash(document.subset(fields: fields).json()))
            } catch {
                return .reply(.error(error))
            }

        case .hashSet(_, let field, let fieldValue, let persist):
            guard let id = present(.hash, key, hash, now) else { return .load }
            var document = HashDocument()
            if meta[packed: Int(id)].isLive {
                do throws(EngineError) { document = try HashDocument(json: value(of: id)) } catch { return .reply(.error(error)) }
            }
            let created: Bool
            do throws(EngineError) { created = try document.set(field: field, value: fieldValue) } catch { return .reply(.error(error)) }
            let json = document.json()
            if json.count > maxValueBytes {
                return .reply(.error(EngineError(.valueTooLarge, "the hash would be \(json.count) bytes; the limit is \(maxValueBytes)")))
            }
            let step = write(
                .hash, .hash, key, hash, PreparedValue(json), erlangString: false, now: now,
                persist: persist || alwaysPersist, persistReplies: .written)
            return step.replacingWritten(created: created)

        case .hashDelete(_, let fields, let persist):
            guard let id = present(.hash, key, hash, now) else { return .load }
            guard meta[packed: Int(id)].isLive else { return .reply(.deleted(false)) }
            if fields.isEmpty {
                return deleteEntry(id, now: now, persist: persist || alwaysPersist, persistReplies: .written)
            }
            var document: HashDocument
            do throws(EngineError) { document = try HashDocument(json: value(of: id)) } catch { return .reply(.error(error)) }
            let removed = document.remove(fields: fields)
            if removed == 0 {
                touch(id, now)
                return .reply(.deleted(false))
            }
            if document.isEmpty {
                return deleteEntry(id, now: now, persist: persist || alwaysPersist, persistReplies: .written)
            }
            let step = write(
                .hash, .hash, key, hash, PreparedValue(document.json()), erlangString: false, now: now,
                persist: persist || alwaysPersist, persistReplies: .written)
            return step.replacingWritten(deleted: true)
        }
    }

    /// How a persisted write answers: Brain2's `pset`/`pdel` answer `1`/`0` for persisted or
    /// not; every other command keeps its own reply and answers `persist_failed` on failure.
    enum PersistReplies {
        case persisted
        case written
    }

    /// The entry of a key if memory knows it (live, deleted-but-dirty, or remembered
    /// absent); `nil` when the backend must be asked. Expired not-found records are dropped.
    private mutating func present(_ namespace: Namespace, _ key: UnsafeRawBufferPointer, _ hash: UInt64, _ now: Int64) -> UInt32? {
        guard let id = lookup(namespace, key, hash: hash) else { return nil }
        let entry = meta[packed: Int(id)]
        if entry.state == .absent && entry.lastWrite <= now && isEvictable(id) {
            remove(id)
            return nil
        }
        return id
    }

    private mutating func touch(_ id: UInt32, _ now: Int64) {
        meta.update(Int(id)) { entry in
            entry.lastAccess = now
            entry.flags.insert(.referenced)
        }
    }

    /// Sets a string, term or hash value.
    private mutating func write(
        _ namespace: Namespace, _ type: EntryType, _ key: UnsafeRawBufferPointer, _ hash: UInt64,
        _ value: PreparedValue, erlangString: Bool, now: Int64, persist: Bool, persistReplies: PersistReplies
    ) -> Step {
        guard let id = present(namespace, key, hash, now) else { return .load }
        let entry = meta[packed: Int(id)]
        let created = !entry.isLive
        let oldDirty = entry.state == .dirty ? Int(entry.rawLength) : 0
        if dirtyBytes.value - oldDirty + value.raw.count > settings.maxDirtyBytes, value.raw.count > oldDirty {
            return .reply(.error(EngineError(
                .dirtyLimit,
                "max_dirty_bytes (\(settings.maxDirtyBytes)) reached: the write-back is behind; retry later")))
        }
        do throws(EngineError) { try replaceValue(id, value) } catch { return .reply(.error(error)) }
        var changed = meta[Int(id)]
        changed.type = type
        changed.flags.remove(.tombstone)
        if erlangString { changed.flags.insert(.erlangString) } else { changed.flags.remove(.erlangString) }
        meta[Int(id)] = changed
        markDirty(id, now: now, oldDirtyBytes: oldDirty)
        let reply = Reply.written(created: created)
        guard persist else { return .reply(reply) }
        switch persistReplies {
        case .persisted:
            return .persist(id: id, version: meta[packed: Int(id)].version, success: .persisted(true), failure: .persisted(false))
        case .written:
            return .persist(id: id, version: meta[packed: Int(id)].version, success: reply, failure: .error(Self.persistFailed))
        }
    }

    /// Deletes a string, term or whole hash: a dirty tombstone until the backend object is
    /// gone, or at once when the backend never had it.
    private mutating func deleteEntry(_ id: UInt32, now: Int64, persist: Bool, persistReplies: PersistReplies) -> Step {
        let entry = meta[packed: Int(id)]
        let existed = entry.isLive
        let success: Reply = persistReplies == .persisted ? .persisted(true) : .deleted(existed)
        if !existed {
            // Already deleted; a pending delete may still be on its way to the backend.
            if persist && entry.state == .dirty {
                return .persist(id: id, version: entry.version, success: success, failure: persistReplies == .persisted ? .persisted(false) : .error(Self.persistFailed))
            }
            return .reply(success)
        }
        let oldDirty = entry.state == .dirty ? Int(entry.rawLength) : 0
        if entry.backendType == EntryMeta.noType && !entry.flags.contains(.writing) {
            // The backend never held this key: forget it, and remember it as absent. The log
            // must still say so, or a replay would bring the value back.
            if let log {
                pendingLSN = log.append(type: entry.type, key: key(of: id), value: nil, encoding: .bytes)
            }
            dirtyBytes.add(-oldDirty)
            try! replaceValue(id, nil)
            var forgotten = meta[Int(id)]
            forgotten.state = .absent
            forgotten.flags.remove(.queued)
            forgotten.version += 1
            forgotten.persistedVersion = forgotten.version
            forgotten.lastWrite = now + settings.negativeTTL
            meta[Int(id)] = forgotten
            return .reply(success)
        }
        // Shrinking to no value always fits the current chunk.
        try! replaceValue(id, nil)
        meta.update(Int(id)) { entry in
            entry.flags.insert(.tombstone)
            entry.flags.remove(.erlangString)
        }
        markDirty(id, now: now, oldDirtyBytes: oldDirty)
        guard persist else { return .reply(success) }
        return .persist(
            id: id, version: meta[packed: Int(id)].version, success: success,
            failure: persistReplies == .persisted ? .persisted(false) : .error(Self.persistFailed))
    }

    static let persistFailed = EngineError(
        .persistFailed, "the backend did not acknowledge in time; the change is kept and will be written back")
}

extension Step {
    /// The same step with a `written` reply carrying another `created` flag.
    func replacingWritten(created: Bool) -> Step {
        switch self {
        case .reply(.written): .reply(.written(created: created))
        case .persist(let id, let version, .written, let failure):
            .persist(id: id, version: version, success: .written(created: created), failure: failure)
        default: self
        }
    }

    /// The same step with a `written` reply turned into `deleted`.
    func replacingWritten(deleted: Bool) -> Step {
        switch self {
        case .reply(.written): .reply(.deleted(deleted))
        case .persist(let id, let version, .written, let failure):
            .persist(id: id, version: version, success: .deleted(deleted), failure: failure)
        default: self
        }
    }
}
