import Datasets
import SpecKit
import TensorCore

/// The reference backend's trainer: the sequential trainer on the plain loops.
typealias ReferenceTrainer = SequentialTrainer<PlainKernels>

/// Trains a spec layer by layer: forward through the layers keeping what each backward pass
/// needs, the loss and its gradient, backward through the layers, then the optimizer's rule,
/// which gets every parameter, its state and the step's objective (`OptimizerRule`). The matrix
/// products come from `K`; everything else is TensorCore's, so backends that differ only in
/// their kernels compute the same thing.
final class SequentialTrainer<K: MatrixKernels>: EvaluatesDatasets {
  let kernels: K
  let spec: SessionSpec
  /// The optimizer's rule (for the built-in optimizers, `ElementwiseRule`).
  let rule: any OptimizerRule
  let layers: [LayerShape]
  let train: Dataset
  /// The held-out samples, for `evaluate(.validation)`.
  let validation: Dataset?
  /// Trainable parameters and buffers by tensor name (`dense1.weight`, `bn.running_mean`).
  var parameters: [String: Tensor] = [:]
  var buffers: [String: Tensor] = [:]
  /// The rule's state by state-file name (`opt/dense1.weight/exp_avg`, `opt/model/…`).
  var optimizerState: [String: StoredTensor] = [:]
  /// The parameters' names in model order (the flat layout a whole-model rule uses).
  let parameterOrder: [String]
  /// How many times the current step evaluated its objective (for tests of rules).
  private(set) var evaluations = 0
  /// The sample order, the dropout generator and the update counts.
  var progress: TrainingProgress
  /// The last successful step's gradients, for `gradientNorms`.
  var lastGradients: [String: Tensor] = [:]
  /// Bayes by Backprop's objective, when the model has variational layers.
  let variational: VariationalObjective?

  var step: Int { progress.step }
  var epoch: Int { progress.epoch }

  /// - Parameter rule: the optimizer's rule; the spec's optimizer's when nil. `state` holds the
  ///   tensors its layout declares.
  init(
    spec: SessionSpec, state: TrainingState, train: Dataset, validation: Dataset? = nil, kernels: K, rule: (any OptimizerRule)? = nil
  ) throws(BackendError) {
    self.validation = validation
    self.spec = spec
    self.kernels = kernels
    self.rule = rule ?? OptimizerRules.rule(for: spec.optimizer)
    do { layers = try spec.model.layerShapes() } catch { throw .invalidState([error.description]) }
    self.train = train
    for tensor in layers.flatMap(\.tensors) {
      switch tensor.role {
      case .parameter: parameters[tensor.name] = state.tensors[StateKey.parameter(tensor.name)]!
      case .buffer: buffers[tensor.name] = state.tensors[StateKey.buffer(tensor.name)]!
      }
    }
    let parameterShapes = layers.flatMap(\.tensors).filter { $0.role == .parameter }.map { ParameterShape(name: $0.name, shape: $0.shape) }
    parameterOrder = parameterShapes.map(\.name)
    optimizerState = try self.rule.declaredState(in: state, for: parameterShapes)
    progress = TrainingProgress(spec: spec, state: state, sampleCount: train.count)
    variational = VariationalObjective(spec: spec, trainingSamples: train.count)
  }

  // MARK: forward and backward

  /// What one layer's forward pass kept for its backward pass.
  enum Cache {
    case dense(input: Tensor, preActivation: Tensor, output: Tensor)
    case activation(input: Tensor, output: Tensor)
    case dropout(mask: [Float])
    case flatten(inputShape: [Int])
    case layerNorm(LayerMath.NormCache)
    case batchNorm(LayerMath.NormCache)
    case conv2d(input: Tensor, preActivation: Tensor, output: Tensor)
    case maxPool(argmax: [Int32])
  }

  /// What the evaluations of one step share: the dropout masks drawn at the first evaluation,
  /// and batch_norm's running statistics as the first evaluation left them, committed when the
  /// step commits.
  struct StepPass {
    var masks: [String: [Float]] = [:]
    var runningStatistics: [String: Tensor]?
  }

