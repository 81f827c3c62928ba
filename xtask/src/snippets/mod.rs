//! `cargo xtask snippets [PAGE...]`: runs the shell blocks that pages and decks mark
//! runnable against the reference engine, so that no page shows a command that no
//! longer works (container.training's autopilot does this for its slides).
//!
//! An author marks a block with an HTML comment on the line right before its fence
//! (invisible in mdBook and Marp): `<!-- runnable -->`, or with options,
//! `<!-- runnable: exit=1 needs=registry -->` (see [`parse`]). In the block, lines that
//! start with `$ ` are commands (continued by a final `\` or an open heredoc), the
//! others what the command before them prints; the runner checks each command's
//! exit code and, where the block shows output, that output ([`matching`]). A page's
//! blocks run in order in one shell ([`session`]) in a scratch directory
//! ([`scratch`]), with `myferry` and `ferry` being the reference engine.
//!
//! Blocks that cannot run here (the network, Docker Hub, a class registry, a
//! terminal) stay unmarked.

mod matching;
mod parse;
mod report;
mod scratch;
mod servers;
mod session;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::manifest::project_root;
use crate::util;
use parse::Block;
use report::{describe, report, BlockFailure, Tally};
use scratch::Scratch;
use servers::{ports, registry_script, starts_server, wait_script};
use session::{Failure, Session};

/// How long one command may take before the page is given up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(pages: &[PathBuf]) -> Result<()> {
    let pages = select(pages)?;
    let needs_registry = pages
        .iter()
        .filter_map(|(_, blocks)| blocks.as_ref().ok())
        .flatten()
        .any(|b| b.options.needs_registry);
    util::ensure_packages(if needs_registry {
        &[util::BUSYBOX, util::REGISTRY]
    } else {
        &[util::BUSYBOX]
    })?;
    util::run(util::cargo().args(["build", "--quiet", "-p", "ferry"]))?;
    let engine = project_root().join("target/debug/ferry");
    let probe = crate::fixture::build_probe()?;
    let started = Instant::now();
    let mut failed_pages = Vec::new();
    for (n, (page, blocks)) in pages.iter().enumerate() {
        let name = shown_path(page);
        println!("\n{name}");
        let outcome = match blocks {
            Ok(blocks) => run_page(page, n, blocks, &engine, &probe),
            Err(error) => Err(anyhow::anyhow!("{error}")),
        };
        match outcome {
            Ok(tally) => {
                println!("{name}: {tally}");
                if !tally.ok() {
                    failed_pages.push(name);
                }
            }
            Err(error) => {
                println!("{name}: could not run: {error:#}");
                failed_pages.push(name);
            }
        }
    }
    println!(
        "\n{} page(s) in {:.1} s",
        pages.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed_pages.is_empty() {
        bail!("runnable snippets failed in {}", failed_pages.join(", "));
    }
    Ok(())
}

type Page = (PathBuf, Result<Vec<Block>, parse::ParseError>);

/// The pages asked for, or every page and deck that has runnable blocks.
fn select(asked: &[PathBuf]) -> Result<Vec<Page>> {
    let read = |path: &Path| -> Result<Page> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("failed to read {}: {e}", path.display()))?;
        Ok((path.to_path_buf(), parse::blocks(&text)))
    };
    if asked.is_empty() {
        let mut pages = Vec::new();
        for dir in ["chapters", "slides"] {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(project_root().join(dir))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect();
            paths.sort();
            for path in paths {
                let page = read(&path)?;
                if !matches!(&page.1, Ok(blocks) if blocks.is_empty()) {
                    pages.push(page);
                }
            }
        }
        return Ok(pages);
    }
    asked
        .iter()
        .map(|path| {
            let path = if path.exists() {
                path.clone()
            } else {
                project_root().join(path)
            };
            let page = read(&path)?;
            if matches!(&page.1, Ok(blocks) if blocks.is_empty()) {
                bail!(
                    "{} has no runnable blocks (a marker is `<!-- runnable -->` right before a fence)",
                    path.display()
                );
            }
            Ok(page)
        })
        .collect()
}

fn run_page(page: &Path, n: usize, blocks: &[Block], engine: &Path, probe: &Path) -> Result<Tally> {
    let scratch = Scratch::create(page, n, engine, probe)?;
    let outcome = Session::start(&scratch).map(|mut session| {
        let tally = run_blocks(&mut session, &scratch, blocks);
        session.finish();
        tally
    });
    scratch.remove();
    outcome
}

