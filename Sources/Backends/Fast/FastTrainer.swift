import CFastKernels
import Datasets
import Dispatch
import SpecKit
import Synchronization
import TensorCore

/// The fast backend's trainer: the same arithmetic as the sequential trainer, laid out for speed.
/// Parameters, gradients, optimizer slots and every activation live in buffers allocated once;
/// a step gathers its batch into them, runs the layers with OpenBLAS's sgemm for the products
/// and one fused pass for bias and activation, and updates each parameter with the optimizer's
/// rule in one pass. Nothing is allocated in the step loop (the sampler draws a new order once
/// an epoch). A rule that is not elementwise (L-BFGS) gets an objective over the same buffers:
/// each evaluation copies the parameters in, runs the passes with the step's dropout masks, and
/// hands back the gradients; batch_norm's statistics are the first evaluation's.
final class FastTrainer: EvaluatesDatasets {
  /// A trainable tensor: values, gradient and optimizer slots in the trainer's memory.
  struct Parameter {
    let name: String
    let shape: [Int]
    let values: UnsafeMutableBufferPointer<Float>
    let gradient: UnsafeMutableBufferPointer<Float>
    let slots: [(slot: OptimizerSlot, values: UnsafeMutableBufferPointer<Float>)]
    let slotViews: OptimizerMath.SlotViews
  }

  /// A non-trainable tensor (batch_norm's running statistics), with room to put it back when a
  /// step fails.
  struct Buffer {
    let name: String
    let shape: [Int]
    let values: UnsafeMutableBufferPointer<Float>
    let saved: UnsafeMutableBufferPointer<Float>
  }

  let spec: SessionSpec
  let train: Dataset
  /// The held-out samples, for `evaluate(.validation)`.
  let validation: Dataset?
  let stages: [FastStage]
  /// Per-sample widths: the input's, then each stage's output.
  let widths: [Int]
  let outputShape: [Int]
  let arena = Arena()
  var parameters: [Parameter] = []
  var buffers: [Buffer] = []
  let workspace: FastWorkspace
  /// A workspace for evaluation and prediction, made on first use.
  var evaluationWorkspace: FastWorkspace?
  /// The sample order, the dropout generator and the update counts.
  var progress: TrainingProgress
  /// Whether the gradient buffers hold a step's gradients.
  var hasGradients = false
  /// A rule that is not elementwise, with its state and the parameters' flat order; nil for the
  /// fused elementwise rules.
  let rule: (any OptimizerRule)?
  var optimizerState: [String: StoredTensor] = [:]
  let parameterOrder: [String]
  /// A whole-model rule's step: the gradients of its first evaluation (the step's), for
  /// `gradientNorms`.
  var firstGradients: [String: Tensor] = [:]
  /// Bayes by Backprop's objective, when the model has variational layers.
  let variational: VariationalObjective?
  /// The second core, for the halves of large convolutions and optimizer updates.
  let cores = CorePair()

  var step: Int { progress.step }
  var epoch: Int { progress.epoch }

