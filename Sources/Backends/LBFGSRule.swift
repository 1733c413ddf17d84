import SpecKit
import TensorCore

/// `torch.optim.LBFGS` (PyTorch 2.15's `torch/optim/lbfgs.py`) as a whole-model rule: one
/// `update` is one `.step(closure)`, with the objective as the closure. Every rule, test and
/// count follows PyTorch's source, including where it surprises (`max_eval` checked only after
/// an iteration; the step's loss is the one at its start). docs/training.md, "L-BFGS", states
/// them; the state's names are `LBFGSState`'s (docs/spec-format.md, "L-BFGS state").
///
/// Arithmetic: vectors float32, every vector operation float32 in PyTorch's order; reductions
/// accumulated in float64 and rounded once to float32; losses compared in float64; every step
/// size rounded to float32 when it is chosen. Nothing but the state tensors carries from one
/// step to the next, so a saved and loaded state continues bit for bit.
public struct LBFGSRule: OptimizerRule {
  public let settings: OptimizerSpec.LBFGS

  /// PyTorch's strong Wolfe constants and curvature threshold.
  static let c1 = 1e-4
  static let c2 = 0.9
  static let curvatureThreshold: Float = 1e-10

  public init(_ settings: OptimizerSpec.LBFGS) { self.settings = settings }

  public var elementwise: OptimizerSpec? { nil }

