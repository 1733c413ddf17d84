import Crypto
import Foundation

/// A session as it lives on disk: the spec and, once it has state, its tensors.
public struct SessionBundle: Hashable, Sendable {
  public var spec: SessionSpec
  /// The state tensors by their file names (`param/dense1.weight`, …); nil when `spec.state` is.
  public var tensors: [String: StoredTensor]?
  /// The optimizer's own update count, kept in the safetensors header's metadata
  /// (`optimizer_steps`); nil means "equal to `state.step`", as for files written elsewhere.
  public var optimizerSteps: Int?

  public init(spec: SessionSpec, tensors: [String: StoredTensor]? = nil, optimizerSteps: Int? = nil) {
    self.spec = spec
    self.tensors = tensors
    self.optimizerSteps = optimizerSteps
  }
}

/// Saving and loading session files: `NAME.json` and, with state, `NAME.safetensors` beside it.
public enum SessionFile {
  /// The `.json` and `.safetensors` paths of a session, from a path with or without `.json`.
  public static func paths(for path: String) -> (json: String, tensors: String, name: String) {
    let base = path.hasSuffix(".json") ? String(path.dropLast(5)) : path
    return (base + ".json", base + ".safetensors", PathText.lastComponent(base))
  }

  /// Reads a session file and, when it has state, its tensors, and when it recorded metrics,
  /// its metrics file; checks each binary file's SHA-256 and every tensor name and shape against
  /// the spec.
  ///
  /// When a binary file does not have the hash the spec names (a save was interrupted between
  /// its renames), the copy that save kept, `.BASE.<first 16 hex digits>.safetensors`, is read
  /// instead if its hash is the one named; see `save`.
  ///
  /// - Parameter path: the `.json` file; a path without the extension finds `PATH.json` too.
  /// - Throws: `SpecError` saying what is wrong and where; nothing is partially loaded.
  public static func load(_ path: String) throws(SpecError) -> SessionBundle {
    var file = path
    if FileAccess.kind(of: file) == nil, !file.hasSuffix(".json"), FileAccess.kind(of: file + ".json") != nil {
      file += ".json"
    }
    let bytes = try FileAccess.read(file, limit: specReadLimit)
    let name = PathText.deletingExtension(PathText.lastComponent(file))
    var spec = try SessionSpec.decode(bytes, file: file, defaultName: name)
    let folder = PathText.folder(file)
    if let record = spec.history.metrics {
      spec.history = try readMetrics(record, into: spec.history, folder: folder, specPath: file)
    }
    guard let state = spec.state else { return SessionBundle(spec: spec) }
    let contents = try readSafeTensors(
      state.tensors, sha256: state.sha256, folder: folder, specPath: file,
      mismatch:
        "the tensor file was changed or belongs to another save; restore the pair or remove \"state\" to start from the initializers",
      hashPath: "state.sha256", counts: true)
    var problems = spec.stateProblems(contents.tensors)
    if let text = contents.metadata[LBFGSState.layoutMetadataKey], let expected = spec.lbfgsLayoutText, text != expected {
      problems.append(
        "the metadata \(LBFGSState.layoutMetadataKey) says the L-BFGS state flattens the parameters as \(TextExcerpt.quoted(text, limit: 120)), but this model's flat layout is \(TextExcerpt.quoted(expected, limit: 120)); the state belongs to another model"
      )
    }
    var optimizerSteps: Int?
    if let text = contents.metadata[SessionBundle.optimizerStepsKey] {
      if let value = Int(text), value >= 0, value <= state.step {
        optimizerSteps = value
      } else {
        problems.append(
          "the metadata \(SessionBundle.optimizerStepsKey) must be a whole number from 0 to state.step (\(state.step)), got \(TextExcerpt.quoted(text))"
        )
      }
    }
    guard problems.isEmpty else { throw .stateMismatch(path: file, problems: problems) }
    return SessionBundle(spec: spec, tensors: contents.tensors, optimizerSteps: optimizerSteps)
  }

  /// The bytes of the binary file `name` beside the spec with the hash `sha256` — the file in
  /// place, or a save's kept copy of it — and the path they were read from.
  static func readBinary(
    _ name: String, sha256: String, folder: String, specPath: String, mismatch: String, hashPath: String
  ) throws(SpecError) -> (bytes: [UInt8], path: String) {
    let path = PathText.join(folder, name)
    var found: (bytes: [UInt8], path: String)
    do { found = (try FileAccess.read(path), path) } catch {
      guard let kept = keptCopy(folder: folder, tensors: name, sha256: sha256) else { throw error }
      return kept
    }
    let digest = sha256Hex(found.bytes)
    if digest == sha256 { return found }
    if let kept = keptCopy(folder: folder, tensors: name, sha256: sha256) { return kept }
    throw .stateMismatch(path: specPath, problems: ["\(name) has SHA-256 \(digest), but \(hashPath) says \(sha256): \(mismatch)"])
  }

