import Testing

@testable import SpecKit

@Suite("JSON parser")
struct JSONParserTests {
  @Test func parsesEveryKindWithLocations() throws {
    let value = try JSONParser.parse("{\n  \"a\": [1, -2.5e3, true, false, null],\n  \"b\": \"x\\u00e9\\n\"\n}")
    let object = try #require(value.objectValue)
    #expect(object.keys == ["a", "b"])
    let a = try #require(object["a"]?.arrayValue)
    #expect(a.count == 5)
    #expect(a[1].numberValue?.double == -2500)
    #expect(a[2].boolValue == true)
    #expect(a[4].isNull)
    #expect(object["b"]?.stringValue == "xé\n")
    #expect(object["a"]?.location == SourceLocation(line: 2, column: 8))
    #expect(object["b"]?.location == SourceLocation(line: 3, column: 8))
  }

  @Test func readsSixtyFourBitIntegersExactly() throws {
    let value = try JSONParser.parse("[18446744073709551615, 9007199254740993]")
    let numbers = try #require(value.arrayValue).compactMap(\.numberValue)
    #expect(numbers[0].uint64 == UInt64.max)
    #expect(numbers[1].uint64 == 9_007_199_254_740_993)
  }

  @Test func surrogatePairsDecode() throws {
    #expect(try JSONParser.parse("\"\\ud83d\\ude00\"").stringValue == "😀")
  }

  @Test func columnsCountCharactersNotBytes() throws {
    do {
      _ = try JSONParser.parse("{\"é\": 1 2}")
      Issue.record("expected an error")
    } catch {
      #expect(error.location == SourceLocation(line: 1, column: 9))
    }
  }

  @Test(arguments: [
    ("", 1, 1, "empty"),
    ("{\"a\": 1,}", 1, 9, "trailing comma"),
    ("[1, 2,]", 1, 7, "trailing comma"),
    ("{\"a\" 1}", 1, 6, "expected ':'"),
    ("{\"a\": 1\n \"b\": 2}", 2, 2, "expected ',' or '}'"),
    ("\"abc", 1, 5, "unterminated string"),
    ("[01]", 1, 2, "leading zeros"),
    ("[NaN]", 1, 2, "NaN and Infinity"),
    ("[1e999]", 1, 2, "too large"),
    ("{\"a\": 1, \"a\": 2}", 1, 10, "duplicate key \"a\""),
    ("\"a\\qb\"", 1, 3, "invalid escape"),
    ("\"a\tb\"", 1, 3, "control character"),
    ("tru", 1, 1, "did you mean 'true'"),
    ("[1] 2", 1, 5, "after the end"),
    ("\"\\ud800x\"", 1, 8, "unpaired UTF-16 surrogate"),
    ("{1: 2}", 1, 2, "member name in double quotes"),
    ("[1.]", 1, 4, "after the decimal point"),
  ])
  func syntaxErrorsSayWhatAndWhere(text: String, line: Int, column: Int, fragment: String) {
    do {
      _ = try JSONParser.parse(text)
      Issue.record("expected an error for \(text)")
    } catch {
      #expect(error.location == SourceLocation(line: line, column: column), "\(error)")
      #expect(error.message.contains(fragment), "\(error.message)")
    }
  }

  @Test func invalidUTF8IsRefused() {
    #expect(throws: JSONSyntaxError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
  }

  @Test func deepNestingIsRefusedNotACrash() {
    let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    do {
      _ = try JSONParser.parse(text)
      Issue.record("expected an error")
    } catch {
      #expect(error.message.contains("nesting deeper than"))
    }
  }

  @Test func duplicateKeysCanBeKeptOnRequest() throws {
    let value = try JSONParser.parse(Array("{\"a\": 1, \"a\": 2}".utf8), allowDuplicateKeys: true)
    #expect(value.objectValue?.keys == ["a", "a"])
  }

  @Test func locationOfPathFindsDeepestExistingNode() throws {
    let value = try JSONParser.parse("{\n \"m\": {\"l\": [0, {\"u\": 3}]}}")
    #expect(value.location(of: "m.l[1].u") == SourceLocation(line: 2, column: 23))
    #expect(value.location(of: "m.l[1].missing") == SourceLocation(line: 2, column: 17))
  }
}

@Suite("JSON writer")
struct JSONWriterTests {
  @Test func canonicalFormSortsIndentsAndKeepsScalarArraysOnOneLine() {
    let value = JSONValue.object([
      "b": .array([.int(1), .double(0.5)]), "a": .object([:]), "c": .array([.string("x"), .array([.int(2), .int(3)])]), "d": .array([]),
    ])
    let expected = """
      {
        "a": {},
        "b": [1, 0.5],
        "c": [
          "x",
          [2, 3]
        ],
        "d": []
      }

      """
    #expect(JSONWriter.canonical(value) == expected)
  }

  @Test func keysSortByCodePointLikePython() {
    let value = JSONValue.object(["é": .int(1), "z": .int(2), "Z": .int(3), "a_b": .int(4), "aB": .int(5)])
    let keys = JSONWriter.canonical(value).split(separator: "\n").dropFirst().dropLast().map { $0.split(separator: "\"")[1] }
    #expect(keys == ["Z", "aB", "a_b", "z", "é"])
  }

  @Test func stringsEscapeControlCharacters() {
    #expect(JSONWriter.quoted("a\"b\\c\n\u{01}é") == "\"a\\\"b\\\\c\\n\\u0001é\"")
    #expect(JSONWriter.quoted("\u{1B}\u{1F}") == "\"\\u001b\\u001f\"", "both nibbles of a \\u escape")
  }

  /// Every control character, and a few beyond (DEL, C1 controls, a line separator, the last
  /// BMP character, an astral one), reads back as written.
  @Test(arguments: Array(0x00...0x1F) + [0x7F, 0x80, 0x9B, 0x9F, 0x2028, 0xFFFF, 0x1F600])
  func everyControlCharacterRoundTrips(_ code: Int) throws {
    let text = "a" + String(Character(Unicode.Scalar(UInt32(code))!)) + "b"
    let written = JSONWriter.quoted(text)
    #expect(try JSONParser.parse(written).stringValue == text, "U+\(String(code, radix: 16)) written as \(written)")
    #expect(try JSONParser.parse(JSONWriter.canonical(.object(["k": .string(text)]))).objectValue?["k"]?.stringValue == text)
  }

  @Test(arguments: [0.003, 1e-8, 0.1, 1.0, 1e300, -0.0, 123456.789, 5e-324])
  func doublesRoundTripExactly(value: Double) throws {
    let text = JSONWriter.compact(.double(value))
    let back = try #require(try JSONParser.parse(text).numberValue).double
    #expect(back == value && back.sign == value.sign, "\(text)")
  }

  @Test func floatsRoundTripThroughTheirShortestText() throws {
    for value: Float in [0.6931472, 1e-7, 3.4028235e38, 0.1] {
      let text = JSONWriter.compact(.float(value))
      #expect(Float(try #require(try JSONParser.parse(text).numberValue).double) == value, "\(text)")
    }
  }
}
