import Foundation
import Session
import SpecKit

@testable import Dashboard

/// A deterministic mid-training picture: the built-in spirals session at step 600 on the fast
/// backend, with a loss history, a backend and an optimizer event, histograms, distributions
/// and per-tensor statistics.
enum Fixture {
  static var spec: SessionSpec {
    var spec = SessionEngine.withDefaultSession().spec
    var history = HistorySpec()
    history.trainLoss = (1...600).map { t in
      MetricPoint(step: t, value: Float(1.1 / (1 + Double(t) / 60) + 0.05 * sin(Double(t) / 5)))
    }
    history.valLoss = stride(from: 50, through: 600, by: 50).map { MetricPoint(step: $0, value: Float(1.2 / (1 + Double($0) / 70))) }
    history.events = [
      HistoryEvent(step: 200, kind: "backend", detail: "reference -> fast"),
      HistoryEvent(step: 400, kind: "optimizer", detail: "adam -> adam, slots kept"),
    ]
    spec.history = history
    spec.backend = "fast"
    return spec
  }

  static var snapshot: Snapshot {
    var s = Snapshot()
    s.status = .running
    s.backend = "fast"
    s.step = 600
    s.epoch = 64
    s.plannedStep = 2000
    s.lastLoss = 0.1234
    s.learningRate = 0.00987
    s.stepsPerSecond = 8123
    s.elapsedSeconds = 12.5
    s.history = spec.history
    s.histogramStep = 600
    let state = try! spec.initialTrainingState()
    for (name, tensor) in state.tensors where name.hasPrefix("param/") { s.tensorValues[String(name.dropFirst(6))] = tensor.scalars }
    for name in s.tensorValues.keys {
      s.distributions[name] = (1...12).map { i in
        let spread = Float(i) * 0.05
        return DistributionColumn(
          step: i * 50, quantiles: [-3, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 3].map { $0 * spread + Float(i) * 0.01 })
      }
    }
    s.tensorStatistics = [
      "dense1.weight": TensorStatistics(gradientNorm: 0.0123, updateRatio: 0.0031, step: 551),
      "dense1.bias": TensorStatistics(gradientNorm: 0.004, updateRatio: 0.01, step: 551),
      "dense2.weight": TensorStatistics(gradientNorm: 0.0456, updateRatio: 0.0012, step: 551),
      "dense3.weight": TensorStatistics(gradientNorm: 0.321, updateRatio: 0.0009, step: 551),
    ]
    return s
  }

  static var input: DashboardInput { DashboardInput(spec: spec, snapshot: snapshot, hasUnsavedChanges: true) }

  static var state: DashboardState {
    var state = DashboardState()
    state.focus = .model
    state.selectedLayer = 1
    state.appendLog([
      "[started] training on reference from step 0 to step 2000",
      "› backend fast",
      "[backend] backend at step 200: reference -> fast, state carried across",
      "› optimizer lr=0.005",
      "[optimizer] optimizer at step 400: adam -> adam, slots kept",
    ])
    return state
  }
}
