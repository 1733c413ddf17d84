import Foundation
import SpecKit
import TermPlot

/// A theme file that cannot be used: every problem with its JSON path and line:column.
public struct ThemeError: Error, Hashable, Sendable, CustomStringConvertible {
  public var file: String
  public var problems: [String]

  public var description: String {
    "\(file): not a usable theme:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
  }
}

extension Theme {
  /// The format version this SpecBench reads.
  public static let formatVersion = 1

  /// Reads a theme from the text of a theme file; `file` names it in errors.
  ///
  /// - Throws: `ThemeError` listing every problem: syntax (line:column), a missing or unknown
  ///   key, a wrong type, an unknown colour or role (with the nearest name), a newer version.
  public static func parse(_ text: String, file: String) throws(ThemeError) -> Theme {
    let root: JSONValue
    do { root = try JSONParser.parse(text) } catch { throw ThemeError(file: file, problems: [error.description]) }
    var problems: [String] = []
    func problem(_ path: String, at location: SourceLocation?, _ message: String) {
      problems.append("\(path)\(location.map { " (line \($0.line), column \($0.column))" } ?? ""): \(message)")
    }
    func problem(_ path: String, _ value: JSONValue?, _ message: String) { problem(path, at: value?.location, message) }
    guard case .object(let object) = root.kind else {
      throw ThemeError(file: file, problems: ["the file must hold one JSON object, not \(root.typeDescription)"])
    }
    let known = ["specbench_theme", "name", "description", "roles", "series"]
    for member in object.members where !known.contains(member.key) {
      problem(
        member.key, at: member.keyLocation,
        "unknown key"
          + (Suggestion.nearest(to: member.key, in: known).map { "; did you mean \"\($0)\"?" } ?? "; keys: " + known.joined(separator: ", "))
      )
    }
    switch object["specbench_theme"]?.kind {
    case .number(let number) where number.int == formatVersion: break
    case .number(let number) where (number.int ?? 0) > formatVersion:
      problem(
        "specbench_theme", object["specbench_theme"],
        "version \(number) is newer than this SpecBench reads (\(formatVersion)); update SpecBench")
    case nil: problem("specbench_theme", root, "missing; a theme file starts with \"specbench_theme\": \(formatVersion)")
    default: problem("specbench_theme", object["specbench_theme"], "must be the format version \(formatVersion)")
    }
    var name = ""
    if case .string(let text)? = object["name"]?.kind, !text.isEmpty,
      !text.unicodeScalars.contains(where: TerminalText.isControl), text.count <= 64
    {
      name = text
    } else if case .string(let text)? = object["name"]?.kind, !text.isEmpty {
      problem("name", object["name"]!, "a theme's name is at most 64 characters, without control characters")
    } else {
      problem("name", object["name"] ?? root, "a non-empty string is needed")
    }
    if let description = object["description"], case .string = description.kind {
    } else if let description = object["description"] {
      problem("description", description, "must be a string")
    }
    var styles: [String: ThemeStyle] = [:]
    switch object["roles"]?.kind {
    case .object(let roles):
      for member in roles.members {
        let path = "roles.\(member.key)"
        guard roleNames.contains(member.key) else {
          problem(
            path, at: member.keyLocation,
            "unknown role" + (Suggestion.nearest(to: member.key, in: roleNames).map { "; did you mean \"\($0)\"?" } ?? "")
              + " (roles: \(roleNames.joined(separator: ", ")))")
          continue
        }
        guard case .object(let fields) = member.value.kind else {
          problem(path, member.value, "must be an object such as {\"fg\": \"#ffffff\", \"bold\": true}")
          continue
        }
        var style = ThemeStyle()
        for field in fields.members {
          let fieldPath = "\(path).\(field.key)"
          switch field.key {
          case "fg", "bg":
            guard case .string(let text) = field.value.kind, let color = ThemeColor(text) else {
              problem(fieldPath, field.value, "not a colour; use \"default\", a name (red, bright-cyan, …) or \"#rrggbb\"")
              continue
            }
            if field.key == "fg" { style.foreground = color } else { style.background = color }
          case "bold", "dim", "underline", "reverse":
            guard case .bool(let on) = field.value.kind else {
              problem(fieldPath, field.value, "must be true or false")
              continue
            }
            switch field.key {
            case "bold": style.bold = on
            case "dim": style.dim = on
            case "underline": style.underline = on
            default: style.reverse = on
            }
          default:
            let keys = ["fg", "bg", "bold", "dim", "underline", "reverse"]
            problem(
              fieldPath, at: field.keyLocation,
              "unknown key"
                + (Suggestion.nearest(to: field.key, in: keys).map { "; did you mean \"\($0)\"?" } ?? "; keys: "
                  + keys.joined(separator: ", ")))
          }
        }
        styles[member.key] = style
      }
    case nil: break
    default: problem("roles", object["roles"], "must be an object of role name → style")
    }
    var series: [ThemeColor] = []
    switch object["series"]?.kind {
    case .array(let values) where !values.isEmpty:
      for (index, value) in values.enumerated() {
        guard case .string(let text) = value.kind, let color = ThemeColor(text) else {
          problem("series[\(index)]", value, "not a colour; use \"default\", a name (red, bright-cyan, …) or \"#rrggbb\"")
          continue
        }
        series.append(color)
      }
    default: problem("series", object["series"] ?? root, "an array of at least one colour is needed")
    }
    guard problems.isEmpty else { throw ThemeError(file: file, problems: problems) }
    return Theme(name: name, styles: styles, series: series)
  }

  /// The theme used when no theme file can be read: the same as themes/default-dark.json
  /// (a test keeps the two equal).
  public static let builtInDefault: Theme = {
    do { return try parse(builtInDefaultText, file: "built-in default-dark") } catch { preconditionFailure("\(error)") }
  }()

  static let builtInDefaultText = """
    {
      "specbench_theme": 1,
      "name": "default-dark",
      "description": "Light text on a dark terminal; cyan and amber series.",
      "roles": {
        "text": {"fg": "default"},
        "title": {"fg": "#ffffff", "bold": true},
        "axis": {"fg": "#6c6c6c"},
        "label": {"fg": "#a8a8a8"},
        "marker": {"fg": "#ffaf00"},
        "warning": {"fg": "#ff5f5f", "bold": true},
        "border": {"fg": "#585858"},
        "focus": {"fg": "#00d7ff", "bold": true},
        "selected": {"fg": "#000000", "bg": "#00afd7"},
        "status": {"fg": "#000000", "bg": "#a8a8a8"}
      },
      "series": ["#00afd7", "#ffaf00", "#d75fd7", "#5fd75f", "#5f87ff", "#ff5f5f"]
    }

    """
}
