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
      let percent = total > 0 ? min(100, done * 100 / total) : 100
      let name = TextExcerpt.short(PathText.lastComponent(path))
      // The line's control codes are SpecBench's own; the file's name is written sanitized.
      Console.write("\r\u{1B}[K", to: .error, raw: true)
      Console.write("reading \(name): \(percent)% (\(ByteCount.text(done)) of \(ByteCount.text(total))); Ctrl-C stops it", to: .error)
    }
  }

  package func finish() {
    lock.withLock {
      if shown { Console.write("\r\u{1B}[K", to: .error, raw: true) }
      shown = false
    }
  }
}
