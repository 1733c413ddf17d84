import Foundation
import SpecBenchTestSupport
import Testing

@testable import SpecKit

/// Format version 2's metrics file (`NAME.history.safetensors`) and the migration from version 1,
/// whose points were in the JSON (docs/spec-format.md, "history" and "Versions").
@Suite("History files (format version 2 on)")
struct HistoryFileTests {
  /// The spirals example with its initial state and `count` training-loss points (steps 1…count,
  /// values that use every kind of finite float32: tiny, subnormal, negative zero, huge) and a
  /// validation point every 100 steps.
  func bundle(points count: Int) throws -> SessionBundle {
    var spec = try SessionFile.load(repositoryPath("sessions/spirals.json")).spec
    spec.state = spec.initialStateRecord()
    let specials: [Float] = [0, -0.0, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, 1e-8, 2.5]
    spec.history.trainLoss = (0..<count).map { i in
      MetricPoint(step: i + 1, value: i < specials.count ? specials[i] : Float(1) / Float(i + 1))
    }
    spec.history.valLoss = stride(from: 100, through: count, by: 100).map { MetricPoint(step: $0, value: Float($0) / 7) }
    spec.history.events = [HistoryEvent(step: 3, kind: "backend", detail: "reference -> fast")]
    return SessionBundle(spec: spec, tensors: try spec.initialTensors())
  }

  /// The bit patterns of a history's points, so that -0.0 and 0.0 differ.
  func bits(_ points: [MetricPoint]) -> [[UInt64]] { points.map { [UInt64($0.step), UInt64($0.value.bitPattern)] } }

  @Test func aMillionPointsLiveInTheMetricsFileAndTheSpecStaysSmall() throws {
    let folder = temporaryFolder()
    let original = try bundle(points: 1_000_000)
    let written = try SessionFile.save(original, to: folder + "/long")
    let specBytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/long.json")).count
    #expect(specBytes < 64 * 1024, "the spec has \(specBytes) bytes")
    let text = try String(contentsOfFile: folder + "/long.json", encoding: .utf8)
    #expect(!text.contains("train_loss\": ["), "no points in the JSON")
    #expect(text.contains("\"version\": \(SessionSpec.currentVersion)"))
    let record = try #require(written.history.metrics)
    #expect(record.file == "long.history.safetensors")
    // Every metric is named, those without points with 0.
    var expected = Dictionary(uniqueKeysWithValues: Metric.allCases.map { ($0, 0) })
    (expected[.trainLoss], expected[.valLoss]) = (1_000_000, 10_000)
    #expect(record.points == expected)
    let metricsBytes = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/long.history.safetensors")))
    #expect(record.sha256 == SessionFile.sha256Hex(metricsBytes))
    // 12 bytes a point, plus the header (16 tensors).
    #expect(metricsBytes.count > 12 * 1_010_000 && metricsBytes.count < 12 * 1_010_000 + 2048)
    let loaded = try SessionFile.load(folder + "/long.json")
    #expect(bits(loaded.spec.history.trainLoss) == bits(original.spec.history.trainLoss))
    #expect(bits(loaded.spec.history.valLoss) == bits(original.spec.history.valLoss))
    #expect(loaded.spec.history.events == original.spec.history.events)
    #expect(loaded.spec == written)
    // Saving what was loaded gives the same bytes.
    try SessionFile.save(loaded, to: folder + "/long")
    #expect(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/long.history.safetensors"))) == metricsBytes)
  }

