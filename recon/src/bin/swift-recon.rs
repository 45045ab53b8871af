//! `swift-recon [account|container|object] [options]`: Swift's cluster
//! reconnaissance tool. See `swift-recon --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Swift's optparse answers --version only when given one; ours has one.
    if matches!(args.as_slice(), [a] if a == "--version" || a == "-V") {
        println!("swift-recon {}", common::VERSION);
        return;
    }
    std::process::exit(recon::run(&args));
}
