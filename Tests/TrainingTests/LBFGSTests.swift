import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends

/// A least-squares or logistic-regression problem written as a CSV beside a session: one dense
/// layer on `features` columns, full batch, no shuffling.
struct LinearProblem {
  let folder: String
  let x: [[Double]]
  let y: [Double]

  /// `n` rows of `scales.count` features, x_j ~ N(0, 1)·scales[j], from the format's seeded
  /// generator; the target is `x·w* + 0.5 + noise` (regression) or its sign (classification).
  init(n: Int, scales: [Double], classification: Bool, seed: UInt64 = 7) {
    folder = temporaryFolder("lbfgs")
    var generator = SplitMix64(state: seed)
    func normal() -> Double { Double(generator.nextNormal()) }
    let truth = scales.indices.map { Double($0 % 3) - 0.7 }
    var x: [[Double]] = [], y: [Double] = []
    for _ in 0..<n {
      let raw = scales.map { _ in normal() }
      let row = zip(raw, scales).map(*)
      // The target depends on the unscaled features: the scales make the problem ill-conditioned.
      let signal = zip(raw, truth).map(*).reduce(0.5, +)
      let noisy = signal + 0.1 * normal()
      x.append(row)
      y.append(classification ? (noisy > 0 ? 1 : 0) : noisy)
    }
    (self.x, self.y) = (x, y)
    // Values printed exactly (shortest round-trip text), read back as float32 by the CSV source.
    var text = (scales.indices.map { "x\($0)" } + ["y"]).joined(separator: ",") + "\n"
    for (row, target) in zip(x, y) {
      text += row.map { "\(Float($0))" }.joined(separator: ",") + "," + (classification ? "\(Int(target))" : "\(Float(target))") + "\n"
    }
    try! text.write(toFile: folder + "/data.csv", atomically: true, encoding: .utf8)
  }

  func spec(_ settings: OptimizerSpec.LBFGS, classification: Bool) -> SessionSpec {
    let source = DataSource.csv(.init(path: "data.csv", target: .name("y"), task: classification ? .classification : .regression))
    return SessionSpec(
      name: "lbfgs", model: ModelSpec(input: [x[0].count], layers: [dense("dense1", 1)]),
      loss: classification ? .sigmoidBinaryCrossEntropy : .mse, optimizer: .lbfgs(settings), schedule: .constant,
      data: DataSpec(source: source, validationFraction: 0), training: TrainingSpec(batchSize: x.count, shuffle: false, seed: 1))
  }

  /// A trainer of `spec` on `backend` from `state` (the seeded initial state when nil).
  func trainer(_ spec: SessionSpec, backend: any Backend = ReferenceBackend(), state: TrainingState? = nil) throws -> any Trainer {
    let data = try DatasetLoader.load(spec.data, relativeTo: folder)
    let split = DataSplit(data, validationFraction: 0, seed: spec.training.seed)
    return try backend.makeTrainer(spec: spec, state: state ?? spec.initialTrainingState(), data: split)
  }

  /// The float32 values the session trains on, as doubles.
  var x32: [[Double]] { x.map { $0.map { Double(Float($0)) } } }
  var y32: [Double] { y.map { Double(Float($0)) } }
}

/// The flat parameters of a trainer's state: weight row-major, then bias (the flat layout).
func flatParameters(_ trainer: any Trainer) throws -> [Float] {
  let state = try trainer.exportState()
  return state.tensors["param/dense1.weight"]!.scalars + state.tensors["param/dense1.bias"]!.scalars
}

@Suite("L-BFGS follows torch.optim.LBFGS")
struct LBFGSTests {
  /// The settings other suites run L-BFGS with (agreement between backends, exact resume):
  /// both line-search modes, a short history so that pairs are dropped.
  static let cases: [OptimizerSpec] = [
    .lbfgs(.init(lr: 0.5, maxIter: 4, historySize: 3)),
    .lbfgs(.init(maxIter: 5, historySize: 2, lineSearch: .strongWolfe)),
  ]

