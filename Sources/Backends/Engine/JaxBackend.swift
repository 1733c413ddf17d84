import Datasets
import Foundation
import SpecKit
import Synchronization

/// The `jax` backend: the spec trained by JAX (XLA) in a Python worker (`engines/jax/`,
/// docs/jax.md) — K updates a request in one compiled loop, the state resident on the worker's
/// devices, data-parallel over `devices` devices in each of `processes` processes.
public struct JaxBackend: Backend {
  /// Devices per process (forced CPU devices on a CPU host).
  public var devices: Int
  /// Worker processes joined by `jax.distributed`.
  public var processes: Int
  /// The hosts to start the processes on, one each, through `launcher`; empty: this host.
  public var hosts: [String] = []
  /// The group's coordinator (`HOST:PORT`); nil: a free port on this host's loopback, or port
  /// 8476 of the first host when there are hosts.
  public var coordinator: String?
  /// The command that runs a worker on a host: `launcher + [host, command]` (the command a
  /// remote shell reads); `SPECBENCH_JAX_SSH` (split at spaces) or `ssh`.
  public var launcher: [String] = (ProcessInfo.processInfo.environment["SPECBENCH_JAX_SSH"] ?? "ssh").split(separator: " ").map(String.init)
  /// Where the Python interpreter and the worker are; nil finds them (`JaxBackend.locate`).
  public var location: Location?
  /// Variables added to the workers' environment (tests set the worker's fault injection here).
  public var environment: [String: String] = [:]
  /// How long a request may take before the worker is taken for hung; loading, which compiles,
  /// may take ten times as long. `SPECBENCH_JAX_TIMEOUT` (seconds) sets the default of 60 s.
  public var requestTimeout: Duration = JaxTrainer.defaultTimeout

  /// The interpreter and the worker script.
  public struct Location: Hashable, Sendable {
    public var python: String
    public var worker: String
    public init(python: String, worker: String) { (self.python, self.worker) = (python, worker) }
  }

  public init(devices: Int = 1, processes: Int = 1, location: Location? = nil) {
    (self.devices, self.processes, self.location) = (devices, processes, location)
  }

  public var name: String { "jax" }
  public var summary: String {
    let placement =
      devices * processes == 1
      ? "one device" : "\(devices) device\(devices == 1 ? "" : "s") × \(processes) process\(processes == 1 ? "" : "es")"
    let status: String
    switch resolvedLocation() {
    case .success(let found) where unavailableReason == nil: status = "; runs here with \(found.python)"
    default: status = unavailableReason.map { "; not available here: \($0)" } ?? ""
    }
    return "JAX (XLA) in a Python worker, compiled chunks of updates on \(placement) (backend jax devices=N processes=P)\(status)"
  }
  /// Everything but `lbfgs`: the worker compiles elementwise rules into its update loop; a
  /// quasi-Newton step with a data-dependent number of evaluations is the Swift backends' (the
  /// state moves across a swap like any other).
  public var capabilities: Capabilities {
    var capabilities = Capabilities.everything
    capabilities.optimizers.remove("lbfgs")
    capabilities.variational = false
    return capabilities
  }

  /// The settings that differ from the defaults (one device, one process).
  public var options: [BackendOption] {
    var options = [("devices", devices), ("processes", processes)].filter { $0.1 != 1 && ($0.0 != "processes" || hosts.isEmpty) }.map {
      BackendOption(key: $0.0, value: String($0.1))
    }
    if !hosts.isEmpty { options.append(BackendOption(key: "hosts", value: hosts.joined(separator: ","))) }
    if let coordinator { options.append(BackendOption(key: "coordinator", value: coordinator)) }
    return options
  }

