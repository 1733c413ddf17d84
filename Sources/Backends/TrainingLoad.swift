import CFastKernels
import Synchronization

/// How many training runs are computing in this process now (a workbench trains several at
/// once). While more than one is, each trainer keeps to one core: the fast trainer runs both
/// halves of a two-core job itself (`CorePair`), and OpenBLAS runs each product on the calling
/// thread; the system's scheduler then shares the cores between the runs' workers equally, and
/// no run's helper thread spins on a core another run's worker needs.
package enum TrainingLoad {
  private static let active = Mutex<Int>(0)
  private static let shared = Atomic<Bool>(false)

  /// A run's worker begins computing.
  package static func begin() {
    active.withLock { count in
      count += 1
      if count == 2 {
        shared.store(true, ordering: .relaxed)
        specbench_blas_single_begin()
      }
    }
  }

  /// A run's worker stops computing (it paused, stopped or failed).
  package static func end() {
    active.withLock { count in
      count -= 1
      if count == 1 {
        shared.store(false, ordering: .relaxed)
        specbench_blas_single_end()
      }
    }
  }

  /// Whether more than one run computes now.
  package static var isShared: Bool { shared.load(ordering: .relaxed) }
}