  /// The decoded safetensors file `name` with the hash `sha256` (see `readBinary`).
  static func readSafeTensors(
    _ name: String, sha256: String, folder: String, specPath: String, mismatch: String, hashPath: String, integers: Bool = false,
    counts: Bool = false
  ) throws(SpecError) -> SafeTensors.Contents {
    let (bytes, readFrom) = try readBinary(name, sha256: sha256, folder: folder, specPath: specPath, mismatch: mismatch, hashPath: hashPath)
    do { return try SafeTensors.decode(bytes, integers: integers, counts: counts) } catch { throw .safetensors(path: readFrom, error) }
  }

  /// `history` with the points of the metrics file `record` names, checked against it.
  static func readMetrics(_ record: MetricsRecord, into history: HistorySpec, folder: String, specPath: String) throws(SpecError)
    -> HistorySpec
  {
    let limit = MemoryBudget.limit
    let (total, overflow) = record.totalPoints.multipliedReportingOverflow(by: MetricsFile.bytesPerPointRead)
    if overflow || total > limit {
      throw .historyMismatch(
        path: specPath,
        problems: [
          "history.metrics.points declares \(record.totalPoints) points, which need \(ByteCount.text(Double(total))) to read, more than the memory limit (\(ByteCount.text(Double(limit))), \(MemoryBudget.limitSource))"
        ])
    }
    let contents = try readSafeTensors(
      record.file, sha256: record.sha256, folder: folder, specPath: specPath,
      mismatch:
        "the metrics file was changed or belongs to another save; restore it, or set history.metrics to null to drop the recorded points",
      hashPath: "history.metrics.sha256", integers: true)
    switch MetricsFile.points(from: contents, declared: record) {
    case .success(let points):
      var history = history
      for (metric, list) in points { history[metric] = list }
      return history
    case .failure(let problems):
      throw .historyMismatch(path: specPath, problems: problems.messages.map { "\(record.file): \($0)" })
    }
  }

  /// The most bytes a spec file may have: 64 MiB (a spec holds no weights; version 1's
  /// histories, in the JSON, are the only long part a spec file ever had).
  public static let specReadLimit = 64 << 20

  /// The name of the copy of a tensor file that a save keeps while it replaces the pair:
  /// `.spirals.0123456789abcdef.safetensors` for `spirals.safetensors` with that hash.
  static func keptName(tensors: String, sha256: String) -> String {
    "." + PathText.deletingExtension(tensors) + "." + sha256.prefix(16) + ".safetensors"
  }

  /// The kept copy with exactly this hash, if there is one.
  static func keptCopy(folder: String, tensors: String, sha256: String) -> (bytes: [UInt8], path: String)? {
    let path = PathText.join(folder, keptName(tensors: tensors, sha256: sha256))
    guard let bytes = try? FileAccess.read(path), sha256Hex(bytes) == sha256 else { return nil }
    return (bytes, path)
  }

