// swift-tools-version: 6.0
// SpecBench: an interactive terminal workbench for machine-learning experiments built from
// backend-agnostic specs. See docs/architecture.md for the modules and their one-way arrows.
import PackageDescription

let package = Package(
  name: "SpecBench",
  products: [
    .library(name: "SpecKit", targets: ["SpecKit"]),
    .library(name: "TensorCore", targets: ["TensorCore"]),
    .library(name: "Datasets", targets: ["Datasets"]),
    .library(name: "Backends", targets: ["Backends"]),
    .library(name: "Interchange", targets: ["Interchange"]),
    .library(name: "TermPlot", targets: ["TermPlot"]),
    .library(name: "Bayes", targets: ["Bayes"]),
    .executable(name: "specbench", targets: ["specbench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    // Keras archives are zips: written and read in memory through ZIPFoundation (MIT).
    .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
  ],
  targets: [
    // The spec value types, validation, the seeded generator, safetensors and session files.
    .target(
      name: "SpecKit",
      dependencies: [.product(name: "Crypto", package: "swift-crypto")]
    ),
    // Float32 tensors, plain kernels, the layers' forward and backward passes, losses, and the
    // optimizers' update rules.
    .target(name: "TensorCore", dependencies: ["SpecKit"]),
    // Datasets: the synthetic generators, CSV, IDX, NumPy files, built-ins; the validation split and batching.
    .target(name: "Datasets", dependencies: ["SpecKit", "TensorCore", "CZlibShim"]),
    // zlib (zlib licence): inflate and CRC-32 for NumPy's .npz archives.
    .systemLibrary(name: "CZlibShim", path: "Sources/CZlibShim"),
    // The fast backend's C parts: its optimizer rules, compiled for AVX-512, AVX2 and baseline
    // x86-64 and chosen by the CPU when the program loads (Swift compiles for baseline x86-64
    // only), and the loader of OpenBLAS (BSD-3-Clause), whose sgemm does the products. Optimised
    // in debug builds too, so that the tests check the vectorised loops.
    .target(
      name: "CFastKernels", path: "Sources/CFastKernels", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("dl")]),
    // The engine protocol and the engines: the Backend and Trainer protocols, capabilities, the
    // registry, and the backends (reference, fast), with the benchmark presets.
    .target(name: "Backends", dependencies: ["SpecKit", "TensorCore", "Datasets", "CFastKernels"]),
    // Weights as distributions: the Laplace posterior of a trained session, the predictives of
    // a posterior and of variational layers, calibration. Reads specs and states; no engine.
    .target(name: "Bayes", dependencies: ["SpecKit", "TensorCore", "Datasets", "Backends", "CFastKernels"]),
    // Sessions in other formats: ONNX export and import over a protobuf wire codec of its own
    // (internal to it), PyTorch's state_dict safetensors, the PyTorch training script, Keras 3
    // archives both ways. Needs no engine: it reads specs and states.
    .target(
      name: "Interchange",
      dependencies: ["SpecKit", "TensorCore", "Datasets", "CHDF5", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
    ),
    // The HDF5 C library (BSD-style licence, Debian's serial build): the weights file of a Keras
    // archive. Linked only by Interchange.
    .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
    // The engine both front ends share: the session, its commands, the training worker and run,
    // the console.
    .target(name: "Session", dependencies: ["SpecKit", "TensorCore", "Datasets", "Backends", "Bayes", "Interchange", "TermPlot"]),
    // Pure text rendering: braille line charts, histograms, sparklines, tables, into a grid of
    // cells with colour roles. No terminal library.
    .target(name: "TermPlot"),
    // GNU readline (GPL-3.0): a system library with a C shim, linked only by the REPL and the
    // executable, never by the library modules above.
    .systemLibrary(name: "CReadline", path: "Sources/CReadline"),
    // ncursesw: a system library with a C shim, linked only by the dashboard.
    .systemLibrary(name: "CNcurses", path: "Sources/CNcurses"),
    // The ncurses front end: pure layout and panes (snapshot + state + size → grid), themes, the
    // key map, and a thin curses adapter with the redraw loop.
    .target(name: "Dashboard", dependencies: ["Session", "SpecKit", "TermPlot", "CNcurses"]),
    // The readline front end: prompt, completion, history, events above the line, script mode.
    .target(name: "REPL", dependencies: ["Session", "SpecKit", "TermPlot", "CReadline"]),
    // Argument parsing and nothing else: every verb calls into the library modules.
    .executableTarget(
      name: "specbench",
      dependencies: [
        "SpecKit", "TensorCore", "Datasets", "Backends", "Bayes", "Interchange", "Session", "REPL", "Dashboard", "TermPlot",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // Helpers shared by the test targets: running processes, finding the built binary and the
    // repository, checking for the Python peers.
    .target(
      name: "SpecBenchTestSupport",
      dependencies: ["SpecKit"],
      path: "Tests/Support"
    ),
    .testTarget(
      name: "SpecKitTests",
      dependencies: ["SpecKit", "SpecBenchTestSupport"],
      exclude: ["Golden"]
    ),
    .testTarget(
      name: "TrainingTests",
      dependencies: ["SpecKit", "TensorCore", "Datasets", "Backends", "Bayes", "Session", "SpecBenchTestSupport"]
    ),
    .testTarget(
      name: "InterchangeTests",
      dependencies: ["SpecKit", "TensorCore", "Datasets", "Backends", "Interchange", "Session", "SpecBenchTestSupport"]
    ),
    .testTarget(
      name: "SessionTests",
      dependencies: ["SpecKit", "TensorCore", "Datasets", "Backends", "Session", "TermPlot", "SpecBenchTestSupport"]
    ),
    .testTarget(
      name: "TermPlotTests",
      dependencies: ["TermPlot", "SpecBenchTestSupport"],
      exclude: ["Golden"]
    ),
    .testTarget(
      name: "DashboardTests",
      dependencies: ["Dashboard", "Session", "SpecKit", "TermPlot", "SpecBenchTestSupport"],
      exclude: ["Golden"]
    ),
    .testTarget(
      name: "SpecBenchCLITests",
      dependencies: ["SpecKit", "SpecBenchTestSupport"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
