import Foundation
import SpecKit
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The repository's root folder (where Package.swift is).
public let repositoryRoot: URL = {
  var url = URL(fileURLWithPath: #filePath)
  while url.path != "/" {
    url.deleteLastPathComponent()
    if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
  }
  fatalError("Package.swift not found above \(#filePath)")
}()

/// A path inside the repository.
public func repositoryPath(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

/// The result of running a program.
public struct ProcessResult: Sendable {
  public var status: Int32
  public var stdout: String
  public var stderr: String
}

/// Runs `executable` with `arguments` and waits; standard input is empty.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: String? = nil)
  throws -> ProcessResult
{
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
  if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
  let out = Pipe(), err = Pipe()
  process.standardOutput = out
  process.standardError = err
  process.standardInput = FileHandle.nullDevice
  try process.run()
  // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
  let group = DispatchGroup()
  nonisolated(unsafe) var errData = Data()
  group.enter()
  DispatchQueue.global().async {
    errData = err.fileHandleForReading.readDataToEndOfFile()
    group.leave()
  }
  let outData = out.fileHandleForReading.readDataToEndOfFile()
  group.wait()
  process.waitUntilExit()
  return ProcessResult(
    status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
}

/// Finds a program on PATH.
public func which(_ name: String) -> String? {
  for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
    let candidate = "\(folder)/\(name)"
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
  }
  return nil
}

/// The first Python — the project's venv (made by scripts/setup.sh where the system Python
/// refuses pip), then python3 on PATH — that can import `modules`.
func python(importing modules: String, environment: [String: String]? = nil) -> String? {
  let candidates = [repositoryPath(".venv/bin/python3"), which("python3")].compactMap { $0 }
  return candidates.first { python in
    guard FileManager.default.isExecutableFile(atPath: python),
      let result = try? runProcess(python, ["-c", "import " + modules], environment: environment)
    else {
      return false
    }
    return result.status == 0
  }
}

/// Python with some packages, for the tests that run them for real.
public struct PythonWith: Sendable {
  /// What to import, and what to tell a person who has not installed it.
  let modules: String
  let install: String
  /// Variables the packages need (Keras' backend).
  let environment: [String: String]?
  public let interpreter: String?

  init(_ modules: String, install: String, environment: [String: String]? = nil) {
    (self.modules, self.install, self.environment) = (modules, install, environment)
    interpreter = python(importing: modules, environment: environment)
  }

  /// True when the tests can run. When they cannot and SPECBENCH_REQUIRE_PYTHON=1 (or, for
  /// jax, SPECBENCH_REQUIRE_JAX=1; .ci/run sets both after installing the packages), this is
  /// still true, so the tests run and fail loudly instead of being skipped.
  public var isAvailable: Bool {
    let environment = ProcessInfo.processInfo.environment
    if modules.contains("torch") { return interpreter != nil || environment["SPECBENCH_REQUIRE_TORCH"] == "1" }
    return interpreter != nil || environment["SPECBENCH_REQUIRE_PYTHON"] == "1"
      || (modules.contains("jax") && environment["SPECBENCH_REQUIRE_JAX"] == "1")
  }

  /// Runs a Python script with arguments; throws when Python or the packages are missing.
  public func run(_ script: String, _ arguments: [String] = []) throws -> ProcessResult {
    guard let interpreter else { throw TestFailure("python3 that can import \(modules) is required (\(install))") }
    return try runProcess(interpreter, ["-c", script] + arguments, environment: environment)
  }
}

/// numpy and safetensors, for the interop tests.
/// Python alone (the jax worker's protocol needs nothing else).
public let PlainPython = PythonWith("json, struct", install: "apt-get install python3")
/// Python with jax, as scripts/setup.sh installs it, for the jax engine's worker.
public let JaxPython = PythonWith("jax", install: "scripts/setup.sh (pip install \"jax[cpu]==0.10.2\")")
public let PythonPeer = PythonWith("numpy, safetensors.numpy", install: "pip install numpy safetensors")
/// Real PyTorch (about 5 GB with its CUDA libraries, though it runs on the CPU): installed by
/// `.ci/run` and by `SPECBENCH_WITH_TORCH=1 scripts/setup.sh`; without it the torch tests skip and
/// say so, unless SPECBENCH_REQUIRE_TORCH=1 (CI) makes them run and fail.
public let TorchPeer = PythonWith(
  "torch, safetensors.torch", install: "SPECBENCH_WITH_TORCH=1 scripts/setup.sh (pip install torch safetensors)")
/// laplace-torch, the Laplace library users know (with PyTorch), for the posterior's tests:
/// installed with torch by `.ci/run` and `SPECBENCH_WITH_TORCH=1 scripts/setup.sh`.
public let LaplacePeer = PythonWith(
  "torch, safetensors.torch, laplace", install: "SPECBENCH_WITH_TORCH=1 scripts/setup.sh (pip install torch laplace-torch)")
/// Real PyTorch with its two ONNX exporters (the default one needs onnxscript) and onnxruntime, for
/// the tests that import what PyTorch exports: installed with torch, as `LaplacePeer`.
public let TorchONNXPeer = PythonWith(
  "torch, onnx, onnxscript, onnxruntime, safetensors.torch",
  install: "SPECBENCH_WITH_TORCH=1 scripts/setup.sh (pip install torch onnx onnxscript onnxruntime)")
/// onnx and onnxruntime as well, for the interchange tests.
public let ONNXPeer = PythonWith(
  "numpy, safetensors.numpy, onnx, onnxruntime", install: "scripts/setup.sh installs them: pip install onnx onnxruntime")

/// Keras 3 with h5py on the jax backend (no TensorFlow), for the Keras files' tests.
public let KerasPeer = PythonWith(
  "numpy, safetensors.numpy, keras, h5py", install: "scripts/setup.sh installs them: pip install keras h5py jax",
  environment: ["KERAS_BACKEND": "jax"])

/// A failure raised by a helper, with the reason.
public struct TestFailure: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A fresh empty folder under the system's temporary folder.
public func temporaryFolder(_ label: String = "specbench-test") -> String {
  let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

/// The `specbench` executable that `swift test` built beside the test bundle.
public let specbenchExecutable: String = {
  let beside = Bundle.main.bundleURL.appendingPathComponent("specbench").path
  if FileManager.default.isExecutableFile(atPath: beside) { return beside }
  for folder in [".build/debug", ".build/release"] {
    let path = repositoryPath("\(folder)/specbench")
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  fatalError("the specbench executable was not found beside \(Bundle.main.bundleURL.path); run `swift build` first")
}()

/// Runs `specbench` with arguments from the repository root.
public func specbench(_ arguments: String...) throws -> ProcessResult {
  try runProcess(specbenchExecutable, arguments, currentDirectory: repositoryRoot.path)
}

/// Runs a program with its standard streams on /dev/null and waits for it (not for any daemon
/// it leaves behind); returns its exit status, or -1 when it could not start.
func spawnAndWait(
  _ path: String, _ arguments: [String], environment: [String]? = nil, stdout: String = "/dev/null", stderr: String = "/dev/null"
) -> Int32 {
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
  posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
  defer { for pointer in argv { free(pointer) } }
  // Start with no signal blocked and default handlers, as from a terminal: the test runner's
  // threads block signals, and a spawned program would inherit that mask.
  var attributes = posix_spawnattr_t()
  posix_spawnattr_init(&attributes)
  defer { posix_spawnattr_destroy(&attributes) }
  var none = sigset_t()
  sigemptyset(&none)
  posix_spawnattr_setsigmask(&attributes, &none)
  var all = sigset_t()
  sigfillset(&all)
  posix_spawnattr_setsigdefault(&attributes, &all)
  posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
  var pid: pid_t = 0
  let environmentStrings: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
  defer { for pointer in environmentStrings ?? [] { free(pointer) } }
  let spawned =
    environmentStrings.map { strings in
      strings.withUnsafeBufferPointer { posix_spawn(&pid, path, &actions, &attributes, argv, $0.baseAddress) }
    } ?? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
  guard spawned == 0 else { return -1 }
  var status: Int32 = 0
  while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
  // Killed by a signal: 128 + its number, as a shell reports it (never 0).
  if status & 0x7f != 0 { return 128 + (status & 0x7f) }
  return (status >> 8) & 0xff
}

/// The real program in a detached tmux session, for tests of what a person sees.
public final class TmuxSession {
  /// True when tmux can run here (or SPECBENCH_REQUIRE_TMUX=1, set by .ci/run after installing
  /// it, so the terminal tests fail loudly rather than skip).
  public static var isAvailable: Bool {
    which("tmux") != nil || ProcessInfo.processInfo.environment["SPECBENCH_REQUIRE_TMUX"] == "1"
  }

  public let name: String
  let tmux: String
  /// The tests' own tmux server (`tmux -L specbench-tests`), apart from any server of the
  /// person running them, started with the environment below.
  static let socket = ["-L", "specbench-tests"]
  static let starting = Mutex(())

  /// Starts `command` (run by sh) in a new session of the given size.
  public init(_ command: String, width: Int = 120, height: Int = 30) throws {
    guard let tmux = which("tmux") else { throw TestFailure("tmux is required (apt-get install tmux)") }
    self.tmux = tmux
    name = "specbench-test-\(UUID().uuidString.prefix(8))"
    // The first new-session forks the tmux server, a daemon that keeps every descriptor it
    // inherits: Foundation's Process then never sees its child finish, and a pipe of another
    // test running in parallel would never reach end-of-file. So spawn it directly, with
    // standard streams on /dev/null and every other descriptor closed first.
    let closeAndRun = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; exec "$@""#
    // The programs in the panes get the server's environment: the test runner's, less what would
    // change what they draw (the runner sets NO_COLOR when its output is not a terminal).
    let environment = ProcessInfo.processInfo.environment.filter { $0.key != "NO_COLOR" }.map { "\($0.key)=\($0.value)" }
    // Tests start sessions in parallel, and two clients starting the server at once make one of
    // them fail: one at a time, and again after a moment if the server was still coming up.
    let arguments =
      ["-c", closeAndRun, "bash", tmux] + Self.socket + [
        "new-session", "-d", "-s", name, "-x", String(width), "-y", String(height), "unset NO_COLOR; " + command,
      ]
    let status = Self.starting.withLock { _ in
      var status: Int32 = -1
      for attempt in 0..<5 {
        if attempt > 0 { Thread.sleep(forTimeInterval: 0.2) }
        status = spawnAndWait("/bin/bash", arguments, environment: environment)
        if status == 0 { break }
      }
      return status
    }
    guard status == 0 else { throw TestFailure("tmux new-session failed with status \(status)") }
  }

  deinit { _ = try? runProcess(tmux, Self.socket + ["kill-session", "-t", name]) }

  /// The visible screen as text.
  public func capture() throws -> String { try runProcess(tmux, Self.socket + ["capture-pane", "-p", "-t", name]).stdout }

  /// Sends keys as tmux names them (`C-c`, `Enter`, or literal text).
  public func send(_ keys: String...) throws { _ = try runProcess(tmux, Self.socket + ["send-keys", "-t", name] + keys) }

  /// Resizes the window, as a person dragging the terminal's corner would (the program gets
  /// SIGWINCH).
  public func resize(width: Int, height: Int) throws {
    _ = try runProcess(tmux, Self.socket + ["resize-window", "-t", name, "-x", String(width), "-y", String(height)])
  }

  /// The visible screen with colours and attributes as escape sequences.
  public func captureWithColours() throws -> String { try runProcess(tmux, Self.socket + ["capture-pane", "-p", "-e", "-t", name]).stdout }

  /// Polls the screen (as `capture` reads it: plain text by default) until `condition` holds
  /// or `seconds` pass, and returns the screen. A timeout throws (the test fails, showing the
  /// screen), unless `required` is false — for a caller that polls in a loop of its own.
  @discardableResult
  public func waitFor(
    seconds: Double = 20, required: Bool = true, capture: (() throws -> String)? = nil, file: String = #fileID, line: Int = #line,
    _ condition: (String) -> Bool
  ) throws -> String {
    let read = capture ?? { try self.capture() }
    let deadline = Date().addingTimeInterval(seconds)
    var screen = try read()
    while !condition(screen) && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.05)
      screen = try read()
    }
    if !condition(screen) && required {
      throw TestFailure("waitFor: the condition did not hold within \(seconds) s (\(file):\(line)); the screen:\n\(screen)")
    }
    return screen
  }
}

extension TmuxSession {
  /// Types `line` and Enter, and waits until the screen shows `fragment` (a timeout throws,
  /// showing the screen). Returns the screen.
  @discardableResult
  public func type(_ line: String, until fragment: String, seconds: Double = 20, file: String = #fileID, lineNumber: Int = #line) throws
    -> String
  {
    try send(line, "Enter")
    return try waitFor(seconds: seconds, file: file, line: lineNumber) { $0.contains(fragment) }
  }

  /// `specbench ARGUMENTS` in a new terminal: run from `folder`, with its history file under
  /// `state/` of `history` (default `folder`) and `environment` (`NAME=value …`) set. When it
  /// ends the shell runs `afterwards` (by default it prints `EXIT=<status>`) and keeps the pane.
  public static func specbench(
    _ arguments: String = "", from folder: String, history: String? = nil, environment: String = "",
    afterwards: String = "echo EXIT=$?", width: Int = 120, height: Int = 40
  ) throws -> TmuxSession {
    let command =
      "cd \(folder) && \(environment) XDG_STATE_HOME=\(history ?? folder)/state \(specbenchExecutable) \(arguments); \(afterwards); sleep 60"
    return try TmuxSession(command, width: width, height: height)
  }
}

/// Compares `text` with the golden file at `relativePath` (from the repository root); with
/// `SPECBENCH_RECORD_GOLDEN=1` it writes the file instead and reports a match.
public func matchesGolden(_ text: String, _ relativePath: String) throws -> Bool {
  let path = repositoryPath(relativePath)
  if ProcessInfo.processInfo.environment["SPECBENCH_RECORD_GOLDEN"] == "1" {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try (text + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return true
  }
  guard let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
    throw TestFailure("\(relativePath) is missing; record it with SPECBENCH_RECORD_GOLDEN=1")
  }
  return text + "\n" == expected
}

/// Runs `script` with /bin/sh from `folder` (the repository by default), its output to files,
/// signals unblocked and at their defaults as from a terminal, `$SPECBENCH` naming the built
/// executable; waits for it and returns its status and output. For tests of streams, pipes and
/// signals, which need a shell's redirections (`>&-`, `| head -1`, `kill -TERM`).
public func runShell(_ script: String, in folder: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
  let scratch = temporaryFolder("specbench-shell")
  let out = scratch + "/stdout", err = scratch + "/stderr"
  let wrapped = "cd \(folder ?? repositoryRoot.path) || exit 97\n\(script)"
  var variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
  variables["SPECBENCH"] = specbenchExecutable
  let status = spawnAndWait(
    "/bin/sh", ["-c", wrapped], environment: variables.map { "\($0.key)=\($0.value)" }, stdout: out, stderr: err)
  let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
  return ProcessResult(status: status, stdout: read(out), stderr: read(err))
}

/// What SpecBench wrote before format version 2, for migration tests.
public enum FormatVersion1 {
  /// The version-1 text of a session: the history's points back in the JSON as `[step, value]`
  /// pairs, `history.metrics` gone, `version` 1. The state, its tensor file and hash are as given.
  public static func text(of spec: SessionSpec) -> String {
    guard case .object(var root) = spec.json.kind, case .object(var history) = spec.history.json.kind else { return "" }
    history.members.removeAll { $0.key == "metrics" }
    for metric in Metric.version2 {
      history.members.append(.init(key: metric.rawValue, value: .array(spec.history[metric].map(\.json))))
    }
    for i in root.members.indices {
      if root.members[i].key == "history" { root.members[i].value = JSONValue(.object(history)) }
      if root.members[i].key == "version" { root.members[i].value = .int(1) }
    }
    return JSONWriter.canonical(JSONValue(.object(root)))
  }
}