  /// - Parameter rule: a rule that is not elementwise, whose declared state `state` holds; nil
  ///   for the spec's elementwise optimizer.
  init(spec: SessionSpec, state: TrainingState, train: Dataset, validation: Dataset? = nil, rule: (any OptimizerRule)? = nil)
    throws(BackendError)
  {
    self.validation = validation
    self.spec = spec
    self.train = train
    // Variational layers run through the objective path, with the spec's rule on its parameters.
    variational = VariationalObjective(spec: spec, trainingSamples: train.count)
    let rule = rule ?? (variational == nil ? nil : OptimizerRules.rule(for: spec.optimizer))
    self.rule = rule
    let layers: [LayerShape]
    do { layers = try spec.model.layerShapes() } catch { throw .invalidState([error.description]) }
    var parameterIndex: [String: Int] = [:], bufferIndex: [String: Int] = [:]
    for tensor in layers.flatMap(\.tensors) {
      switch tensor.role {
      case .parameter:
        let values = arena.floats(tensor.count)
        _ = values.update(fromContentsOf: state.tensors[StateKey.parameter(tensor.name)]!.scalars)
        var slots: [(slot: OptimizerSlot, values: UnsafeMutableBufferPointer<Float>)] = []
        var views = OptimizerMath.SlotViews()
        for (slot, _) in rule == nil ? spec.optimizer.slots : [] {
          let slotValues = arena.floats(tensor.count)
          _ = slotValues.update(fromContentsOf: state.tensors[StateKey.slot(parameter: tensor.name, slot)]!.scalars)
          slots.append((slot, slotValues))
          if tensor.count > 0 { views.set(slot, slotValues.baseAddress!) }
        }
        parameterIndex[tensor.name] = parameters.count
        parameters.append(
          Parameter(
            name: tensor.name, shape: tensor.shape, values: values, gradient: arena.floats(tensor.count), slots: slots, slotViews: views))
      case .buffer:
        let values = arena.floats(tensor.count)
        _ = values.update(fromContentsOf: state.tensors[StateKey.buffer(tensor.name)]!.scalars)
        bufferIndex[tensor.name] = buffers.count
        buffers.append(Buffer(name: tensor.name, shape: tensor.shape, values: values, saved: arena.floats(tensor.count)))
      }
    }
    stages = layers.map { shape in
      let name = shape.layer.name
      switch shape.layer.kind {
      case .dense(let dense):
        return .dense(
          weight: parameterIndex[name + ".weight"]!, bias: parameterIndex[name + ".bias"], inputs: shape.inputShape.reduce(1, *),
          outputs: dense.units, activation: dense.activation)
      case .activation(let function): return .activation(function, lastAxis: shape.outputShape.last ?? 1)
      case .dropout(let rate): return .dropout(rate: Float(rate))
      case .flatten: return .flatten
      case .layerNorm(let eps):
        return .layerNorm(
          weight: parameterIndex[name + ".weight"]!, bias: parameterIndex[name + ".bias"]!, eps: Float(eps),
          features: shape.outputShape.last!)
      case .batchNorm(let eps, let momentum):
        return .batchNorm(
          weight: parameterIndex[name + ".weight"]!, bias: parameterIndex[name + ".bias"]!, mean: bufferIndex[name + ".running_mean"]!,
          variance: bufferIndex[name + ".running_var"]!, eps: Float(eps), momentum: Float(momentum), channels: shape.inputShape[0],
          inner: shape.inputShape.dropFirst().reduce(1, *))
      case .conv2d(let conv):
        return .conv2d(
          weight: parameterIndex[name + ".weight"]!, bias: parameterIndex[name + ".bias"],
          geometry: ImageGeometry(conv.window, input: shape.inputShape), filters: conv.filters, groups: conv.groups,
          activation: conv.activation)
      case .maxPool2d(let pool): return .maxPool(ImageGeometry(pool.window, input: shape.inputShape))
      case .avgPool2d(let pool): return .avgPool(ImageGeometry(pool.window, input: shape.inputShape))
      case .globalAvgPool: return .globalAvgPool(channels: shape.inputShape[0], inner: shape.inputShape.dropFirst().reduce(1, *))
      case .reshape: return .reshape
      }
    }
    let parameterShapes = layers.flatMap(\.tensors).filter { $0.role == .parameter }.map { ParameterShape(name: $0.name, shape: $0.shape) }
    parameterOrder = parameterShapes.map(\.name)
    optimizerState = try rule?.declaredState(in: state, for: parameterShapes) ?? [:]
    widths = [spec.model.input.reduce(1, *)] + layers.map { $0.outputShape.reduce(1, *) }
    outputShape = layers.last?.outputShape ?? spec.model.input
    workspace = FastWorkspace(
      stages: stages, widths: widths, targetWidth: train.targets.width, capacity: max(1, min(spec.training.batchSize, train.count)))
    progress = TrainingProgress(spec: spec, state: state, sampleCount: train.count)
  }

  // MARK: Trainer

