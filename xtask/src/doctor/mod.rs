//! `cargo xtask doctor`: what this machine can run.
//!
//! A container engine is a client of kernel features (namespaces, cgroups, overlayfs,
//! seccomp, netfilter) and of a few programs. Whether a machine has them is written in
//! /proc and /sys, so the doctor only reads: it runs as the invoking user (the cargo
//! runner does not escalate xtask), changes nothing, and never guesses where a filesystem
//! is mounted, because /proc/self/mountinfo says (see proc_pid_mountinfo(5)).
//!
//! It works in three steps: `Host::probe` gathers the facts, `checks` judges them (one
//! line each: ok, warn, FAIL or skip, with the command that fixes a problem), and the
//! chapter table says which chapters of chapters.toml can run here.
//!
//! The modules follow those steps: `facts` (with `environment`, `cgroups` and `elf`)
//! gathers, `checks` judges, `chapters` holds the chapter table, and `report` prints.

pub(crate) mod cgroups;
mod chapters;
mod checks;
mod elf;
mod environment;
mod facts;
mod report;

use std::io::IsTerminal;

use anyhow::Result;

use crate::manifest::Manifest;
use chapters::{print_capstone, print_chapter};
use checks::checks;
use facts::Host;
use report::print_check;

/// How a check came out; the order is from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Ok,
    Skip,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }

    /// The ANSI colour of the label: green, dim, yellow, bold red.
    fn colour(self) -> &'static str {
        match self {
            Status::Ok => "32",
            Status::Skip => "2",
            Status::Warn => "33",
            Status::Fail => "1;31",
        }
    }
}

/// One line of the report.
struct Check {
    name: &'static str,
    status: Status,
    /// What was found; further lines are printed under the first.
    finding: String,
    /// The command that fixes a problem, when there is one.
    fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, finding: impl Into<String>) -> Self {
        let finding = finding.into();
        Check {
            name,
            status,
            finding,
            fix: None,
        }
    }

    fn ok(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Ok, finding)
    }

    fn skip(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Skip, finding)
    }

    fn warn(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Warn, finding)
    }

    fn fail(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Fail, finding)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs the checks and prints the report; fails when a check failed.
pub fn run() -> Result<()> {
    let host = Host::probe();
    let checks = checks(&host);
    let chapters = Manifest::load()?.chapters;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();

    println!("ferry doctor: what this machine can run (it only reads; nothing is changed)\n");
    for check in &checks {
        print_check(check, colour);
    }
    println!("\nchapters (each builds on the ones before it)");
    let width = chapters
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0);
    for chapter in &chapters {
        print_chapter(chapter, &host, width, colour);
    }
    print_capstone(&host, width, colour);

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} check(s) failed: run the fix commands above"
    );
    Ok(())
}