  /// Runs the layers on a batch at `parameters`. In training mode (with a step pass), dropout
  /// uses the step's masks (drawing them from the trainer's generator at the step's first
  /// evaluation) and batch_norm normalises with the batch's statistics; the running statistics
  /// the first evaluation computes go to the pass. Without a pass (evaluation mode) nothing of
  /// the trainer changes.
  func forward(_ input: Tensor, parameters: [String: Tensor], pass: inout StepPass?) -> (output: Tensor, caches: [Cache]) {
    let training = pass != nil
    let firstEvaluation = pass?.runningStatistics == nil
    var statistics: [String: Tensor] = [:]
    defer { if training && firstEvaluation { pass!.runningStatistics = statistics } }
    var x = input
    var caches: [Cache] = []
    for shape in layers {
      let name = shape.layer.name
      switch shape.layer.kind {
      case .dense(let dense):
        let z = LayerMath.denseForward(
          x, weight: parameters[name + ".weight"]!, bias: dense.useBias ? parameters[name + ".bias"] : nil, kernels: kernels)
        let y = dense.activation == .identity ? z : dense.activation.forward(z)
        caches.append(.dense(input: x, preActivation: z, output: y))
        x = y
      case .activation(let function):
        let y = function.forward(x)
        caches.append(.activation(input: x, output: y))
        x = y
      case .dropout(let rate):
        if training, let mask = pass!.masks[name] {
          caches.append(.dropout(mask: mask))
          x = LayerMath.dropoutForward(x, mask: mask)
        } else if training {
          let (y, mask) = LayerMath.dropoutForward(x, rate: Float(rate), generator: &progress.dropout)
          pass!.masks[name] = mask
          caches.append(.dropout(mask: mask))
          x = y
        } else {
          caches.append(.dropout(mask: []))
        }
      case .flatten:
        caches.append(.flatten(inputShape: x.shape))
        x = x.reshaped([x.rows, x.rowWidth])
      case .layerNorm(let eps):
        let (y, cache) = LayerMath.layerNormForward(
          x, weight: parameters[name + ".weight"]!, bias: parameters[name + ".bias"]!, eps: Float(eps))
        caches.append(.layerNorm(cache))
        x = y
      case .batchNorm(let eps, let momentum):
        var mean = buffers[name + ".running_mean"]!, variance = buffers[name + ".running_var"]!
        let (y, cache) = LayerMath.batchNormForward(
          x, weight: parameters[name + ".weight"]!, bias: parameters[name + ".bias"]!, runningMean: &mean, runningVar: &variance,
          eps: Float(eps), momentum: Float(momentum), training: training)
        if training {
          statistics[name + ".running_mean"] = mean
          statistics[name + ".running_var"] = variance
        }
        caches.append(.batchNorm(cache))
        x = y
      case .conv2d(let conv):
        let z = ImageMath.conv2dForward(
          x, weight: parameters[name + ".weight"]!, bias: conv.useBias ? parameters[name + ".bias"] : nil,
          geometry: ImageGeometry(conv.window, input: shape.inputShape), groups: conv.groups)
        let y = conv.activation == .identity ? z : conv.activation.forward(z)
        caches.append(.conv2d(input: x, preActivation: z, output: y))
        x = y
      case .maxPool2d(let pool):
        let (y, argmax) = ImageMath.maxPoolForward(x, geometry: ImageGeometry(pool.window, input: shape.inputShape))
        caches.append(.maxPool(argmax: argmax))
        x = y
      case .avgPool2d(let pool):
        caches.append(.flatten(inputShape: x.shape))
        x = ImageMath.avgPoolForward(x, geometry: ImageGeometry(pool.window, input: shape.inputShape))
      case .globalAvgPool:
        caches.append(.flatten(inputShape: x.shape))
        x = ImageMath.globalAvgPoolForward(x)
      case .reshape:
        caches.append(.flatten(inputShape: x.shape))
        x = x.reshaped([x.rows] + shape.outputShape)
      }
    }
    return (x, caches)
  }