  func trainStep() throws(BackendError) -> StepResult {
    if let rule { return try wholeModelStep(rule) }
    // Keep what a failed step would change, to put it back.
    let mark = progress.mark()
    for buffer in buffers { _ = buffer.saved.update(fromContentsOf: buffer.values) }
    func restore() {
      progress.restore(mark)
      for buffer in buffers { _ = buffer.values.update(fromContentsOf: buffer.saved) }
    }
    let (batch, endedEpoch) = progress.nextBatch()
    let rows = batch.count
    gather(batch, from: train, into: workspace)
    forward(workspace, rows: rows, training: true)
    let loss = lossAndGradient(workspace, rows: rows, targets: train.targets)
    let measures = measures(workspace, rows: rows, targets: train.targets)
    guard loss.isFinite else {
      restore()
      throw .diverged(step: step + 1, loss: loss, reason: "the loss is \(loss)")
    }
    backward(workspace, rows: rows)
    if let bad = parameters.first(where: { !everyValueFinite($0.gradient) }) {
      restore()
      throw .diverged(step: step + 1, loss: loss, reason: "the gradient of \(bad.name) is not finite")
    }
    let update = progress.nextUpdate
    let learningRate = spec.schedule.learningRate(at: update.step, base: spec.optimizer.learningRate)
    var nonFinite: String?
    for parameter in parameters where parameter.values.count > 0 {
      if !self.update(parameter, spec.optimizer, step: update.optimizerStep, learningRate: learningRate), nonFinite == nil {
        nonFinite = parameter.name
      }
    }
    if nonFinite == nil, let buffer = buffers.first(where: { !everyValueFinite($0.values) }) { nonFinite = buffer.name }
    if let nonFinite {
      // The update is made: the state is no longer the previous step's, and the runner puts
      // the last finite one back.
      throw .nonFiniteUpdate(step: step + 1, loss: loss, tensor: nonFinite)
    }
    hasGradients = true
    progress.commit()
    return StepResult(step: step, loss: loss, learningRate: learningRate, endedEpoch: endedEpoch, measures: measures)
  }

  /// Evaluates any samples in chunks of up to 4096 (see `ChunkedEvaluation`).
  func evaluate(_ data: Dataset) -> Evaluation {
    guard data.count > 0 else { return .none }
    let space = evaluationSpace(count: data.count, targetWidth: data.targets.width)
    return ChunkedEvaluation.run(count: data.count, chunk: space.capacity, loss: spec.loss, targets: data.targets) { chunk in
      gather(chunk, from: data, into: space)
      forward(space, rows: chunk.count, training: false)
      let loss = lossAndGradient(space, rows: chunk.count, targets: data.targets)
      return (loss, Tensor(shape: [chunk.count, widths.last!], scalars: Array(prefix(space.output, chunk.count * widths.last!))))
    }
  }

  func predict(_ inputs: Tensor) -> Tensor {
    let count = inputs.rows
    let space = evaluationSpace(count: count, targetWidth: 0)
    let width = widths.last!
    var out = [Float]()
    out.reserveCapacity(count * width)
    for start in stride(from: 0, to: count, by: space.capacity) {
      let chunk = start..<min(start + space.capacity, count)
      gatherInputs(chunk, from: SampleInputs(inputs), into: space)
      forward(space, rows: chunk.count, training: false)
      out.append(contentsOf: prefix(space.output, chunk.count * width))
    }
    return Tensor(shape: [count] + outputShape, scalars: out)
  }

