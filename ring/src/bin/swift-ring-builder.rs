//! `swift-ring-builder`: see `ring::builder_cli`.

fn main() {
    std::process::exit(ring::builder_cli::run(std::env::args().collect()));
}
