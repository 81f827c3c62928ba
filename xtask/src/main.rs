//! `cargo xtask`: the workshop's own tooling (see ARCHITECTURE.md, "xtask commands").

mod catch_up;
#[path = "doctor_placeholder.rs"]
mod doctor;
mod manifest;
mod regions;
mod workshop;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The ferry workshop's tools: generate the student's engine, check chapters, catch up.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Regenerate workshop/ from solutions/ (or, with --check, fail if it is stale)
    Workshop {
        /// Change nothing; fail when workshop/ is not what the generator makes
        #[arg(long)]
        check: bool,
    },
    /// Fill chapters 0..=N of your workshop with the reference code (a backup is kept)
    CatchUp {
        /// The last chapter to fill in
        chapter: u32,
    },
    /// What this machine can run: root, kernel, cgroups, overlayfs, packages
    Doctor,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let manifest = manifest::Manifest::load()?;
    match cli.command {
        Command::Workshop { check } => workshop::ensure(&workshop::generate(&manifest)?, check),
        Command::CatchUp { chapter } => catch_up::run(&manifest, chapter),
        Command::Doctor => doctor::run(),
    }
}