  @Test(.enabled(if: PythonPeer.isAvailable, "python3 with numpy and safetensors is not installed: skipped"))
  func pythonReadsTheMetricsFileWithTheDocumentedNamesAndDtypes() throws {
    let folder = temporaryFolder()
    var original = try bundle(points: 250)
    // Version 3's metrics beside the losses: the rates at the loss's steps, an accuracy at the
    // validation's.
    original.spec.history[.learningRate] = original.spec.history.trainLoss.map { MetricPoint(step: $0.step, value: 0.001) }
    original.spec.history[.valAccuracy] = original.spec.history.valLoss.map { MetricPoint(step: $0.step, value: 0.75) }
    try SessionFile.save(original, to: folder + "/p")
    let script = """
      import sys, json
      from safetensors.numpy import load_file
      f = load_file(sys.argv[1])
      out = {k: [str(v.dtype), list(v.shape)] for k, v in f.items()}
      out["steps"] = [int(s) for s in f["train_loss/step"][:3]] + [int(f["val_loss/step"][-1])]
      out["bits"] = [int(x) for x in f["train_loss/value"].view("uint32")[:7]]
      out["lr"] = float(f["lr/value"][0])
      out["val_accuracy"] = [int(f["val_accuracy/step"][-1]), float(f["val_accuracy/value"][-1])]
      print(json.dumps(out, sort_keys=True))
      """
    let result = try PythonPeer.run(script, [folder + "/p.history.safetensors"])
    #expect(result.status == 0, "\(result.stderr)")
    let expectedBits = original.spec.history.trainLoss.prefix(7).map { String($0.value.bitPattern) }.joined(separator: ", ")
    let counts: [Metric: Int] = [.trainLoss: 250, .learningRate: 250, .valLoss: 2, .valAccuracy: 2]
    let tensors = Metric.allCases.sorted { $0.rawValue < $1.rawValue }.map { metric in
      let n = counts[metric] ?? 0
      return "\"\(metric.rawValue)/step\": [\"int64\", [\(n)]], \"\(metric.rawValue)/value\": [\"float32\", [\(n)]]"
    }
    // json.dumps sorts "bits", "lr", "lr/step", …, "steps", "train_…", "val_accuracy", "val_accuracy/step", ….
    var members =
      tensors + [
        "\"bits\": [\(expectedBits)]", "\"steps\": [1, 2, 3, 200]", "\"lr\": \(Double(Float(0.001)))", "\"val_accuracy\": [200, 0.75]",
      ]
    members.sort { $0.split(separator: ":")[0] < $1.split(separator: ":")[0] }
    #expect(result.stdout.trimmingCharacters(in: .newlines) == "{" + members.joined(separator: ", ") + "}")
  }

  @Test func aVersion1FileWithALongHistoryLoadsWithItsPointsAndSavesAsTheCurrentVersion() throws {
    let folder = temporaryFolder()
    // 300,000 points: the 8 MB spec file of the issue that brought version 2.
    let original = try bundle(points: 300_000)
    let written = try SessionFile.save(original, to: folder + "/old")
    try FileManager.default.removeItem(atPath: folder + "/old.history.safetensors")
    let v1 = FormatVersion1.text(of: written)
    #expect(v1.utf8.count > 6_000_000 && v1.contains("\"version\": 1"))
    try v1.write(toFile: folder + "/old.json", atomically: true, encoding: .utf8)
    let loaded = try SessionFile.load(folder + "/old.json")
    #expect(bits(loaded.spec.history.trainLoss) == bits(original.spec.history.trainLoss))
    #expect(bits(loaded.spec.history.valLoss) == bits(original.spec.history.valLoss))
    #expect(loaded.spec.history.events == original.spec.history.events)
    #expect(loaded.spec.history.metrics == nil)
    #expect(loaded.tensors == original.tensors)
    // Saved, it is the current version: a small spec and a metrics file with the same points.
    try SessionFile.save(loaded, to: folder + "/old")
    let text = try String(contentsOfFile: folder + "/old.json", encoding: .utf8)
    #expect(text.contains("\"version\": \(SessionSpec.currentVersion)") && text.utf8.count < 64 * 1024)
    let again = try SessionFile.load(folder + "/old.json")
    #expect(bits(again.spec.history.trainLoss) == bits(original.spec.history.trainLoss))
    #expect(again.spec.state == written.state, "the state's file and hash are untouched by the migration")
  }

  @Test func aSessionWithAHistoryAndNoStateKeepsItsPoints() throws {
    let folder = temporaryFolder()
    var original = try bundle(points: 40)
    original.tensors = nil
    let written = try SessionFile.save(original, to: folder + "/h")
    #expect(written.state == nil && written.history.metrics?.file == "h.history.safetensors")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["h.history.safetensors", "h.json"])
    #expect(try SessionFile.load(folder + "/h.json").spec.history.trainLoss == original.spec.history.trainLoss)
  }

