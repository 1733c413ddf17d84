import SpecKit

/// What the training worker is doing.
public enum TrainingStatus: String, Sendable {
  case idle
  case running
  case paused
}

/// Something front ends print as it happens: training started, paused, stopped and why, an
/// optimizer or backend changed, saved, diverged.
public struct EngineEvent: Hashable, Sendable {
  public var kind: String
  public var text: String

  public init(_ kind: String, _ text: String) {
    self.kind = kind
    self.text = text
  }
}

/// An immutable picture of training, published by the worker and read by front ends at any time.
public struct Snapshot: Sendable {
  public var status: TrainingStatus = .idle
  public var backend = "reference"
  public var step = 0
  public var epoch = 0
  /// The step training will stop at, when a step limit says so.
  public var plannedStep: Int?
  public var lastLoss: Float?
  public var learningRate: Double?
  public var stepsPerSecond: Double?
  public var history = HistorySpec()
  /// The values of every parameter and buffer (by tensor name, `dense1.weight`) at
  /// `histogramStep`, refreshed every `record.histograms_every` steps.
  public var tensorValues: [String: [Float]] = [:]
  public var histogramStep = 0

  public init() {}
}
