import NIOCore

/// Runs Swift tasks on one SwiftNIO event loop.
///
/// A connection's task that prefers this executor (`addTask(executorPreference:)`) runs on
/// the thread of its channel's event loop: reading a batch of commands, executing them and
/// writing the replies then never hops to the cooperative thread pool and back, which costs
/// two thread wake-ups per batch. Work started with it must not block: blocking I/O belongs
/// on a thread pool (the backends use `NIOThreadPool`).
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop the jobs run on.
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
