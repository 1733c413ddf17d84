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

/// A convolution layer with the given window.
func conv(
  _ name: String, _ filters: Int, kernel: Pair = Pair(3), stride: Pair = Pair(1), padding: Padding = .explicit(Pair(0)),
  dilation: Pair = Pair(1), groups: Int = 1, _ activation: Activation = .identity, bias: Bool = true
) -> LayerSpec {
  LayerSpec(
    name: name,
    kind: .conv2d(
      Conv2DLayer(
        filters: filters, kernel: kernel, stride: stride, padding: padding, dilation: dilation, groups: groups, activation: activation,
        useBias: bias)))
}

/// Image-shaped samples: 48 blob features as `[3, 4, 4]` images (or any shape of 48 values).
let imageData = DataSource.blobs(samples: 40, centers: 3, features: 48, std: 1, seed: 1)

func reshape(_ name: String, _ shape: [Int]) -> LayerSpec { LayerSpec(name: name, kind: .reshape(shape: shape)) }
func maxPool(_ name: String, _ kernel: Pair, stride: Pair? = nil, padding: Pair = Pair(0)) -> LayerSpec {
  LayerSpec(name: name, kind: .maxPool2d(PoolLayer(kernel: kernel, stride: stride, padding: padding)))
}
func avgPool(_ name: String, _ kernel: Pair, stride: Pair? = nil, padding: Pair = Pair(0)) -> LayerSpec {
  LayerSpec(name: name, kind: .avgPool2d(PoolLayer(kernel: kernel, stride: stride, padding: padding)))
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
