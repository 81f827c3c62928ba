//! `cargo xtask test`: everything the project promises, in the order that fails
//! fastest — what CI runs and what a maintainer runs before pushing.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::hostcheck::HostState;
use crate::manifest::Manifest;
use crate::{ladder, util, workshop};

pub fn run(manifest: &Manifest) -> Result<()> {
    let started = Instant::now();
    util::ensure_packages(util::PACKAGES)?;
    util::ensure_rust_components()?;
    let mut timings: Vec<(&str, f64)> = Vec::new();
    let mut step = |name: &'static str, work: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        println!("\n==> {name}");
        let begun = Instant::now();
        work().with_context(|| format!("step failed: {name}"))?;
        timings.push((name, begun.elapsed().as_secs_f64()));
        Ok(())
    };
    step("rustfmt", &mut || {
        util::run(util::cargo().args(["fmt", "--all", "--check"]))
    })?;
    step("clippy (solutions, tests, xtask, probe)", &mut || {
        util::run(util::cargo().args([
            "clippy",
            "--quiet",
            "-p",
            "ferry",
            "-p",
            "xtask",
            "-p",
            "ferry-probe",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("workshop is fresh", &mut || {
        workshop::ensure(&workshop::generate(manifest)?, true)
    })?;
    step(
        "aarch64 type-check (students' ARM laptops)",
        &mut check_aarch64,
    )?;
    let host = HostState::capture();
    step("unit tests (xtask, probe, engine)", &mut || {
        util::run(util::cargo().args([
            "test",
            "--quiet",
            "-p",
            "xtask",
            "-p",
            "ferry-probe",
            "-p",
            "ferry",
            "--lib",
            "--bins",
        ]))
    })?;
    step(
        "chapter tests and capstone labs against the reference",
        &mut || {
            let mut command = util::cargo();
            command.args(["test", "--quiet", "-p", "ferry"]);
            for chapter in manifest.chapters.iter().filter(|c| c.has_tests()) {
                command.args(["--test", &chapter.test]);
            }
            // The capstone labs (chapters/capstone.md) are no chapter but run here too.
            command.args(["--test", "capstone"]);
            util::run(&mut command)
        },
    )?;
    step("the ladder (--full)", &mut || ladder::run(manifest, true))?;
    step("the pages' order of steps (ladder --steps)", &mut || {
        crate::steps::run(manifest, &[])
    })?;
    // The site and the decks as a reader meets them, in headless chromium: every
    // internal link, image and anchor of the book resolves; every deck renders and
    // no slide overflows.
    step("the book, its links in a browser", &mut || {
        crate::links::run()
    })?;
    step("the decks render and fit", &mut || {
        crate::slides::run(false, true, None)
    })?;
    // Every shell block a page or deck marks runnable, against the reference:
    // no page shows a command or an output the engine no longer gives.
    step("runnable snippets of the book and decks", &mut || {
        crate::snippets::run(&[])
    })?;
    step("host check", &mut || {
        HostState::ensure_unchanged_since(&host)
    })?;
    println!(
        "\nall checks passed in {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    for (name, seconds) in timings {
        println!("  {seconds:>6.1} s  {name}");
    }
    Ok(())
}

/// Type-checks the engines and the probe for aarch64 when that target's standard
/// library is installed (`rustup target add aarch64-unknown-linux-gnu`) and so is a
/// C cross-compiler (ring, under rustls, builds C even for `cargo check`: Debian's
/// gcc-aarch64-linux-gnu); says so and moves on when not. Syscall tables and inline
/// asm differ per arch.
fn check_aarch64() -> Result<()> {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == TARGET)
        })
        .unwrap_or(false);
    if !installed {
        println!("skipped: the {TARGET} target is not installed (rustup target add {TARGET})");
        return Ok(());
    }
    let cross_cc = std::process::Command::new("aarch64-linux-gnu-gcc")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !cross_cc {
        println!("skipped: no aarch64 C compiler for ring (apt-get install gcc-aarch64-linux-gnu)");
        return Ok(());
    }
    util::run(util::cargo().args([
        "check",
        "--quiet",
        "-p",
        "ferry",
        "-p",
        "myferry",
        "-p",
        "ferry-probe",
        "--all-targets",
        "--target",
        TARGET,
    ]))
}
