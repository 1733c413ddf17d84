import Datasets
import SpecKit
import TensorCore

/// The reference backend's trainer: the sequential trainer on the plain loops.
typealias ReferenceTrainer = SequentialTrainer<PlainKernels>

/// Trains a spec layer by layer: forward through the layers keeping what each backward pass
/// needs, the loss and its gradient, backward through the layers, then the optimizer's rule on
/// every parameter. The matrix products come from `K`; everything else is TensorCore's, so
/// backends that differ only in their kernels compute the same thing.
final class SequentialTrainer<K: MatrixKernels>: EvaluatesDatasets {
  let kernels: K
  let spec: SessionSpec
  let layers: [LayerShape]
  let train: Dataset
  /// The held-out samples, for `evaluate(.validation)`.
  let validation: Dataset?
  /// Trainable parameters and buffers by tensor name (`dense1.weight`, `bn.running_mean`).
  var parameters: [String: Tensor] = [:]
  var buffers: [String: Tensor] = [:]
  /// Optimizer slots: parameter name → slot name → values.
  var slots: [String: [String: [Float]]] = [:]
  /// The sample order, the dropout generator and the update counts.
  var progress: TrainingProgress
  /// The last successful step's gradients, for `gradientNorms`.
  var lastGradients: [String: Tensor] = [:]

  var step: Int { progress.step }
  var epoch: Int { progress.epoch }

  init(spec: SessionSpec, state: TrainingState, train: Dataset, validation: Dataset? = nil, kernels: K) throws(BackendError) {
    self.validation = validation
    self.spec = spec
    self.kernels = kernels
    do { layers = try spec.model.layerShapes() } catch { throw .invalidState([error.description]) }
    self.train = train
    for tensor in layers.flatMap(\.tensors) {
      switch tensor.role {
      case .parameter:
        parameters[tensor.name] = state.tensors[StateKey.parameter(tensor.name)]!
        var own: [String: [Float]] = [:]
        for (slot, _) in spec.optimizer.slots { own[slot.rawValue] = state.tensors[StateKey.slot(parameter: tensor.name, slot)]!.scalars }
        slots[tensor.name] = own
      case .buffer:
        buffers[tensor.name] = state.tensors[StateKey.buffer(tensor.name)]!
      }
    }
    progress = TrainingProgress(spec: spec, state: state, sampleCount: train.count)
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
  }

  /// Runs the layers on a batch. In training mode, dropout draws from the trainer's generator and
  /// batch_norm updates its running statistics.
  func forward(_ input: Tensor, training: Bool) -> (output: Tensor, caches: [Cache]) {
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
        if training {
          let (y, mask) = LayerMath.dropoutForward(x, rate: Float(rate), generator: &progress.dropout)
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
          buffers[name + ".running_mean"] = mean
          buffers[name + ".running_var"] = variance
        }
        caches.append(.batchNorm(cache))
        x = y
      }
    }
    return (x, caches)
  }

  /// The gradients of every parameter, by name, from the output gradient.
  func backward(_ outputGradient: Tensor, caches: [Cache]) -> [String: Tensor] {
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
      case (.flatten, .flatten(let inputShape)):
        g = g.reshaped(inputShape)
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

  /// The loss of a batch and the gradients of every parameter (training mode; updates running
  /// statistics and draws dropout masks).
  func lossAndGradients(_ inputs: Tensor, _ targets: Targets) -> (loss: Float, gradients: [String: Tensor]) {
    let (output, caches) = forward(inputs, training: true)
    let (loss, gradient) = spec.loss.evaluate(output: output.reshaped([output.rows, output.rowWidth]), targets: targets)
    guard loss.isFinite else { return (loss, [:]) }
    return (loss, backward(gradient.reshaped(output.shape), caches: caches))
  }

  // MARK: Trainer

  func trainStep() throws(BackendError) -> StepResult {
    // Keep what a failed step would change, to put it back.
    let (mark, savedBuffers) = (progress.mark(), buffers)
    let (indices, endedEpoch) = progress.nextBatch()
    let batch = train.subset(indices)
    let (loss, gradients) = lossAndGradients(batch.inputs, batch.targets)
    let badGradient = gradients.first { !$0.value.isFinite }?.key
    guard loss.isFinite, badGradient == nil else {
      progress.restore(mark)
      buffers = savedBuffers
      let reason = loss.isFinite ? "the gradient of \(badGradient!) is not finite" : "the loss is \(loss)"
      throw .diverged(step: step + 1, loss: loss, reason: reason)
    }
    let update = progress.nextUpdate
    let learningRate = spec.schedule.learningRate(at: update.step, base: spec.optimizer.learningRate)
    for (name, gradient) in gradients {
      OptimizerMath.update(
        spec.optimizer, param: &parameters[name]!.scalars, grad: gradient.scalars, slots: &slots[name]!, step: update.optimizerStep,
        learningRate: learningRate)
    }
    // An update can overflow from finite inputs (a huge rate, a schedule past float32): the
    // state is then no longer the previous step's, and the runner puts the last finite one back.
    let spoilt = { (name: String) in !self.parameters[name]!.isFinite || self.slots[name]!.values.contains { !allFinite($0) } }
    let nonFinite =
      gradients.keys.contains(where: spoilt) || buffers.values.contains { !$0.isFinite }
      ? (gradients.keys.sorted().first(where: spoilt) ?? buffers.keys.sorted().first { !buffers[$0]!.isFinite }) : nil
    if let nonFinite {
      throw .nonFiniteUpdate(step: step + 1, loss: loss, tensor: nonFinite)
    }
    lastGradients = gradients
    progress.commit()
    return StepResult(step: step, loss: loss, learningRate: learningRate, endedEpoch: endedEpoch)
  }

  /// Evaluates in chunks of 4096 samples, weighting each chunk's mean by its size.
  /// Mean loss and accuracy over any samples of the model's shapes.
  func evaluate(_ data: Dataset) -> Evaluation {
    ChunkedEvaluation.run(count: data.count, chunk: 4096) { range in
      let chunk = data.subset(range)
      let output = predict(chunk.inputs)
      let flat = output.reshaped([output.rows, output.rowWidth])
      return (spec.loss.evaluate(output: flat, targets: chunk.targets).loss, spec.loss.correctCount(output: flat, targets: chunk.targets))
    }
  }

  func predict(_ inputs: Tensor) -> Tensor {
    // Evaluation mode leaves buffers and generators untouched; `forward` only writes them when training.
    forward(inputs, training: false).output
  }

  func gradientNorms() -> [String: Float] { lastGradients.mapValues { l2Norm($0.scalars) } }

  func exportState(parametersOnly: Bool) -> TrainingState {
    var tensors: [String: StoredTensor] = [:]
    for (name, tensor) in parameters {
      tensors[StateKey.parameter(name)] = tensor
      for (slot, values) in slots[name]! where !parametersOnly {
        tensors[StateKey.slot(parameter: name, OptimizerSlot(rawValue: slot)!)] = StoredTensor(shape: tensor.shape, scalars: values)
      }
    }
    for (name, tensor) in buffers { tensors[StateKey.buffer(name)] = tensor }
    return progress.state(tensors: tensors)
  }
}