  public func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor] {
    LBFGSState.tensors(parameterCount: parameters.map(\.count).reduce(0, +), settings: settings)
  }

  public func stateProblems(_ tensors: [String: StoredTensor], parameters: [ParameterShape]) -> [String] {
    OptimizerSpec.lbfgs(settings).stateProblems(tensors, parameters: parameters)
  }

  public func update(
    parameters: inout [String: Tensor], state: inout [String: StoredTensor], objective: Objective, context: UpdateContext
  ) throws(BackendError) -> UpdateOutcome {
    // The first evaluation comes before anything changes: when it throws, nothing did.
    let (loss, gradients) = try objective(parameters)
    let order = context.parameterOrder
    // The step holds the objective only while it runs (it must not outlive this call).
    let result: Result<(UpdateOutcome, [String: Tensor], Memory, Int), BackendError> = withoutActuallyEscaping(objective) { objective in
      var run = Step(settings: settings, order: order, parameters: parameters, objective: objective)
      var memory = Memory(state, count: run.count)
      do throws(BackendError) {
        let outcome = try run.iterate(from: loss, gradients: gradients, memory: &memory, lr: context.learningRate)
        return .success((outcome, run.named(run.x), memory, run.count))
      } catch {
        return .failure(error)
      }
    }
    let (outcome, moved, memory, count) = try result.get()
    for (name, tensor) in moved { parameters[name] = tensor }
    memory.write(into: &state, count: count)
    return outcome
  }

  /// The state between steps, as flat vectors (PyTorch's `state` dict).
  struct Memory {
    var d: [Float]
    var t: Float
    /// The pairs' y (PyTorch's `old_dirs`) and s (`old_stps`), oldest first.
    var dirs: [[Float]]
    var steps: [[Float]]
    var ro: [Float]
    var hDiag: Float
    var previousGradient: [Float]
    var previousLoss: Float
    var iterations: Int64
    var evaluations: Int64

    init(_ state: [String: StoredTensor], count p: Int) {
      func rows(_ key: StateKey) -> [[Float]] {
        let tensor = state[key]!
        return (0..<tensor.shape[0]).map { Array(tensor.scalars[$0 * p..<($0 + 1) * p]) }
      }
      d = state[LBFGSState.direction]!.scalars
      t = state[LBFGSState.stepSize]!.scalars[0]
      dirs = rows(LBFGSState.oldDirs)
      steps = rows(LBFGSState.oldSteps)
      ro = state[LBFGSState.ro]!.scalars
      hDiag = state[LBFGSState.hDiag]!.scalars[0]
      previousGradient = state[LBFGSState.previousGradient]!.scalars
      previousLoss = state[LBFGSState.previousLoss]!.scalars[0]
      iterations = state[LBFGSState.iterations]!.integerValue!
      evaluations = state[LBFGSState.evaluations]!.integerValue!
    }

    func write(into state: inout [String: StoredTensor], count p: Int) {
      state[LBFGSState.direction] = StoredTensor(shape: [p], scalars: d)
      state[LBFGSState.stepSize] = StoredTensor(shape: [], scalars: [t])
      state[LBFGSState.oldDirs] = StoredTensor(shape: [dirs.count, p], scalars: dirs.flatMap { $0 })
      state[LBFGSState.oldSteps] = StoredTensor(shape: [steps.count, p], scalars: steps.flatMap { $0 })
      state[LBFGSState.ro] = StoredTensor(shape: [ro.count], scalars: ro)
      state[LBFGSState.hDiag] = StoredTensor(shape: [], scalars: [hDiag])
      state[LBFGSState.previousGradient] = StoredTensor(shape: [p], scalars: previousGradient)
      state[LBFGSState.previousLoss] = StoredTensor(shape: [], scalars: [previousLoss])
      state[LBFGSState.iterations] = StoredTensor(shape: [], integers: [iterations])
      state[LBFGSState.evaluations] = StoredTensor(shape: [], integers: [evaluations])
    }
  }

  /// One `.step(closure)`: the flat parameters, the objective on flat vectors, the loop.
  struct Step {
    let settings: OptimizerSpec.LBFGS
    /// Parameter names and shapes in flat order.
    let layout: [(name: String, shape: [Int], count: Int)]
    let count: Int
    let objective: Objective
    /// The parameters, flat.
    var x: [Float]

    init(settings: OptimizerSpec.LBFGS, order: [String], parameters: [String: Tensor], objective: @escaping Objective) {
      self.settings = settings
      self.objective = objective
      layout = order.map { (name: $0, shape: parameters[$0]!.shape, count: parameters[$0]!.count) }
      count = layout.map(\.count).reduce(0, +)
      x = order.flatMap { parameters[$0]!.scalars }
    }

    /// The parameters by name at the flat point `point`.
    func named(_ point: [Float]) -> [String: Tensor] {
      var result: [String: Tensor] = [:]
      var offset = 0
      for entry in layout {
        result[entry.name] = Tensor(shape: entry.shape, scalars: Array(point[offset..<offset + entry.count]))
        offset += entry.count
      }
      return result
    }

    func flat(_ gradients: [String: Tensor]) -> [Float] { layout.flatMap { gradients[$0.name]!.scalars } }

    /// The loss (as PyTorch's Python float) and the flat gradient at `x + t·d`
    /// (`_directional_evaluate`; the parameters stay at `x`), for the line search: a trial
    /// point where the loss or the gradient is not finite (a step far past the minimum) has loss
    /// +∞ and a NaN gradient, which the search brackets away from as PyTorch's does with an
    /// infinite loss; it never becomes the search's result, which is always a finite point.
    func evaluate(at t: Float, along d: [Float]) throws(BackendError) -> (Double, [Float]) {
      do {
        let (loss, gradients) = try objective(named(Vector.moved(x, by: t, along: d)))
        return (Double(loss), flat(gradients))
      } catch .diverged {
        return (.infinity, [Float](repeating: .nan, count: count))
      }
    }

    /// `step`'s body after the first evaluation.
    mutating func iterate(from startLoss: Float, gradients: [String: Tensor], memory m: inout Memory, lr: Double) throws(BackendError)
      -> UpdateOutcome
    {
      let s = settings
      let budget = s.evaluationBudget
      var loss = Double(startLoss)
      var g = flat(gradients)
      var currentEvaluations = 1
      m.evaluations += 1
      func report(_ iterations: Int) -> UpdateOutcome {
        UpdateOutcome(
          loss: startLoss,
          report: OptimizerReport(
            iterations: iterations, evaluations: currentEvaluations, lineSearchEvaluations: currentEvaluations - 1, stepSize: m.t))
      }
      if Double(Vector.maxAbs(g)) <= s.toleranceGrad { return report(0) }
      var i = 0
      while i < s.maxIter {
        i += 1
        m.iterations += 1
        if m.iterations == 1 {
          m.d = g.map { -$0 }
          (m.dirs, m.steps, m.ro, m.hDiag) = ([], [], [], 1)
        } else {
          let y = Vector.difference(g, m.previousGradient)
          let step = m.d.map { $0 * m.t }
          let ys = Vector.dot(y, step)
          if ys > LBFGSRule.curvatureThreshold {
            if m.dirs.count == s.historySize {
              m.dirs.removeFirst()
              m.steps.removeFirst()
              m.ro.removeFirst()
            }
            m.dirs.append(y)
            m.steps.append(step)
            m.ro.append(1 / ys)
            m.hDiag = ys / Vector.dot(y, y)
          }
          // The two-loop recursion.
          let k = m.dirs.count
          var al = [Float](repeating: 0, count: k)
          var q = g.map { -$0 }
          for j in stride(from: k - 1, through: 0, by: -1) {
            al[j] = Vector.dot(m.steps[j], q) * m.ro[j]
            Vector.add(&q, -al[j], m.dirs[j])
          }
          var r = q.map { $0 * m.hDiag }
          for j in 0..<k {
            let be = Vector.dot(m.dirs[j], r) * m.ro[j]
            Vector.add(&r, al[j] - be, m.steps[j])
          }
          m.d = r
        }
        m.previousGradient = g
        m.previousLoss = Float(loss)
        if m.iterations == 1 {
          let inverse = 1 / Vector.absSum(g)
          m.t = inverse < 1 ? inverse * Float(lr) : Float(lr)
        } else {
          m.t = Float(lr)
        }
        let gtd = Vector.dot(g, m.d)
        if Double(gtd) > -s.toleranceChange { break }
        var lineSearchEvaluations = 0
        var optimal = false
        if s.lineSearch == .strongWolfe {
          let found = try strongWolfe(t: m.t, d: m.d, f: loss, g: g, gtd: gtd, maxEvaluations: budget - currentEvaluations)
          (loss, g, m.t, lineSearchEvaluations) = (found.f, found.g, found.t, found.evaluations)
          x = Vector.moved(x, by: m.t, along: m.d)
          optimal = Double(Vector.maxAbs(g)) <= s.toleranceGrad
        } else {
          x = Vector.moved(x, by: m.t, along: m.d)
          if i != s.maxIter {
            let (newLoss, newGradients) = try objective(named(x))
            (loss, g) = (Double(newLoss), flat(newGradients))
            optimal = Double(Vector.maxAbs(g)) <= s.toleranceGrad
            lineSearchEvaluations = 1
          }
        }
        currentEvaluations += lineSearchEvaluations
        m.evaluations += Int64(lineSearchEvaluations)
        if i == s.maxIter { break }
        if currentEvaluations >= budget { break }
        if optimal { break }
        if Double(Vector.maxAbs(m.d, scaledBy: m.t)) <= s.toleranceChange { break }
        if abs(loss - Double(m.previousLoss)) < s.toleranceChange { break }
      }
      return report(i)
    }

    /// PyTorch's `_strong_wolfe` from `x` along `d`: bracketing, then zoom, with at most
    /// `maxEvaluations` evaluations after the first (PyTorch's `max_ls`).
    func strongWolfe(t start: Float, d: [Float], f: Double, g: [Float], gtd: Float, maxEvaluations maxLS: Int) throws(BackendError) -> (
      f: Double, g: [Float], t: Float, evaluations: Int
    ) {
      let (c1, c2) = (LBFGSRule.c1, LBFGSRule.c2)
      let tolerance = settings.toleranceChange
      let gtd0 = Double(gtd)
      let dNorm = Double(Vector.maxAbs(d))
      var t = Double(start)
      var (fNew, gNew) = try evaluate(at: Float(t), along: d)
      var evaluations = 1
      var gtdNew = Double(Vector.dot(gNew, d))
      var (tPrev, fPrev, gPrev, gtdPrev) = (0.0, f, g, gtd0)
      var done = false
      var lsIter = 0
      var bracket: [Double] = [], bracketF: [Double] = [], bracketG: [[Float]] = [], bracketGtd: [Double] = []
      while lsIter < maxLS {
        if fNew > f + c1 * t * gtd0 || (lsIter > 1 && fNew >= fPrev) {
          (bracket, bracketF, bracketG, bracketGtd) = ([tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew])
          break
        }
        if abs(gtdNew) <= -c2 * gtd0 {
          (bracket, bracketF, bracketG) = ([t], [fNew], [gNew])
          done = true
          break
        }
        if gtdNew >= 0 {
          (bracket, bracketF, bracketG, bracketGtd) = ([tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew])
          break
        }
        let (minStep, maxStep) = (t + 0.01 * (t - tPrev), t * 10)
        let previous = t
        t = Double(Float(Self.cubic(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, bounds: (minStep, maxStep))))
        (tPrev, fPrev, gPrev, gtdPrev) = (previous, fNew, gNew, gtdNew)
        (fNew, gNew) = try evaluate(at: Float(t), along: d)
        evaluations += 1
        gtdNew = Double(Vector.dot(gNew, d))
        lsIter += 1
      }
      if lsIter == maxLS {
        (bracket, bracketF, bracketG) = ([0, t], [f, fNew], [g, gNew])
      }
      var insufficientProgress = false
      var (low, high) = bracketF[0] <= bracketF[bracketF.count - 1] ? (0, 1) : (1, 0)
      while !done && lsIter < maxLS {
        if abs(bracket[1] - bracket[0]) * dNorm < tolerance { break }
        t = Double(Float(Self.cubic(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1])))
        let (top, bottom) = (Self.pyMax(bracket[0], bracket[1]), Self.pyMin(bracket[0], bracket[1]))
        let eps = 0.1 * (top - bottom)
        if Self.pyMin(top - t, t - bottom) < eps {
          if insufficientProgress || t >= top || t <= bottom {
            t = Double(Float(abs(t - top) < abs(t - bottom) ? top - eps : bottom + eps))
            insufficientProgress = false
          } else {
            insufficientProgress = true
          }
        } else {
          insufficientProgress = false
        }
        (fNew, gNew) = try evaluate(at: Float(t), along: d)
        evaluations += 1
        gtdNew = Double(Vector.dot(gNew, d))
        lsIter += 1
        if fNew > f + c1 * t * gtd0 || fNew >= bracketF[low] {
          (bracket[high], bracketF[high], bracketG[high], bracketGtd[high]) = (t, fNew, gNew, gtdNew)
          (low, high) = bracketF[0] <= bracketF[1] ? (0, 1) : (1, 0)
        } else {
          if abs(gtdNew) <= -c2 * gtd0 {
            done = true
          } else if gtdNew * (bracket[high] - bracket[low]) >= 0 {
            (bracket[high], bracketF[high], bracketG[high], bracketGtd[high]) = (
              bracket[low], bracketF[low], bracketG[low], bracketGtd[low]
            )
          }
          (bracket[low], bracketF[low], bracketG[low], bracketGtd[low]) = (t, fNew, gNew, gtdNew)
        }
      }
      return (bracketF[low], bracketG[low], Float(bracket[low]), evaluations)
    }

    /// PyTorch's `_cubic_interpolate`: the minimiser of the cubic through two points with their
    /// values and slopes, clamped to `bounds` (the points' span when nil); the bounds' midpoint
    /// when the cubic has no minimum.
    static func cubic(_ x1: Double, _ f1: Double, _ g1: Double, _ x2: Double, _ f2: Double, _ g2: Double, bounds: (Double, Double)? = nil)
      -> Double
    {
      let (lower, upper) = bounds ?? (x1 <= x2 ? (x1, x2) : (x2, x1))
      let d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
      let d2Square = d1 * d1 - g1 * g2
      guard d2Square >= 0 else { return (lower + upper) / 2 }
      let d2 = d2Square.squareRoot()
      let minimum =
        x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)) : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
      return pyMin(pyMax(minimum, lower), upper)
    }

    /// Python's `max(a, b)` and `min(a, b)`: the first argument unless the second is strictly
    /// greater (smaller) — which decides what a NaN gives.
    static func pyMax(_ a: Double, _ b: Double) -> Double { b > a ? b : a }
    static func pyMin(_ a: Double, _ b: Double) -> Double { b < a ? b : a }
  }
}

