import Foundation
import SpecKit
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A worker process that SpecBench talks to in frames over its pipes (docs/jax.md): a 4-byte
/// magic `SBJ1`, the header's and the payload's lengths (u32 and u64, little-endian), a JSON
/// header, raw payload bytes. Every request has a deadline; the worker's standard error is
/// drained on a thread of its own, and its last 64 KiB are quoted when it fails.
public final class EngineProcess: @unchecked Sendable {
  /// A reply: its JSON header and its payload.
  public struct Reply: Sendable {
    public var header: JSONValue
    public var payload: [UInt8]
  }

  /// Why a request got no reply. The worker is stopped after any of these.
  public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The program could not be started.
    case cannotStart(String)
    /// The worker ended (its stream closed, or a write failed): how, and its last words.
    case exited(String, stderr: String)
    /// No reply within the deadline; the worker was killed.
    case timedOut(seconds: Double, stderr: String)
    /// What it wrote is not a frame.
    case malformed(String, stderr: String)

    public var description: String {
      func tail(_ stderr: String) -> String {
        let last = stderr.split(separator: "\n").suffix(3).joined(separator: " / ")
        return last.isEmpty ? "" : "; its standard error ends: \(TextExcerpt.quoted(last, limit: 300))"
      }
      switch self {
      case .cannotStart(let why): return "the engine could not be started: \(why)"
      case .exited(let how, let stderr): return "the engine \(how)\(tail(stderr))"
      case .timedOut(let seconds, let stderr):
        return "the engine did not answer within \(String(format: "%g", seconds)) s and was stopped\(tail(stderr))"
      case .malformed(let what, let stderr):
        return "the engine wrote something that is not a frame (\(what)) and was stopped\(tail(stderr))"
      }
    }
  }

  static let magic: [UInt8] = Array("SBJ1".utf8)
  static let maxHeader = 1 << 20
  static let maxPayload: UInt64 = 1 << 40
  /// Standard error kept to quote: the last 64 KiB.
  static let stderrKept = 64 << 10

  private let process = Process()
  /// The parent's ends of the pipes; their descriptors are used raw, and closed only through
  /// the handles (a descriptor closed twice could be another pipe's by then).
  private let inputHandle: FileHandle
  private let outputHandle: FileHandle
  private let input: Int32
  private let output: Int32
  private let errors = StandardErrorTail()
  private let drained = DispatchSemaphore(value: 0)
  private var stopped = false
  /// The length of the request being answered, for the message when it times out.
  private var timeoutSeconds = 0.0

  /// Starts `executable` with `arguments` (and `environment` added to this process's);
  /// `onExit` is called, on a thread of Foundation's, when the worker ends.
  public init(
    executable: String, arguments: [String], environment: [String: String] = [:], onExit: (@Sendable () -> Void)? = nil
  ) throws(Failure) {
    // A write to a worker that died is EPIPE, not this process's death.
    signal(SIGPIPE, SIG_IGN)
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let (toWorker, fromWorker, errorsPipe) = (Pipe(), Pipe(), Pipe())
    process.standardInput = toWorker
    process.standardOutput = fromWorker
    process.standardError = errorsPipe
    if let onExit { process.terminationHandler = { _ in onExit() } }
    do { try process.run() } catch { throw .cannotStart("\(executable): \(error.localizedDescription)") }
    // The worker's ends are the worker's: closed here, so that its death is an end of file.
    try? toWorker.fileHandleForReading.close()
    try? fromWorker.fileHandleForWriting.close()
    try? errorsPipe.fileHandleForWriting.close()
    (inputHandle, outputHandle) = (toWorker.fileHandleForWriting, fromWorker.fileHandleForReading)
    input = inputHandle.fileDescriptor
    output = outputHandle.fileDescriptor
    _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) | O_NONBLOCK)
    let errorHandle = errorsPipe.fileHandleForReading
    let thread = Thread { [errors, drained] in
      var buffer = [UInt8](repeating: 0, count: 16 << 10)
      while true {
        let count = buffer.withUnsafeMutableBytes { Glibc.read(errorHandle.fileDescriptor, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        errors.bytes.withLock { kept in
          kept.append(contentsOf: buffer[0..<count])
          if kept.count > Self.stderrKept { kept.removeFirst(kept.count - Self.stderrKept) }
        }
      }
      drained.signal()
    }
    thread.start()
  }

  deinit { stop() }

  /// The last 64 KiB the worker wrote to its standard error.
  public var standardError: String { String(decoding: errors.bytes.withLock { $0 }, as: UTF8.self) }

  /// The worker's process id.
  public var processIdentifier: Int32 { process.processIdentifier }

  /// Sends a request and waits for its reply, at most `timeout` in all.
  public func request(_ header: JSONValue, payload: [UInt8] = [], timeout: Duration) throws(Failure) -> Reply {
    let deadline = ContinuousClock.now + timeout
    try send(header, payload: payload, deadline: deadline)
    timeoutSeconds = Self.seconds(timeout)
    return try receive(deadline: deadline)
  }

  /// Sends a request without waiting for its reply (a group sends to every member before it
  /// reads any reply: a member waits in a collective for the others).
  public func send(_ header: JSONValue, payload: [UInt8] = [], deadline: ContinuousClock.Instant) throws(Failure) {
    guard !stopped else { throw .exited("was stopped after an earlier failure; start a new one", stderr: standardError) }
    // (To the millisecond: a group's members share one deadline.)
    timeoutSeconds = (Self.seconds(deadline - .now) * 1000).rounded() / 1000
    do throws(Problem) {
      let raw = Array(JSONWriter.compact(header).utf8)
      var prefix = Self.magic
      prefix += withUnsafeBytes(of: UInt32(raw.count).littleEndian, Array.init)
      prefix += withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
      try write(prefix + raw, until: deadline)
      try write(payload, until: deadline)
    } catch {
      throw failure(error)
    }
  }

  /// Waits for the reply to the request sent last, until `deadline`.
  public func receive(deadline: ContinuousClock.Instant) throws(Failure) -> Reply {
    guard !stopped else { throw .exited("was stopped after an earlier failure; start a new one", stderr: standardError) }
    do throws(Problem) {
      let head = try read(16, until: deadline)
      guard Array(head[0..<4]) == Self.magic else { throw Problem.malformed("expected the magic SBJ1, got \(printable(head[0..<4]))") }
      let headerLength = head[4..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
      let payloadLength = head[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
      guard (1...Self.maxHeader).contains(headerLength) else { throw Problem.malformed("a header of \(headerLength) bytes") }
      guard payloadLength <= Self.maxPayload else { throw Problem.malformed("a payload of \(payloadLength) bytes") }
      // A declared size is checked against the memory limit before anything is allocated for it.
      guard payloadLength <= UInt64(MemoryBudget.limit) else {
        throw Problem.malformed(
          "a payload of \(payloadLength) bytes, more than the memory limit (\(MemoryBudget.limit) bytes, \(MemoryBudget.limitSource))")
      }
      let headerBytes = try read(headerLength, until: deadline)
      let body = try read(Int(payloadLength), until: deadline)
      guard let parsed = try? JSONParser.parse(headerBytes), parsed.objectValue != nil else {
        throw Problem.malformed("a header that is not a JSON object")
      }
      return Reply(header: parsed, payload: body)
    } catch {
      throw failure(error)
    }
  }

  /// Stops the worker after `error` and says what happened.
  private func failure(_ error: Problem) -> Failure {
    // A worker whose stream ended is given a moment to exit by itself, so that its own status
    // is what is reported, not the kill that `stop` would send.
    if case .ended = error {
      let grace = ContinuousClock.now + .seconds(2)
      while process.isRunning && ContinuousClock.now < grace { usleep(10_000) }
    }
    stop()
    switch error {
    case .timedOut: return .timedOut(seconds: timeoutSeconds, stderr: standardError)
    case .malformed(let what): return .malformed(what, stderr: standardError)
    case .ended: return .exited(howItEnded(), stderr: standardError)
    }
  }

  static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
  }

  /// How the worker ended, or nil while it runs.
  public var exitDescription: String? { process.isRunning ? nil : howItEnded() }

  /// Stops the worker (SIGKILL if it is still running) and waits for it and its standard error.
  public func stop() {
    guard !stopped else { return }
    stopped = true
    try? inputHandle.close()
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    _ = drained.wait(timeout: .now() + 5)
    try? outputHandle.close()
  }

  // MARK: reading and writing with a deadline

  private enum Problem: Error {
    case timedOut, ended
    case malformed(String)
  }

  /// Waits until `fd` is ready for `events` or the deadline passes.
  private func wait(_ fd: Int32, _ events: Int16, until deadline: ContinuousClock.Instant) throws(Problem) {
    while true {
      let left = deadline - .now
      guard left > .zero else { throw .timedOut }
      let milliseconds = Int32(min(Double(left.components.seconds) * 1000 + Double(left.components.attoseconds) * 1e-15 + 1, 60_000))
      var descriptor = pollfd(fd: fd, events: events, revents: 0)
      let ready = poll(&descriptor, 1, milliseconds)
      if ready > 0 { return }
      if ready < 0 && errno != EINTR { throw .ended }
    }
  }

  private func write(_ bytes: [UInt8], until deadline: ContinuousClock.Instant) throws(Problem) {
    var sent = 0
    while sent < bytes.count {
      try wait(input, Int16(POLLOUT), until: deadline)
      let count = bytes.withUnsafeBytes { Glibc.write(input, $0.baseAddress! + sent, $0.count - sent) }
      if count < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        throw .ended
      }
      sent += count
    }
  }

  private func read(_ count: Int, until deadline: ContinuousClock.Instant) throws(Problem) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
      try wait(output, Int16(POLLIN), until: deadline)
      let n = bytes.withUnsafeMutableBytes { Glibc.read(output, $0.baseAddress! + got, min($0.count - got, 1 << 20)) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw got == 0 && count == 16 ? .ended : .malformed("the stream ended \(count - got) bytes before the frame did") }
      got += n
    }
    return bytes
  }

  private func printable(_ bytes: ArraySlice<UInt8>) -> String {
    TextExcerpt.quoted(String(decoding: bytes, as: UTF8.self), limit: 16)
  }

  /// How the worker ended: its exit status or signal (after `stop`, which waits for it).
  private func howItEnded() -> String {
    process.waitUntilExit()
    switch process.terminationReason {
    case .uncaughtSignal: return "was killed by signal \(process.terminationStatus)"
    case .exit: return "exited with status \(process.terminationStatus)"
    @unknown default: return "ended"
    }
  }
}

/// The last bytes a worker wrote to its standard error, shared with the thread that drains it.
final class StandardErrorTail: Sendable {
  let bytes = Mutex<[UInt8]>([])
}
