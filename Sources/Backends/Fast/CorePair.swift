import Dispatch
import Foundation

/// A second thread that runs one half of a job while the caller runs the other: the fast
/// trainer's way to use both cores without allocating. A job is a C function and a pointer to
/// its context (a value on the caller's stack), handed over through two semaphores; a Swift
/// closure given to `DispatchQueue.concurrentPerform` is boxed on the heap at every call
/// (measured: one allocation per call, four per step of the cnn-digits preset).
final class CorePair: @unchecked Sendable {
  /// Runs part `index` (0 on the caller, 1 on the second thread) of the job at `context`.
  typealias Work = @convention(c) (UnsafeMutableRawPointer?, Int) -> Void

  /// What the two threads share; the semaphores order every access to the job.
  private final class Channel: @unchecked Sendable {
    let start = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    var work: Work?
    var context: UnsafeMutableRawPointer?
    var stopping = false
  }

  private let channel = Channel()
  private var started = false

  /// Runs `work(context, 0)` here and `work(context, 1)` on the second thread (started on first
  /// use), and returns when both are done.
  func run(_ work: Work, _ context: UnsafeMutableRawPointer) {
    if !started {
      started = true
      let channel = self.channel
      let thread = Thread {
        while true {
          channel.start.wait()
          if channel.stopping { return }
          channel.work!(channel.context, 1)
          channel.done.signal()
        }
      }
      thread.name = "specbench.fast.second-core"
      thread.start()
    }
    channel.work = work
    channel.context = context
    channel.start.signal()
    work(context, 0)
    channel.done.wait()
  }

  /// Runs `work` over a value on both cores: `job` is passed by its address.
  func run<Job>(_ work: Work, on job: inout Job) {
    withUnsafeMutablePointer(to: &job) { run(work, UnsafeMutableRawPointer($0)) }
  }

  deinit {
    guard started else { return }
    channel.stopping = true
    channel.start.signal()
  }
}