  @Test func aSessionWithoutPointsHasNoMetricsFile() throws {
    let folder = temporaryFolder()
    var original = try bundle(points: 0)
    original.spec.history.valLoss = []
    let written = try SessionFile.save(original, to: folder + "/e")
    #expect(written.history.metrics == nil)
    #expect(try String(contentsOfFile: folder + "/e.json", encoding: .utf8).contains("\"metrics\": null"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["e.json", "e.safetensors"])
  }

  // MARK: hostile metrics files

  /// Saves a session with 30 points, rewrites its metrics file with `contents` (and the spec's
  /// counts with `points`, its hash with the new file's), and returns the load's error.
  func loadWithMetrics(_ contents: SafeTensors.Contents, points: [Metric: Int]? = nil) throws -> SpecError? {
    let folder = temporaryFolder()
    var spec = try SessionFile.save(try bundle(points: 30), to: folder + "/s")
    let bytes = SafeTensors.encode(contents)
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/s.history.safetensors"))
    spec.history.metrics?.sha256 = SessionFile.sha256Hex(bytes)
    if let points { spec.history.metrics?.points = points }
    spec.history.trainLoss = []
    spec.history.valLoss = []
    try spec.canonicalText.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    return loadError(folder + "/s.json")
  }

  /// The metrics file of `bundle(points: 30)`, to spoil one way at a time.
  func goodContents() throws -> SafeTensors.Contents { MetricsFile.contents(of: try bundle(points: 30).spec.history) }

  @Test func theUntouchedContentsLoad() throws {
    #expect(try loadWithMetrics(try goodContents()) == nil)
  }

  @Test(arguments: [
    ("float steps", "train_loss/step must have dtype I64, not F32"),
    ("integer values", "val_loss/value must have dtype F32, not I64"),
    ("missing", "missing tensor val_loss/step (I64, shape [0])"),
    ("extra", "unexpected tensor \"accuracy/step\""),
    ("decreasing", "train_loss/step[5] is 2, after 5; steps must not decrease"),
    ("negative", "train_loss/step[0] is -1; steps are whole numbers from 0 to 2^53"),
    ("beyond 2^53", "train_loss/step[29] is 9007199254740993; steps are whole numbers from 0 to 2^53"),
    ("nan", "train_loss/value[4] is nan; values must be finite"),
    ("infinite", "val_loss/value[0] is -inf; values must be finite"),
    ("shape", "train_loss/value has shape [3, 10], but history.metrics.points.train_loss says 30: it must be [30]"),
  ])
  func aSpoiltMetricsFileIsRefusedSayingWhatAndWhere(_ spoil: String, _ message: String) throws {
    var c = try goodContents()
    switch spoil {
    case "float steps":
      c.tensors["train_loss/step"] = StoredTensor(shape: [30], scalars: c.integers["train_loss/step"]!.values.map(Float.init))
      c.integers["train_loss/step"] = nil
    case "integer values":
      c.integers["val_loss/value"] = StoredIntegers(shape: [0], values: [])
      c.tensors["val_loss/value"] = nil
    case "missing": c.integers["val_loss/step"] = nil
    case "extra": c.integers["accuracy/step"] = StoredIntegers(shape: [1], values: [1])
    case "decreasing": c.integers["train_loss/step"]!.values[5] = 2
    case "negative": c.integers["train_loss/step"]!.values[0] = -1
    case "beyond 2^53": c.integers["train_loss/step"]!.values[29] = (1 << 53) + 1
    case "nan": c.tensors["train_loss/value"]!.scalars[4] = .nan
    case "infinite":
      c.integers["val_loss/step"] = StoredIntegers(shape: [1], values: [7])
      c.tensors["val_loss/value"] = StoredTensor(shape: [1], scalars: [-.infinity])
    case "shape": c.tensors["train_loss/value"]!.shape = [3, 10]
    default: Issue.record("unknown case \(spoil)")
    }
    let points: [Metric: Int]? = spoil == "infinite" ? [.trainLoss: 30, .valLoss: 1] : nil
    let error = try #require(try loadWithMetrics(c, points: points))
    guard case .historyMismatch(_, let problems) = error else {
      Issue.record("\(spoil): wrong error \(error)")
      return
    }
    #expect(problems.contains { $0.hasPrefix("s.history.safetensors: \(message)") }, "\(spoil): \(problems)")
    #expect(error.description.contains("the recorded metrics do not match the session"))
  }