  func gradientNorms() -> [String: Float] {
    guard hasGradients else { return [:] }
    if rule != nil { return firstGradients.mapValues { l2Norm($0.scalars) } }
    return Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, l2Norm($0.gradient)) })
  }

  func exportState(parametersOnly: Bool) -> TrainingState {
    var tensors: [String: StoredTensor] = [:]
    for parameter in parameters {
      tensors[StateKey.parameter(parameter.name)] = StoredTensor(shape: parameter.shape, scalars: Array(parameter.values))
      for slot in parameter.slots where !parametersOnly {
        tensors[StateKey.slot(parameter: parameter.name, slot.slot)] = StoredTensor(shape: parameter.shape, scalars: Array(slot.values))
      }
    }
    for buffer in buffers { tensors[StateKey.buffer(buffer.name)] = StoredTensor(shape: buffer.shape, scalars: Array(buffer.values)) }
    if !parametersOnly { tensors.merge(optimizerState) { _, own in own } }
    return progress.state(tensors: tensors)
  }

  /// The optimizer's rule on one parameter; from 32 Ki values on, each core takes half (the
  /// update is bound by memory traffic, which two cores share better than one).
  /// Returns false when a value written is not finite.
  func update(_ parameter: Parameter, _ optimizer: OptimizerSpec, step: Int, learningRate: Double) -> Bool {
    let count = parameter.values.count
    guard count >= 1 << 15 else {
      return VectorOptimizer.update(
        optimizer, param: parameter.values.baseAddress!, grad: parameter.gradient.baseAddress!, count: count, slots: parameter.slotViews,
        step: step, learningRate: learningRate)
    }
    var job = UpdateJob(parameter: parameter, optimizer: optimizer, step: step, learningRate: learningRate)
    cores.run(UpdateJob.work, on: &job)
    return job.finite.0 && job.finite.1
  }

  /// One parameter's update in two halves (see `CorePair`).
  // @unchecked: the halves write disjoint ranges of the parameter's buffers and their own flag,
  // and both finish before `CorePair.run` returns, while the trainer that owns the buffers is alive.
  struct UpdateJob: @unchecked Sendable {
    let parameter: Parameter
    let optimizer: OptimizerSpec
    let step: Int
    let learningRate: Double
    var finite = (false, false)

    static let work: CorePair.Work = { context, part in
      let job = context!.assumingMemoryBound(to: UpdateJob.self)
      let (parameter, count) = (job.pointee.parameter, job.pointee.parameter.values.count)
      // Halves on a multiple of 8, so that each half's chunks of eight start where the whole's would.
      let start = part == 0 ? 0 : (count / 2) & ~7
      let end = part == 0 ? (count / 2) & ~7 : count
      let ok = VectorOptimizer.update(
        job.pointee.optimizer, param: parameter.values.baseAddress! + start, grad: parameter.gradient.baseAddress! + start,
        count: end - start, slots: parameter.slotViews.advanced(by: start), step: job.pointee.step, learningRate: job.pointee.learningRate)
      if part == 0 { job.pointee.finite.0 = ok } else { job.pointee.finite.1 = ok }
    }
  }

  // MARK: batches

  /// A workspace for chunks of up to 4096 of `count` samples, kept for the next call.
  func evaluationSpace(count: Int, targetWidth: Int) -> FastWorkspace {
    let capacity = min(4096, max(1, count))
    if let space = evaluationWorkspace, space.capacity >= capacity, space.targetValues.count >= space.capacity * targetWidth {
      return space
    }
    let space = FastWorkspace(stages: stages, widths: widths, targetWidth: targetWidth, capacity: capacity)
    evaluationWorkspace = space
    return space
  }

  /// Copies the samples at `indices` (inputs and targets) into the front of the workspace.
  func gather(_ indices: some Collection<Int>, from data: Dataset, into space: FastWorkspace) {
    gatherInputs(indices, from: data.inputs, into: space)
    switch data.targets {
    case .classes(let labels):
      for (row, sample) in indices.enumerated() { space.labels[row] = labels[sample] }
    case .values(let values):
      let targetWidth = values.rowWidth
      values.scalars.withUnsafeBufferPointer { values in
        for (row, sample) in indices.enumerated() {
          (space.targetValues.baseAddress! + row * targetWidth).update(from: values.baseAddress! + sample * targetWidth, count: targetWidth)
        }
      }
    }
  }

  /// Copies the input rows at `indices` into the front of the workspace.
  func gatherInputs(_ indices: some Collection<Int>, from inputs: SampleInputs, into space: FastWorkspace) {
    inputs.copyRows(indices, into: space.input.baseAddress!)
  }

  /// The loss of the batch in the workspace (whose targets are of the kind of `kind`); its
  /// gradient goes to the workspace's gradient buffer.
  func lossAndGradient(_ space: FastWorkspace, rows: Int, targets kind: Targets) -> Float {
    let (output, targets) = views(space, rows: rows, targets: kind)
    return spec.loss.evaluate(
      output: output, rows: rows, width: widths.last!, targets: targets, gradient: prefix(space.gradient, rows * widths.last!))
  }

  /// The accuracy or MAE of the batch in the workspace, from its outputs.
  func measures(_ space: FastWorkspace, rows: Int, targets kind: Targets) -> BatchMeasures {
    let (output, targets) = views(space, rows: rows, targets: kind)
    return spec.loss.batchMeasures(output: output, rows: rows, width: widths.last!, targets: targets)
  }

  /// The workspace's outputs and targets for `rows` samples.
  private func views(_ space: FastWorkspace, rows: Int, targets kind: Targets) -> (UnsafeBufferPointer<Float>, LossSpec.TargetView) {
    let width = widths.last!
    let targets: LossSpec.TargetView =
      switch kind {
      case .classes: .classes(UnsafeBufferPointer(prefix(space.labels, rows)))
      case .values: .values(UnsafeBufferPointer(prefix(space.targetValues, rows * width)))
      }
    return (UnsafeBufferPointer(prefix(space.output, rows * width)), targets)
  }
}

/// The first `count` elements of a buffer.
@inline(__always)
func prefix<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ count: Int) -> UnsafeMutableBufferPointer<T> {
  UnsafeMutableBufferPointer(start: buffer.baseAddress, count: count)
}

extension Targets {
  /// Values per sample: 0 for class indices.
  var width: Int {
    switch self {
    case .classes: 0
    case .values(let values): values.rowWidth
    }
  }
}

