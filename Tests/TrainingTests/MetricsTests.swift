import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends
@testable import Session

/// The metrics beyond the loss (docs/spec-format.md, "history"; docs/training.md, "What is
/// recorded"): their definitions against independent formulas, the backends' agreement, and what
/// a run records.
@Suite("Accuracy, MAE, R² and the rates used")
struct MetricsTests {
  // MARK: definitions

  @Test func batchAccuracyIsTheShareOfRowsWhoseArgmaxIsTheTarget() {
    // Rows: argmax 2 (right), 0 (right), a tie between 0 and 1 (the first wins: 0, wrong), 1 (wrong).
    let output = Tensor(shape: [4, 3], scalars: [0, 1, 5, 9, -1, 2, 3, 3, 0, 0, 1, 0])
    let measures = LossSpec.softmaxCrossEntropy.batchMeasures(output: output, targets: .classes([2, 0, 1, 2]))
    #expect(measures == BatchMeasures(accuracy: 0.5))
    // One logit: class 1 when it is above 0.
    let binary = LossSpec.sigmoidBinaryCrossEntropy.batchMeasures(
      output: Tensor(shape: [3, 1], scalars: [0.5, 0, -2]), targets: .classes([1, 1, 0]))
    #expect(binary == BatchMeasures(accuracy: Float(2) / 3))
  }

  @Test func batchMAEIsForTheRegressionLossesOnValues() {
    let output = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
    let targets = Targets.values(Tensor(shape: [2, 2], scalars: [1.5, 2, 1, 4]))
    #expect(LossSpec.mse.batchMeasures(output: output, targets: targets) == BatchMeasures(meanAbsoluteError: 0.625))
    #expect(LossSpec.huber(delta: 1).batchMeasures(output: output, targets: targets).meanAbsoluteError == 0.625)
    // Probabilities through a sigmoid are not a regression: nothing to say.
    #expect(LossSpec.sigmoidBinaryCrossEntropy.batchMeasures(output: output, targets: targets) == BatchMeasures())
  }

  /// R² per output, averaged over those whose target varies, against the textbook two-pass
  /// formula in double, over random chunks (the sums are added chunk by chunk).
  @Test(arguments: [1, 3])
  func r2AndMAEMatchTheTwoPassFormulas(width: Int) {
    var generator = SplitMix64(state: UInt64(width))
    let rows = 257
    var outputs = [Float](), targets = [Float]()
    for _ in 0..<(rows * width) {
      let t = generator.nextUniform() * 10 + 1000  // a large mean: the shift keeps it exact
      targets.append(t)
      outputs.append(t + generator.nextUniform() - 0.5)
    }
    if width == 3 { for row in 0..<rows { targets[row * width + 1] = 7 } }  // a constant output
    var sums = RegressionSums(width: width)
    for start in stride(from: 0, to: rows, by: 100) {
      let count = min(100, rows - start)
      let range = (start * width)..<((start + count) * width)
      sums.add(
        output: Tensor(shape: [count, width], scalars: Array(outputs[range])),
        targets: Tensor(shape: [count, width], scalars: Array(targets[range])))
    }
    var expectedR2: [Double] = []
    for j in 0..<width {
      let t = (0..<rows).map { Double(targets[$0 * width + j]) }
      let y = (0..<rows).map { Double(outputs[$0 * width + j]) }
      let mean = t.reduce(0, +) / Double(rows)
      let total = t.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
      guard total > 0 else { continue }
      expectedR2.append(1 - zip(y, t).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / total)
    }
    let expected = expectedR2.reduce(0, +) / Double(expectedR2.count)
    let r2 = try! #require(sums.r2)
    #expect(abs(r2 - expected) < 1e-9, "\(r2) vs \(expected)")
    let mae = zip(outputs, targets).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(rows * width)
    #expect(abs(sums.meanAbsoluteError! - mae) < 1e-12)
  }

  @Test func constantTargetsHaveNoR2() {
    var sums = RegressionSums(width: 1)
    sums.add(output: Tensor(shape: [3, 1], scalars: [1, 2, 3]), targets: Tensor(shape: [3, 1], scalars: [2, 2, 2]))
    #expect(sums.r2 == nil && sums.meanAbsoluteError == Double(2) / 3)
    #expect(RegressionSums(width: 2).r2 == nil && RegressionSums(width: 2).meanAbsoluteError == nil)
  }

  // MARK: backends agree

  static func regression() -> SessionSpec {
    makeSpec(
      input: [1], layers: [dense("d1", 8, .tanh), dense("d2", 1)], loss: .mse, optimizer: .adam(.init(lr: 0.01, weightDecay: 0)),
      data: .sine(samples: 64, noise: 0.05, seed: 2), batchSize: 16, validationFraction: 0.25)
  }

  static func classifier() -> SessionSpec {
    makeSpec(layers: [dense("d1", 8, .relu), dense("d2", 3)], optimizer: .adam(.init(lr: 0.01, weightDecay: 0)), validationFraction: 0.2)
  }