  @Test(
    "each step agrees with a float64 transcription of PyTorch's LBFGS: loss, n_iter, func_evals, t and parameters",
    .enabled(if: PythonPeer.isAvailable, "numpy is not installed: skipped"),
    arguments: [nil, OptimizerSpec.LBFGS.LineSearch.strongWolfe])
  func matchesTheFloat64Transcription(lineSearch: OptimizerSpec.LBFGS.LineSearch?) throws {
    let problem = LinearProblem(n: 48, scales: [1, 2, 0.5, 3], classification: false)
    let settings = OptimizerSpec.LBFGS(lr: 1, maxIter: 3, historySize: 4, lineSearch: lineSearch)
    let spec = problem.spec(settings, classification: false)
    let trainer = try problem.trainer(spec)
    let initial = try spec.initialTrainingState()
    let task: [String: Any] = [
      "x": problem.x32, "y": problem.y32.map { [$0] },
      "weight": [initial.tensors["param/dense1.weight"]!.scalars.map(Double.init)],
      "bias": initial.tensors["param/dense1.bias"]!.scalars.map(Double.init), "steps": 5, "lr": 1, "max_iter": 3,
      "max_eval": NSNull(), "tolerance_grad": 1e-7, "tolerance_change": 1e-9, "history_size": 4,
      "line_search": lineSearch.map { $0.rawValue as Any } ?? NSNull(),
    ]
    let input = String(decoding: try JSONSerialization.data(withJSONObject: task), as: UTF8.self)
    let script = try String(contentsOfFile: repositoryPath("Tests/Python/lbfgs_float64.py"), encoding: .utf8)
    let result = try PythonPeer.run(
      "import sys; sys.stdin = __import__('io').StringIO(sys.argv[1]); sys.argv = ['lbfgs']\n" + script, [input])
    #expect(result.status == 0, "\(result.stderr)")
    let expected = result.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    try #require(expected.count == 5)
    var iterations = 0, evaluations = 0
    for (k, oracle) in expected.enumerated() {
      let step = try trainer.trainStep()
      let report = try #require(step.optimizer)
      iterations += report.iterations
      evaluations += report.evaluations
      #expect(iterations == oracle["n_iter"] as! Int, "step \(k + 1): n_iter")
      #expect(evaluations == oracle["func_evals"] as! Int, "step \(k + 1): func_evals")
      #expect(report.lineSearchEvaluations == report.evaluations - 1)
      let loss = oracle["loss"] as! Double
      #expect(abs(Double(step.loss) - loss) <= 1e-5 * max(1, abs(loss)), "step \(k + 1): loss \(step.loss) vs \(loss)")
      let t = oracle["t"] as! Double
      #expect(abs(Double(report.stepSize) - t) <= 1e-4 * max(1, abs(t)), "step \(k + 1): t \(report.stepSize) vs \(t)")
      let parameters = try flatParameters(trainer)
      for (ours, theirs) in zip(parameters, oracle["parameters"] as! [Double]) {
        #expect(abs(Double(ours) - theirs) <= 2e-4 * max(1, abs(theirs)), "step \(k + 1): parameters \(parameters)")
      }
    }
  }

  @Test("a least-squares problem reaches the exact least-squares optimum", arguments: [nil, OptimizerSpec.LBFGS.LineSearch.strongWolfe])
  func leastSquaresReachesTheOptimum(lineSearch: OptimizerSpec.LBFGS.LineSearch?) throws {
    let problem = LinearProblem(n: 64, scales: [1, 4, 0.25], classification: false)
    let trainer = try problem.trainer(problem.spec(.init(lineSearch: lineSearch), classification: false))
    for _ in 0..<6 { _ = try trainer.trainStep() }
    // The normal equations in double precision, on the float32 data trained on.
    let rows = problem.x32.map { $0 + [1] }
    let k = rows[0].count
    var a = [[Double]](repeating: [Double](repeating: 0, count: k + 1), count: k)
    for (row, target) in zip(rows, problem.y32) {
      for i in 0..<k {
        for j in 0..<k { a[i][j] += row[i] * row[j] }
        a[i][k] += row[i] * target
      }
    }
    for column in 0..<k {
      let pivot = (column..<k).max { abs(a[$0][column]) < abs(a[$1][column]) }!
      a.swapAt(column, pivot)
      for row in 0..<k where row != column {
        let factor = a[row][column] / a[column][column]
        for j in column...k { a[row][j] -= factor * a[column][j] }
      }
    }
    let optimum = (0..<k).map { a[$0][k] / a[$0][$0] }
    let parameters = try flatParameters(trainer)
    for (ours, exact) in zip(parameters, optimum) {
      #expect(abs(Double(ours) - exact) <= 1e-4 * max(1, abs(exact)), "\(parameters) vs \(optimum)")
    }
  }

