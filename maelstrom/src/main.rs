//! The `maelstrom` binary: Maelstrom's command line over the runner library.

fn main() {
    std::process::exit(maelstrom::cli::main(std::env::args().collect()));
}
