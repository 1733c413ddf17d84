import Foundation
import SpecBenchTestSupport
import Synchronization
import Testing

@testable import SpecKit

#if canImport(Glibc)
  import Glibc
#endif

/// Files are hostile until proven otherwise: special files, degenerate paths, links, NULs,
/// sizes that overflow or cannot fit, values float32 cannot hold. Every file is made here.
@Suite("Hostile files")
struct HostileFileTests {
  /// A saved session (spec + tensors) in a fresh folder.
  func savedSession(in folder: String, name: String = "s", lr: Double = 0.01) throws -> (path: String, bundle: SessionBundle) {
    var spec = try SessionSpec.decode(Array(baseSessionText.utf8), file: nil, defaultName: "t")
    spec.optimizer = .adam(.init(lr: lr, weightDecay: 0))
    let bundle = SessionBundle(spec: spec, state: try spec.initialTrainingState())
    let path = folder + "/" + name
    try SessionFile.save(bundle, to: path)
    return (path + ".json", try SessionFile.load(path + ".json"))
  }

  // MARK: special files are refused at once

  // A FIFO with no writer, or /dev/zero read to its end, would block or fill memory: the time
  // limit fails that.
  @Test(.timeLimit(.minutes(1)), arguments: ["fifo", "folder", "/dev/zero", "/dev/null", "/dev/urandom"])
  func specialFilesAreRefusedWithoutReading(_ kind: String) throws {
    let folder = temporaryFolder()
    var path = kind
    if kind == "fifo" {
      path = folder + "/s.json"
      #expect(mkfifo(path, 0o600) == 0)
    } else if kind == "folder" {
      path = folder + "/s.json"
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    #expect {
      try SessionFile.load(path)
    } throws: { error in
      let text = (error as? SpecError)?.description ?? ""
      return text.contains("not a regular file") && text.contains(path)
    }
  }

