import Datasets
import Foundation
import SpecKit
import Synchronization
import TensorCore

#if canImport(Glibc)
  import Glibc
#endif

/// A trainer whose state lives in the jax worker (docs/jax.md, "Training"): `load` hands it the
/// spec, the state and the data once; each `train` request makes up to `stepsPerCall` updates
/// in one compiled loop, and `stepsPerCall` adapts so that a request takes about 80 ms — the
/// longest a pause, stop, swap or save waits for its boundary.
final class JaxTrainer: Trainer {
  let spec: SessionSpec
  let train: Dataset
  let validation: Dataset?
  private let group: EngineGroup
  /// The counters and generator positions the worker last reported (no tensors: those stay
  /// in the worker until exported).
  private var counters: TrainingState
  var step: Int { counters.step }
  var epoch: Int { counters.epoch }
  /// `engine/…` tensors of the state: kept here and handed on at every export.
  private let engineState: [String: StoredTensor]
  /// The most updates one request may ask for (the worker's K_max).
  private let maxSteps: Int
  /// Rows of one `outputs` request.
  private let evaluationRows: Int
  /// Seconds the worker took to compile its loop and its evaluation.
  let compileSeconds: Double?
  private var secondsPerStep: Double?
  private var norms: [String: Float] = [:]
  private(set) var stepsPerCall = 4
  private let requestTimeout: Duration

  /// The default of `JaxBackend.requestTimeout`: `SPECBENCH_JAX_TIMEOUT` seconds, 60 unless set.
  static let defaultTimeout: Duration = {
    let seconds = ProcessInfo.processInfo.environment["SPECBENCH_JAX_TIMEOUT"].flatMap(Double.init) ?? 60
    return .milliseconds(Int(max(0.1, min(seconds, 86_400)) * 1000))
  }()
  static let chunkSeconds = 0.08

  init(spec: SessionSpec, state: TrainingState, data: DataSplit, backend: JaxBackend, location: JaxBackend.Location) throws(BackendError) {
    (self.spec, train, validation, requestTimeout) = (spec, data.train, data.validation, backend.requestTimeout)
    counters = state
    counters.tensors = [:]
    engineState = state.tensors.filter { StateKey(name: $0.key)?.engineBackend != nil }
    do {
      group = try EngineGroup(location: location, backend: backend)
    } catch {
      throw .engineFailed(backend: "jax", reason: error.description)
    }
    let hello: JSONValue
    do {
      hello = try group.request(.object(["op": .string("hello")]), timeout: requestTimeout * 2).header
    } catch {
      throw .engineFailed(backend: "jax", reason: group.describe(error))
    }
    if hello.objectValue?["jax"]?.stringValue == nil {
      let why = hello.objectValue?["jax_error"]?.stringValue ?? "jax cannot be imported"
      throw .unavailable(
        backend: "jax",
        reason: "the jax backend needs jax in \(location.python) (\(TextExcerpt.quoted(why, limit: 160))); run scripts/setup.sh")
    }
    var tensors = state.tensors.filter { StateKey(name: $0.key)?.engineBackend == nil }
    var integers: [String: StoredIntegers] = [:]
    // The worker holds the data in memory: a mapped file's rows must fit there.
    let dataBytes = data.train.inputs.bytesInMemory.addingReportingOverflow(data.validation?.inputs.bytesInMemory ?? 0)
    guard !dataBytes.overflow, dataBytes.partialValue <= MemoryBudget.limit else {
      throw .unsupported(
        backend: "jax",
        [
          SpecIssue(
            path: "data",
            message:
              "the jax worker holds the data in memory, and its \(data.train.count + (data.validation?.count ?? 0)) samples need \(ByteCount.text(dataBytes.overflow ? .max : dataBytes.partialValue)) as float32, more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource)); train on fast or reference, which read the file as they go"
          )
        ])
    }
    for (part, dataset) in [("train", data.train), ("validation", data.validation)] {
      guard let dataset else { continue }
      tensors["data/\(part)/input"] = dataset.inputs.materialized()
      switch dataset.targets {
      case .classes(let labels): integers["data/\(part)/target"] = StoredIntegers(shape: [labels.count], values: labels.map(Int64.init))
      case .values(let values): tensors["data/\(part)/target"] = values
      }
    }
    let header: JSONValue = .object([
      "op": .string("load"),
      "spec": .object([
        "model": spec.model.json, "loss": spec.loss.json, "optimizer": spec.optimizer.json, "schedule": spec.schedule.json,
        "training": spec.training.json,
      ]),
      "state": Self.countersJSON(state),
      "devices": .int(backend.devices * backend.processes),
    ])
    let loaded = try Self.answer(
      group, header, payload: SafeTensors.encode(.init(tensors: tensors, integers: integers)), timeout: requestTimeout * 10)
    maxSteps = max(1, loaded.header.objectValue?["max_steps"]?.numberValue?.int ?? 1)
    evaluationRows = max(1, loaded.header.objectValue?["eval_rows"]?.numberValue?.int ?? 1)
    compileSeconds = loaded.header.objectValue?["compile_seconds"]?.numberValue?.double ?? 0
    stepsPerCall = min(stepsPerCall, maxSteps)
  }

