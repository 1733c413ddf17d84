/// Reads the members of one JSON object field by field, reporting every problem to an
/// `IssueLog` with the member's JSON path, and every member it never asked for as unknown.
///
/// Typed getters always return a value so that reading can go on and find further problems:
/// when a value is missing or wrong they report it and return the default, or a neutral
/// placeholder for required fields; the caller throws at the end if the log is not empty.
struct ObjectReader {
  let path: JSONPath
  let location: SourceLocation?
  let log: IssueLog
  private let object: JSONObject
  private var consumed: Set<String> = []

  /// A reader over `value`, or nil (with a reported issue) when `value` is not an object.
  init?(_ value: JSONValue, at path: JSONPath, log: IssueLog, what: String = "an object") {
    guard let object = value.objectValue else {
      log.report(path, "must be \(what), got \(value.excerpt())", at: value.location)
      return nil
    }
    self.object = object
    self.path = path
    self.location = value.location
    self.log = log
  }

  /// The raw value of `key`, if present; marks the key as known.
  mutating func raw(_ key: String) -> JSONValue? {
    consumed.insert(key)
    return object[key]
  }

  /// Whether the object has `key` (without marking it as known).
  func has(_ key: String) -> Bool { object[key] != nil }

  /// The raw value of a required `key`, reporting its absence.
  mutating func required(_ key: String) -> JSONValue? {
    guard let value = raw(key) else {
      log.report(path + key, "is required but missing", at: location)
      return nil
    }
    return value
  }

  private mutating func value(_ key: String, required isRequired: Bool) -> JSONValue? {
    isRequired ? required(key) : raw(key)
  }

  /// Reports a wrong value at `key`: "must be EXPECTED, got VALUE".
  func wrong(_ key: String, _ value: JSONValue, expected: String) {
    log.report(path + key, "must be \(expected), got \(value.excerpt())", at: value.location)
  }

  mutating func integer(_ key: String, default fallback: Int? = nil, _ rule: Rule<Int> = .any) -> Int {
    guard let value = value(key, required: fallback == nil) else { return fallback ?? 1 }
    guard let number = value.numberValue?.int, rule.accepts(number) else {
      wrong(key, value, expected: rule.expected)
      return fallback ?? 1
    }
    return number
  }

  mutating func number(_ key: String, default fallback: Double? = nil, _ rule: Rule<Double> = .any) -> Double {
    guard let value = value(key, required: fallback == nil) else { return fallback ?? 1 }
    guard let number = value.numberValue?.double, rule.accepts(number) else {
      wrong(key, value, expected: rule.expected)
      return fallback ?? 1
    }
    return number
  }

  mutating func boolean(_ key: String, default fallback: Bool? = nil) -> Bool {
    guard let value = value(key, required: fallback == nil) else { return fallback ?? false }
    guard let flag = value.boolValue else {
      wrong(key, value, expected: "true or false")
      return fallback ?? false
    }
    return flag
  }

  mutating func string(_ key: String, default fallback: String? = nil, _ rule: Rule<String> = .any) -> String {
    guard let value = value(key, required: fallback == nil) else { return fallback ?? "" }
    guard let text = value.stringValue, rule.accepts(text) else {
      wrong(key, value, expected: rule.expected)
      return fallback ?? ""
    }
    return text
  }

  /// A 64-bit seed written as a JSON integer (read exactly, never through a double).
  mutating func seed(_ key: String, default fallback: UInt64? = 0) -> UInt64 {
    guard let value = value(key, required: fallback == nil) else { return fallback ?? 0 }
    guard let seed = value.numberValue?.uint64 else {
      wrong(key, value, expected: "an integer in [0, 2^64 − 1]")
      return fallback ?? 0
    }
    return seed
  }

  /// A 64-bit value written as a decimal string, as the state's generator positions are.
  mutating func decimalUInt64(_ key: String) -> UInt64 {
    guard let value = required(key) else { return 0 }
    guard let text = value.stringValue, !text.isEmpty, text.allSatisfy(\.isASCII), let number = UInt64(text) else {
      wrong(key, value, expected: "a decimal string of an unsigned 64-bit integer, such as \"12345\"")
      return 0
    }
    return number
  }

  /// One of a fixed set of words, with a "did you mean" hint when it is misspelt.
  mutating func choice<T>(_ key: String, default fallback: T? = nil, _ options: [(String, T)], what: String) -> T? {
    guard let value = value(key, required: fallback == nil) else { return fallback }
    return Self.choice(value, at: path + key, options, what: what, log: log) ?? fallback
  }

  /// Matches a string value against named options; reports an unknown or non-string value.
  static func choice<T>(_ value: JSONValue, at path: JSONPath, _ options: [(String, T)], what: String, log: IssueLog) -> T? {
    let names = options.map(\.0)
    guard let word = value.stringValue else {
      log.report(path, "must be \(what) (one of \(names.joined(separator: ", "))), got \(value.excerpt())", at: value.location)
      return nil
    }
    if let match = options.first(where: { $0.0 == word }) { return match.1 }
    log.report(
      path,
      "unknown \(what) \(JSONWriter.quoted(word)); expected one of \(names.joined(separator: ", "))"
        + Suggestion.hint(for: word, in: names), at: value.location)
    return nil
  }

  /// The elements of an array member, each read by `element` at its own path.
  mutating func array<T>(_ key: String, default fallback: [T]? = nil, _ element: (JSONValue, JSONPath) -> T?) -> [T] {
    guard let value = value(key, required: fallback == nil) else { return fallback ?? [] }
    guard let elements = value.arrayValue else {
      wrong(key, value, expected: "an array")
      return fallback ?? []
    }
    return elements.enumerated().compactMap { element($0.element, path + key + $0.offset) }
  }

  /// Reports every member that no getter asked for, with the accepted keys and a likely fix.
  func finish() {
    let known = consumed.sorted()
    for member in object.members where !consumed.contains(member.key) {
      log.report(
        path + member.key,
        "unknown key; expected one of \(known.joined(separator: ", "))" + Suggestion.hint(for: member.key, in: known),
        at: member.keyLocation)
    }
  }
}