fn run_blocks(session: &mut Session, scratch: &Scratch, blocks: &[Block]) -> Tally {
    let page_started = Instant::now();
    let mut tally = Tally::default();
    let mut given_up = false;
    for block in blocks {
        let count = block.steps.len();
        let plural = if count == 1 { "" } else { "s" };
        let label = format!(
            "line {:<5} {count} command{plural}{}",
            block.line,
            if block.options.setup { ", setup" } else { "" }
        );
        if given_up {
            println!("  skip  {label}   (not run: an earlier command failed)");
            tally.not_run += 1;
            continue;
        }
        let started = Instant::now();
        let (failure, note) = run_block(session, scratch, block);
        let seconds = started.elapsed().as_secs_f64();
        match failure {
            None => {
                tally.passed += 1;
                println!("  ok    {label:<32} {seconds:5.1} s{note}");
            }
            Some(failure) => {
                tally.failed += 1;
                given_up = failure.fatal;
                println!("  FAIL  {label:<32} {seconds:5.1} s{note}");
                report(&failure);
            }
        }
    }
    tally.seconds = page_started.elapsed().as_secs_f64();
    tally
}

/// Runs a block's commands; the first failure, and a note for the report. Where the
/// block shows output, the scratch HOME in what was printed reads `/home/you`.
fn run_block<'a>(
    session: &mut Session,
    scratch: &Scratch,
    block: &'a Block,
) -> (Option<BlockFailure<'a>>, String) {
    let mut note = String::new();
    if block.options.needs_registry {
        match session.run(&registry_script(scratch), COMMAND_TIMEOUT) {
            Ok(outcome) if outcome.output.contains("started") => {
                note = "   (a registry of the runner's on 127.0.0.1:5000)".into();
            }
            Ok(_) => {}
            Err(failure) => {
                let failure = BlockFailure {
                    step: &block.steps[0],
                    what: format!("the runner could not start a registry: {failure:?}"),
                    output: String::new(),
                    fatal: true,
                };
                return (Some(failure), note);
            }
        }
    }
    let home = scratch.path("home").to_string_lossy().into_owned();
    let mut first_failure = None;
    for (i, step) in block.steps.iter().enumerate() {
        if i > 0 && starts_server(&block.steps[i - 1].command) {
            let _ = session.run(&wait_script(&ports(&step.command)), COMMAND_TIMEOUT);
        }
        let expected_exit = if i + 1 == block.steps.len() {
            block.options.exit
        } else {
            0
        };
        let failure = match session.run(&step.command, COMMAND_TIMEOUT) {
            Ok(outcome) if outcome.exit != expected_exit => Some(BlockFailure {
                step,
                what: format!("exit code {}, expected {expected_exit}", outcome.exit),
                output: outcome.output,
                fatal: true,
            }),
            Ok(_) if block.options.setup || step.output.iter().all(|l| l.trim().is_empty()) => None,
            // The book's reader is `you`: their home reads /home/you, as the pages write it.
            Ok(outcome) => {
                matching::compare(&step.output, &outcome.output.replace(&home, "/home/you"))
                    .err()
                    .map(|mismatch| BlockFailure {
                        step,
                        what: describe(&mismatch, outcome.exit),
                        output: outcome.output,
                        fatal: false,
                    })
            }
            Err(Failure::Syntax(error)) => Some(BlockFailure {
                step,
                what: format!("bash cannot parse it: {error}"),
                output: String::new(),
                fatal: true,
            }),
            Err(Failure::Timeout(limit, output)) => Some(BlockFailure {
                step,
                what: format!(
                    "still running after {} s: killed, with the page's shell",
                    limit.as_secs()
                ),
                output,
                fatal: true,
            }),
            Err(Failure::Ended(output)) => Some(BlockFailure {
                step,
                what: "the page's shell ended during it".into(),
                output,
                fatal: true,
            }),
        };
        if let Some(failure) = failure {
            let fatal = failure.fatal;
            first_failure.get_or_insert(failure);
            if fatal {
                break;
            }
        }
    }
    (first_failure, note)
}

fn shown_path(page: &Path) -> String {
    page.strip_prefix(project_root())
        .unwrap_or(page)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every marker of the book and the decks parses (the runner itself is not run here).
    #[test]
    fn every_runnable_marker_parses() {
        for dir in ["chapters", "slides"] {
            for entry in std::fs::read_dir(project_root().join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if let Err(error) = parse::blocks(&text) {
                        panic!("{}: {error}", path.display());
                    }
                }
            }
        }
    }
}
