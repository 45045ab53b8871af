//! `swift-recon [account|container|object] [options]`: Swift's cluster
//! reconnaissance tool. See `swift-recon --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(recon::run(&args));
}
