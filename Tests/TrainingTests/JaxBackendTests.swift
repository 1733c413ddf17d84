import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends

/// The backends the shared backend tests (agreement, resume, overflow, metrics) run on: every
/// built-in one, jax only where Python has jax (or where SPECBENCH_REQUIRE_PYTHON=1 says it must).
let testedBackends: [String] = {
  let names = BackendRegistry.builtIn.names.filter { $0 != "jax" || JaxPython.isAvailable }
  if !names.contains("jax") { print("skipped: the shared backend tests on jax (jax cannot be imported; scripts/setup.sh installs it)") }
  return names
}()

/// The `jax` backend against `reference`: chunked training, swaps both ways, several devices and
/// processes, and every fault of the worker (docs/jax.md).
@Suite("The jax backend", .enabled(if: JaxPython.isAvailable, "skipped: jax cannot be imported (scripts/setup.sh installs it)"))
struct JaxBackendTests {
  static func data(_ spec: SessionSpec) throws -> DataSplit {
    DataSplit(try DatasetLoader.load(spec.data, relativeTo: ""), validationFraction: spec.data.validationFraction, seed: spec.training.seed)
  }

  /// `steps` updates from `state`, in the chunks the trainer asks for.
  static func losses(_ trainer: any Trainer, steps: Int) throws -> [Float] {
    var losses: [Float] = []
    let limit = trainer.step + steps
    while trainer.step < limit {
      let chunk = trainer.train(upTo: min(limit, trainer.step + max(1, trainer.stepsPerCall)), stopAtEpochEnd: false)
      if let failure = chunk.failure { throw failure }
      losses += chunk.results.map(\.loss)
    }
    return losses
  }