  @Test func aMetricsFileOfAnotherDtypeIsRefusedWithAHint() throws {
    let folder = temporaryFolder()
    var spec = try SessionFile.save(try bundle(points: 5), to: folder + "/s")
    // A hand-made header with an F64 tensor.
    let header = #"{"train_loss/step":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 8)
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/s.history.safetensors"))
    spec.history.metrics?.sha256 = SessionFile.sha256Hex(bytes)
    try spec.canonicalText.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    #expect(throws: SpecError.self) { try SessionFile.load(folder + "/s.json") }
    do { _ = try SessionFile.load(folder + "/s.json") } catch {
      #expect(error.description.contains("s.history.safetensors: not a valid safetensors file"))
      #expect(error.description.contains("has dtype \"F64\"; SpecBench reads F32 tensors, and I64 only for a metrics file's steps"))
    }
  }

  @Test func aChangedMetricsFileIsRefusedByItsHashUnlessTheKeptCopyHasIt() throws {
    let folder = temporaryFolder()
    let spec = try SessionFile.save(try bundle(points: 30), to: folder + "/s")
    let path = folder + "/s.history.safetensors"
    let good = try Data(contentsOf: URL(fileURLWithPath: path))
    var changed = Array(good)
    changed[changed.count - 1] ^= 1
    try Data(changed).write(to: URL(fileURLWithPath: path))
    do {
      _ = try SessionFile.load(folder + "/s.json")
      Issue.record("expected a refusal")
    } catch {
      #expect(error.description.contains("s.history.safetensors has SHA-256"))
      #expect(error.description.contains("history.metrics.sha256 says"))
      #expect(error.description.contains("set history.metrics to null to drop the recorded points"))
    }
    // A save interrupted after renaming the metrics file left the old one as its kept copy.
    let hash = try #require(spec.history.metrics?.sha256)
    try good.write(to: URL(fileURLWithPath: folder + "/.s.history.\(hash.prefix(16)).safetensors"))
    #expect(try SessionFile.load(folder + "/s.json").spec.history.trainLoss.count == 30)
  }

  @Test func pointsBeyondTheMemoryLimitAreRefusedBeforeTheFileIsRead() throws {
    var document = json(try String(contentsOfFile: repositoryPath("Tests/SpecKitTests/Golden/complete.json"), encoding: .utf8))
    document = document.setting("history.metrics.points.train_loss", to: .int(1 << 53))
    document = document.setting("state", to: .null)
    let folder = temporaryFolder()
    // No metrics file exists: the refusal comes from the declared count alone.
    try JSONWriter.canonical(document).write(toFile: folder + "/big.json", atomically: true, encoding: .utf8)
    do {
      _ = try SessionFile.load(folder + "/big.json")
      Issue.record("expected a refusal")
    } catch {
      #expect(error.description.contains("history.metrics.points declares 9007199254740993 points"), "\(error)")
      #expect(error.description.contains("more than the memory limit"))
    }
  }

  @Test(arguments: [
    ("../outside.safetensors", "must be a plain file name ending in .safetensors"),
    (".s.history.0123456789abcdef.safetensors", "must be a plain file name ending in .safetensors"),
    ("history.json", "must be a plain file name ending in .safetensors"),
    ("t.safetensors", "must not be the state's tensor file (\"t.safetensors\")"),
  ])
  func aMetricsFileNameMustStayBesideTheSpecAndApartFromTheState(_ name: String, _ message: String) throws {
    var document = json(try String(contentsOfFile: repositoryPath("Tests/SpecKitTests/Golden/complete.json"), encoding: .utf8))
    document = document.setting("history.metrics.file", to: .string(name)).setting("state.tensors", to: .string("t.safetensors"))
    let found = issues(of: document)
    #expect(found.contains { $0.path.description == "history.metrics.file" && $0.message.contains(message) }, "\(found)")
  }

