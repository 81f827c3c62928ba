//! `cargo xtask`: the workshop's own tooling (see ARCHITECTURE.md, "xtask commands").

mod book;
mod catch_up;
mod check;
mod demo;
mod doctor;
mod fixture;
mod grade;
mod hostcheck;
mod ladder;
mod layers;
mod links;
mod manifest;
/// The project's one mountinfo parser, shared with the engine and the harness.
#[path = "../../solutions/src/mountinfo.rs"]
mod mountinfo;
mod progress;
mod regions;
mod results;
mod screenshots;
mod slides;
mod snippets;
mod steps;
mod suite;
mod util;
mod workshop;

use std::path::PathBuf;

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
        /// The last chapter to fill in (4), or the last evening of one (4a)
        chapter: String,
    },
    /// Run chapter N's tests against your workshop: a pass/fail board with hints
    Check {
        /// The chapter to check (4), or one evening of a two-evening chapter (4a, 4b)
        chapter: String,
    },
    /// Stubs left and tests passing, chapter by chapter
    Progress {
        /// Re-run every chapter's tests instead of showing the latest results
        #[arg(long)]
        run: bool,
    },
    /// Points per chapter: every chapter's tests against your workshop (--json, --junit)
    Grade(grade::Args),
    /// What this machine can run: root, kernel, cgroups, overlayfs, packages
    Doctor,
    /// Build the engine and show what it isolates, chapter by chapter (runs as root)
    Demo,
    /// Build the book into target/book (installs a pinned mdBook when missing)
    Book {
        /// Then open every page in headless Chromium (installed when missing) and fail on
        /// a broken link, a missing image or anchor, or a page that errors
        #[arg(long)]
        check_links: bool,
    },
    /// Render the decks into target/slides (installs a pinned marp-cli when missing)
    Slides {
        /// Also print each deck to PDF (through chromium, installed when missing)
        #[arg(long)]
        pdf: bool,
        /// Fail when a deck does not render or a slide overflows (measured in headless chromium)
        #[arg(long)]
        check: bool,
        /// Render the decks in DIR instead of slides/, into DIR/html (to try the checker)
        #[arg(long, hide = true, value_name = "DIR")]
        decks: Option<PathBuf>,
    },
    /// Build the book and the decks, and save PNGs of a few pages and slides in docs/screenshots
    Screenshots,
    /// Run the shell blocks pages and decks mark runnable against the reference engine (as root)
    Snippets {
        /// The pages or decks to run [default: every one with a `<!-- runnable -->` block]
        pages: Vec<PathBuf>,
    },
    /// Everything the project checks: fmt, clippy, freshness, tests, ladder, step order, book and links, decks, runnable snippets (CI runs this)
    Test,
    /// Prove the chapters are incremental: chapters 0..=N pass N's tests and fail N+1's
    Ladder {
        /// Run the tests of every chapter 0..=N at each step, not only N's
        #[arg(long)]
        full: bool,
        /// Instead: fill each chapter's stubs one at a time in its page's order and
        /// check that the engine then stops at the next step [default: chapters with probes]
        #[arg(long, num_args = 0.., value_name = "CHAPTER")]
        steps: Option<Vec<u32>>,
    },
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
        Command::CatchUp { chapter } => catch_up::run(&manifest, &chapter),
        Command::Doctor => doctor::run(),
        Command::Check { chapter } => check::run(&manifest, &chapter),
        Command::Progress { run } => progress::run(&manifest, run),
        Command::Grade(args) => grade::run(&manifest, args),
        Command::Ladder { full, steps } => {
            util::ensure_packages(util::PACKAGES)?;
            let host = hostcheck::HostState::capture();
            match steps {
                Some(chapters) => steps::run(&manifest, &chapters)?,
                None => ladder::run(&manifest, full)?,
            }
            hostcheck::HostState::ensure_unchanged_since(&host)
        }
        Command::Demo => demo::run(),
        Command::Book { check_links: false } => book::run(),
        Command::Book { check_links: true } => links::run(),
        Command::Slides { pdf, check, decks } => slides::run(pdf, check, decks.as_deref()),
        Command::Screenshots => screenshots::run(),
        Command::Snippets { pages } => snippets::run(&pages),
        Command::Test => suite::run(&manifest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn grade_formats_exclude_each_other_and_the_classroom_file() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["cargo xtask", "grade"], args].concat());
        assert!(parse(&["--json", "--tests-from", "origin/main", "--chapter", "0"]).is_ok());
        assert!(parse(&["--json", "--junit"]).is_err());
        assert!(parse(&["--classroom", "--chapter", "1"]).is_err());
    }
}
