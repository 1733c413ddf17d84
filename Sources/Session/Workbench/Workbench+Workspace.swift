import Backends
import Foundation
import SpecKit

extension Workbench {
  /// A workbench on a session file (one run), a workspace folder (or its `workspace.json`: every
  /// run it names), or, for nil, the built-in default session.
  public static func open(_ path: String?, backends: BackendRegistry = .builtIn) throws(SpecError) -> Workbench {
    guard let path else { return withDefaultSession(backends: backends) }
    let indexPath: String
    if FileAccess.resolvedKind(of: path) == .directory {
      indexPath = PathText.join(path, WorkspaceIndex.fileName)
      guard FileAccess.kind(of: indexPath) != nil else {
        throw .unreadable(
          path: path,
          reason:
            "it is a folder, not a regular file, and holds no \(WorkspaceIndex.fileName): give a session file (NAME.json), or a workspace folder (save FOLDER in a workbench of several runs writes one)"
        )
      }
    } else if PathText.lastComponent(path) == WorkspaceIndex.fileName {
      indexPath = path
    } else {
      return Workbench(SessionEngine(bundle: try SessionFile.load(path), path: SessionFile.paths(for: path).json, backends: backends))
    }
    let folder = PathText.folderOrCurrent(indexPath)
    let index = try WorkspaceIndex.decode(try FileAccess.read(indexPath, limit: 4 << 20), file: indexPath)
    var runs: [Run] = []
    for entry in index.runs {
      let file = PathText.join(folder, entry.file)
      let bundle = try SessionFile.load(file)
      let engine = SessionEngine(bundle: bundle, path: SessionFile.paths(for: file).json, backends: backends)
      runs.append(Run(name: entry.name, engine: engine, timeline: entry.timeline.map { TimelinePoint(step: $0.step, seconds: $0.seconds) }))
    }
    let current = runs.firstIndex { $0.name == index.current } ?? 0
    return Workbench(runs: runs, current: current, folder: folder, backends: backends)
  }

  /// `save [FOLDER]` of a workbench with several runs (or opened from a folder): each run's
  /// session into the folder as `NAME.json` (with its state and metrics), then the index,
  /// replaced atomically. A run that cannot be saved stops the save before the index is written,
  /// so that the index never names a file that was not written.
  func saveWorkspace(to target: String?) throws(CommandError) -> String {
    guard let destination = target ?? folder else {
      throw CommandError(
        "save: a workbench of \(runs.count) runs is saved as a folder: save FOLDER (one session file a run, and \(WorkspaceIndex.fileName))"
      )
    }
    guard !destination.hasSuffix(".json") else {
      throw CommandError(
        "save: \(runs.count) runs are saved as a folder, not one file; save FOLDER, or drop runs down to one to save a session file")
    }
    switch FileAccess.resolvedKind(of: destination) {
    case .directory?: break
    case nil:
      do { try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true) } catch {
        throw CommandError("save: cannot make the folder \(destination): \(error.localizedDescription)")
      }
    case let kind?: throw CommandError("save: \(destination) is \(kind.phrase); a workspace is a folder")
    }
    var lines: [String] = []
    for (i, run) in runs.enumerated() {
      do {
        let message = try run.engine.save(to: PathText.join(destination, run.name))
        lines.append("  " + message)
      } catch {
        let done = i == 0 ? "no run was saved" : "the runs before it were saved"
        throw CommandError("save: run \(run.name): \(error.message); \(done), and \(WorkspaceIndex.fileName) was not written")
      }
    }
    let index = WorkspaceIndex(
      runs: runs.map { run in
        WorkspaceIndex.Run(name: run.name, file: run.name + ".json", timeline: run.timeline.map { ($0.step, $0.seconds) })
      }, current: currentName)
    do {
      try AtomicFile.write(
        Array(index.canonicalText.utf8), to: PathText.join(destination, WorkspaceIndex.fileName), what: "the workspace index")
    } catch {
      throw CommandError("save: the runs' files were saved, but \(WorkspaceIndex.fileName) was not: \(error.description)")
    }
    folder = destination
    pendingEvents.append(
      EngineEvent(.saved, "saved \(runs.count) runs to \(destination) (\(WorkspaceIndex.fileName) and a session file a run)"))
    return (["saved the workspace \(destination): \(runs.count) runs, current \(currentName)"] + lines).joined(separator: "\n")
  }
}