  deinit { group.stop() }

  // MARK: requests

  /// The reply to a request, or the failure as the backend's error (the group stopped after
  /// one that leaves it unable to go on).
  private static func answer(_ group: EngineGroup, _ header: JSONValue, payload: [UInt8] = [], timeout: Duration) throws(BackendError)
    -> EngineProcess.Reply
  {
    let reply: EngineProcess.Reply
    do { reply = try group.request(header, payload: payload, timeout: timeout) } catch {
      throw .engineFailed(backend: "jax", reason: group.describe(error))
    }
    guard let object = reply.header.objectValue, object["ok"]?.boolValue == true else {
      let error = reply.header.objectValue?["error"]?.stringValue ?? "a reply without ok"
      if reply.header.objectValue?["session"]?.boolValue == false { group.stop() }
      throw .engineFailed(backend: "jax", reason: "the worker refused: \(TextExcerpt.quoted(error, limit: 400))")
    }
    return reply
  }

  private func request(_ header: JSONValue, payload: [UInt8] = []) throws(BackendError) -> EngineProcess.Reply {
    try Self.answer(group, header, payload: payload, timeout: requestTimeout)
  }

  static func countersJSON(_ state: TrainingState) -> JSONValue {
    .object([
      "step": .int(state.step), "epoch": .int(state.epoch), "epoch_order_seed": .string(String(state.epochOrderSeed)),
      "index": .int(state.index), "dropout_rng": .string(String(state.dropoutRNG)), "optimizer_steps": .int(state.optimizerSteps),
    ])
  }

  /// The counters a reply's `state` reports.
  private func adopt(_ value: JSONValue?) throws(BackendError) {
    guard let object = value?.objectValue,
      let step = object["step"]?.numberValue?.int, let epoch = object["epoch"]?.numberValue?.int,
      let index = object["index"]?.numberValue?.int, let optimizerSteps = object["optimizer_steps"]?.numberValue?.int,
      let seed = object["epoch_order_seed"]?.stringValue.flatMap({ UInt64($0) }),
      let dropout = object["dropout_rng"]?.stringValue.flatMap({ UInt64($0) })
    else { throw .engineFailed(backend: "jax", reason: "the worker's reply has no complete state") }
    (counters.step, counters.epoch, counters.index, counters.optimizerSteps) = (step, epoch, index, optimizerSteps)
    (counters.epochOrderSeed, counters.dropoutRNG) = (seed, dropout)
  }

  private static func float(_ value: JSONValue?) -> Float? {
    if let number = value?.numberValue { return Float(number.double) }
    switch value?.stringValue {
    case "nan": return .nan
    case "inf": return .infinity
    case "-inf": return -.infinity
    default: return nil
    }
  }

  // MARK: Trainer

