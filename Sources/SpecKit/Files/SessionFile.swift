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

  /// Reads a session file and, when it has state, its tensors; checks the tensor file's SHA-256
  /// and every tensor name and shape against the spec.
  ///
  /// When the tensor file does not have the hash the spec names (a save was interrupted between
  /// its two renames), the copy that save kept, `.NAME.<first 16 hex digits>.safetensors`, is
  /// read instead if its hash is the one named; see `save`.
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
    let spec = try SessionSpec.decode(bytes, file: file, defaultName: name)
    guard let state = spec.state else { return SessionBundle(spec: spec) }
    let folder = PathText.folder(file)
    let tensorPath = PathText.join(folder, state.tensors)
    var tensorBytes: [UInt8]
    var readFrom = tensorPath
    do { tensorBytes = try FileAccess.read(tensorPath) } catch {
      guard let kept = keptCopy(folder: folder, tensors: state.tensors, sha256: state.sha256) else { throw error }
      (tensorBytes, readFrom) = kept
    }
    var digest = sha256Hex(tensorBytes)
    if digest != state.sha256, let kept = keptCopy(folder: folder, tensors: state.tensors, sha256: state.sha256) {
      (tensorBytes, readFrom) = kept
      digest = state.sha256
    }
    guard digest == state.sha256 else {
      throw .stateMismatch(
        path: file,
        problems: [
          "\(state.tensors) has SHA-256 \(digest), but state.sha256 says \(state.sha256): the tensor file was changed or belongs to another save; restore the pair or remove \"state\" to start from the initializers"
        ])
    }
    let contents: SafeTensors.Contents
    do { contents = try SafeTensors.decode(tensorBytes) } catch { throw .safetensors(path: readFrom, error) }
    var problems = spec.stateProblems(contents.tensors)
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

  /// The most bytes a spec file may have: 64 MiB (a spec holds no weights; version 1's
  /// histories are its only long part).
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
  /// The spec names its tensor file's SHA-256, so a spec and a tensor file that do not belong
  /// together are always detected. The pair is replaced in this order, under an exclusive lock
  /// on the folder (so two saves to one folder, from any processes, take turns):
  ///
  /// 1. both new files are written and flushed under temporary names;
  /// 2. the current tensor file is hard-linked as `.NAME.<hash16>.safetensors`, named by the
  ///    hash the current spec expects (no data is copied);
  /// 3. the new tensor file is renamed over `NAME.safetensors`;
  /// 4. the new spec is renamed over `NAME.json` — the moment the save takes effect;
  /// 5. the folder is flushed, and kept copies and temporary files of earlier saves are removed.
  ///
  /// Interrupted anywhere (a crash, a kill, a full disk), the folder holds either the old pair,
  /// or the old spec with the new tensors and the old tensors' kept copy (which `load` reads),
  /// or the new pair. A failure before step 4 puts the old tensor file back and says so.
  ///
  /// - Parameters:
  ///   - bundle: the spec and its tensors; `spec.state` must be set when tensors are given
  ///     (its file name and hash are filled in here).
  ///   - path: where to write; `.json` is added when missing.
  /// - Returns: the spec as written (with the state's file name and hash).
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
    guard let tensors = bundle.tensors else {
      spec.state = nil
      try AtomicFile.write(Array(spec.canonicalText.utf8), to: jsonPath)
      return spec
    }
    // The tensors go beside the spec that names them: through a link to a spec, beside its target.
    let tensorPath =
      jsonPath == requestedJSON
      ? requestedTensors : PathText.deletingExtension(jsonPath) + ".safetensors"
    let tensorTarget = try FileAccess.writableTarget(tensorPath, what: "a session's tensors")
    guard PathText.folder(tensorTarget) == folder else {
      throw .unwritable(path: tensorPath, reason: "it is a symbolic link out of the spec's folder; the tensors must sit beside the spec")
    }
    let problems = spec.stateProblems(tensors)
    guard problems.isEmpty else { throw .stateMismatch(path: jsonPath, problems: problems) }
    var state = spec.state ?? spec.initialStateRecord()
    let metadata = [SessionBundle.optimizerStepsKey: String(bundle.optimizerSteps ?? state.step)]
    let tensorBytes = SafeTensors.encode(SafeTensors.Contents(tensors: tensors, metadata: metadata))
    let tensorName = PathText.lastComponent(tensorTarget)
    state.tensors = tensorName
    state.sha256 = sha256Hex(tensorBytes)
    spec.state = state
    let stagedTensors = try AtomicFile.stage(tensorBytes, for: tensorTarget)
    let stagedSpec: AtomicFile.Staged
    do { stagedSpec = try AtomicFile.stage(Array(spec.canonicalText.utf8), for: jsonPath) } catch {
      stagedTensors.discard()
      throw error
    }
    // Keep the current tensor file under the name `load` looks for when the spec beside it
    // still expects it.
    var kept: String?
    if let expected = currentExpectation(jsonPath: jsonPath, tensorName: tensorName), FileAccess.kind(of: tensorTarget) == .regular {
      let keep = PathText.join(folder, keptName(tensors: tensorName, sha256: expected))
      if link(tensorTarget, keep) == 0 || errno == EEXIST {
        kept = keep
      } else {
        let reason = String(cString: strerror(errno))
        stagedTensors.discard()
        stagedSpec.discard()
        throw .unwritable(path: keep, reason: "cannot keep the current tensor file while the pair is replaced (\(reason))")
      }
    }
    do { try stagedTensors.commit() } catch {
      stagedSpec.discard()
      throw error
    }
    do { try stagedSpec.commit() } catch {
      // The old spec is still in place: put its tensors back under their name.
      if let keep = kept {
        if rename(keep, tensorTarget) != 0 {
          throw .unwritable(
            path: jsonPath,
            reason:
              "\(error.reason ?? "the rename failed"); \(jsonPath) still holds the previous session, and its tensors are kept as \(PathText.lastComponent(keep)), where load finds them"
          )
        }
      } else {
        AtomicFile.remove(tensorTarget)
      }
      throw error
    }
    AtomicFile.syncFolder(PathText.folderOrCurrent(jsonPath))
    removeLeftovers(folder: PathText.folderOrCurrent(jsonPath), tensorName: tensorName, jsonName: PathText.lastComponent(jsonPath))
    return spec
  }

  /// The SHA-256 the spec now at `jsonPath` expects of `tensorName`, when it names that file.
  static func currentExpectation(jsonPath: String, tensorName: String) -> String? {
    guard FileAccess.kind(of: jsonPath) == .regular, let bytes = try? FileAccess.read(jsonPath, limit: specReadLimit),
      let spec = try? SessionSpec.decode(bytes, file: jsonPath, defaultName: "session"), let state = spec.state,
      state.tensors == tensorName
    else { return nil }
    return state.sha256
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
