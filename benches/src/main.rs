//! lvs benchmarks: `cargo bench-core <name>`; see benches/README.md for results.
fn main() {}