  func keepFirst(_ count: Int, of chunk: TrainingChunk) throws(BackendError) {
    guard count < chunk.results.count else { return }
    let reply = try request(.object(["op": .string("rewind"), "keep": .int(count)]))
    try adopt(reply.header.objectValue?["state"])
    // The updates made again are the same: the same batches, masks and rates in the same loop.
    let losses = reply.header.objectValue?["losses"]?.arrayValue ?? []
    guard losses.count == count, step == chunk.results[count - 1].step else {
      throw .engineFailed(backend: "jax", reason: "the worker went back to step \(step), not \(chunk.results[count - 1].step)")
    }
  }

  func trainStep() throws(BackendError) -> StepResult {
    let chunk = train(upTo: step + 1, stopAtEpochEnd: false)
    if let failure = chunk.failure { throw failure }
    guard let result = chunk.results.first else { throw .engineFailed(backend: "jax", reason: "the worker made no update") }
    return result
  }

  func train(upTo limit: Int, stopAtEpochEnd: Bool) -> TrainingChunk {
    let wanted = min(limit - step, maxSteps)
    guard wanted > 0 else { return TrainingChunk() }
    let started = ContinuousClock.now
    let reply: EngineProcess.Reply
    do {
      reply = try request(.object(["op": .string("train"), "steps": .int(wanted), "stop_at_epoch_end": .bool(stopAtEpochEnd)]))
    } catch {
      return TrainingChunk(failure: error)
    }
    let object = reply.header.objectValue!
    let losses = object["losses"]?.arrayValue ?? [], rates = object["rates"]?.arrayValue ?? []
    let measures = object["measures"]?.arrayValue ?? [], ended = object["ended"]?.arrayValue ?? []
    let first = step
    guard rates.count == losses.count, measures.count == losses.count, ended.count == losses.count else {
      return TrainingChunk(failure: .engineFailed(backend: "jax", reason: "the worker's reply lists its updates inconsistently"))
    }
    do { try adopt(object["state"]) } catch { return TrainingChunk(failure: error) }
    let classes = if case .classes = train.targets { true } else { false }
    var chunk = TrainingChunk()
    for i in losses.indices {
      let measure = measures[i].numberValue.map { Float($0.double) }
      chunk.results.append(
        StepResult(
          step: first + i + 1, loss: Self.float(losses[i]) ?? .nan, learningRate: rates[i].numberValue?.double ?? .nan,
          endedEpoch: ended[i].boolValue ?? false,
          measures: classes ? BatchMeasures(accuracy: measure) : BatchMeasures(meanAbsoluteError: spec.loss.isRegression ? measure : nil)))
    }
    if let members = object["gradient_norms"]?.objectValue?.members, !members.isEmpty {
      norms = Dictionary(members.compactMap { member in Self.float(member.value).map { (member.key, $0) } }) { a, _ in a }
    }
    if let failure = object["failure"]?.objectValue {
      let failedStep = failure["step"]?.numberValue?.int ?? step + 1
      let loss = Self.float(failure["loss"]) ?? .nan
      let tensor = failure["tensor"]?.stringValue ?? "a tensor"
      let reason =
        switch failure["kind"]?.stringValue {
        case "gradient": "the gradient of \(tensor) is not finite"
        case "update": "the update made \(tensor) (or its optimizer state) not finite"
        default: "the loss is \(loss)"
        }
      // The worker kept the state of the update before: nothing is spoilt.
      chunk.failure = .diverged(step: failedStep, loss: loss, reason: reason)
    }
    if !losses.isEmpty {
      let seconds = EngineProcess.seconds(ContinuousClock.now - started) / Double(losses.count)
      secondsPerStep = secondsPerStep.map { 0.5 * $0 + 0.5 * seconds } ?? seconds
      stepsPerCall = max(1, min(maxSteps, Int(Self.chunkSeconds / max(secondsPerStep!, 1e-7))))
    }
    return chunk
  }

