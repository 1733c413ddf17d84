import Foundation
import SpecKit

/// The themes a dashboard can cycle through: every `*.json` in the theme folders, read at start.
/// A broken file is reported and left out; `default-dark` is always there (built in when no file
/// provides it), and comes first.
public struct ThemeLibrary: Sendable {
  public var themes: [Theme]
  /// One message per theme file that could not be used.
  public var problems: [String]

  /// The built-in default alone.
  public static let builtIn = ThemeLibrary(themes: [.builtInDefault], problems: [])

  public init(themes: [Theme], problems: [String]) {
    (self.themes, self.problems) = (themes, problems)
  }

  /// Reads the folders in order; for two files of one theme name, the earlier folder wins.
  public static func load(folders: [String]) -> ThemeLibrary {
    var byName: [String: Theme] = [:]
    var problems: [String] = []
    for folder in folders {
      guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
      for file in names.sorted() where file.hasSuffix(".json") {
        let path = PathText.join(folder, file)
        // A theme is a small text file: a FIFO, device or folder named *.json is refused at once.
        let data: [UInt8]
        do { data = try FileAccess.read(path, limit: 1 << 20) } catch {
          problems.append("\(path): cannot be read: \(error.reason ?? error.description)")
          continue
        }
        do {
          let theme = try Theme.parse(String(decoding: data, as: UTF8.self), file: path)
          if byName[theme.name] == nil { byName[theme.name] = theme }
        } catch {
          problems.append(error.description + "\n  (using the other themes; default-dark is built in)")
        }
      }
    }
    if byName["default-dark"] == nil { byName["default-dark"] = .builtInDefault }
    let ordered = [byName["default-dark"]!] + byName.filter { $0.key != "default-dark" }.sorted { $0.key < $1.key }.map(\.value)
    return ThemeLibrary(themes: ordered, problems: problems)
  }

  /// Where themes are looked for, first to last: `$SPECBENCH_THEMES` (folders separated by
  /// `:`), `$XDG_CONFIG_HOME/specbench/themes` (or `~/.config/specbench/themes`), `themes/` in the
  /// working folder, and the `themes/` folder of the SpecBench checkout the executable was built
  /// in (found by walking up from the executable).
  public static func defaultFolders(environment: [String: String] = ProcessInfo.processInfo.environment, executable: String? = nil)
    -> [String]
  {
    var folders: [String] = []
    if let list = environment["SPECBENCH_THEMES"] { folders += list.split(separator: ":").map(String.init) }
    let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (environment["HOME"].map { $0 + "/.config" } ?? "")
    if !config.isEmpty { folders.append(config + "/specbench/themes") }
    folders.append(FileManager.default.currentDirectoryPath + "/themes")
    var folder = PathText.folder((executable ?? Bundle.main.executablePath ?? ""))
    for _ in 0..<5 where !folder.isEmpty && folder != "/" {
      if FileManager.default.fileExists(atPath: folder + "/themes/default-dark.json") {
        folders.append(folder + "/themes")
        break
      }
      folder = PathText.folder(folder)
    }
    return folders
  }

  /// The theme named `name`, or nil.
  public func named(_ name: String) -> Theme? { themes.first { $0.name == name } }
}
