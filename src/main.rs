//! The `node` binary: parse the command line, log to stderr, run what was asked.

use std::io::IsTerminal;

use clap::Parser;
use node::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// A failure is reported as its chain of causes on one line and exit code 1. Returning it
/// from `main` would print it with `Debug`, which under `RUST_BACKTRACE=1` symbolises a
/// backtrace: seconds of startup for a mistyped flag, and noise the user did not ask for.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .compact()
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        None => runtime.block_on(node::runtime::run(cli.node.into())),
        Some(Command::Serve { serve, node }) => {
            runtime.block_on(node::cluster::serve::run(serve, node.into()))
        }
        Some(Command::Certs { out, ids }) => {
            node::cluster::certs::generate(&out, &ids)?;
            println!(
                "wrote a CA and {} node certificates to {}",
                ids.len(),
                out.display()
            );
            Ok(())
        }
        Some(Command::Client(args)) => {
            let reply = runtime.block_on(node::cluster::client::request(&args))?;
            println!("{reply}");
            Ok(())
        }
    }
}
