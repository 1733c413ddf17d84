import Datasets
import Foundation
import SpecKit

/// The line a terminal shows while a large data file loads: `reading data.csv: 45% (76 MB of 168 MB)`,
/// redrawn at most ten times a second, cleared when the load ends.
package final class LoadProgress: @unchecked Sendable {
  package let live: Bool
  private let lock = NSLock()
  private var last = ContinuousClock.now - .seconds(1)
  private var shown = false

  package init(live: Bool) { self.live = live }

  package func show(path: String, done: Int, total: Int) {
    guard live else { return }
    lock.withLock {
      guard ContinuousClock.now - last >= .milliseconds(100) else { return }
      last = ContinuousClock.now
      shown = true
      // The line's control codes are SpecBench's own; the file's name is written sanitized.
      Console.write("\r\u{1B}[K", to: .error, raw: true)
      Console.write(Self.text(path: path, done: done, total: total) + "; Ctrl-C stops it", to: .error)
    }
  }

  /// `reading data.csv: 45% (76 MB of 168 MB)`: the file's name short (and, drawn by a front
  /// end, sanitized).
  package static func text(path: String, done: Int, total: Int) -> String {
    let percent = total > 0 ? min(100, done * 100 / total) : 100
    return "reading \(TextExcerpt.short(PathText.lastComponent(path))): \(percent)% (\(ByteCount.text(done)) of \(ByteCount.text(total)))"
  }

  /// Runs `body` with what a front end wants of the data loads inside it (`DataLoadMonitor`):
  /// `report` hears how far a large file has got, from any thread the load uses, and
  /// `isCancelled` stops the load between blocks (the command then fails, changing nothing).
  package static func watching<T>(
    report: @escaping @Sendable (_ path: String, _ done: Int, _ total: Int) -> Void, isCancelled: @escaping @Sendable () -> Bool,
    during body: () -> T
  ) -> T {
    DataLoadMonitor.shared.install(progress: report, isCancelled: isCancelled)
    defer { DataLoadMonitor.shared.install(progress: nil) }
    return body()
  }

  package func finish() {
    lock.withLock {
      if shown { Console.write("\r\u{1B}[K", to: .error, raw: true) }
      shown = false
    }
  }
}
