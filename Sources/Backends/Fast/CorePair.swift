import CFastKernels

/// A second thread that runs one half of a job while the caller runs the other: the fast
/// trainer's way to use both cores without allocating. A job is a C function and a pointer to
/// its context (a value on the caller's stack), handed over through an atomic flag the helper
/// watches (`CFastKernels/core_pair.h`): well under a microsecond while training, where the
/// semaphores this used before took 5–20 µs to wake the other thread, more than a spirals
/// product takes. A Swift closure given to `DispatchQueue.concurrentPerform` is boxed on the heap
/// at every call (measured: one allocation per call, four per step of the cnn-digits preset).
final class CorePair: @unchecked Sendable {
  /// Runs part `index` (0 on the caller, 1 on the second thread, or on the caller when the
  /// helper has not taken it in time) of the job at `context`.
  typealias Work = @convention(c) (UnsafeMutableRawPointer?, Int) -> Void

  private let pair = specbench_pair_create()

  /// Runs `work(context, 0)` and `work(context, 1)`, on both cores when the helper takes its
  /// part (on this one while several runs train), and returns when both are done. One caller
  /// at a time.
  func run(_ work: Work, _ context: UnsafeMutableRawPointer) {
    // While several runs train, each keeps to one core (`TrainingLoad`).
    guard let pair, !TrainingLoad.isShared else {
      work(context, 0)
      work(context, 1)
      return
    }
    specbench_pair_run(pair, work, context)
  }

  /// Runs `work` over a value on both cores: `job` is passed by its address.
  func run<Job>(_ work: Work, on job: inout Job) {
    withUnsafeMutablePointer(to: &job) { run(work, UnsafeMutableRawPointer($0)) }
  }

  /// How many parts the helper thread has run.
  var helperParts: Int { pair.map { specbench_pair_helper_parts($0) } ?? 0 }

  deinit { specbench_pair_destroy(pair) }
}