/// The flat-vector arithmetic of `LBFGSRule`: float32 elementwise, reductions in float64
/// rounded once.
enum Vector {
  static func dot(_ a: [Float], _ b: [Float]) -> Float {
    var sum = 0.0
    for i in a.indices { sum += Double(a[i]) * Double(b[i]) }
    return Float(sum)
  }

  static func absSum(_ a: [Float]) -> Float {
    var sum = 0.0
    for value in a { sum += Double(abs(value)) }
    return Float(sum)
  }

  static func maxAbs(_ a: [Float]) -> Float { a.reduce(0) { max($0, abs($1)) } }

  /// max |a·t| with each product rounded to float32 (PyTorch's `d.mul(t).abs().max()`).
  static func maxAbs(_ a: [Float], scaledBy t: Float) -> Float { a.reduce(0) { max($0, abs($1 * t)) } }

  static func difference(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { $0 - $1 } }

  /// a ← a + alpha·b (PyTorch's `add_(b, alpha=alpha)`).
  static func add(_ a: inout [Float], _ alpha: Float, _ b: [Float]) {
    for i in a.indices { a[i] = a[i] + alpha * b[i] }
  }

  /// x + t·d.
  static func moved(_ x: [Float], by t: Float, along d: [Float]) -> [Float] { zip(x, d).map { $0 + t * $1 } }
}
