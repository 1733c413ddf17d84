import ArgumentParser

struct Backends: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show which backend supports which layer, activation, loss and optimizer."
  )

  func run() throws {
    print("No compute backends are built into this version of SpecBench yet: it reads, checks,")
    print("initialises and writes sessions (validate, inspect, init). Training backends come next.")
  }
}
