/// Where a session's training stands: counters, the tensor file and its hash, and the positions
/// of the seeded generators, so that training resumes exactly.
public struct StateSpec: Hashable, Sendable {
  /// Updates made so far.
  public var step: Int
  /// Completed epochs.
  public var epoch: Int
  /// The safetensors file's name, relative to the spec file (normally `NAME.safetensors`).
  public var tensors: String
  /// SHA-256 of that file, lowercase hex.
  public var sha256: String
  /// The seed of the current epoch's sample order.
  public var epochOrderSeed: UInt64
  /// How many samples of the current epoch have been used.
  public var index: Int
  /// The dropout generator's state.
  public var dropoutRNG: UInt64

  /// The most steps (and epochs) a session counts: 2^53, so that every count is exact as a JSON
  /// number in any language and `step + n` never overflows.
  public static let stepLimit = 1 << 53

  /// Why `steps` more steps from `start` are too many (past `stepLimit`), or nil.
  public static func tooManySteps(_ steps: Int, from start: Int) -> String? {
    steps > stepLimit - start ? "the session is at step \(start), and a session counts at most 2^53 (\(stepLimit)) steps; train fewer" : nil
  }

  /// A count the format keeps exact: a whole number from 0 to 2^53.
  static var countRule: Rule<Int> { Rule("a whole number from 0 to 2^53") { $0 >= 0 && $0 <= stepLimit } }

  /// A binary file's name in a spec (`state.tensors`, `history.metrics.file`): a plain name
  /// beside the spec, so a spec cannot point outside its folder nor at a save's kept copy.
  static var fileNameRule: Rule<String> {
    Rule("a plain file name ending in .safetensors, beside the spec file (no folder, no control characters)") {
      $0.hasSuffix(".safetensors") && !$0.contains("/") && $0.count > 12 && !$0.hasPrefix(".")
        && !$0.unicodeScalars.contains(where: TextExcerpt.isControl)
    }
  }

  /// A SHA-256 as the format writes it.
  static var sha256Rule: Rule<String> {
    Rule("64 lowercase hexadecimal digits (SHA-256)") { $0.count == 64 && $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
  }

  public init(step: Int, epoch: Int, tensors: String, sha256: String, epochOrderSeed: UInt64, index: Int, dropoutRNG: UInt64) {
    (self.step, self.epoch, self.tensors, self.sha256) = (step, epoch, tensors, sha256)
    (self.epochOrderSeed, self.index, self.dropoutRNG) = (epochOrderSeed, index, dropoutRNG)
  }

  public var json: JSONValue {
    .object([
      "step": .int(step), "epoch": .int(epoch), "tensors": .string(tensors), "sha256": .string(sha256),
      "position": .object(["epoch_order_seed": .string(String(epochOrderSeed)), "index": .int(index)]),
      "rng": .object(["dropout": .string(String(dropoutRNG))]),
    ])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> StateSpec? {
    guard var r = ObjectReader(value, at: path, log: log, what: "an object or null") else { return nil }
    defer { r.finish() }
    var state = StateSpec(step: 0, epoch: 0, tensors: "", sha256: "", epochOrderSeed: 0, index: 0, dropoutRNG: 0)
    state.step = r.integer("step", countRule)
    state.epoch = r.integer("epoch", countRule)
    state.tensors = r.string("tensors", fileNameRule)
    state.sha256 = r.string("sha256", sha256Rule)
    if let raw = r.required("position"), var p = ObjectReader(raw, at: path + "position", log: log) {
      state.epochOrderSeed = p.decimalUInt64("epoch_order_seed")
      state.index = p.integer("index", .nonNegative)
      p.finish()
    }
    if let raw = r.required("rng"), var g = ObjectReader(raw, at: path + "rng", log: log) {
      state.dropoutRNG = g.decimalUInt64("dropout")
      g.finish()
    }
    return state
  }
}
