import Foundation
import SpecBenchTestSupport
import Testing

@testable import SpecKit

/// Spoilt posteriors and variational sections, in the JSON and in the state file.
@Suite("Hostile posterior and variational files")
struct HostileBayesFileTests {
  /// The base session (dense1 8 → dense2 3) with a last-layer full posterior at step 0.
  func posteriorSpec(hessian: PosteriorSpec.Hessian = .full) throws -> SessionSpec {
    var spec = try SessionSpec.decode(baseDocument().setting("version", to: .int(5)))
    spec.state = spec.initialStateRecord()
    spec.posterior = PosteriorSpec(hessian: hessian, priorPrecision: 0.7, step: 0, dataCount: 90)
    return spec
  }

  /// Its state, with a symmetric curvature.
  func tensors(_ spec: SessionSpec) throws -> [String: StoredTensor] {
    var tensors = try spec.initialTensors()
    for info in try spec.stateLayout() where info.kind == .posterior {
      let n = info.shape.reduce(1, *)
      tensors[info.name] = StoredTensor(shape: info.shape, scalars: (0..<n).map { Float(($0 * 7) % 5) * 0.1 + 0.5 })
    }
    if let ggn = tensors["posterior/ggn"] {
      let p = ggn.shape[0]
      var m = ggn.scalars
      for i in 0..<p { for j in 0..<i { m[i * p + j] = m[j * p + i] } }
      tensors["posterior/ggn"] = StoredTensor(shape: [p, p], scalars: m)
    }
    return tensors
  }

  @Test(arguments: PosteriorSpec.Hessian.allCases)
  func aPosteriorIsSavedAndLoadedByPath(hessian: PosteriorSpec.Hessian) throws {
    let spec = try posteriorSpec(hessian: hessian)
    let tensors = try tensors(spec)
    let names = tensors.keys.filter { $0.hasPrefix("posterior/") }.sorted()
    switch hessian {
    case .full: #expect(names == ["posterior/ggn"] && tensors["posterior/ggn"]?.shape == [27, 27])
    case .diag: #expect(names == ["posterior/ggn_diag/dense2.bias", "posterior/ggn_diag/dense2.weight"])
    case .kron:
      #expect(names == ["posterior/kron/dense2/A", "posterior/kron/dense2/G"] && tensors["posterior/kron/dense2/A"]?.shape == [9, 9])
    }
    let folder = temporaryFolder()
    _ = try SessionFile.save(SessionBundle(spec: spec, tensors: tensors), to: folder + "/p")
    let loaded = try SessionFile.load(folder + "/p.json")
    #expect(loaded.spec.posterior == spec.posterior && loaded.tensors == tensors)
  }

  @Test(
    arguments: [
      ("missing", "posterior/ggn", nil, "missing tensor posterior/ggn of shape [27, 27]"),
      (
        "wrong shape", "posterior/ggn", StoredTensor(shape: [26, 26], repeating: 1),
        "posterior/ggn has shape [26, 26], but the model needs [27, 27]"
      ),
      ("NaN", "posterior/ggn", StoredTensor(shape: [27, 27], repeating: .nan), "posterior/ggn holds a non-finite value"),
      ("stranger", "posterior/extra", StoredTensor(shape: [1], repeating: 1), "unexpected tensor posterior/extra"),
    ] as [(String, String, StoredTensor?, String)])
  func aSpoiltCurvatureIsRefusedNamingTheTensor(_ label: String, name: String, tensor: StoredTensor?, message: String) throws {
    let spec = try posteriorSpec()
    var spoilt = try tensors(spec)
    spoilt[name] = tensor
    let problems = spec.stateProblems(spoilt)
    #expect(problems.contains { $0.contains(message) }, "\(label): \(problems)")
  }

