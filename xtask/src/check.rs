//! `cargo xtask check N`: a student's chapter N — its tests against their workshop,
//! a pass/fail board, and for each failure the hint that matches its symptom.

use anyhow::{bail, Result};

use crate::manifest::{project_root, Chapter, Manifest};
use crate::results::{self, TestRun};
use crate::util;

pub fn run(manifest: &Manifest, number: u32) -> Result<()> {
    let chapter = manifest.chapter(number)?;
    if !chapter.has_tests() {
        bail!("chapter {number} has no tests yet");
    }
    util::ensure_packages(util::PACKAGES)?;
    println!(
        "checking chapter {number} — {} (about {} minutes of hands-on; cargo test -p myferry --test {})",
        chapter.title, chapter.minutes, chapter.test
    );
    let run = results::run_tests(&project_root(), "myferry", &chapter.test, None)?;
    results::save(&chapter.test, &run)?;
    print_board(chapter, &run);
    if run.all_passed() {
        println!(
            "\nchapter {number} is done: all {} tests pass. 🎉",
            run.tests.len()
        );
        if let Some(next) = manifest.chapters.iter().find(|c| c.number == number + 1) {
            println!("next: chapters/{}.md", next.slug);
        }
        Ok(())
    } else {
        bail!(
            "chapter {number}: {} of {} tests fail",
            run.failed().max(usize::from(!run.built)),
            run.tests.len()
        )
    }
}

fn print_board(chapter: &Chapter, run: &TestRun) {
    if !run.built {
        println!(
            "\nthe tests did not build — fix the compile errors first:\n\n{}",
            run.build_error
        );
        return;
    }
    println!();
    for (name, passed) in &run.tests {
        println!(
            "  {} {}",
            if *passed { "pass" } else { "FAIL" },
            name.replace('_', " ")
        );
    }
    const SHOWN: usize = 4;
    for (name, output) in run.failures.iter().take(SHOWN) {
        println!("\n── {name} ──");
        let shown: Vec<&str> = output
            .lines()
            .filter(|l| {
                !l.trim_start().starts_with("at ")
                    && !l.contains("stack backtrace")
                    && !l.starts_with("note: ")
            })
            .filter(|l| {
                !l.trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
                    || !l.contains(": ")
            })
            .take(18)
            .collect();
        println!("{}", shown.join("\n"));
        for hint in hints_for(chapter, output) {
            println!("hint: {hint}");
        }
    }
    if run.failures.len() > SHOWN {
        println!(
            "\n({} more failures not shown: fix the first ones first, they often share a cause)",
            run.failures.len() - SHOWN
        );
    }
    if !run.failures.is_empty() {
        println!(
            "\nthe whole output: cargo test -p myferry --test {}",
            chapter.test
        );
    }
}

/// The chapter's hints whose symptom appears in a failure's output.
pub fn hints_for<'a>(chapter: &'a Chapter, output: &str) -> Vec<&'a str> {
    chapter
        .hints
        .iter()
        .filter(|hint| output.contains(&hint.symptom))
        .map(|hint| hint.hint.as_str())
        .collect()
}