  /// Writes a session, creating missing folders; crash-consistent.
  ///
  /// The spec names each binary file's SHA-256 (the state's tensors, the history's metrics), so
  /// a spec and a binary file that do not belong together are always detected. The files are
  /// replaced in this order, under an exclusive lock on the folder (so two saves to one folder,
  /// from any processes, take turns):
  ///
  /// 1. every new file is written and flushed under a temporary name;
  /// 2. each binary file in place that the current spec names is hard-linked as
  ///    `.BASE.<hash16>.safetensors`, named by the hash the current spec expects (no data is
  ///    copied);
  /// 3. the new binary files are renamed over theirs;
  /// 4. the new spec is renamed over `NAME.json` — the moment the save takes effect;
  /// 5. the folder is flushed, and kept copies and temporary files of earlier saves are removed.
  ///
  /// Interrupted anywhere (a crash, a kill, a full disk), the folder holds either the old spec
  /// with its files, or the old spec with some new binary files and the kept copies of the old
  /// ones (which `load` reads), or the new spec with its files. A failure before step 4 puts the
  /// old binary files back and says so.
  ///
  /// - Parameters:
  ///   - bundle: the spec and its tensors; `spec.state` must be set when tensors are given
  ///     (its file name and hash are filled in here, as are `history.metrics`'s).
  ///   - path: where to write; `.json` is added when missing.
  /// - Returns: the spec as written (with the binary files' names and hashes).
  @discardableResult
  public static func save(_ bundle: SessionBundle, to path: String) throws(SpecError) -> SessionSpec {
    let (requestedJSON, requestedTensors, _) = paths(for: path)
    // `save /dev/full` must not write /dev/full.json, nor `save dir/` write dir/.json.
    if path != requestedJSON { _ = try FileAccess.writableTarget(path, what: "a session") }
    let jsonPath = try FileAccess.writableTarget(requestedJSON, what: "a session")
    var spec = bundle.spec
    let folder = PathText.folder(jsonPath)
    if !folder.isEmpty, FileAccess.resolvedKind(of: folder) == nil {
      do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
        throw .unwritable(path: folder, reason: "cannot create the folder (\(error.localizedDescription))")
      }
    }
    let lock = try FolderLock(PathText.folderOrCurrent(jsonPath))
    defer { lock.release() }
    // The binary files go beside the spec that names them: through a link to a spec, beside its target.
    let base = jsonPath == requestedJSON ? String(requestedTensors.dropLast(".safetensors".count)) : PathText.deletingExtension(jsonPath)
    var binaries: [(target: String, bytes: [UInt8])] = []
    func target(_ path: String, what: String) throws(SpecError) -> String {
      let resolved = try FileAccess.writableTarget(path, what: what)
      guard PathText.folder(resolved) == folder else {
        throw .unwritable(path: path, reason: "it is a symbolic link out of the spec's folder; \(what) must sit beside the spec")
      }
      try refuseForeignClaim(on: PathText.lastComponent(resolved), folder: PathText.folderOrCurrent(jsonPath), ownSpec: jsonPath)
      return resolved
    }
    if let tensors = bundle.tensors {
      let tensorTarget = try target(base + ".safetensors", what: "a session's tensors")
      let problems = spec.stateProblems(tensors)
      guard problems.isEmpty else { throw .stateMismatch(path: jsonPath, problems: problems) }
      var state = spec.state ?? spec.initialStateRecord()
      var metadata = [SessionBundle.optimizerStepsKey: String(bundle.optimizerSteps ?? state.step)]
      if let layout = spec.lbfgsLayoutText { metadata[LBFGSState.layoutMetadataKey] = layout }
      let bytes = SafeTensors.encode(SafeTensors.Contents(tensors: tensors, metadata: metadata))
      state.tensors = PathText.lastComponent(tensorTarget)
      state.sha256 = sha256Hex(bytes)
      spec.state = state
      binaries.append((tensorTarget, bytes))
    } else {
      spec.state = nil
    }
    if spec.history.hasPoints {
      let metricsTarget = try target(MetricsFile.name(forSpec: base), what: "a session's metrics")
      let bytes = SafeTensors.encode(MetricsFile.contents(of: spec.history))
      spec.history.metrics = MetricsRecord(
        file: PathText.lastComponent(metricsTarget), sha256: sha256Hex(bytes),
        points: Dictionary(uniqueKeysWithValues: Metric.allCases.map { ($0, spec.history[$0].count) }))
      binaries.append((metricsTarget, bytes))
    } else {
      spec.history.metrics = nil
    }
    guard !binaries.isEmpty else {
      try AtomicFile.write(Array(spec.canonicalText.utf8), to: jsonPath)
      return spec
    }
    try replace(binaries, spec: Array(spec.canonicalText.utf8), jsonPath: jsonPath, folder: folder)
    return spec
  }

  /// Steps 1–5 of `save`: stages every file, keeps the binary files the current spec names,
  /// renames the binaries and then the spec into place, and cleans up.
  static func replace(_ binaries: [(target: String, bytes: [UInt8])], spec: [UInt8], jsonPath: String, folder: String) throws(SpecError) {
    var staged: [AtomicFile.Staged] = []
    func discardAll() { for file in staged { file.discard() } }
    for binary in binaries {
      do { staged.append(try AtomicFile.stage(binary.bytes, for: binary.target)) } catch {
        discardAll()
        throw error
      }
    }
    let stagedSpec: AtomicFile.Staged
    do { stagedSpec = try AtomicFile.stage(spec, for: jsonPath) } catch {
      discardAll()
      throw error
    }
    // Keep each current binary file under the name `load` looks for while the spec beside it
    // still expects it. (The current spec is read once: a version-1 spec can be large.)
    let current = currentSpec(at: jsonPath)
    var kept: [String?] = []
    for binary in binaries {
      let name = PathText.lastComponent(binary.target)
      guard let expected = current.flatMap({ expectation(of: $0, fileName: name) }), FileAccess.kind(of: binary.target) == .regular else {
        kept.append(nil)
        continue
      }
      let keep = PathText.join(folder, keptName(tensors: name, sha256: expected))
      guard link(binary.target, keep) == 0 || errno == EEXIST else {
        let reason = String(cString: strerror(errno))
        discardAll()
        stagedSpec.discard()
        throw .unwritable(path: keep, reason: "cannot keep the current file \(name) while the session is replaced (\(reason))")
      }
      kept.append(keep)
    }
    // The old spec stays in place until the last rename: on any failure before it, put the
    // old binary files back under their names.
    func putBack(_ committed: Int, after error: SpecError) -> SpecError {
      var stranded: [String] = []
      for i in 0..<committed {
        if let keep = kept[i] {
          if rename(keep, binaries[i].target) != 0 { stranded.append(PathText.lastComponent(keep)) }
        } else {
          AtomicFile.remove(binaries[i].target)
        }
      }
      guard !stranded.isEmpty else { return error }
      return .unwritable(
        path: jsonPath,
        reason:
          "\(error.reason ?? "the rename failed"); \(jsonPath) still holds the previous session, and its files are kept as \(stranded.joined(separator: ", ")), where load finds them"
      )
    }
    for (i, file) in staged.enumerated() {
      do { try file.commit() } catch {
        for later in staged[(i + 1)...] { later.discard() }
        stagedSpec.discard()
        throw putBack(i, after: error)
      }
    }
    do { try stagedSpec.commit() } catch { throw putBack(staged.count, after: error) }
    AtomicFile.syncFolder(PathText.folderOrCurrent(jsonPath))
    for binary in binaries {
      removeLeftovers(
        folder: PathText.folderOrCurrent(jsonPath), tensorName: PathText.lastComponent(binary.target),
        jsonName: PathText.lastComponent(jsonPath))
    }
  }

  /// The SHA-256 `spec` expects of the binary file `fileName` (its state's tensors or its
  /// metrics), when it names that file.
  static func expectation(of spec: SessionSpec, fileName: String) -> String? {
    if let state = spec.state, state.tensors == fileName { return state.sha256 }
    if let metrics = spec.history.metrics, metrics.file == fileName { return metrics.sha256 }
    return nil
  }

  /// The spec now at `path`, if one is there and reads.
  static func currentSpec(at path: String) -> SessionSpec? {
    guard FileAccess.kind(of: path) == .regular, let bytes = try? FileAccess.read(path, limit: specReadLimit) else { return nil }
    return try? SessionSpec.decode(bytes, file: path, defaultName: "session")
  }

  /// Refuses to write `fileName` when another session's spec in the folder names it: session
  /// `a`'s metrics file `a.history.safetensors` is session `a.history`'s tensor file.
  static func refuseForeignClaim(on fileName: String, folder: String, ownSpec: String) throws(SpecError) {
    let stem = String(fileName.dropLast(".safetensors".count))
    var owners = [stem + ".json"]
    if stem.hasSuffix(".history") { owners.append(String(stem.dropLast(".history".count)) + ".json") }
    for owner in owners where owner != PathText.lastComponent(ownSpec) {
      let path = PathText.join(folder, owner)
      guard let other = currentSpec(at: path) else { continue }
      if other.state?.tensors == fileName || other.history.metrics?.file == fileName {
        throw .unwritable(
          path: PathText.join(folder, fileName),
          reason: "the session \(owner) in the same folder keeps its own data in that file; save this session under another name")
      }
    }
  }

  /// Removes the kept copies of `tensorName` and the temporary files of saves whose process has
  /// ended; the pair in place is consistent, so none of them is needed.
  static func removeLeftovers(folder: String, tensorName: String, jsonName: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
    let keptPrefix = "." + PathText.deletingExtension(tensorName) + "."
    for name in names {
      var remove = false
      if name.hasPrefix(keptPrefix), name.hasSuffix(".safetensors") {
        let middle = name.dropFirst(keptPrefix.count).dropLast(".safetensors".count)
        remove = middle.count == 16 && middle.allSatisfy(\.isHexDigit)
      } else if name.hasSuffix(".tmp"), name.hasPrefix("." + tensorName + ".") || name.hasPrefix("." + jsonName + ".") {
        // `.NAME.json.<pid>.<random>.tmp`: only when that process is gone.
        let parts = name.split(separator: ".")
        if parts.count >= 4, let pid = Int32(parts[parts.count - 3]), pid != getpid() {
          remove = kill(pid, 0) != 0 && errno == ESRCH
        }
      }
      if remove { unlink(PathText.join(folder, name)) }
    }
  }

  /// Lowercase hex SHA-256 of `bytes`.
  public static func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
  }

}