  @Test func aNegativeDiagonalIsRefused() throws {
    let spec = try posteriorSpec(hessian: .diag)
    var spoilt = try tensors(spec)
    spoilt["posterior/ggn_diag/dense2.bias"] = StoredTensor(shape: [3], scalars: [1, -2, 1])
    #expect(
      spec.stateProblems(spoilt).contains { $0.contains("posterior/ggn_diag/dense2.bias holds a negative value (-2.0) at flat index 1") })
  }

  @Test(arguments: [
    ("posterior.step", JSONValue.int(7), "posterior.step: is 7, but the state is at step 0"),
    ("posterior.method", .string("gauss"), "posterior.method"),
    ("posterior.hessian", .string("block"), "posterior.hessian"),
    ("posterior.samples", .int(0), "posterior.samples: must be an integer from 1 to 100000, got 0"),
    ("posterior.prior_precision", .int(0), "posterior.prior_precision"),
    ("posterior.noise_sigma", .double(0.3), "posterior.noise_sigma: noise_sigma is for mse"),
    ("posterior.data_count", .int(0), "posterior.data_count: must be a positive integer"),
    ("posterior.colour", .string("blue"), "posterior.colour"),
    ("loss", JSONValue.object(["type": .string("huber")]), "huber is not the negative log-likelihood"),
    ("state", JSONValue.null, "posterior: a posterior needs trained weights, but state is null"),
  ])
  func aMalformedPosteriorIsRefusedAtItsPath(path: String, value: JSONValue, fragment: String) throws {
    var spec = try posteriorSpec()
    (spec.state!.tensors, spec.state!.sha256) = ("p.safetensors", String(repeating: "a", count: 64))
    #expect((try? SessionSpec.decode(try JSONParser.parse(spec.canonicalText))) == spec)
    let document = try JSONParser.parse(spec.canonicalText).setting(JSONPath(path), to: value)
    do {
      _ = try SessionSpec.decode(document)
      Issue.record("\(path) = \(value): accepted")
    } catch {
      #expect(error.description.contains(fragment), "\(path): \(error)")
    }
  }

  @Test(arguments: [
    (JSONValue.array([]), "model.variational.layers: must name at least one dense layer"),
    (.array([.string("nope")]), "model.variational.layers[0]: names \"nope\", but the model has no such layer"),
    (.array([.int(3)]), "model.variational.layers[0]: must be the name of a dense layer, got 3"),
    (.array([.string("dense1"), .string("dense1")]), "names \"dense1\" twice"),
  ])
  func variationalLayersMustBeDenseLayersOfTheModel(layers: JSONValue, fragment: String) throws {
    let document = baseDocument().setting("version", to: .int(5)).setting("model.variational", to: .object(["layers": layers]))
    do {
      _ = try SessionSpec.decode(document)
      Issue.record("\(layers): accepted")
    } catch {
      #expect(error.description.contains(fragment), "\(error)")
    }
  }

  @Test(arguments: [
    ("prior", JSONValue.object(["type": .string("laplace")]), "model.variational.prior.type"),
    ("prior", .object(["type": .string("gaussian"), "sigma": .int(-1)]), "model.variational.prior.sigma"),
    ("prior", .object(["type": .string("scale_mixture"), "pi": .int(1)]), "model.variational.prior.pi: must be a number in (0, 1)"),
    ("kl_weight", .int(-1), "model.variational.kl_weight: must be a number ≥ 0, or null"),
    ("rho_init", .int(100), "model.variational.rho_init: must be a number from -30 to 30"),
    ("predict_samples", .int(100_001), "model.variational.predict_samples"),
    ("sigma", .int(1), "model.variational.sigma"),
  ])
  func aMalformedVariationalSectionIsRefusedAtItsPath(key: String, value: JSONValue, fragment: String) throws {
    let document = baseDocument().setting("version", to: .int(5)).setting(
      "model.variational", to: .object(["layers": .array([.string("dense2")]), key: value]))
    do {
      _ = try SessionSpec.decode(document)
      Issue.record("\(key) = \(value): accepted")
    } catch {
      #expect(error.description.contains(fragment), "\(error)")
    }
  }

  @Test func aVersionFourFileIsAVersionFiveFileWithNeither() throws {
    let spec = try SessionSpec.decode(baseDocument().setting("version", to: .int(4)))
    #expect(spec.model.variational == nil && spec.posterior == nil)
    #expect(spec.canonicalText.contains("\"version\": 6"))
  }
}