  static func largestRelativeGap(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).map { Double(abs($0 - $1)) / max(1e-6, Double(abs($0))) }.max() ?? .infinity
  }

  /// Every feature the capability table claims for jax, 20 updates in chunks: each update's
  /// loss within 1e-4 relative of the reference's, and the same counters.
  @Test func everyClaimedFeatureAgreesWithReferenceOverTwentySteps() throws {
    var worst = (0.0, "")
    for (label, spec) in AgreementTests.cases {
      // lbfgs is the one optimizer jax does not claim (LBFGSTests.jaxRefusesLBFGSByItsPath).
      if case .lbfgs = spec.optimizer { continue }
      #expect(JaxBackend().capabilities.unsupported(in: spec).isEmpty, "jax claims \(label)")
      let data = try Self.data(spec)
      let reference = try ReferenceBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
      let jax = try JaxBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
      let (a, b) = (try Self.losses(reference, steps: 20), try Self.losses(jax, steps: 20))
      #expect(a.count == 20 && b.count == 20, "\(label)")
      let gap = Self.largestRelativeGap(a, b)
      if gap > worst.0 { worst = (gap, label) }
      let (x, y) = (try reference.exportState(), try jax.exportState())
      #expect(
        (x.step, x.epoch, x.index, x.dropoutRNG, x.epochOrderSeed) == (y.step, y.epoch, y.index, y.dropoutRNG, y.epochOrderSeed), "\(label)"
      )
      #expect(Set(x.tensors.keys) == Set(y.tensors.keys), "\(label)")
      // The dashboard's gradient norms: those of the last update, by parameter name.
      let (p, q) = (reference.gradientNorms(), jax.gradientNorms())
      #expect(Set(p.keys) == Set(q.keys), "\(label): \(q.keys.sorted())")
      for (name, norm) in p {
        #expect(abs(norm - (q[name] ?? .nan)) <= 1e-3 * max(norm, 1e-3), "\(label): \(name) \(norm) vs \(q[name] ?? .nan)")
      }
    }
    print("jax against reference over 20 steps: largest relative loss gap \(worst.0) (\(worst.1))")
    #expect(worst.0 < 1e-4, "\(worst.1): \(worst.0)")
  }

  /// reference → jax at step 50 → fast at step 150: over the 100 steps after each swap the losses
  /// follow a run that never swapped within 1e-4 relative.
  @Test func swapsBothWaysKeepTheLossCurve() throws {
    let spec = AgreementTests.cases.first { $0.0 == "layer dropout" }!.1
    let data = try Self.data(spec)
    let straight = try ReferenceBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    let expected = try Self.losses(straight, steps: 250)

    let first = try ReferenceBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    var losses = try Self.losses(first, steps: 50)
    let onJax = try JaxBackend().makeTrainer(spec: spec, state: first.exportState(), data: data)
    losses += try Self.losses(onJax, steps: 100)
    let back = try FastBackend().makeTrainer(spec: spec, state: onJax.exportState(), data: data)
    losses += try Self.losses(back, steps: 100)
    #expect(Array(losses[0..<50]) == Array(expected[0..<50]))
    let afterJax = Self.largestRelativeGap(Array(expected[50..<150]), Array(losses[50..<150]))
    let afterFast = Self.largestRelativeGap(Array(expected[150..<250]), Array(losses[150..<250]))
    print("swap reference → jax → fast: largest relative gap \(afterJax) on jax, \(afterFast) back on fast")
    #expect(afterJax < 1e-4 && afterFast < 1e-4)
  }

  /// Data-parallel over 2 devices, and 2 processes × 2 devices joined by jax.distributed: the
  /// losses follow one device within 1e-4 relative.
  @Test(arguments: [(2, 1), (2, 2)])
  func severalDevicesAndProcessesFollowOneDevice(devices: Int, processes: Int) throws {
    let spec = AgreementTests.cases.first { $0.0 == "layer batch_norm" }!.1
    let data = try Self.data(spec)
    let one = try JaxBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    let many = try JaxBackend(devices: devices, processes: processes).makeTrainer(
      spec: spec, state: spec.initialTrainingState(), data: data)
    let (a, b) = (try Self.losses(one, steps: 60), try Self.losses(many, steps: 60))
    let gap = Self.largestRelativeGap(a, b)
    print("jax on \(devices) devices × \(processes) processes against one device: largest relative loss gap \(gap)")
    #expect(a.count == 60 && gap < 1e-4)
    let (x, y) = (try #require(try one.evaluate(.train)), try #require(try many.evaluate(.train)))
    #expect(abs(x.loss - y.loss) <= 1e-4 * abs(x.loss) && x.accuracy == y.accuracy)
  }

  /// An update that overflows as the last of a request (no later loss shows it): the request
  /// reports the divergence at that update, and the state stays the one before it.
  @Test func anUpdateThatOverflowsAsARequestsLastIsCaught() throws {
    let spec = makeSpec(layers: [dense("d1", 8, .tanh), dense("d2", 3)], optimizer: .sgd(.init(lr: 1e300)))
    let trainer = try JaxBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: try Self.data(spec))
    let chunk = trainer.train(upTo: 1, stopAtEpochEnd: false)
    guard case .diverged(let step, _, let reason) = chunk.failure else {
      Issue.record("expected a divergence, got \(String(describing: chunk.failure))")
      return
    }
    #expect(step == 1 && reason.contains("the update made") && chunk.results.isEmpty, "\(reason)")
    let (state, initial) = (try trainer.exportState(), try spec.initialTrainingState())
    #expect(state.step == 0 && state.tensors == initial.tensors)
  }

  /// Each fault of the worker while it trains: the trainer reports it, naming the backend, and
  /// the updates it made before are kept.
  @Test(arguments: ["abort", "exit", "garbage", "hang"])
  func aWorkerThatFailsIsReported(kind: String) throws {
    let spec = AgreementTests.cases.first { $0.0 == "layer dropout" }!.1
    var backend = JaxBackend()
    backend.environment = ["SPECBENCH_ENGINE_TEST": "1", "SPECBENCH_ENGINE_FAULT": "\(kind):12"]
    backend.requestTimeout = .seconds(kind == "hang" ? 4 : 60)
    let trainer = try backend.makeTrainer(spec: spec, state: spec.initialTrainingState(), data: try Self.data(spec))
    var made = 0
    var failure: BackendError?
    while failure == nil && made < 100 {
      let chunk = trainer.train(upTo: trainer.step + 5, stopAtEpochEnd: false)
      made += chunk.results.count
      failure = chunk.failure
    }
    let error = try #require(failure)
    guard case .engineFailed(let name, let reason) = error else {
      Issue.record("expected engineFailed, got \(error)")
      return
    }
    #expect(name == "jax" && made >= 12 && made < 20, "\(kind): \(made) updates, then \(reason)")
    let expected = ["abort": "signal 6", "exit": "status 5", "garbage": "not a frame", "hang": "did not answer"][kind]!
    #expect(reason.contains(expected), "\(kind): \(reason)")
    #expect(throws: BackendError.self) { try trainer.exportState() }
  }

  /// One process of a group that ends is noticed by SpecBench's watch at once (JAX alone would
  /// wait for its heartbeat), and the group is stopped.
  @Test func aDeadProcessOfAGroupStopsTheGroup() throws {
    let spec = AgreementTests.cases.first { $0.0 == "layer batch_norm" }!.1
    var backend = JaxBackend(devices: 1, processes: 2)
    backend.environment = ["SPECBENCH_ENGINE_TEST": "1", "SPECBENCH_ENGINE_FAULT": "exit:10", "SPECBENCH_ENGINE_FAULT_PROCESS": "1"]
    backend.requestTimeout = .seconds(300)
    let trainer = try backend.makeTrainer(spec: spec, state: spec.initialTrainingState(), data: try Self.data(spec))
    let started = ContinuousClock.now
    var failure: BackendError?
    while failure == nil && trainer.step < 100 { failure = trainer.train(upTo: trainer.step + 5, stopAtEpochEnd: false).failure }
    print("a dead process of 2 noticed after \(ContinuousClock.now - started)")
    let error = try #require(failure)
    #expect(error.description.contains("process 2 of 2"), "\(error)")
  }

  /// The watch alone: one member is busy with a long request (it is not in a collective, so
  /// nothing in JAX would notice) when another dies; the busy one is stopped at once, and its
  /// request fails instead of answering 30 s later.
  @Test func theWatchStopsTheOthersWhenOneEnds() throws {
    let location = try JaxBackend.locate().get()
    var backend = JaxBackend(processes: 2)
    backend.environment = ["SPECBENCH_ENGINE_TEST": "1"]
    let group = try EngineGroup(location: location, backend: backend)
    let deadline = ContinuousClock.now + .seconds(120)
    try group.members[0].send(.object(["op": .string("sleep"), "seconds": .int(30)]), deadline: deadline)
    try group.members[1].send(.object(["op": .string("crash")]), deadline: deadline)
    let started = ContinuousClock.now
    do {
      _ = try group.members[0].receive(deadline: deadline)
      Issue.record("the busy member answered: the watch did not stop it")
    } catch {
      print("the watch stopped the busy member \(ContinuousClock.now - started) after the other crashed: \(group.describe(error))")
      #expect(
        group.describe(error).hasPrefix("process 2 of 2 exited with status 7; SpecBench stopped the others"), "\(group.describe(error))")
      #expect(error.description.contains("killed by signal 9"), "\(error)")
    }
  }

  /// `hosts=alpha,beta`: one process on each host, started through the launcher (a stand-in for
  /// ssh that runs the remote shell's line here), the group's losses those of one device.
  @Test func hostsAreReachedThroughTheLauncher() throws {
    let folder = temporaryFolder()
    let log = folder + "/hosts.log", launcher = folder + "/fake-ssh"
    // (As a remote shell does, it runs the line; `exec` so that stopping the launcher stops the worker.)
    try "#!/bin/sh\necho \"$1\" >> '\(log)'\nshift\nexec /bin/sh -c \"exec $*\"\n".write(
      toFile: launcher, atomically: true, encoding: .utf8)
    chmod(launcher, 0o755)
    let options = [
      BackendOption(key: "hosts", value: "alpha,beta"), BackendOption(key: "coordinator", value: "127.0.0.1:\(try EngineGroup.freePort())"),
    ]
    var backend = try #require(try JaxBackend().configured(options) as? JaxBackend)
    backend.launcher = [launcher]
    #expect(backend.processes == 2 && backend.label.hasPrefix("jax hosts=alpha,beta coordinator=127.0.0.1:"))
    let spec = AgreementTests.cases.first { $0.0 == "layer dropout" }!.1
    let data = try Self.data(spec)
    let one = try JaxBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    let group = try backend.makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    let gap = Self.largestRelativeGap(try Self.losses(one, steps: 30), try Self.losses(group, steps: 30))
    #expect(gap < 1e-4)
    #expect(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").sorted() == ["alpha", "beta"])
    // A host is a name, never a launcher option or shell words; the remote line quotes every word.
    for hosts in ["-oProxyCommand=touch /tmp/x", "a b", "a;b", "", "a,,b"] {
      #expect(throws: BackendError.self, "\(hosts)") { try JaxBackend().configured([BackendOption(key: "hosts", value: hosts)]) }
    }
    #expect(throws: BackendError.self) {
      try JaxBackend().configured([BackendOption(key: "hosts", value: "a,b"), BackendOption(key: "processes", value: "3")])
    }
    let hostile = "it's $(touch \(folder)/owned); `touch \(folder)/owned2` \\ \"x\""
    let echoed = try runProcess("/bin/sh", ["-c", "printf %s " + EngineGroup.quoted(hostile)])
    #expect(echoed.stdout == hostile && !FileManager.default.fileExists(atPath: folder + "/owned"))
  }

  /// Without Python, or with a Python that lacks jax, the backend says what to install.
  @Test func withoutJaxTheBackendSaysWhatToInstall() throws {
    let worker = repositoryPath("engines/jax/worker.py")
    let missing = JaxBackend(location: .init(python: "/nonexistent/python3", worker: worker))
    #expect(missing.unavailableReason?.contains("scripts/setup.sh") == true, "\(missing.unavailableReason ?? "nil")")
    let plain = temporaryFolder() + "/python3"
    try "#!/bin/sh\necho 'ModuleNotFoundError: No module named jax' >&2\nexit 1\n".write(toFile: plain, atomically: true, encoding: .utf8)
    chmod(plain, 0o755)
    let noJax = JaxBackend(location: .init(python: plain, worker: worker))
    #expect(noJax.unavailableReason?.contains("No module named jax") == true, "\(noJax.unavailableReason ?? "nil")")
    #expect(throws: BackendError.self) { try JaxBackend().configured([BackendOption(key: "device", value: "2")]) }
    #expect(throws: BackendError.self) { try JaxBackend().configured([BackendOption(key: "devices", value: "0")]) }
    #expect(throws: BackendError.self) { try FastBackend().configured([BackendOption(key: "devices", value: "2")]) }
  }
}
