import Datasets
import Foundation
import SpecKit
import TensorCore

@testable import Backends

/// A spec around `layers` on small synthetic data, for gradient and resume tests.
func makeSpec(
  input: [Int] = [2], layers: [LayerSpec], loss: LossSpec = .softmaxCrossEntropy, optimizer: OptimizerSpec = .sgd(.init(lr: 0.1)),
  data: DataSource = .spirals(samples: 30, classes: 3, noise: 0.1, seed: 1), batchSize: Int = 8, seed: UInt64 = 3,
  schedule: ScheduleSpec = .constant,
  validationFraction: Double = 0
) -> SessionSpec {
  SessionSpec(
    name: "t", model: ModelSpec(input: input, layers: layers), loss: loss, optimizer: optimizer, schedule: schedule,
    data: DataSpec(source: data, validationFraction: validationFraction), training: TrainingSpec(batchSize: batchSize, seed: seed))
}

func dense(_ name: String, _ units: Int, _ activation: Activation = .identity, bias: Bool = true) -> LayerSpec {
  LayerSpec(name: name, kind: .dense(DenseLayer(units: units, activation: activation, useBias: bias)))
}

/// A reference trainer for `spec` from its seeded initial state.
func makeTrainer(_ spec: SessionSpec, state: TrainingState? = nil) throws -> ReferenceTrainer {
  let data = try DatasetLoader.load(spec.data, relativeTo: "")
  let split = DataSplit(data, validationFraction: spec.data.validationFraction, seed: spec.training.seed)
  return try ReferenceTrainer(spec: spec, state: state ?? spec.initialTrainingState(), train: split.train, kernels: PlainKernels())
}

/// Checks analytic gradients against central finite differences (the quotient in double).
struct GradientCheck {
  var step = 1e-2
  var absoluteTolerance = 2e-3
  var relativeTolerance = 2e-2

  /// The largest disagreement, scaled by the tolerance (≤ 1 passes), with where it is.
  func worst(analytic: [Float], at point: [Float], _ f: ([Float]) -> Float) -> (
    ratio: Double, index: Int, analytic: Double, numeric: Double
  ) {
    var worst = (ratio: 0.0, index: -1, analytic: 0.0, numeric: 0.0)
    for i in point.indices {
      var plus = point, minus = point
      plus[i] += Float(step)
      minus[i] -= Float(step)
      let numeric = (Double(f(plus)) - Double(f(minus))) / (2 * step)
      let a = Double(analytic[i])
      let ratio = abs(a - numeric) / (absoluteTolerance + relativeTolerance * abs(numeric))
      if ratio > worst.ratio { worst = (ratio, i, a, numeric) }
    }
    return worst
  }
}
