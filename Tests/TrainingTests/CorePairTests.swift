import CFastKernels
import Foundation
import Synchronization
import Testing

@testable import Backends

/// The fast trainer's two-core hand-over (`CorePair`, `CFastKernels/core_pair.h`): the helper
/// thread runs the part it takes, and every part runs once whichever thread takes it.
@Suite("Two cores on one job")
struct CorePairTests {
  /// The hand-over itself: a part the caller waits for runs on the helper thread; every part of
  /// many quick jobs runs exactly once, on whichever thread takes it.
  @Test func theSecondCoreTakesItsPartAndEveryPartRunsOnce() {
    final class Record: @unchecked Sendable {
      // Each written by its own part only; read after `run` returns.
      var caller: pthread_t?
      var helper: pthread_t?
      let helperRan = Atomic<Bool>(false)
    }
    let cores = CorePair()
    var record = Record()
    // Part 0 waits (up to 10 s) until part 1 has run: only the helper can have run it then.
    cores.run(
      { context, part in
        let record = context!.assumingMemoryBound(to: Record.self).pointee
        if part == 1 {
          record.helper = pthread_self()
          record.helperRan.store(true, ordering: .releasing)
          return
        }
        record.caller = pthread_self()
        let deadline = Date().addingTimeInterval(10)
        while !record.helperRan.load(ordering: .acquiring) && Date() < deadline { sched_yield() }
      }, on: &record)
    let helperRan = record.helperRan.load(ordering: .acquiring)
    #expect(helperRan)
    #expect(record.helper != nil && record.caller != nil && pthread_equal(record.caller!, record.helper!) == 0)
    #expect(cores.helperParts == 1)
    // Many quick jobs: each part exactly once, whoever runs it.
    var counts = [Int](repeating: 0, count: 2 * 2000)
    counts.withUnsafeMutableBufferPointer { counts in
      for job in 0..<2000 {
        var slot = counts.baseAddress! + 2 * job
        cores.run({ context, part in context!.assumingMemoryBound(to: UnsafeMutablePointer<Int>.self).pointee[part] += 1 }, on: &slot)
      }
    }
    #expect(counts.allSatisfy { $0 == 1 })
  }

  /// Two trainers' two-core stretches overlap (runs trained side by side): OpenBLAS stays on
  /// one thread until the last ends, then gets back the count it had before the first, not the
  /// one a later stretch found.
  @Test func overlappingStretchesOnOneThreadPutTheCountBackOnce() throws {
    try #require(BLASLibrary.problem == nil, "OpenBLAS is installed by scripts/setup.sh")
    let outside = specbench_blas_threads_outside_stretches()
    let opened = DispatchSemaphore(value: 0), close = DispatchSemaphore(value: 0), closed = DispatchSemaphore(value: 0)
    specbench_blas_single_begin()
    #expect(specbench_blas_threads(0) == 1)
    DispatchQueue.global().async {
      specbench_blas_single_begin()
      opened.signal()
      close.wait()
      specbench_blas_single_end()
      closed.signal()
    }
    opened.wait()
    specbench_blas_single_end()
    #expect(specbench_blas_threads(0) == 1, "the other stretch is still open")
    #expect(specbench_blas_threads_outside_stretches() == outside)
    close.signal()
    closed.wait()
    #expect(specbench_blas_threads_outside_stretches() == outside)
    #expect(outside >= 1)
  }
}