  /// The gradients of every parameter, by name, from the output gradient.
  func backward(_ outputGradient: Tensor, caches: [Cache], parameters: [String: Tensor]) -> [String: Tensor] {
    var g = outputGradient
    var gradients: [String: Tensor] = [:]
    for (index, (shape, cache)) in zip(layers, caches).enumerated().reversed() {
      let name = shape.layer.name
      switch (shape.layer.kind, cache) {
      case (.dense(let dense), .dense(let input, let z, let y)):
        let dz = dense.activation == .identity ? g : dense.activation.backward(input: z, output: y, gradient: g)
        let (dx, dw, db) = LayerMath.denseBackward(
          dz, input: input, weight: parameters[name + ".weight"]!, hasBias: dense.useBias, kernels: kernels, needsInputGradient: index > 0)
        gradients[name + ".weight"] = dw
        if let db { gradients[name + ".bias"] = db }
        g = dx
      case (.activation(let function), .activation(let input, let output)):
        g = function.backward(input: input, output: output, gradient: g)
      case (.dropout, .dropout(let mask)):
        var scaled = g
        for i in 0..<scaled.count { scaled.scalars[i] *= mask[i] }
        g = scaled
      case (.flatten, .flatten(let inputShape)), (.reshape, .flatten(let inputShape)):
        g = g.reshaped(inputShape)
      case (.conv2d(let conv), .conv2d(let input, let z, let y)):
        let dz =
          conv.activation == .identity ? g.reshaped(z.shape) : conv.activation.backward(input: z, output: y, gradient: g.reshaped(z.shape))
        let (dx, dw, db) = ImageMath.conv2dBackward(
          dz, input: input, weight: parameters[name + ".weight"]!, hasBias: conv.useBias,
          geometry: ImageGeometry(conv.window, input: shape.inputShape), groups: conv.groups)
        gradients[name + ".weight"] = dw
        if let db { gradients[name + ".bias"] = db }
        g = dx
      case (.maxPool2d(let pool), .maxPool(let argmax)):
        g = ImageMath.maxPoolBackward(
          g.reshaped([g.rows] + shape.outputShape), geometry: ImageGeometry(pool.window, input: shape.inputShape), argmax: argmax)
      case (.avgPool2d(let pool), .flatten):
        g = ImageMath.avgPoolBackward(
          g.reshaped([g.rows] + shape.outputShape), geometry: ImageGeometry(pool.window, input: shape.inputShape))
      case (.globalAvgPool, .flatten(let inputShape)):
        g = ImageMath.globalAvgPoolBackward(g, inputShape: inputShape)
      case (.layerNorm, .layerNorm(let normCache)):
        let (dx, dw, db) = LayerMath.layerNormBackward(g, cache: normCache, weight: parameters[name + ".weight"]!)
        (gradients[name + ".weight"], gradients[name + ".bias"]) = (dw, db)
        g = dx
      case (.batchNorm, .batchNorm(let normCache)):
        let (dx, dw, db) = LayerMath.batchNormBackward(g, cache: normCache, weight: parameters[name + ".weight"]!)
        (gradients[name + ".weight"], gradients[name + ".bias"]) = (dw, db)
        g = dx
      default:
        preconditionFailure("cache \(cache) does not belong to layer \(name)")
      }
    }
    return gradients
  }

  /// The loss of a batch and the gradients of every parameter at `parameters`, in training mode
  /// with the step's pass (see `forward`), and the batch's accuracy or MAE.
  func lossAndGradients(_ inputs: Tensor, _ targets: Targets, parameters: [String: Tensor], pass: inout StepPass?) -> (
    loss: Float, gradients: [String: Tensor], measures: BatchMeasures
  ) {
    let (output, caches) = forward(inputs, parameters: parameters, pass: &pass)
    let flat = output.reshaped([output.rows, output.rowWidth])
    let (loss, gradient) = spec.loss.evaluate(output: flat, targets: targets)
    let measures = spec.loss.batchMeasures(output: flat, targets: targets)
    guard loss.isFinite else { return (loss, [:], measures) }
    return (loss, backward(gradient.reshaped(output.shape), caches: caches, parameters: parameters), measures)
  }

  // MARK: Trainer

