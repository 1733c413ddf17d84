import Datasets
import Foundation
import SpecKit
import TensorCore
import Testing

@testable import Backends

@Suite("Gradients against finite differences")
struct GradientTests {
  static let activations: [Activation] = [.identity, .relu, .leakyReLU(alpha: 0.2), .sigmoid, .tanh, .gelu, .silu, .softplus, .elu]

  @Test(arguments: activations)
  func activationDerivatives(activation: Activation) {
    // Points away from the kinks of relu, leaky_relu and elu, and past softplus' threshold.
    let points: [Float] = [-3.1, -1.7, -0.6, -0.05, 0.07, 0.4, 1.3, 2.9, 21.5]
    for x in points {
      let h: Float = 1e-2
      let numeric = (Double(activation.value(x + h)) - Double(activation.value(x - h))) / Double(2 * h)
      #expect(abs(Double(activation.derivative(x)) - numeric) <= 1e-3 + 1e-2 * abs(numeric), "\(activation) at \(x)")
    }
  }

  @Test func softmaxBackward() {
    let x = Tensor(shape: [2, 4], scalars: [0.3, -1.2, 2.0, 0.1, 1.0, 1.1, -0.4, 0.0])
    let weights: [Float] = [0.5, -1, 2, 0.25, 1, -0.5, 0.75, 3]
    func f(_ values: [Float]) -> Float {
      let y = Activation.softmax.forward(Tensor(shape: x.shape, scalars: values))
      return zip(y.scalars, weights).reduce(0) { $0 + $1.0 * $1.1 }
    }
    let y = Activation.softmax.forward(x)
    let analytic = Activation.softmax.backward(input: x, output: y, gradient: Tensor(shape: x.shape, scalars: weights))
    let worst = GradientCheck(step: 1e-3).worst(analytic: analytic.scalars, at: x.scalars, f)
    #expect(worst.ratio <= 1, "\(worst)")
  }

  static let losses: [(LossSpec, Targets)] = [
    (.mse, .values(Tensor(shape: [3, 2], scalars: [0.5, -1, 2, 0.1, 0, 3]))),
    (.softmaxCrossEntropy, .classes([1, 0, 1])),
    (.huber(delta: 0.7), .values(Tensor(shape: [3, 2], scalars: [0.5, -1, 2, 0.1, 0, 3]))),
    (.mse, .classes([1, 0, 1])),
  ]

  @Test(arguments: losses)
  func lossGradients(loss: LossSpec, targets: Targets) {
    let output = Tensor(shape: [3, 2], scalars: [0.2, -0.7, 1.1, 0.9, -1.4, 2.2])
    let (_, gradient) = loss.evaluate(output: output, targets: targets)
    let worst = GradientCheck(step: 1e-3).worst(analytic: gradient.scalars, at: output.scalars) {
      loss.evaluate(output: Tensor(shape: output.shape, scalars: $0), targets: targets).loss
    }
    #expect(worst.ratio <= 1, "\(loss): \(worst)")
  }

  @Test func binaryCrossEntropyGradientAndStability() {
    let output = Tensor(shape: [4, 1], scalars: [0.3, -2.0, 1.5, -0.1])
    let targets = Targets.classes([1, 0, 0, 1])
    let (_, gradient) = LossSpec.sigmoidBinaryCrossEntropy.evaluate(output: output, targets: targets)
    let worst = GradientCheck(step: 1e-3).worst(analytic: gradient.scalars, at: output.scalars) {
      LossSpec.sigmoidBinaryCrossEntropy.evaluate(output: Tensor(shape: output.shape, scalars: $0), targets: targets).loss
    }
    #expect(worst.ratio <= 1, "\(worst)")
    // Huge logits stay finite: log(1 + e^−|y|) never overflows.
    let extreme = LossSpec.sigmoidBinaryCrossEntropy.evaluate(
      output: Tensor(shape: [2, 1], scalars: [500, -500]), targets: .classes([0, 1]))
    #expect(extreme.loss == 500)
    let ce = LossSpec.softmaxCrossEntropy.evaluate(output: Tensor(shape: [1, 2], scalars: [1000, -1000]), targets: .classes([1]))
    #expect(ce.loss == 2000)
  }