  @Test("on an ill-conditioned logistic regression strong Wolfe converges where the fixed step diverges")
  func illConditionedNeedsTheLineSearch() throws {
    let problem = LinearProblem(n: 200, scales: [1, 300], classification: true)
    // The fixed step: t = lr along the quasi-Newton direction overshoots into saturation.
    let fixed = try problem.trainer(problem.spec(.init(), classification: true))
    var fixedFailure: BackendError?
    var fixedLoss: Float = 0
    for _ in 0..<20 {
      do { fixedLoss = try fixed.trainStep().loss } catch {
        fixedFailure = error
        break
      }
    }
    let wolfe = try problem.trainer(problem.spec(.init(lineSearch: .strongWolfe), classification: true))
    var losses: [Float] = []
    for _ in 0..<20 { losses.append(try wolfe.trainStep().loss) }
    // Newton's method in double precision on the same float32 data: the optimum's mean loss.
    let rows = problem.x32.map { $0 + [1] }
    var w = [Double](repeating: 0, count: 3)
    func loss(_ w: [Double]) -> Double {
      zip(rows, problem.y32).map { row, y in
        let z = zip(row, w).map(*).reduce(0, +)
        return max(z, 0) - z * y + log(1 + exp(-abs(z)))
      }.reduce(0, +) / Double(rows.count)
    }
    for _ in 0..<50 {
      var g = [Double](repeating: 0, count: 3), h = [[Double]](repeating: [0, 0, 0], count: 3)
      for (row, y) in zip(rows, problem.y32) {
        let p = 1 / (1 + exp(-zip(row, w).map(*).reduce(0, +)))
        for i in 0..<3 {
          g[i] += (p - y) * row[i] / Double(rows.count)
          for j in 0..<3 { h[i][j] += p * (1 - p) * row[i] * row[j] / Double(rows.count) }
        }
      }
      // Solve h·delta = g (3×3, Cramer's rule).
      func det(_ m: [[Double]]) -> Double {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2]
          * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
      }
      let d = det(h)
      for i in 0..<3 {
        var m = h
        for r in 0..<3 { m[r][i] = g[r] }
        w[i] -= det(m) / d
      }
    }
    let optimum = loss(w)
    let final = try #require(try wolfe.evaluate(.train)).loss
    #expect(Double(final) <= optimum + 1e-4, "strong Wolfe ends at \(final), the optimum is \(optimum) (losses \(losses))")
    #expect(
      fixedFailure != nil || Double(fixedLoss) > 10 * optimum,
      "the fixed step should not converge here: it ended at \(fixedLoss) (optimum \(optimum))")
  }

  /// A line-search trial far past the minimum, where the loss overflows float32, is bracketed
  /// away from as PyTorch's infinite loss is: the step goes on and ends at a finite point. The
  /// fixed step has no search: its overflow is a divergence, the state kept from before it.
  @Test(arguments: [Float(1e22), 1e30])
  func aTrialThatOverflowsIsBracketedAway(lr: Float) throws {
    let problem = LinearProblem(n: 48, scales: [1, 2, 0.5], classification: false)
    let wolfe = try problem.trainer(problem.spec(.init(lr: Double(lr), lineSearch: .strongWolfe), classification: false))
    let first = try wolfe.trainStep()
    let report = try #require(first.optimizer)
    #expect(report.lineSearchEvaluations > 1, "\(report)")
    var losses = [first.loss]
    for _ in 0..<5 { losses.append(try wolfe.trainStep().loss) }
    let parameters = try flatParameters(wolfe)
    #expect(parameters.allSatisfy { $0.isFinite })
    let final = try #require(try wolfe.evaluate(.train)).loss
    #expect(final <= losses[0], "losses \(losses), final \(final)")
    let fixed = try problem.trainer(problem.spec(.init(lr: Double(lr)), classification: false))
    #expect(throws: BackendError.self) { _ = try fixed.trainStep() }
    let initial = try problem.spec(.init(lr: Double(lr)), classification: false).initialTrainingState()
    #expect(try fixed.exportState() == initial)
  }

  /// The backends that run lbfgs are reference and fast; jax says so by the field's path.
  @Test func jaxRefusesLBFGSByItsPath() throws {
    let spec = LinearProblem(n: 8, scales: [1], classification: false).spec(.init(), classification: false)
    #expect(ReferenceBackend().capabilities.unsupported(in: spec).isEmpty && FastBackend().capabilities.unsupported(in: spec).isEmpty)
    let refused = JaxBackend().capabilities.unsupported(in: spec)
    #expect(refused.map(\.path.description) == ["optimizer.type"])
    #expect(refused.first?.message == "optimizer \"lbfgs\" is not supported by this backend")
  }

  @Test(
    "save, load and continue is bit-identical; so is a swap between backends", arguments: [nil, OptimizerSpec.LBFGS.LineSearch.strongWolfe])
  func resumesExactly(lineSearch: OptimizerSpec.LBFGS.LineSearch?) throws {
    let problem = LinearProblem(n: 40, scales: [1, 2, 3], classification: false)
    let spec = problem.spec(.init(maxIter: 4, historySize: 3, lineSearch: lineSearch), classification: false)
    let straight = try problem.trainer(spec)
    for _ in 0..<6 { _ = try straight.trainStep() }
    // Through a session file: the I64 counts, the [k, P] histories and the flat layout.
    let first = try problem.trainer(spec)
    for _ in 0..<3 { _ = try first.trainStep() }
    var saved = spec
    saved.state = spec.initialStateRecord()
    let path = problem.folder + "/saved.json"
    _ = try SessionFile.save(SessionBundle(spec: saved, state: try first.exportState()), to: path)
    let loaded = try SessionFile.load(path)
    let state = try loaded.trainingState()
    #expect(state.tensors["opt/model/n_iter"]?.integers != nil)
    #expect(state.tensors["opt/model/old_dirs"]!.shape == [3, 4])
    let resumed = try problem.trainer(spec, state: state)
    for _ in 0..<3 { _ = try resumed.trainStep() }
    #expect(try resumed.exportState().tensors == straight.exportState().tensors)
    // A swap to fast and back carries every tensor as it is.
    let fast = try problem.trainer(spec, backend: FastBackend(), state: try first.exportState())
    #expect(try fast.exportState().tensors == first.exportState().tensors)
    for _ in 0..<3 { _ = try fast.trainStep() }
    let fastParameters = try flatParameters(fast), referenceParameters = try flatParameters(straight)
    for (a, b) in zip(fastParameters, referenceParameters) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b))) }
  }
}
