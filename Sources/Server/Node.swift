import Engine
import ErlangTransport
import Foundation
import LineProtocol
import LocalDiskBackend
import Logging
import S3Backend
import ServiceLifecycle
import Synchronization

/// A node: the backend, the store and its write-back, the transports and the admin port,
/// composed from configuration and run under one service group.
///
/// Start-up: configuration, backend, spill recovery (written back first), then services.
/// Shutdown (SIGTERM, SIGINT, `shutdown`): transports stop first, the write-back drains, the
/// backend closes. If the backend stays unreachable past `shutdown_timeout`, the dirty entries
/// go to a spill file in `data_dir` and the process exits 1.
enum Node {
    private static let bootstrapped = Mutex(false)

    static func run(arguments: [String]) async -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        let configuration: BrainConfiguration
        do {
            configuration = try BrainConfiguration.load(
                arguments: arguments, environment: environment,
                currentDirectory: FileManager.default.currentDirectoryPath)
        } catch {
            printError("brain: \(error)")
            return 2
        }
        bootstrapLogging(level: Logger.Level(rawValue: configuration.logLevel.rawValue) ?? .info)
        let logger = Logger(label: "brain")

        // The Erlang transport's cookie: the secret, else ~/.erlang.cookie read as erl reads it.
        var erlangCookie: String?
        if let node = configuration.erlangNode {
            if let secret = configuration.secret {
                erlangCookie = secret
            } else {
                do {
                    erlangCookie = try ErlangCookie.load(home: environment["HOME"] ?? NSHomeDirectory())
                } catch {
                    printError(
                        "brain: config: erlang_node = \"\(node)\" needs a cookie: set secret (BRAIN_SECRET, --secret) or create ~/.erlang.cookie as erl does (\(error.message))")
                    return 2
                }
            }
        }

        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        } catch {
            printError("brain: config: data_dir = \(configuration.dataDirectory): cannot create it: \(error.localizedDescription)")
            return 2
        }

        let backend: any Backend
        do {
            backend = try makeBackend(configuration, environment: environment, logger: logger)
        } catch {
            printError("brain: config: backend = \(configuration.backend): \(error)")
            return 2
        }
        logger.info("brain starting: backend \(backend.description), data_dir \(configuration.dataDirectory)")

        // The append-only log: replayed whenever it holds changes (even if durability is no
        // longer `log`, its changes must not be lost), appended to when durability is `log`.
        let logDirectory = configuration.dataDirectory + "/log"
        let scan: LogScan
        do {
            scan = try AppendOnlyLog.scan(directory: logDirectory)
        } catch {
            printError("brain: \(error)")
            return 1
        }
        if let damage = scan.damage {
            printError("""
                brain: the append-only log is damaged: \(damage.path) at byte \(damage.offset): \(damage.reason).
                  Records after the damage cannot be trusted, so the node does not start.
                  Inspect it with:  brain log check --data-dir \(configuration.dataDirectory)
                  Cut the damage off (the bytes are kept in a .damaged file) with:  brain log repair --data-dir \(configuration.dataDirectory)
                """)
            return 1
        }
        if let tail = scan.tornTail {
            logger.warning("append-only log: \(tail.path) ends with a torn record (\(tail.fileBytes - tail.validBytes) bytes after byte \(tail.validBytes)); cutting it off")
            do { try AppendOnlyLog.cutTornTail(tail) } catch {
                printError("brain: \(error)")
                return 1
            }
        }
        var log: AppendOnlyLog? = nil
        if configuration.durability == .log || !scan.latest.isEmpty {
            do {
                let opened = try AppendOnlyLog(directory: logDirectory, fsync: LogFsync(rawValue: configuration.fsync.rawValue) ?? .everysec, logger: logger)
                try opened.start(after: scan.lastLSN)
                log = opened
            } catch {
                printError("brain: config: data_dir = \(configuration.dataDirectory): \(error)")
                return 2
            }
        }

        let metrics = Metrics()
        let store = CacheStore(
            configuration: engineConfiguration(configuration), backend: backend, metrics: metrics,
            logger: logger, log: log)
        if !scan.latest.isEmpty {
            do {
                try store.replay(scan.latest)
                logger.notice("append-only log: replayed \(scan.latest.count) changes (\(scan.records) records); they are written back now")
            } catch {
                printError("brain: cannot replay the append-only log: \(error)")
                return 1
            }
        }
        let spills = spillFiles(in: configuration.dataDirectory)
        if !spills.isEmpty {
            await recover(spills, into: store, configuration: configuration, logger: logger)
        }

        let readiness = Readiness()
        let groupBox = Mutex<ServiceGroup?>(nil)
        let writeBack = WriteBackService(store: store, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: writeBack)]
        if configuration.adminPort != 0 {
            services.append(.init(service: AdminServer(
                host: configuration.bind, port: configuration.adminPort, store: store, metrics: metrics,
                readiness: readiness, logger: logger)))
        }
        if configuration.linePort != 0 {
            let line = LineTransport(
                configuration: LineTransportConfiguration(
                    host: configuration.bind, port: configuration.linePort, secret: configuration.secret,
                    maxConnections: configuration.maxConnections, idleTimeout: configuration.clientIdleTimeout,
                    outputTimeout: configuration.clientOutputTimeout),
                store: store, metrics: metrics, logger: logger,
                requestShutdown: {
                    logger.notice("shutdown requested by a line client")
                    let group = groupBox.withLock { $0 }
                    Task { await group?.triggerGracefulShutdown() }
                })
            services.append(.init(service: line))
        }
        if let node = configuration.erlangNode, let cookie = erlangCookie {
            let erlang = ErlangTransport(
                configuration: ErlangTransportConfiguration(
                    nodeName: node, cookie: cookie, host: configuration.bind, port: configuration.erlangPort,
                    registeredName: configuration.erlangName,
                    epmdPort: environment["ERL_EPMD_PORT"].flatMap { Int($0) } ?? EPMDProtocol.defaultPort,
                    maxConnections: configuration.maxConnections),
                store: store, metrics: metrics, logger: logger)
            // A start-up failure (epmd unavailable, name in use) stops the node gracefully, so
            // the write-back drains and the process exits 1 with the transport's error.
            services.append(.init(service: erlang, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        groupBox.withLock { $0 = group }
        readiness.set(true)

        var status: Int32 = 0
        do {
            try await group.run()
        } catch {
            logger.error("brain: \(error)")
            status = 1
        }
        readiness.set(false)

        // Every change is in the backend: the log may go. Otherwise keep it for the next start.
        log?.close(removeSegments: writeBack.drained)
        if writeBack.drained {
            removeFiles(spills, logger: logger)
        } else {
            let records = store.dirtySnapshot()
            if !records.isEmpty {
                let path = configuration.dataDirectory + "/spill-\(Int(Date().timeIntervalSince1970 * 1000)).brain"
                do {
                    try SpillFile.write(records, to: path)
                    logger.critical("the backend stayed unreachable: \(records.count) dirty entries saved to \(path); the next start writes them back first")
                    // The new file holds every entry the older ones did that is still dirty.
                    removeFiles(spills, logger: logger)
                } catch {
                    logger.critical("the backend stayed unreachable and the spill file failed: \(error); \(records.count) dirty entries are lost")
                }
                status = 1
            } else {
                removeFiles(spills, logger: logger)
            }
        }
        do {
            try await backend.shutdown()
        } catch {
            logger.error("closing the backend: \(error)")
        }
        logger.info("brain stopped (exit \(status))")
        return status
    }

    static func engineConfiguration(_ configuration: BrainConfiguration) -> EngineConfiguration {
        var engine = EngineConfiguration()
        engine.maxMemory = configuration.maxMemory
        engine.maxDirtyBytes = configuration.maxDirtyBytes
        engine.idleTTL = configuration.idleTTL
        engine.flushDelay = configuration.flushDelay
        engine.maxDirtyAge = configuration.maxDirtyAge
        engine.durability = configuration.durability
        engine.shutdownTimeout = configuration.shutdownTimeout
        engine.shardCount = EngineConfiguration.shardCount(forMaxMemory: configuration.maxMemory)
        return engine
    }

    static func makeBackend(
        _ configuration: BrainConfiguration, environment: [String: String], logger: Logger
    ) throws -> any Backend {
        switch configuration.backend {
        case .memory:
            return MemoryBackend()
        case .file(let path):
            return try LocalDiskBackend(directory: path, fsync: true, logger: logger)
        case .s3:
            var variables = environment
            if let endpoint = configuration.s3.endpoint { variables["BRAIN_S3_ENDPOINT"] = endpoint }
            if let region = configuration.s3.region { variables["AWS_REGION"] = region }
            let s3 = try S3Configuration.parse(url: configuration.backend.description, environment: variables)
            return try S3Backend(configuration: s3, logger: logger)
        }
    }

    /// Spill files left by an earlier shutdown, oldest first.
    static func spillFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("spill-") && $0.hasSuffix(".brain") }.sorted()
            .map { directory + "/" + $0 }
    }

    /// Applies spill files and writes them back before serving. Files stay on disk until
    /// their entries are written (here, or at a later shutdown).
    static func recover(_ spills: [String], into store: CacheStore, configuration: BrainConfiguration, logger: Logger) async {
        var total = 0
        for path in spills {
            do {
                let records = try SpillFile.read(from: path)
                try store.restore(records)
                total += records.count
                logger.notice("recovered \(records.count) entries from \(path)")
            } catch {
                logger.critical("cannot recover \(path): \(error); the file is kept for inspection")
            }
        }
        guard total > 0 else { return }
        logger.notice("writing back \(total) recovered entries before serving")
        let clean = await store.writeBackAll(timeout: configuration.shutdownTimeout) { left in
            logger.info("recovery: \(left) entries left to write back")
        }
        if clean {
            logger.notice("recovered entries are written back")
            removeFiles(spills, logger: logger)
        } else {
            logger.error("the backend is unreachable: recovered entries stay dirty in memory and in their spill files")
        }
    }

    static func removeFiles(_ paths: [String], logger: Logger) {
        for path in paths {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                logger.error("cannot remove \(path): \(error.localizedDescription)")
            }
        }
    }

    static func bootstrapLogging(level: Logger.Level) {
        let first = bootstrapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