  @Test func aFIFONamedAsTheTensorFileIsRefused() throws {
    let folder = temporaryFolder()
    let (json, _) = try savedSession(in: folder)
    let tensors = folder + "/s.safetensors"
    unlink(tensors)
    #expect(mkfifo(tensors, 0o600) == 0)
    #expect {
      try SessionFile.load(json)
    } throws: { ($0 as? SpecError)?.description.contains("FIFO") == true }
  }

  @Test func aFileLargerThanTheLimitIsRefusedBeforeItIsRead() throws {
    let folder = temporaryFolder()
    let path = folder + "/big.json"
    #expect(FileManager.default.createFile(atPath: path, contents: nil))
    #expect(truncate(path, SessionFile.specReadLimit + 1) == 0)  // sparse: no disk used
    #expect {
      try SessionFile.load(path)
    } throws: { ($0 as? SpecError)?.description.contains("more than the") == true }
  }

  @Test func aPathWithANULIsRefused() throws {
    #expect {
      try FileAccess.read("/tmp/x\0/etc/passwd")
    } throws: { ($0 as? SpecError)?.description.contains("NUL") == true }
    #expect(throws: SpecError.self) { try FileAccess.writableTarget("out\0.json", what: "a session") }
  }

  @Test(arguments: [
    "\"s\\u0000.safetensors\"", "\"../s.safetensors\"", "\"/etc/s.safetensors\"", "\"s\\u001b[2J.safetensors\"",
    "\".s.0123456789abcdef.safetensors\"",
  ])
  func stateTensorNamesArePlainFileNames(_ name: String) throws {
    let text = """
      {"format": "specbench/session", "version": 1, "name": "t",
       "model": {"input": [2], "layers": [{"type": "dense", "units": 3}]},
       "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "sgd", "lr": 0.1},
       "data": {"type": "spirals", "samples": 30, "classes": 3},
       "state": {"step": 1, "epoch": 0, "tensors": \(name), "sha256": "\(String(repeating: "0", count: 64))",
                 "position": {"epoch_order_seed": "1", "index": 0}, "rng": {"dropout": "1"}}}
      """
    #expect {
      try SessionSpec.decode(Array(text.utf8), file: "t.json", defaultName: "t")
    } throws: { error in
      (error as? SpecError)?.issues.contains { $0.path.description == "state.tensors" } == true
    }
  }

  // MARK: where saves may write

  @Test(arguments: ["", ".", "/", "some/folder/", "..", "/dev/null", "/dev/full"])
  func degenerateAndSpecialSaveTargetsAreRefused(_ target: String) throws {
    let folder = temporaryFolder()
    let (_, bundle) = try savedSession(in: folder)
    let before = try FileManager.default.contentsOfDirectory(atPath: "/dev").sorted()
    let cwd = FileManager.default.currentDirectoryPath
    #expect(throws: SpecError.self) { try SessionFile.save(bundle, to: target) }
    #expect(!FileManager.default.fileExists(atPath: cwd + "/.json"))
    #expect(!FileManager.default.fileExists(atPath: "/.json"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: "/dev").sorted() == before, "nothing created in /dev")
    #expect(FileAccess.kind(of: "/dev/null") == .characterDevice)
  }

  @Test func aSaveThroughASymbolicLinkWritesItsTargetAndKeepsTheLink() throws {
    let folder = temporaryFolder()
    let (_, bundle) = try savedSession(in: folder)
    let real = folder + "/real"
    try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: true)
    #expect(FileManager.default.createFile(atPath: real + "/x.json", contents: Data("{}".utf8)))
    #expect(symlink(real + "/x.json", folder + "/link.json") == 0)
    try SessionFile.save(bundle, to: folder + "/link.json")
    #expect(FileAccess.kind(of: folder + "/link.json") == .symbolicLink)
    #expect(try SessionFile.load(real + "/x.json").spec.state != nil)
    #expect(FileManager.default.fileExists(atPath: real + "/x.safetensors"), "the tensors go beside the spec they belong to")
  }

  @Test func aFolderWhereTheTensorFileGoesIsNotReplaced() throws {
    let folder = temporaryFolder()
    let (_, bundle) = try savedSession(in: folder)
    try FileManager.default.createDirectory(atPath: folder + "/t.safetensors", withIntermediateDirectories: true)
    #expect {
      try SessionFile.save(bundle, to: folder + "/t")
    } throws: { ($0 as? SpecError)?.description.contains("a folder") == true }
    #expect(FileAccess.kind(of: folder + "/t.safetensors") == .directory)
    #expect(!FileManager.default.fileExists(atPath: folder + "/t.json"))
  }

  // MARK: the pair is crash-consistent

  /// A save interrupted between its two renames leaves the old spec beside the new tensors and
  /// the old tensors' kept copy: load finds the copy by the hash the spec names.
  @Test func loadRecoversTheOldPairAfterASaveInterruptedBetweenItsRenames() throws {
    let folder = temporaryFolder()
    let (json, old) = try savedSession(in: folder)
    let oldTensors = try Data(contentsOf: URL(fileURLWithPath: folder + "/s.safetensors"))
    // What the interrupted save did: kept the old tensors, then renamed new ones into place.
    var newer = old
    newer.tensors!["param/dense1.bias"] = StoredTensor(shape: [8], repeating: 0.5)
    let newBytes = SafeTensors.encode(SafeTensors.Contents(tensors: newer.tensors!, metadata: [:]))
    let keep = folder + "/" + SessionFile.keptName(tensors: "s.safetensors", sha256: old.spec.state!.sha256)
    #expect(link(folder + "/s.safetensors", keep) == 0)
    try Data(newBytes).write(to: URL(fileURLWithPath: folder + "/s.safetensors.new"))
    #expect(rename(folder + "/s.safetensors.new", folder + "/s.safetensors") == 0)
    let loaded = try SessionFile.load(json)
    #expect(loaded.tensors == old.tensors)
    // The next save makes the pair whole again and removes the kept copy.
    try SessionFile.save(loaded, to: json)
    #expect(!FileManager.default.fileExists(atPath: keep))
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/s.safetensors")) == oldTensors)
  }

  @Test func concurrentSavesToOnePathLeaveAMatchingPair() throws {
    let folder = temporaryFolder()
    let (json, base) = try savedSession(in: folder)
    let bundles = (0..<8).map { i -> SessionBundle in
      var b = base
      b.tensors!["param/dense1.bias"] = StoredTensor(shape: [8], repeating: Float(i))
      return b
    }
    let saved = Mutex(0)
    DispatchQueue.concurrentPerform(iterations: bundles.count) { i in
      if (try? SessionFile.save(bundles[i], to: json)) != nil { saved.withLock { $0 += 1 } }
    }
    #expect(saved.withLock { $0 } == bundles.count, "every save takes its turn and succeeds")
    let loaded = try SessionFile.load(json)
    #expect(bundles.contains { $0.tensors == loaded.tensors }, "the pair on disk is one of the saves, whole")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }
    #expect(leftovers.isEmpty, "\(leftovers)")
  }

  // MARK: sizes

  @Test(arguments: [
    ("model.layers[0].units", JSONValue.int(Int.max - 7)),
    ("model.input[0]", JSONValue.int(Int.max / 2)),
  ])
  func sizesThatOverflowAreProblemsNotTraps(_ field: String, _ value: JSONValue) throws {
    let path = JSONPath(field)
    let text = JSONWriter.canonical(baseDocument().setting(path, to: value))
    #expect {
      try SessionSpec.decode(Array(text.utf8), file: "t.json", defaultName: "t")
    } throws: { error in
      (error as? SpecError)?.issues.contains { $0.message.contains("2^40") } == true
    }
  }

  @Test func aFlattenOfAHugeInputIsAProblem() throws {
    let document = baseDocument().setting("model.input", to: .array([.int(1 << 30), .int(1 << 30), .int(1 << 30)]))
      .setting("model.layers", to: .array([.object(["type": .string("flatten")]), .object(["type": .string("dense"), "units": .int(3)])]))
    #expect {
      try SessionSpec.decode(Array(JSONWriter.canonical(document).utf8), file: "t.json", defaultName: "t")
    } throws: { ($0 as? SpecError)?.issues.contains { $0.message.contains("2^40") } == true }
  }

  @Test(arguments: [
    ("model.layers[0].units", JSONValue.int(1_000_000_000), nil),
    ("data.samples", JSONValue.int(1_000_000_000_000), "data.samples"),
    ("training.batch_size", JSONValue.int(1 << 40), nil),
  ])
  func sessionsThatCannotFitInMemoryAreRefusedWithTheBytesAndTheLimit(_ field: String, _ value: JSONValue, _ reported: String?) throws {
    var document = baseDocument().setting(JSONPath(field), to: value)
    if field == "training.batch_size" {
      // A batch as large as the data: 2^40 samples of spirals.
      document = document.setting("data.samples", to: .int(1 << 40))
    }
    let text = JSONWriter.canonical(document)
    #expect {
      try SessionSpec.decode(Array(text.utf8), file: "t.json", defaultName: "t")
    } throws: { error in
      let issues = (error as? SpecError)?.issues ?? []
      return issues.contains { issue in
        issue.message.contains("of memory") && issue.message.contains("allowed") && (reported.map { issue.path.description == $0 } ?? true)
      }
    }
  }

  @Test func blobsWithAHundredMillionFeaturesAreRefused() throws {
    let document = baseDocument()
      .setting("data", to: .object(["type": .string("blobs"), "samples": .int(600), "centers": .int(3), "features": .int(100_000_000)]))
      .setting("model.input", to: .array([.int(100_000_000)]))
    #expect {
      try SessionSpec.decode(Array(JSONWriter.canonical(document).utf8), file: "t.json", defaultName: "t")
    } throws: { ($0 as? SpecError)?.issues.contains { $0.message.contains("of memory") } == true }
  }

  @Test func theMemoryLimitReadsSuffixes() {
    #expect(MemoryBudget.parse("512M") == 512 << 20)
    #expect(MemoryBudget.parse("8G") == 8 << 30)
    #expect(MemoryBudget.parse("4096") == 4096)
    #expect(MemoryBudget.parse("lots") == nil)
    #expect(MemoryBudget.parse("-1G") == nil)
  }

  @Test(arguments: [
    ("state.step", JSONValue.int(Int.max - 1)), ("state.epoch", JSONValue.int(Int.max)),
  ])
  func countsNear2To63AreRefused(_ field: String, _ value: JSONValue) throws {
    let folder = temporaryFolder()
    let (json, _) = try savedSession(in: folder)
    let document = try JSONParser.parse(String(decoding: FileManager.default.contents(atPath: json)!, as: UTF8.self))
    let text = JSONWriter.canonical(document.setting(JSONPath(field), to: value))
    #expect {
      try SessionSpec.decode(Array(text.utf8), file: "t.json", defaultName: "t")
    } throws: { ($0 as? SpecError)?.issues.contains { $0.path.description == field && $0.message.contains("2^53") } == true }
  }

  // MARK: values float32 cannot hold

  @Test(arguments: [
    ("model.layers[0].init", #"{"weight": {"type": "constant", "value": 1e39}}"#, "model.layers[0].init.weight.value"),
    ("model.layers[0].init", #"{"weight": {"type": "uniform", "low": -1e39, "high": 0}}"#, "model.layers[0].init.weight.low"),
    ("model.layers[0].init", #"{"weight": {"type": "normal", "std": 1e38}}"#, "model.layers[0].init.weight.std"),
    ("loss", #"{"type": "huber", "delta": 1e-50}"#, "loss.delta"),
  ])
  func numbersThatFloat32CannotHoldAreProblems(_ field: String, _ json: String, _ reported: String) throws {
    var document = baseDocument().setting(JSONPath(field), to: try JSONParser.parse(json))
    if field == "loss" { document = document.setting("data", to: try JSONParser.parse(#"{"type": "sine", "samples": 50}"#)) }
    if field == "loss" { document = document.setting("model.layers[1].units", to: .int(1)).setting("model.input", to: .array([.int(1)])) }
    #expect {
      try SessionSpec.decode(Array(JSONWriter.canonical(document).utf8), file: "t.json", defaultName: "t")
    } throws: { error in
      (error as? SpecError)?.issues.contains { $0.path.description == reported } == true
    }
  }

  // MARK: state values

  @Test(arguments: ["opt/dense1.weight/exp_avg_sq", "param/dense1.weight"])
  func aStateWithANegativeSquareOrANaNIsRefused(_ tensor: String) throws {
    let folder = temporaryFolder()
    let (json, bundle) = try savedSession(in: folder)
    var tensors = bundle.tensors!
    var values = tensors[tensor]!.scalars
    values[3] = tensor.hasPrefix("opt/") ? -1 : .nan
    tensors[tensor] = StoredTensor(shape: tensors[tensor]!.shape, scalars: values)
    // Written by another program: the spec's hash matches the hostile tensors.
    let bytes = SafeTensors.encode(SafeTensors.Contents(tensors: tensors, metadata: [:]))
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/s.safetensors"))
    var spec = bundle.spec
    spec.state!.sha256 = SessionFile.sha256Hex(bytes)
    try Data(spec.canonicalText.utf8).write(to: URL(fileURLWithPath: json))
    #expect {
      try SessionFile.load(json)
    } throws: { error in
      let text = (error as? SpecError)?.description ?? ""
      return text.contains(tensor) && text.contains("flat index 3")
    }
  }

  /// Foundation's NSString path methods trap on one-character relative paths on Linux; these
  /// are the cases SpecBench meets.
  @Test func pathTextSplitsPathsWithoutFoundation() {
    #expect(PathText.folder("y") == "" && PathText.lastComponent("y") == "y")
    #expect(PathText.folder("a/b/c.json") == "a/b" && PathText.lastComponent("a/b/c.json") == "c.json")
    #expect(PathText.folder("/c.json") == "/" && PathText.folder("a//b/") == "a")
    #expect(PathText.lastComponent("a/b/") == "b" && PathText.lastComponent("/") == "/")
    #expect(PathText.pathExtension("a.b/c") == "" && PathText.pathExtension(".hidden") == "" && PathText.pathExtension("x.tar.gz") == "gz")
    #expect(PathText.deletingExtension("a/b.c.json") == "a/b.c" && PathText.deletingExtension("y") == "y")
    #expect(PathText.join("", "x") == "x" && PathText.join("a/", "x") == "a/x" && PathText.join("a", "x") == "a/x")
    #expect(
      PathText.standardized("a/./b/../c") == "a/c" && PathText.standardized("/../x") == "/x" && PathText.standardized("../x") == "../x")
  }

  @Test func aFileWithThousandsOfProblemsListsTheFirstHundred() throws {
    let text = "{" + (0..<5000).map { "\"k\($0)\": \($0)" }.joined(separator: ", ") + "}"
    do {
      _ = try SessionSpec.decode(Array(text.utf8), file: "many.json", defaultName: "many")
      Issue.record("accepted")
    } catch {
      #expect(error.issues.count > 5000, "every problem is kept (for validate --json)")
      let lines = error.description.split(separator: "\n")
      #expect(lines.count == SpecError.shownProblems + 2)
      #expect(lines.last?.contains("more (validate --json lists every one)") == true)
    }
  }

  // MARK: messages

  @Test func messagesShowFileTextShortAndEscaped() {
    let secret = "root:$6$" + String(repeating: "x", count: 80) + ":19000:0:99999:7:::"
    let shown = TextExcerpt.quoted(secret)
    #expect(shown.count < 60)
    #expect(!shown.contains("19000"))
    #expect(TextExcerpt.escaped("a\u{1B}]0;owned\u{07}b") == "a\\u{1B}]0;owned\\u{7}b")
    #expect(!TextExcerpt.quoted("\u{9B}2J").unicodeScalars.contains { $0.value == 0x9B })
  }
}

/// L-BFGS's state (format version 4): hostile files of every kind its rules name, each refused
/// with the tensor and the rule, and the fields refused with their JSON path.
@Suite("Hostile L-BFGS files")
struct HostileLBFGSTests {
  /// An L-BFGS session with two history pairs, saved in a fresh folder; returns the folder, the
  /// spec and its state's tensors.
  func saved() throws -> (folder: String, spec: SessionSpec, tensors: [String: StoredTensor]) {
    var spec = try SessionSpec.decode(Array(baseSessionText.utf8), file: nil, defaultName: "t")
    spec.optimizer = .lbfgs(.init(historySize: 3))
    var tensors = try spec.initialTrainingState().tensors
    let p = 51  // 2·8 + 8 + 8·3 + 3
    tensors["opt/model/old_dirs"] = StoredTensor(shape: [2, p], scalars: (0..<2 * p).map { Float($0 % 7) - 3 })
    tensors["opt/model/old_stps"] = StoredTensor(shape: [2, p], scalars: (0..<2 * p).map { Float($0 % 5) - 2 })
    tensors["opt/model/ro"] = StoredTensor(shape: [2], scalars: [0.5, 0.25])
    tensors["opt/model/n_iter"] = StoredTensor(shape: [], integers: [20_000_001])
    tensors["opt/model/func_evals"] = StoredTensor(shape: [], integers: [25_000_003])
    let folder = temporaryFolder()
    var withState = spec
    withState.state = spec.initialStateRecord()
    _ = try SessionFile.save(SessionBundle(spec: withState, tensors: tensors), to: folder + "/s")
    return (folder, spec, tensors)
  }

  @Test func aSavedStateLoadsExactlyWithItsCountsAsI64() throws {
    let (folder, _, tensors) = try saved()
    let loaded = try SessionFile.load(folder + "/s.json")
    #expect(loaded.tensors == tensors)
    // Counts past float32's exact integers survive: the file holds them as I64.
    #expect(loaded.tensors?["opt/model/n_iter"]?.integers == [20_000_001])
    let bytes = try FileAccess.read(folder + "/s.safetensors")
    let header = String(decoding: bytes[8..<min(bytes.count, 4000)], as: UTF8.self)
    #expect(header.contains("\"opt/model/func_evals\": {\"dtype\": \"I64\""), "\(header)")
    #expect(header.contains("\"lbfgs_flat_layout\": \"dense1.weight:16,dense1.bias:8,dense2.weight:24,dense2.bias:3\""), "\(header)")
  }

  @Test(arguments: [
    ("k differs", "opt/model/ro", StoredTensor(shape: [1], scalars: [0.5]), "the L-BFGS history is inconsistent"),
    (
      "k > history_size", "opt/model/ro", StoredTensor(shape: [4], scalars: [1, 1, 1, 1]),
      "opt/model/ro has shape [4], but the model needs [k] with k ≤ 3"
    ),
    ("negative ro", "opt/model/ro", StoredTensor(shape: [2], scalars: [0.5, -1]), "opt/model/ro holds -1.0 at flat index 1"),
    ("zero H_diag", "opt/model/H_diag", StoredTensor(shape: [], scalars: [0]), "opt/model/H_diag is 0.0"),
    (
      "F32 count", "opt/model/n_iter", StoredTensor(shape: [], scalars: [3]),
      "opt/model/n_iter is F32, but it is an exact count stored as I64"
    ),
    ("I64 vector", "opt/model/d", StoredTensor(shape: [51], integers: Array(repeating: 1, count: 51)), "opt/model/d is I64"),
    ("negative count", "opt/model/func_evals", StoredTensor(shape: [], integers: [-2]), "opt/model/func_evals is -2"),
    (
      "wrong width", "opt/model/old_stps", StoredTensor(shape: [2, 50], repeating: 1),
      "opt/model/old_stps has shape [2, 50], but the model needs [k, 51]"
    ),
    ("NaN pair", "opt/model/old_dirs", StoredTensor(shape: [2, 51], repeating: .nan), "opt/model/old_dirs holds a non-finite value"),
  ])
  func aSpoiltStateIsRefusedNamingTheTensor(_ label: String, name: String, tensor: StoredTensor, message: String) throws {
    let (folder, spec, tensors) = try saved()
    var spoilt = tensors
    spoilt[name] = tensor
    let problems = spec.stateProblems(spoilt)
    #expect(problems.contains { $0.contains(message) }, "\(label): \(problems)")
    // Written as a file another program made (its hash right), loading refuses it too.
    let bytes = SafeTensors.encode(.init(tensors: spoilt))
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/s.safetensors"))
    let text = try String(contentsOfFile: folder + "/s.json", encoding: .utf8)
    let hash = SessionFile.sha256Hex(bytes)
    let old = try #require(text.range(of: "\"sha256\": \"[0-9a-f]{64}\"", options: .regularExpression))
    try text.replacingCharacters(in: old, with: "\"sha256\": \"\(hash)\"").write(
      toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    #expect(throws: SpecError.self) { try SessionFile.load(folder + "/s.json") }
  }

  /// A history that cannot fit is refused before anything is allocated, at the field to change.
  @Test func aHistoryThatCannotFitIsRefusedAtHistorySize() throws {
    var spec = try SessionSpec.decode(Array(baseSessionText.utf8), file: nil, defaultName: "t")
    spec.optimizer = .lbfgs(.init(historySize: Int(Int32.max)))
    let problems = spec.resourceProblems(limit: 1 << 30)
    #expect(problems.map(\.path.description) == ["optimizer.history_size"], "\(problems)")
    #expect(problems.first?.message.contains("a smaller history_size") == true)
    spec.optimizer = .lbfgs(.init(historySize: 100))
    #expect(spec.resourceProblems(limit: 1 << 30).isEmpty)
  }

  @Test func aStateFromAnotherFlatLayoutIsRefused() throws {
    let (folder, _, tensors) = try saved()
    let bytes = SafeTensors.encode(
      .init(tensors: tensors, metadata: ["lbfgs_flat_layout": "dense1.bias:8,dense1.weight:16,dense2.weight:24,dense2.bias:3"]))
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/s.safetensors"))
    let text = try String(contentsOfFile: folder + "/s.json", encoding: .utf8)
    let old = try #require(text.range(of: "\"sha256\": \"[0-9a-f]{64}\"", options: .regularExpression))
    try text.replacingCharacters(in: old, with: "\"sha256\": \"\(SessionFile.sha256Hex(bytes))\"").write(
      toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    do {
      _ = try SessionFile.load(folder + "/s.json")
      Issue.record("loaded a state of another layout")
    } catch {
      #expect(error.description.contains("lbfgs_flat_layout"), "\(error)")
    }
  }

  @Test(arguments: [
    ("history_size", JSONValue.int(0), "optimizer.history_size: must be an integer from 1 to 2147483647, got 0"),
    (
      "line_search", JSONValue.string("wolfe"),
      "optimizer.line_search: unknown line search (or null for none) \"wolfe\"; expected one of strong_wolfe"
    ),
    ("max_iter", JSONValue.double(2.5), "optimizer.max_iter: must be an integer from 1 to 2147483647"),
    ("max_eval", JSONValue.int(-1), "optimizer.max_eval: must be null (max_iter·5 div 4) or an integer from 1 to 2147483647, got -1"),
    ("tolerance_grad", JSONValue.double(-1), "optimizer.tolerance_grad: must be a number ≥ 0"),
    ("lr", JSONValue.int(0), "optimizer.lr: must be a number > 0"),
    ("momentum", JSONValue.double(0.9), "optimizer.momentum"),
  ])
  func badFieldsAreRefusedWithTheirJSONPath(_ field: String, value: JSONValue, message: String) throws {
    let document = baseDocument().setting("optimizer", to: .object(["type": .string("lbfgs"), field: value]))
    do {
      _ = try SessionSpec.decode(Array(JSONWriter.canonical(document).utf8), file: "t.json", defaultName: "t")
      Issue.record("accepted \(field) = \(value)")
    } catch {
      #expect(error.description.contains(message), "\(error)")
    }
  }
}
