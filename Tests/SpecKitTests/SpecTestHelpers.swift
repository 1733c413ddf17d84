import Testing

@testable import SpecKit

/// A small valid session to mutate in tests.
let baseSessionText = """
  {
    "format": "specbench/session",
    "version": 1,
    "name": "t",
    "model": {"input": [2], "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 3}]},
    "loss": {"type": "softmax_cross_entropy"},
    "optimizer": {"type": "adam", "lr": 0.01},
    "data": {"type": "spirals", "samples": 90, "classes": 3},
    "training": {"batch_size": 16}
  }
  """

func baseDocument() -> JSONValue { try! JSONParser.parse(baseSessionText) }

extension JSONValue {
  /// This value with the node at `path` replaced (or added), or removed when `value` is nil.
  func setting(_ path: JSONPath, to value: JSONValue?) -> JSONValue {
    guard let first = path.components.first else { return value ?? .null }
    let rest = JSONPath(Array(path.components.dropFirst()))
    switch (first, kind) {
    case (.key(let key), .object(var object)):
      if let i = object.members.firstIndex(where: { $0.key == key }) {
        if rest.components.isEmpty, value == nil {
          object.members.remove(at: i)
        } else {
          object.members[i].value = object.members[i].value.setting(rest, to: value)
        }
      } else if let value {
        object.members.append(.init(key: key, value: JSONValue.null.setting(rest, to: value)))
      }
      return JSONValue(.object(object))
    case (.index(let i), .array(var elements)):
      if rest.components.isEmpty, value == nil { elements.remove(at: i) } else { elements[i] = elements[i].setting(rest, to: value) }
      return JSONValue(.array(elements))
    default:
      return value ?? .null
    }
  }
}

/// The issues of decoding `document`, or [] when it decodes.
func issues(of document: JSONValue) -> [SpecIssue] {
  do {
    _ = try SessionSpec.decode(document)
    return []
  } catch {
    return error.issues
  }
}

/// Parses JSON text written in a test.
func json(_ text: String) -> JSONValue { try! JSONParser.parse(text) }

/// The error loading `path` gives, or nil when it loads.
func loadError(_ path: String) -> SpecError? {
  do {
    _ = try SessionFile.load(path)
    return nil
  } catch {
    return error
  }
}

/// The error loading `path` gives, or nil (and a recorded issue) when it loads.
func loadRefusal(_ path: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> SpecError? {
  guard let error = loadError(path) else {
    Issue.record("expected \(path) to be refused", sourceLocation: sourceLocation)
    return nil
  }
  return error
}
