//! `cargo xtask check N`: a student's chapter N — its tests against their workshop,
//! a pass/fail board, and for each failure the hint that matches its symptom.

use anyhow::{bail, Result};

use crate::manifest::{project_root, Chapter, Manifest};
use crate::results::{self, TestRun};
use crate::util;

/// `which` is a chapter (`4`) or one part of a two-evening chapter (`4a`).
pub fn run(manifest: &Manifest, which: &str) -> Result<()> {
    let (chapter, part) = manifest.chapter_or_part(which)?;
    let number = chapter.number;
    if !chapter.has_tests() {
        bail!("chapter {number} has no tests yet");
    }
    util::ensure_packages(util::PACKAGES)?;
    let (title, minutes, filter) = match part {
        Some(part) => (
            format!("{} — part {}, {}", chapter.title, part.name, part.title),
            part.minutes,
            chapter.part_filter(part),
        ),
        None => (chapter.title.clone(), chapter.minutes, Vec::new()),
    };
    let shown = if filter.is_empty() {
        String::new()
    } else {
        format!(" -- {}", filter.join(" "))
    };
    println!(
        "checking chapter {which} — {title} (about {minutes} minutes of hands-on; cargo test -p myferry --test {}{shown})",
        chapter.test
    );
    let run = results::run_some_tests(&project_root(), "myferry", &chapter.test, None, &filter)?;
    if part.is_none() {
        // `progress` shows the whole chapter's latest run, not a part's.
        results::save(&chapter.test, &run)?;
    }
    print_board(chapter, &run, &shown);
    if run.all_passed() {
        println!(
            "\nchapter {which} is done: all {} tests pass. 🎉",
            run.tests.len()
        );
        let next_part =
            part.and_then(|p| chapter.parts.iter().skip_while(|q| q.name != p.name).nth(1));
        match next_part {
            Some(next) => println!(
                "next: part {} in chapters/{}.md, then `cargo xtask check {number}{}`",
                next.name,
                chapter.page_of(next),
                next.name
            ),
            None => {
                if let Some(next) = manifest.chapters.iter().find(|c| c.number == number + 1) {
                    println!("next: chapters/{}.md", next.slug);
                }
            }
        }
        Ok(())
    } else {
        bail!(
            "chapter {which}: {} of {} tests fail",
            run.failed().max(usize::from(!run.built)),
            run.tests.len()
        )
    }
}

fn print_board(chapter: &Chapter, run: &TestRun, filter: &str) {
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
            "\nthe whole output: cargo test -p myferry --test {}{filter}",
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