  func evaluate(_ part: DataPart) throws(BackendError) -> Evaluation? {
    guard let dataset = part == .train ? train : validation else { return nil }
    var failure: BackendError?
    // Value targets fix the outputs' width; class targets take the model's.
    let width: Int? = if case .values(let values) = dataset.targets { values.rowWidth } else { nil }
    let evaluation = ChunkedEvaluation.run(count: dataset.count, chunk: evaluationRows, loss: spec.loss, targets: dataset.targets) {
      range in
      // After a failure the remaining chunks are not asked for (their blank is thrown away).
      func blank() -> (loss: Float, output: Tensor) {
        (.nan, Tensor(shape: [range.count, width ?? 1], scalars: [Float](repeating: 0, count: range.count * (width ?? 1))))
      }
      guard failure == nil else { return blank() }
      do throws(BackendError) {
        let reply = try request(
          .object(["op": .string("outputs"), "part": .string(part.rawValue), "start": .int(range.lowerBound), "count": .int(range.count)]))
        let output = try Self.tensor("output", in: reply.payload)
        let rowWidth = output.count / max(range.count, 1)
        guard output.shape.first == range.count, rowWidth >= 1, width == nil || rowWidth == width else {
          throw .engineFailed(backend: "jax", reason: "the worker's outputs have shape \(output.shape) for \(range.count) rows")
        }
        return (Self.float(reply.header.objectValue?["loss"]) ?? .nan, Tensor(shape: [range.count, rowWidth], scalars: output.scalars))
      } catch {
        failure = error
        return blank()
      }
    }
    if let failure { throw failure }
    return evaluation
  }

  static func tensor(_ name: String, in payload: [UInt8]) throws(BackendError) -> StoredTensor {
    do {
      guard let tensor = try SafeTensors.decode(payload).tensors[name] else {
        throw BackendError.engineFailed(backend: "jax", reason: "the worker's reply has no tensor \(name)")
      }
      return tensor
    } catch let error as BackendError {
      throw error
    } catch {
      throw .engineFailed(backend: "jax", reason: "the worker's reply is not a safetensors file: \(error)")
    }
  }

  func predict(_ inputs: Tensor) throws(BackendError) -> Tensor {
    let reply = try request(.object(["op": .string("predict")]), payload: SafeTensors.encode(.init(tensors: ["input": inputs])))
    return try Self.tensor("output", in: reply.payload)
  }

  func exportState(parametersOnly: Bool) throws(BackendError) -> TrainingState {
    let reply = try request(.object(["op": .string("export"), "parameters_only": .bool(parametersOnly)]))
    try adopt(reply.header.objectValue?["state"])
    let tensors: [String: StoredTensor]
    do { tensors = try SafeTensors.decode(reply.payload).tensors } catch {
      throw .engineFailed(backend: "jax", reason: "the worker's state is not a safetensors file: \(error)")
    }
    var state = counters
    state.tensors = tensors.merging(engineState) { own, _ in own }
    return state
  }

  func gradientNorms() -> [String: Float] { norms }
}

/// The worker processes of one trainer: one, or a group joined by `jax.distributed`. Every
/// request goes to every member (each runs the same program on its own devices) and the first
/// member's reply is the answer. When a member ends while the group is in use, the others are
/// stopped at once — JAX itself would notice only at its heartbeat timeout.
final class EngineGroup: @unchecked Sendable {
  let members: [EngineProcess]
  private let watch: Watch

  /// Which member ended first, and the process ids to stop then.
  final class Watch: Sendable {
    let state = Mutex<(ended: Int?, pids: [Int32], stopping: Bool)>((nil, [], false))

    func ended(_ index: Int, of count: Int) {
      let pids: [Int32] = state.withLock { s in
        guard !s.stopping else { return [] }
        if s.ended == nil { s.ended = index }
        s.stopping = true
        return s.pids
      }
      for pid in pids { kill(pid, SIGKILL) }
    }
  }