  func trainStep() throws(BackendError) -> StepResult {
    // Keep what a failed step would change, to put it back. An elementwise rule fails, if at
    // all, at its one evaluation, before it changes anything; another rule may fail after
    // changing the parameters or its state, so those are kept for it (copied on write).
    let mark = progress.mark()
    let start = rule.elementwise == nil ? (parameters, optimizerState) : nil
    let (indices, endedEpoch) = progress.nextBatch()
    let batch = train.subset(indices)
    let update = progress.nextUpdate
    let learningRate = spec.schedule.learningRate(at: update.step, base: spec.optimizer.learningRate)
    var pass: StepPass? = StepPass()
    var gradients: [String: Tensor] = [:]
    var measures = BatchMeasures()
    evaluations = 0
    let network: Objective = { [self] (at: [String: Tensor]) throws(BackendError) in
      evaluations += 1
      let (loss, grads, batchMeasures) = lossAndGradients(batch.inputs.materialized(), batch.targets, parameters: at, pass: &pass)
      // (Named in name order, so that the message is the same every run; sorted only on failure.)
      let badGradient = grads.values.allSatisfy(\.isFinite) ? nil : grads.keys.sorted().first { !grads[$0]!.isFinite }
      guard loss.isFinite, badGradient == nil else {
        let reason = loss.isFinite ? "the gradient of \(badGradient!) is not finite" : "the loss is \(loss)"
        throw .diverged(step: step + 1, loss: loss, reason: reason)
      }
      // The batch's measures are those of the parameters before the update: the first evaluation.
      if evaluations == 1 { measures = batchMeasures }
      return (loss, grads)
    }
    let objective = VariationalObjective.step(network, variational, update: update.step) { gradients = $0 }
    let outcome: UpdateOutcome
    do {
      outcome = try rule.update(
        parameters: &parameters, state: &optimizerState, objective: objective,
        context: UpdateContext(step: update.optimizerStep, learningRate: learningRate, parameterOrder: parameterOrder))
    } catch {
      progress.restore(mark)
      if let start { (parameters, optimizerState) = start }
      throw error
    }
    for (name, values) in pass?.runningStatistics ?? [:] { buffers[name] = values }
    // An update can overflow from finite inputs (a huge rate, a schedule past float32): the
    // state is then no longer the previous step's, and the runner puts the last finite one back.
    // Named by the first parameter (in name order) whose values or slots are spoilt, then the
    // rule's whole-model state, then the buffers.
    var spoilt = Set(parameters.keys.filter { !parameters[$0]!.isFinite })
    var spoiltState: [String] = []
    for (name, tensor) in optimizerState where !tensor.isFinite {
      if case .slot(let parameter, _)? = StateKey(name: name) { spoilt.insert(parameter) } else { spoiltState.append(name) }
    }
    let nonFinite = spoilt.min() ?? spoiltState.min() ?? buffers.keys.sorted().first { !buffers[$0]!.isFinite }
    if let nonFinite {
      throw .nonFiniteUpdate(step: step + 1, loss: outcome.loss, tensor: nonFinite)
    }
    lastGradients = gradients
    progress.commit()
    return StepResult(
      step: step, loss: outcome.loss, learningRate: learningRate, endedEpoch: endedEpoch, measures: measures, optimizer: outcome.report)
  }

  /// Mean loss, accuracy, MAE and R² over any samples of the model's shapes, in chunks of 4096
  /// samples (see `ChunkedEvaluation`).
  func evaluate(_ data: Dataset) -> Evaluation {
    ChunkedEvaluation.run(count: data.count, chunk: 4096, loss: spec.loss, targets: data.targets) { range in
      let chunk = data.subset(range)
      let output = predict(chunk.inputs.materialized())
      let flat = output.reshaped([output.rows, output.rowWidth])
      return (spec.loss.evaluate(output: flat, targets: chunk.targets).loss, flat)
    }
  }

  func predict(_ inputs: Tensor) -> Tensor {
    // Evaluation mode (no step pass) leaves buffers and generators untouched.
    var noPass: StepPass?
    return forward(inputs, parameters: parameters, pass: &noPass).output
  }

  func gradientNorms() -> [String: Float] { lastGradients.mapValues { l2Norm($0.scalars) } }

  func exportState(parametersOnly: Bool) -> TrainingState {
    var tensors: [String: StoredTensor] = parametersOnly ? [:] : optimizerState
    for (name, tensor) in parameters { tensors[StateKey.parameter(name)] = tensor }
    for (name, tensor) in buffers { tensors[StateKey.buffer(name)] = tensor }
    return progress.state(tensors: tensors)
  }
}