  /// Models that exercise every layer type; each parameter's gradient is checked.
  static let models: [(String, [Int], [LayerSpec])] = [
    (
      "dense + every activation", [2],
      [
        dense("a", 5, .tanh), dense("b", 5, .gelu), dense("c", 5, .silu), dense("d", 5, .softplus), dense("e", 4, .elu),
        dense("f", 3, .sigmoid),
      ]
    ),
    ("dense without bias, leaky relu", [2], [dense("a", 6, .leakyReLU(alpha: 0.1), bias: false), dense("b", 3)]),
    (
      "activation layers incl. softmax", [2],
      [
        dense("a", 4), LayerSpec(name: "act", kind: .activation(function: .tanh)), dense("b", 3),
        LayerSpec(name: "sm", kind: .activation(function: .softmax)),
      ]
    ),
    ("layer_norm", [2], [dense("a", 5, .tanh), LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-5)), dense("b", 3)]),
    ("batch_norm", [2], [dense("a", 5, .tanh), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)), dense("b", 3)]),
    ("dropout (fixed mask)", [2], [dense("a", 6, .tanh), LayerSpec(name: "drop", kind: .dropout(rate: 0.3)), dense("b", 3)]),
    ("flatten", [2], [dense("a", 6), LayerSpec(name: "f0", kind: .flatten), dense("b", 3)]),
  ]

  /// Image models: every option of conv2d and the pools, on `[3, 4, 4]` samples (48 blob
  /// features reshaped).
  static let imageModels: [(String, [LayerSpec])] = [
    ("conv2d 3×3 valid, tanh", [conv("c", 4, .tanh), LayerSpec(name: "f", kind: .flatten), dense("d", 3)]),
    (
      "conv2d stride 2, padding 1, no bias",
      [conv("c", 5, stride: Pair(2), padding: .explicit(Pair(1)), bias: false), LayerSpec(name: "f", kind: .flatten), dense("d", 3)]
    ),
    (
      "conv2d same, 2×3 kernel, dilation",
      [conv("c", 2, kernel: Pair(2, 3), padding: .same, dilation: Pair(2, 1), .relu), LayerSpec(name: "f", kind: .flatten), dense("d", 3)]
    ),
    (
      "conv2d groups 3",
      [
        conv("c", 6, kernel: Pair(2), padding: .explicit(Pair(1, 0)), groups: 3, .sigmoid), LayerSpec(name: "f", kind: .flatten),
        dense("d", 3),
      ]
    ),
    (
      "max_pool2d with padding, then conv",
      [
        maxPool("p", Pair(3), stride: Pair(1), padding: Pair(1)), conv("c2", 2, kernel: Pair(2), stride: Pair(2)),
        LayerSpec(name: "f", kind: .flatten), dense("d", 3),
      ]
    ),
    (
      "avg_pool2d with padding",
      [
        conv("c", 4, kernel: Pair(1), .tanh), avgPool("p", Pair(2, 3), stride: Pair(1, 2), padding: Pair(1)),
        LayerSpec(name: "f", kind: .flatten), dense("d", 3),
      ]
    ),
    ("global_avg_pool", [conv("c", 5, kernel: Pair(2), .tanh), LayerSpec(name: "g", kind: .globalAvgPool), dense("d", 3)]),
    (
      "batch_norm per channel",
      [
        conv("c", 4, kernel: Pair(2)), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)),
        LayerSpec(name: "f", kind: .flatten), dense("d", 3),
      ]
    ),
    ("reshape twice", [reshape("r", [6, 8]), LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-5)), reshape("r2", [-1]), dense("d", 3)]),
  ]

  /// Every image layer and option against central finite differences, for every parameter and
  /// for the input.
  @Test(arguments: imageModels)
  func imageLayerGradients(label: String, layers: [LayerSpec]) throws {
    // The max pool comes first in its model, so that no parameter moves the values it chooses
    // between (a step that moved one past another would flip its choice: a kink, not a
    // gradient); its input gradient is checked in `imageInputGradients`.
    let trainer = try makeTrainer(makeSpec(input: [48], layers: [reshape("image", [3, 4, 4])] + layers, data: imageData))
    try Self.checkParameterGradients(trainer, batch: trainer.train.subset(0..<6), label: label)
  }

  /// The input gradients of the image passes (conv2d with every option and both pools) against
  /// finite differences of a fixed projection of their outputs.
  @Test func imageInputGradients() {
    var generator = SplitMix64(seed: 5, stream: "image input gradients")
    func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float(Double.random(in: -1...1, using: &generator)) } }
    let input = [4, 5, 6]
    let x = Tensor(shape: [2] + input, scalars: random(2 * 120))
    let windows: [(Window, Int, Int)] = [
      (Window(kernel: Pair(3), stride: Pair(2), padding: .explicit(Pair(1))), 6, 2),
      (Window(kernel: Pair(2, 3), padding: .same, dilation: Pair(2, 1)), 4, 4),
      (Window(kernel: Pair(1)), 3, 1),
    ]
    for (window, filters, groups) in windows {
      let g = ImageGeometry(window, input: input)
      let w = Tensor(
        shape: [filters, 4 / groups, window.kernel.height, window.kernel.width],
        scalars: random(filters * 4 / groups * window.kernel.height * window.kernel.width))
      let projection = random(2 * filters * g.outputPlane)
      func f(_ values: [Float]) -> Float {
        let y = ImageMath.conv2dForward(Tensor(shape: x.shape, scalars: values), weight: w, bias: nil, geometry: g, groups: groups)
        return zip(y.scalars, projection).reduce(0) { $0 + $1.0 * $1.1 }
      }
      let dy = Tensor(shape: [2, filters, g.outputHeight, g.outputWidth], scalars: projection)
      let dx = ImageMath.conv2dBackward(dy, input: x, weight: w, hasBias: false, geometry: g, groups: groups).input
      let worst = GradientCheck(step: 1e-2).worst(analytic: dx.scalars, at: x.scalars, f)
      #expect(worst.ratio <= 1, "conv \(window) \(worst)")
    }
    for window in [Window(kernel: Pair(3), stride: Pair(2), padding: .explicit(Pair(1))), Window(kernel: Pair(2, 3), stride: Pair(1, 2))] {
      let g = ImageGeometry(window, input: input)
      let projection = random(2 * 4 * g.outputPlane)
      let dy = Tensor(shape: [2, 4, g.outputHeight, g.outputWidth], scalars: projection)
      let avg = ImageMath.avgPoolBackward(dy, geometry: g)
      let worstAvg = GradientCheck(step: 1e-2).worst(analytic: avg.scalars, at: x.scalars) { values in
        zip(ImageMath.avgPoolForward(Tensor(shape: x.shape, scalars: values), geometry: g).scalars, projection).reduce(0) {
          $0 + $1.0 * $1.1
        }
      }
      #expect(worstAvg.ratio <= 1, "avg_pool \(window) \(worstAvg)")
      let (_, argmax) = ImageMath.maxPoolForward(x, geometry: g)
      let max = ImageMath.maxPoolBackward(dy, geometry: g, argmax: argmax)
      let worstMax = GradientCheck(step: 1e-3).worst(analytic: max.scalars, at: x.scalars) { values in
        zip(ImageMath.maxPoolForward(Tensor(shape: x.shape, scalars: values), geometry: g).0.scalars, projection).reduce(0) {
          $0 + $1.0 * $1.1
        }
      }
      #expect(worstMax.ratio <= 1, "max_pool \(window) \(worstMax)")
    }
  }

  @Test(arguments: models)
  func layerGradients(label: String, input: [Int], layers: [LayerSpec]) throws {
    let trainer = try makeTrainer(makeSpec(input: input, layers: layers))
    // Samples 0–2 of spirals sit at the origin, where layer_norm of a constant vector has
    // curvature ~1/sqrt(eps) that finite differences cannot resolve; use samples away from it.
    try Self.checkParameterGradients(trainer, batch: trainer.train.subset(9..<17), label: label)
  }

  /// Every parameter's gradient on `batch` against central finite differences, in one step's
  /// pass: every evaluation uses the dropout masks the first one drew (what a rule that
  /// evaluates its objective several times gets).
  static func checkParameterGradients(_ trainer: ReferenceTrainer, batch: Dataset, label: String) throws {
    var pass: ReferenceTrainer.StepPass? = .init()
    let gradients = trainer.lossAndGradients(batch.inputs.materialized(), batch.targets, parameters: trainer.parameters, pass: &pass)
      .gradients
    #expect(Set(gradients.keys) == Set(trainer.parameters.keys))
    for name in trainer.parameters.keys.sorted() {
      let original = trainer.parameters[name]!
      let worst = GradientCheck(step: 1e-3).worst(analytic: gradients[name]!.scalars, at: original.scalars) { values in
        var moved = trainer.parameters
        moved[name] = Tensor(shape: original.shape, scalars: values)
        return trainer.lossAndGradients(batch.inputs.materialized(), batch.targets, parameters: moved, pass: &pass).loss
      }
      #expect(worst.ratio <= 1, "\(label): \(name) \(worst)")
    }
  }

  /// Multi-axis samples through layer_norm (last axis), batch_norm (first axis) and flatten,
  /// with gradients checked on the input too.
  @Test func multiAxisNormalisationAndInputGradients() {
    let x = Tensor(shape: [3, 2, 4], scalars: (0..<24).map { sin(Float($0) * 1.7) * 2 })
    let weights = (0..<24).map { cos(Float($0) * 0.9) }
    func project(_ t: Tensor) -> Float { zip(t.scalars, weights).reduce(0) { $0 + $1.0 * $1.1 } }
    let lnWeight = Tensor(shape: [4], scalars: [1.2, 0.8, -0.5, 1]), lnBias = Tensor(shape: [4], scalars: [0.1, 0, 0.2, -0.3])
    let (_, lnCache) = LayerMath.layerNormForward(x, weight: lnWeight, bias: lnBias, eps: 1e-5)
    let ln = LayerMath.layerNormBackward(Tensor(shape: x.shape, scalars: weights), cache: lnCache, weight: lnWeight)
    let lnWorst = GradientCheck(step: 1e-3).worst(analytic: ln.input.scalars, at: x.scalars) {
      project(LayerMath.layerNormForward(Tensor(shape: x.shape, scalars: $0), weight: lnWeight, bias: lnBias, eps: 1e-5).0)
    }
    #expect(lnWorst.ratio <= 1, "layer_norm input \(lnWorst)")

    let bnWeight = Tensor(shape: [2], scalars: [1.5, -0.7]), bnBias = Tensor(shape: [2], scalars: [0.2, 0.1])
    func bn(_ input: Tensor) -> (Tensor, LayerMath.NormCache) {
      var mean = Tensor(shape: [2]), variance = Tensor(shape: [2], repeating: 1)
      return LayerMath.batchNormForward(
        input, weight: bnWeight, bias: bnBias, runningMean: &mean, runningVar: &variance, eps: 1e-5, momentum: 0.1, training: true)
    }
    let bnBack = LayerMath.batchNormBackward(Tensor(shape: x.shape, scalars: weights), cache: bn(x).1, weight: bnWeight)
    let bnWorst = GradientCheck(step: 1e-3).worst(analytic: bnBack.input.scalars, at: x.scalars) {
      project(bn(Tensor(shape: x.shape, scalars: $0)).0)
    }
    #expect(bnWorst.ratio <= 1, "batch_norm input \(bnWorst)")
    let bnWeightWorst = GradientCheck(step: 1e-3).worst(analytic: bnBack.weight.scalars, at: bnWeight.scalars) { values in
      var mean = Tensor(shape: [2]), variance = Tensor(shape: [2], repeating: 1)
      return project(
        LayerMath.batchNormForward(
          x, weight: Tensor(shape: [2], scalars: values), bias: bnBias, runningMean: &mean, runningVar: &variance, eps: 1e-5, momentum: 0.1,
          training: true
        ).0)
    }
    #expect(bnWeightWorst.ratio <= 1, "batch_norm weight \(bnWeightWorst)")
  }

  @Test func denseInputGradient() {
    let x = Tensor(shape: [3, 4], scalars: (0..<12).map { Float($0) * 0.3 - 1.5 })
    let w = Tensor(shape: [2, 4], scalars: [0.1, -0.2, 0.3, 0.5, -0.4, 0.6, 0.2, -0.1])
    let b = Tensor(shape: [2], scalars: [0.05, -0.02])
    let upstream = Tensor(shape: [3, 2], scalars: [1, -2, 0.5, 0.3, -1, 2])
    let back = LayerMath.denseBackward(upstream, input: x, weight: w, hasBias: true)
    let worst = GradientCheck(step: 1e-3).worst(analytic: back.input.scalars, at: x.scalars) { values in
      zip(LayerMath.denseForward(Tensor(shape: x.shape, scalars: values), weight: w, bias: b).scalars, upstream.scalars).reduce(0) {
        $0 + $1.0 * $1.1
      }
    }
    #expect(worst.ratio <= 1, "\(worst)")
  }
}