  /// Starts `backend.processes` workers: here, or one on each of `backend.hosts` through the
  /// launcher (ssh), which gets the worker's command with its `SPECBENCH_…` variables as one
  /// line for the remote shell, every word quoted.
  init(location: JaxBackend.Location, backend: JaxBackend) throws(EngineProcess.Failure) {
    let watch = Watch()
    self.watch = watch
    let processes = backend.processes
    var environment = backend.environment.merging(["SPECBENCH_JAX_DEVICES": String(backend.devices), "PYTHONUNBUFFERED": "1"]) { $1 }
    let variables = ProcessInfo.processInfo.environment
    environment["SPECBENCH_JAX_CACHE"] =
      variables["SPECBENCH_JAX_CACHE"]
      ?? ((variables["XDG_CACHE_HOME"] ?? ((variables["HOME"] ?? NSTemporaryDirectory()) + "/.cache")) + "/specbench/jax")
    if processes > 1 {
      var coordinator = backend.coordinator ?? backend.hosts.first.map { "\($0):8476" }
      if coordinator == nil { coordinator = "127.0.0.1:\(try Self.freePort())" }
      environment["SPECBENCH_JAX_COORDINATOR"] = coordinator!
      environment["SPECBENCH_JAX_PROCESSES"] = String(processes)
    }
    var started: [EngineProcess] = []
    for index in 0..<processes {
      var own = environment
      if processes > 1 { own["SPECBENCH_JAX_PROCESS_ID"] = String(index) }
      var (executable, arguments, local) = (location.python, [location.worker], own)
      if index < backend.hosts.count, let program = backend.launcher.first {
        let line = (["env"] + own.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [location.python, location.worker])
          .map(Self.quoted).joined(separator: " ")
        (executable, arguments, local) = (Self.resolve(program), Array(backend.launcher.dropFirst()) + [backend.hosts[index], line], [:])
      }
      do {
        started.append(
          try EngineProcess(
            executable: executable, arguments: arguments, environment: local,
            onExit: { watch.ended(index, of: processes) }))
      } catch {
        for member in started { member.stop() }
        throw error
      }
    }
    members = started
    watch.state.withLock { $0.pids = started.map(\.processIdentifier) }
  }

  /// `word` as one word for a POSIX shell.
  static func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

  /// A program's path: as given when it has a slash, else the first on the `PATH`.
  static func resolve(_ program: String) -> String {
    guard !program.contains("/") else { return program }
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    where FileManager.default.isExecutableFile(atPath: "\(folder)/\(program)") {
      return "\(folder)/\(program)"
    }
    return program
  }

  /// A free TCP port on the loopback interface for the group's coordinator.
  static func freePort() throws(EngineProcess.Failure) -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw .cannotStart("no socket for the coordinator's port") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw .cannotStart("no free port for the coordinator") }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// Sends the request to every member, then reads every reply; the first member's is returned.
  func request(_ header: JSONValue, payload: [UInt8] = [], timeout: Duration) throws(EngineProcess.Failure) -> EngineProcess.Reply {
    let deadline = ContinuousClock.now + timeout
    var current = 0
    do {
      for (index, member) in members.enumerated() {
        current = index
        try member.send(header, payload: payload, deadline: deadline)
      }
      var first: EngineProcess.Reply?
      for (index, member) in members.enumerated() {
        current = index
        let reply = try member.receive(deadline: deadline)
        if first == nil { first = reply }
      }
      return first!
    } catch {
      // A member whose pipe ended has exited: it ended first unless the watch saw another end
      // before (the exit notice can come after the pipe's end; `describe` names it either way).
      if case .exited = error { watch.state.withLock { if $0.ended == nil { $0.ended = current } } }
      stop()
      throw error
    }
  }

  /// A failure, naming the member that ended first when one of several did.
  func describe(_ failure: EngineProcess.Failure) -> String {
    guard members.count > 1, let ended = watch.state.withLock({ $0.ended }) else { return failure.description }
    let how = members[ended].exitDescription ?? "ended"
    return "process \(ended + 1) of \(members.count) \(how); SpecBench stopped the others: \(failure.description)"
  }

  func stop() {
    watch.state.withLock { $0.stopping = true }
    for member in members { member.stop() }
  }
}