extension FastTrainer {
  /// One step of a rule that is not elementwise: the batch gathered once, an objective over the
  /// trainer's buffers (the step's dropout masks drawn at the first evaluation and reused,
  /// batch_norm's statistics from the first evaluation committed when the step commits), the
  /// rule's update, and everything put back when it fails.
  func wholeModelStep(_ rule: any OptimizerRule) throws(BackendError) -> StepResult {
    let mark = progress.mark()
    for buffer in buffers { _ = buffer.saved.update(fromContentsOf: buffer.values) }
    var parameters = Dictionary(uniqueKeysWithValues: self.parameters.map { ($0.name, Tensor(shape: $0.shape, scalars: Array($0.values))) })
    let start = (parameters, optimizerState)
    func restore() {
      progress.restore(mark)
      for buffer in buffers { _ = buffer.values.update(fromContentsOf: buffer.saved) }
      load(start.0)
      optimizerState = start.1
    }
    let (batch, endedEpoch) = progress.nextBatch()
    let rows = batch.count
    gather(batch, from: train, into: workspace)
    let update = progress.nextUpdate
    let learningRate = spec.schedule.learningRate(at: update.step, base: spec.optimizer.learningRate)
    var evaluations = 0
    var measures = BatchMeasures()
    var committed: [[Float]] = []
    let network: Objective = { [self] (at: [String: Tensor]) throws(BackendError) in
      evaluations += 1
      load(at)
      // Every evaluation starts from the step's running statistics; the first one's are kept.
      if evaluations > 1 { for buffer in buffers { _ = buffer.values.update(fromContentsOf: buffer.saved) } }
      forward(workspace, rows: rows, training: true, reuseMasks: evaluations > 1)
      let loss = lossAndGradient(workspace, rows: rows, targets: train.targets)
      if evaluations == 1 { measures = self.measures(workspace, rows: rows, targets: train.targets) }
      guard loss.isFinite else { throw .diverged(step: step + 1, loss: loss, reason: "the loss is \(loss)") }
      backward(workspace, rows: rows)
      if let bad = self.parameters.first(where: { !everyValueFinite($0.gradient) }) {
        throw .diverged(step: step + 1, loss: loss, reason: "the gradient of \(bad.name) is not finite")
      }
      let gradients = Dictionary(
        uniqueKeysWithValues: self.parameters.map { ($0.name, Tensor(shape: $0.shape, scalars: Array($0.gradient))) })
      if evaluations == 1 { committed = buffers.map { Array($0.values) } }
      return (loss, gradients)
    }
    let objective = VariationalObjective.step(network, variational, update: update.step) { [self] in firstGradients = $0 }
    let outcome: UpdateOutcome
    do {
      outcome = try rule.update(
        parameters: &parameters, state: &optimizerState, objective: objective,
        context: UpdateContext(step: update.optimizerStep, learningRate: learningRate, parameterOrder: parameterOrder))
    } catch {
      restore()
      throw error
    }
    load(parameters)
    for (buffer, values) in zip(buffers, committed) { _ = buffer.values.update(fromContentsOf: values) }
    // Named as the sequential trainer names them: a parameter, then the rule's state, then a buffer.
    let spoilt =
      self.parameters.first { !everyValueFinite($0.values) }?.name
      ?? optimizerState.keys.sorted().first { !optimizerState[$0]!.isFinite }
      ?? buffers.first { !everyValueFinite($0.values) }?.name
    if let spoilt { throw .nonFiniteUpdate(step: step + 1, loss: outcome.loss, tensor: spoilt) }
    hasGradients = true
    progress.commit()
    return StepResult(
      step: step, loss: outcome.loss, learningRate: learningRate, endedEpoch: endedEpoch, measures: measures, optimizer: outcome.report)
  }

  /// Copies parameter values by name into the trainer's buffers.
  func load(_ values: [String: Tensor]) {
    for parameter in parameters { _ = parameter.values.update(fromContentsOf: values[parameter.name]!.scalars) }
  }
}

/// Whether every value is finite: the check of every gradient and parameter at each step, in the
/// C kernel at the machine's vector width (the generic loop, inlined into a closure here, ran one
/// value at a time: 7 % of an mlp-mnist step).
@inline(__always)
func everyValueFinite(_ values: UnsafeMutableBufferPointer<Float>) -> Bool {
  values.isEmpty || specbench_all_finite(values.baseAddress!, values.count) != 0
}