  /// Every backend measures the same batches and splits as the reference.
  @Test(arguments: testedBackends, [true, false])
  func backendsMeasureAsTheReferenceDoes(backendName: String, classes: Bool) throws {
    let spec = classes ? Self.classifier() : Self.regression()
    let data = try DataSplit.of(spec, relativeTo: "").split
    let reference = try ReferenceBackend().makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    let other = try BackendRegistry.builtIn.named(backendName).makeTrainer(spec: spec, state: spec.initialTrainingState(), data: data)
    for _ in 0..<5 {
      let (a, b) = (try reference.trainStep().measures, try other.trainStep().measures)
      if classes {
        #expect(a.accuracy != nil && a.accuracy == b.accuracy && a.meanAbsoluteError == nil)
      } else {
        let (x, y) = (try #require(a.meanAbsoluteError), try #require(b.meanAbsoluteError))
        #expect(a.accuracy == nil && abs(x - y) <= 1e-5 * max(1, abs(x)))
      }
    }
    let (a, b) = (try #require(try reference.evaluate(.validation)), try #require(try other.evaluate(.validation)))
    #expect(a.accuracy == b.accuracy)
    #expect((a.meanAbsoluteError == nil) == classes && (a.r2 == nil) == classes)
    if !classes {
      #expect(abs(a.meanAbsoluteError! - b.meanAbsoluteError!) < 1e-5 && abs(a.r2! - b.r2!) < 1e-4)
    }
  }

  // MARK: what a run records

  @Test func aClassifierRecordsTheRateAndTheAccuracyBesideTheLosses() throws {
    var spec = Self.classifier()
    spec.training.record = RecordSpec(every: 2, histogramsEvery: 0)
    spec.schedule = .cosine(tMax: 20, etaMin: 0)
    let (bundle, summary) = try train(SessionBundle(spec: spec), steps: 20)
    let history = bundle.spec.history
    let steps = history.trainLoss.map(\.step)
    #expect(steps == Array(stride(from: 2, through: 20, by: 2)))
    #expect(history[.learningRate].map(\.step) == steps && history[.trainAccuracy].map(\.step) == steps)
    for point in history[.learningRate] {
      #expect(point.value == Float(spec.schedule.learningRate(at: point.step, base: 0.01)), "the rate of update \(point.step)")
    }
    #expect(history[.trainAccuracy].allSatisfy { $0.value >= 0 && $0.value <= 1 })
    #expect(history[.valAccuracy].map(\.step) == history.valLoss.map(\.step) && !history.valLoss.isEmpty)
    #expect(history[.trainMAE].isEmpty && history[.valMAE].isEmpty && history[.valR2].isEmpty)
    // The last validation point is the run's final evaluation.
    #expect(history[.valAccuracy].last!.value == Float(summary.validation!.accuracy!))
  }

  @Test func aRegressionRecordsTheMAEAndR2() throws {
    let (bundle, summary) = try train(SessionBundle(spec: Self.regression()), steps: 40)
    let history = bundle.spec.history
    #expect(history[.trainMAE].count == 40 && history[.trainAccuracy].isEmpty && history[.valAccuracy].isEmpty)
    #expect(history[.valMAE].map(\.step) == history.valLoss.map(\.step) && history[.valR2].map(\.step) == history.valLoss.map(\.step))
    let validation = try #require(summary.validation)
    #expect(history[.valR2].last!.value == Float(validation.r2!) && history[.valMAE].last!.value == Float(validation.meanAbsoluteError!))
    #expect(summary.train.measuresText.hasPrefix(", MAE ") && summary.train.measuresText.contains(", R² "))
  }

  /// A rate changed between runs shows in the rates recorded: what the updates used.
  @Test func theRatesRecordedAreTheRatesUsed() throws {
    var spec = Self.classifier()
    spec.training.record = RecordSpec(every: 1, histogramsEvery: 0)
    let (first, _) = try train(SessionBundle(spec: spec), steps: 5)
    var changed = first
    changed.spec.optimizer.learningRate = 0.05
    let (second, _) = try train(changed, steps: 5)
    let rates = second.spec.history[.learningRate]
    #expect(rates.map(\.step) == Array(1...10))
    #expect(rates.prefix(5).allSatisfy { $0.value == 0.01 } && rates.suffix(5).allSatisfy { $0.value == 0.05 })
    // The chart draws them as "used", then the schedule's plan from the current step.
    let chart = HistoryPlots.learningRateChart(second.spec, used: MetricLog(rates), through: 20, current: 10)
    #expect(chart.series.map(\.name) == ["used", "planned"])
    #expect(chart.series[1].points.first?.x == 11 && chart.series[1].points.last?.x == 20)
    // A session without recorded rates (saved before version 3) gets the schedule from step 1.
    let old = HistoryPlots.learningRateChart(second.spec, through: 20, current: 10)
    #expect(old.series.map(\.name) == ["lr"] && old.series[0].points.first?.x == 1)
  }

  @Test func aRateFloat32CannotHoldIsNotAPoint() {
    var history = HistorySpec()
    history.append(1e39, at: 1, to: .learningRate)
    history.append(.nan, at: 1, to: .trainLoss)
    history.append(0.5, at: 2, to: .learningRate)
    #expect(history[.learningRate] == [MetricPoint(step: 2, value: 0.5)] && history.trainLoss.isEmpty)
  }
}
