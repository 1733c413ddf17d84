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
    return (base + ".json", base + ".safetensors", (base as NSString).lastPathComponent)
  }

  /// Reads a session file and, when it has state, its tensors; checks the tensor file's SHA-256
  /// and every tensor name and shape against the spec.
  ///
  /// - Parameter path: the `.json` file; a path without the extension finds `PATH.json` too.
  /// - Throws: `SpecError` saying what is wrong and where; nothing is partially loaded.
  public static func load(_ path: String) throws(SpecError) -> SessionBundle {
    var file = path
    if !FileManager.default.fileExists(atPath: file), !file.hasSuffix(".json"), FileManager.default.fileExists(atPath: file + ".json") {
      file += ".json"
    }
    let bytes = try readBytes(file)
    let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
    let spec = try SessionSpec.decode(bytes, file: file, defaultName: name)
    guard let state = spec.state else { return SessionBundle(spec: spec) }
    let tensorPath = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(state.tensors)
    let tensorBytes = try readBytes(tensorPath)
    let digest = sha256Hex(tensorBytes)
    guard digest == state.sha256 else {
      throw .stateMismatch(
        path: file,
        problems: [
          "\(state.tensors) has SHA-256 \(digest), but state.sha256 says \(state.sha256): the tensor file was changed or belongs to another save; restore the pair or remove \"state\" to start from the initializers"
        ])
    }
    let contents: SafeTensors.Contents
    do { contents = try SafeTensors.decode(tensorBytes) } catch { throw .safetensors(path: tensorPath, error) }
    var problems = spec.stateProblems(contents.tensors)
    var optimizerSteps: Int?
    if let text = contents.metadata[SessionBundle.optimizerStepsKey] {
      if let value = Int(text), value >= 0, value <= state.step {
        optimizerSteps = value
      } else {
        problems.append(
          "the metadata \(SessionBundle.optimizerStepsKey) must be a whole number from 0 to state.step (\(state.step)), got \"\(text)\"")
      }
    }
    guard problems.isEmpty else { throw .stateMismatch(path: file, problems: problems) }
    return SessionBundle(spec: spec, tensors: contents.tensors, optimizerSteps: optimizerSteps)
  }

  /// Writes a session atomically, creating missing folders.
  ///
  /// With tensors, both files are staged (written and flushed under temporary names) before
  /// either is renamed into place, and `state.tensors` and `state.sha256` are set to match; a
  /// failure at any point leaves the previous files as they were.
  ///
  /// - Parameters:
  ///   - bundle: the spec and its tensors; `spec.state` must be set when tensors are given
  ///     (its file name and hash are filled in here).
  ///   - path: where to write; `.json` is added when missing.
  /// - Returns: the spec as written (with the state's file name and hash).
  @discardableResult
  public static func save(_ bundle: SessionBundle, to path: String) throws(SpecError) -> SessionSpec {
    let (jsonPath, tensorPath, _) = paths(for: path)
    var spec = bundle.spec
    let folder = (jsonPath as NSString).deletingLastPathComponent
    if !folder.isEmpty {
      do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
        throw .unwritable(path: folder, reason: "cannot create the folder (\(error.localizedDescription))")
      }
    }
    guard let tensors = bundle.tensors else {
      spec.state = nil
      try AtomicFile.write(Array(spec.canonicalText.utf8), to: jsonPath)
      return spec
    }
    let problems = spec.stateProblems(tensors)
    guard problems.isEmpty else { throw .stateMismatch(path: jsonPath, problems: problems) }
    var state = spec.state ?? spec.initialStateRecord()
    let metadata = [SessionBundle.optimizerStepsKey: String(bundle.optimizerSteps ?? state.step)]
    let tensorBytes = SafeTensors.encode(SafeTensors.Contents(tensors: tensors, metadata: metadata))
    state.tensors = (tensorPath as NSString).lastPathComponent
    state.sha256 = sha256Hex(tensorBytes)
    spec.state = state
    let stagedTensors = try AtomicFile.stage(tensorBytes, for: tensorPath)
    let stagedSpec: AtomicFile.Staged
    do { stagedSpec = try AtomicFile.stage(Array(spec.canonicalText.utf8), for: jsonPath) } catch {
      stagedTensors.discard()
      throw error
    }
    // Keep the previous tensor file under a second name until the spec is in place, so that a
    // failed rename of the spec puts it back and the old pair stays consistent.
    let backup = AtomicFile.keepCopy(of: tensorPath)
    defer { backup.map(AtomicFile.remove) }
    do { try stagedTensors.commit() } catch {
      stagedSpec.discard()
      throw error
    }
    do { try stagedSpec.commit() } catch {
      if let backup { AtomicFile.restore(backup, to: tensorPath) } else { AtomicFile.remove(tensorPath) }
      throw error
    }
    return spec
  }

  /// Lowercase hex SHA-256 of `bytes`.
  public static func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
  }

  static func readBytes(_ path: String) throws(SpecError) -> [UInt8] {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      let reason = FileManager.default.fileExists(atPath: path) ? "permission denied or not a regular file" : "no such file"
      throw .unreadable(path: path, reason: reason)
    }
    defer { try? handle.close() }
    do { return Array(try handle.readToEnd() ?? Data()) } catch { throw .unreadable(path: path, reason: error.localizedDescription) }
  }
}