  @Test func eachVersionKeepsItsOwnHistoryKeys() throws {
    // Version 2 has no points in the JSON; version 1 has no metrics reference.
    let v2 = baseDocument().setting("version", to: .int(2)).setting("history", to: json(#"{"train_loss": [[1, 0.5]]}"#))
    #expect(issues(of: v2).contains { $0.path.description == "history.train_loss" && $0.message.contains("unknown key") })
    let v1 = baseDocument().setting("history", to: json(#"{"metrics": null}"#))
    #expect(issues(of: v1).contains { $0.path.description == "history.metrics" && $0.message.contains("unknown key") })
    let points = json(#"{"file": "t.history.safetensors", "sha256": "\#(String(repeating: "0", count: 64))", "points": {"train_loss": 1}}"#)
    let missing = issues(
      of: baseDocument().setting("version", to: .int(2)).setting("history", to: json("{}")).setting("history.metrics", to: points))
    #expect(missing.contains { $0.path.description == "history.metrics.points.val_loss" && $0.message.contains("missing") }, "\(missing)")
  }

  @Test(.timeLimit(.minutes(1)))
  func aFifoInPlaceOfTheMetricsFileIsRefusedAtOnce() throws {
    let folder = temporaryFolder()
    try SessionFile.save(try bundle(points: 3), to: folder + "/s")
    try FileManager.default.removeItem(atPath: folder + "/s.history.safetensors")
    #expect(mkfifo(folder + "/s.history.safetensors", 0o600) == 0)
    do {
      _ = try SessionFile.load(folder + "/s.json")
      Issue.record("expected a refusal")
    } catch {
      #expect(error.description.contains("s.history.safetensors"), "\(error)")
      #expect(error.description.contains("FIFO"), "\(error)")
    }
  }

  @Test func aMissingMetricsFileIsNamed() throws {
    let folder = temporaryFolder()
    try SessionFile.save(try bundle(points: 3), to: folder + "/s")
    try FileManager.default.removeItem(atPath: folder + "/s.history.safetensors")
    #expect(loadRefusal(folder + "/s.json")?.description == "cannot read \(folder)/s.history.safetensors: no such file")
  }

  @Test func aSaveNeverWritesOverAFileAnotherSessionNames() throws {
    let folder = temporaryFolder()
    // Session "a.history" keeps its state in a.history.safetensors, the name session "a"'s
    // metrics would take.
    try SessionFile.save(try bundle(points: 0), to: folder + "/a.history")
    let theirs = try Data(contentsOf: URL(fileURLWithPath: folder + "/a.history.safetensors"))
    do {
      try SessionFile.save(try bundle(points: 10), to: folder + "/a")
      Issue.record("expected a refusal")
    } catch {
      #expect("\(error)".contains("the session a.history.json in the same folder keeps its own data in that file"), "\(error)")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/a.history.safetensors")) == theirs)
    #expect(try SessionFile.load(folder + "/a.history.json").tensors != nil)
    #expect(FileManager.default.fileExists(atPath: folder + "/a.json") == false)
    // And the other way round: "a" saved first, then "a.history" would take a's metrics file.
    let other = temporaryFolder()
    try SessionFile.save(try bundle(points: 10), to: other + "/a")
    #expect(throws: SpecError.self) { try SessionFile.save(try bundle(points: 0), to: other + "/a.history") }
    #expect(try SessionFile.load(other + "/a.json").spec.history.trainLoss.count == 10)
  }

  // MARK: version 2

  /// Writes `bundle` as format version 2 wrote it: `version` 2, `points` with exactly the two
  /// losses, and a metrics file with only their tensors. Returns the spec's path.
  func writeVersion2(_ bundle: SessionBundle, to folder: String) throws -> String {
    let saved = try SessionFile.save(bundle, to: folder + "/v2")
    var contents = MetricsFile.contents(of: bundle.spec.history)
    for metric in Metric.allCases where !Metric.version2.contains(metric) {
      (contents.integers[metric.stepTensor], contents.tensors[metric.valueTensor]) = (nil, nil)
    }
    let bytes = SafeTensors.encode(contents)
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/v2.history.safetensors"))
    var spec = saved
    spec.history.metrics = MetricsRecord(
      file: "v2.history.safetensors", sha256: SessionFile.sha256Hex(bytes),
      points: [.trainLoss: bundle.spec.history.trainLoss.count, .valLoss: bundle.spec.history.valLoss.count])
    spec.history.trainLoss = []
    spec.history.valLoss = []
    let text = spec.canonicalText.replacingOccurrences(of: "\"version\": \(SessionSpec.currentVersion)", with: "\"version\": 2")
    #expect(text.contains("\"version\": 2") && !text.contains("\"train_accuracy\""))
    try text.write(toFile: folder + "/v2.json", atomically: true, encoding: .utf8)
    return folder + "/v2.json"
  }

  /// A version-2 session (the two losses only) loads as it is and is saved as version 3 with
  /// every metric named, the losses exact and the state untouched.
  @Test func aVersion2FileLoadsAndSavesAsVersion3() throws {
    let folder = temporaryFolder()
    let original = try bundle(points: 500)
    let path = try writeVersion2(original, to: folder)
    let loaded = try SessionFile.load(path)
    #expect(bits(loaded.spec.history.trainLoss) == bits(original.spec.history.trainLoss))
    #expect(bits(loaded.spec.history.valLoss) == bits(original.spec.history.valLoss))
    #expect(loaded.spec.history[.learningRate].isEmpty && loaded.tensors == original.tensors)
    #expect(loaded.spec.history.metrics?.points == [.trainLoss: 500, .valLoss: 5])
    let resaved = try SessionFile.save(loaded, to: folder + "/v3")
    let text = try String(contentsOfFile: folder + "/v3.json", encoding: .utf8)
    #expect(
      text.contains("\"version\": \(SessionSpec.currentVersion)") && text.contains("\"val_r2\": 0") && text.contains("\"train_mae\": 0"))
    #expect(resaved.history.metrics?.points.count == Metric.allCases.count)
    #expect(try SessionFile.load(folder + "/v3.json").spec.history.trainLoss == loaded.spec.history.trainLoss)
  }

  /// Version 2 names exactly the two losses: a metric of version 3 in a version-2 file is an
  /// unknown key, and so is a misspelt metric in version 3 (with a suggestion).
  @Test func metricNamesFollowTheFilesVersion() throws {
    let folder = temporaryFolder()
    let path = try writeVersion2(try bundle(points: 20), to: folder)
    let v2 = try String(contentsOfFile: path, encoding: .utf8)
    let withRate = v2.replacingOccurrences(of: "\"train_loss\": 20", with: "\"lr\": 0,\n      \"train_loss\": 20")
    #expect(withRate != v2)
    try withRate.write(toFile: folder + "/r.json", atomically: true, encoding: .utf8)
    let refusal = try #require(loadRefusal(folder + "/r.json"))
    #expect(refusal.description.contains("history.metrics.points.lr: unknown key; expected one of train_loss, val_loss"), "\(refusal)")
    // Version 3, "val_acuracy".
    try SessionFile.save(try bundle(points: 20), to: folder + "/t")
    let v3 = try String(contentsOfFile: folder + "/t.json", encoding: .utf8)
    let misspelt = v3.replacingOccurrences(of: "\"val_accuracy\"", with: "\"val_acuracy\"")
    #expect(misspelt != v3)
    try misspelt.write(toFile: folder + "/t.json", atomically: true, encoding: .utf8)
    let unknown = try #require(loadRefusal(folder + "/t.json"))
    #expect(unknown.description.contains("history.metrics.points.val_acuracy: unknown key"), "\(unknown)")
    #expect(unknown.description.contains("did you mean \"val_accuracy\"?"), "\(unknown)")
  }

  /// A version-3 file may name only some metrics; the file then holds just their tensors, and
  /// a tensor of a metric it does not name is refused.
  @Test func aVersion3FileNamesTheMetricsItHolds() throws {
    // (30 points of train_loss, none of val_loss or val_accuracy.)
    var contents = MetricsFile.contents(of: try bundle(points: 30).spec.history)
    for metric in [Metric.learningRate, .trainAccuracy, .trainMAE, .valMAE, .valR2] {
      (contents.integers[metric.stepTensor], contents.tensors[metric.valueTensor]) = (nil, nil)
    }
    let declared: [Metric: Int] = [.trainLoss: 30, .valLoss: 0, .valAccuracy: 0]
    let matching = contents
    #expect(try loadWithMetrics(matching, points: declared) == nil)
    // Not named, but in the file: refused.
    let error = try #require(try loadWithMetrics(matching, points: [.trainLoss: 30, .valLoss: 0]))
    #expect("\(error)".contains("unexpected tensor \"val_accuracy/step\""), "\(error)")
  }
}