  /// Options not given take their defaults: `backend jax` is one device in one process.
  public func configured(_ options: [BackendOption]) throws(BackendError) -> any Backend {
    var copy = self
    (copy.devices, copy.processes, copy.hosts, copy.coordinator) = (1, 1, [], nil)
    var processesGiven = false
    for option in options {
      switch option.key {
      case "devices", "processes":
        guard let value = Int(option.value), (1...64).contains(value) else {
          throw .invalidOptions(backend: name, reason: "\(option.key)=\(option.value): a whole number from 1 to 64 is needed")
        }
        if option.key == "devices" { copy.devices = value } else { (copy.processes, processesGiven) = (value, true) }
      case "hosts":
        // Each host is one argument of the launcher: a name, never an option or a shell word.
        let hosts = option.value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@:[]")
        guard (1...64).contains(hosts.count), hosts.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("-") && $0.allSatisfy(allowed.contains) })
        else {
          throw .invalidOptions(
            backend: name,
            reason:
              "hosts=\(TextExcerpt.quoted(option.value, limit: 80)): 1 to 64 host names separated by commas, each of letters, digits and . - _ @ : [ ], not starting with -"
          )
        }
        copy.hosts = hosts
      case "coordinator":
        guard let colon = option.value.lastIndex(of: ":"), let port = Int(option.value[option.value.index(after: colon)...]),
          (1...65535).contains(port), colon != option.value.startIndex
        else { throw .invalidOptions(backend: name, reason: "coordinator=\(option.value): HOST:PORT is needed") }
        copy.coordinator = option.value
      default:
        let keys = ["devices", "processes", "hosts", "coordinator"]
        throw .invalidOptions(
          backend: name,
          reason: "no option \(option.key); the jax backend takes devices=N, processes=P, hosts=H1,H2 and coordinator=HOST:PORT"
            + (Suggestion.nearest(to: option.key, in: keys).map { " (did you mean \($0)?)" } ?? ""))
      }
    }
    if !copy.hosts.isEmpty {
      if processesGiven && copy.processes != copy.hosts.count {
        throw .invalidOptions(backend: name, reason: "processes=\(copy.processes) with \(copy.hosts.count) hosts: one process a host")
      }
      copy.processes = copy.hosts.count
    }
    return copy
  }

  public var unavailableReason: String? {
    switch resolvedLocation() {
    case .failure(let problem): return problem.reason
    case .success(let location): return JaxProbe.problem(python: location.python)
    }
  }

  public func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
    let location: Location
    switch resolvedLocation() {
    case .failure(let problem): throw .unavailable(backend: name, reason: problem.reason)
    case .success(let found): location = found
    }
    try check(spec: spec, state: state)
    return try JaxTrainer(spec: spec, state: state, data: data, backend: self, location: location)
  }

  struct Unlocated: Error { var reason: String }

  func resolvedLocation() -> Result<Location, Unlocated> {
    if let location { return .success(location) }
    return Self.found
  }

  /// Where this program finds Python and the worker: looked for once.
  static let found = locate()

  /// The worker: `SPECBENCH_JAX_WORKER`, or `engines/jax/worker.py` in a folder above the
  /// program or the current folder. The interpreter: `SPECBENCH_PYTHON`, or the repository's
  /// `.venv/bin/python3` (where `scripts/setup.sh` puts the packages when the system Python
  /// refuses them), or `python3` on the `PATH`.
  static func locate() -> Result<Location, Unlocated> {
    let environment = ProcessInfo.processInfo.environment
    let fileManager = FileManager.default
    var worker = environment["SPECBENCH_JAX_WORKER"].flatMap { $0.isEmpty ? nil : $0 }
    var repository: String?
    if worker == nil {
      let starts = [(try? fileManager.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "", fileManager.currentDirectoryPath]
      search: for start in starts where !start.isEmpty {
        var folder = URL(fileURLWithPath: start).standardizedFileURL
        for _ in 0..<12 {
          let candidate = folder.appendingPathComponent("engines/jax/worker.py").path
          if fileManager.isReadableFile(atPath: candidate) {
            (worker, repository) = (candidate, folder.path)
            break search
          }
          let parent = folder.deletingLastPathComponent()
          if parent.path == folder.path { break }
          folder = parent
        }
      }
    }
    guard let worker else {
      return .failure(
        Unlocated(
          reason: "the jax backend's worker (engines/jax/worker.py) was not found above the program or here; set SPECBENCH_JAX_WORKER"))
    }
    if let python = environment["SPECBENCH_PYTHON"], !python.isEmpty { return .success(Location(python: python, worker: worker)) }
    if let repository, fileManager.isExecutableFile(atPath: repository + "/.venv/bin/python3") {
      return .success(Location(python: repository + "/.venv/bin/python3", worker: worker))
    }
    for folder in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
      let candidate = "\(folder)/python3"
      if fileManager.isExecutableFile(atPath: candidate) { return .success(Location(python: candidate, worker: worker)) }
    }
    return .failure(Unlocated(reason: "the jax backend needs Python 3 with jax: run scripts/setup.sh (or set SPECBENCH_PYTHON)"))
  }
}

/// Whether an interpreter has what the worker needs, asked once per interpreter and program.
enum JaxProbe {
  private static let answers = Mutex<[String: String?]>([:])

  /// Why `python` cannot run the worker (no jax, numpy or safetensors), or nil when it can.
  static func problem(python: String) -> String? {
    if let known = answers.withLock({ $0[python] }) { return known }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", "import jax, numpy, safetensors.numpy"]
    process.standardOutput = FileHandle.nullDevice
    let errors = Pipe()
    process.standardError = errors
    var answer: String?
    do {
      try process.run()
      let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      if process.terminationStatus != 0 {
        let last = text.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
        answer =
          "the jax backend needs jax, numpy and safetensors in \(python) (\(TextExcerpt.quoted(last, limit: 120))); "
          + "run scripts/setup.sh, which installs \"jax[cpu]==0.10.2\""
      }
    } catch {
      answer = "the jax backend could not start \(python): \(error.localizedDescription); run scripts/setup.sh or set SPECBENCH_PYTHON"
    }
    answers.withLock { $0[python] = .some(answer) }
    return answer
  }
}
