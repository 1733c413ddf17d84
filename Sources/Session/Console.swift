import Foundation
import Synchronization
import TermPlot

#if canImport(Glibc)
  import Glibc
#endif

/// Standard output and standard error for every front end: writes that never crash the program
/// when a stream is closed, full or a broken pipe, and that show text from files and users
/// with its control characters made visible (`TerminalText.sanitized`).
///
/// A failed write to standard output is remembered (`outputFailure`): `run` treats it as Ctrl-C
/// (stops at the next step boundary and saves), a script ends with status 1.
package enum Console {
  package enum Stream: Sendable {
    case output, error

    var descriptor: Int32 { self == .output ? STDOUT_FILENO : STDERR_FILENO }
  }

  private static let failures = Mutex<(output: String?, error: String?)>((nil, nil))
  private static let outputFailedFlag = Atomic<Bool>(false)
  private static let closedAtStart = Mutex<Set<Int32>>([])

  /// Why writing to standard output failed (it was closed, full, or its reader went away), or
  /// nil while it works.
  package static var outputFailure: String? { failures.withLock { $0.output } }

  /// Whether writing to standard output has failed: one atomic load, for loops that ask every
  /// step (the reason is `outputFailure`).
  package static var outputFailed: Bool { outputFailedFlag.load(ordering: .relaxed) }

  /// Makes sure file descriptors 0, 1 and 2 are open before any file is: a program started
  /// with `>&-` would otherwise open its first file as descriptor 1 and print into it. A
  /// closed one is pointed at /dev/null and remembered as closed, so writes to it still fail.
  /// Also ignores SIGPIPE, so that a reader that went away is a failed write (EPIPE), not death.
  package static func prepare() {
    signal(SIGPIPE, SIG_IGN)
    for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
      let opened = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY)
      if opened >= 0 && opened != fd {
        dup2(opened, fd)
        close(opened)
      }
      _ = closedAtStart.withLock { $0.insert(fd) }
    }
  }

  /// Writes `text` (sanitized unless `raw`: use raw only for text SpecBench made itself, such as
  /// ANSI colours of a grid or JSON lines). Returns false when the stream failed; never traps.
  @discardableResult
  package static func write(_ text: String, to stream: Stream = .output, raw: Bool = false) -> Bool {
    let fd = stream.descriptor
    if closedAtStart.withLock({ $0.contains(fd) }) {
      record(stream, "standard \(stream == .output ? "output" : "error") is closed")
      return false
    }
    let bytes = Array((raw ? text : TerminalText.sanitized(text)).utf8)
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
      if n < 0 {
        if errno == EINTR { continue }
        let reason: String
        switch errno {
        case EPIPE: reason = "the program reading standard \(stream == .output ? "output" : "error") has gone (broken pipe)"
        case ENOSPC: reason = "standard \(stream == .output ? "output" : "error") is full (no space left on the device)"
        case EBADF: reason = "standard \(stream == .output ? "output" : "error") is closed"
        default: reason = "standard \(stream == .output ? "output" : "error"): \(String(cString: strerror(errno)))"
        }
        record(stream, reason)
        return false
      }
      written += n
    }
    return true
  }

  /// Writes a line to standard error (sanitized).
  @discardableResult
  package static func error(_ line: String) -> Bool { write(line.hasSuffix("\n") ? line : line + "\n", to: .error) }

  private static func record(_ stream: Stream, _ reason: String) {
    if stream == .output { outputFailedFlag.store(true, ordering: .relaxed) }
    failures.withLock {
      if stream == .output { $0.output = $0.output ?? reason } else { $0.error = $0.error ?? reason }
    }
  }

  /// Forgets earlier failures (tests).
  package static func resetFailures() {
    failures.withLock { $0 = (nil, nil) }
    outputFailedFlag.store(false, ordering: .relaxed)
  }
}
