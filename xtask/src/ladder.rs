//! `cargo xtask ladder`: proof that the chapters are really incremental.
//!
//! For every N: a scratch copy of the workshop with chapters 0..=N filled from the
//! solutions must pass chapter N's tests (0..=N with `--full`) and fail at least one
//! test of chapter N+1 — so each chapter's tests really check that chapter's code.
//! N = -1 (nothing filled) checks that chapter 0's tests fail on the bare workshop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::manifest::{project_root, Chapter, Manifest};
use crate::regions::Region;
use crate::results::{run_tests, TestRun};
use crate::util::copy_tree;
use crate::workshop::{fill_regions, generate, Tree};

/// What the scratch workspace needs besides the workshop's sources.
const COPIED: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "chapters.toml",
    ".cargo",
    "scripts",
    "tests",
    "probe",
    "solutions",
    "xtask/Cargo.toml",
    "xtask/src",
];

pub fn run(manifest: &Manifest, full: bool) -> Result<()> {
    let root = project_root();
    let scratch = root.join("target/ladder/workspace");
    // The project's own target dir: the dependencies are built once for both. (The
    // scratch's `myferry` is another package to cargo: it never mixes with yours,
    // though target/debug/myferry is relinked when you next build your own.)
    let target = root.join("target");
    prepare_scratch(&root, &scratch)?;
    let tree = generate(manifest)?;
    let chapters: Vec<&Chapter> = manifest.chapters.iter().filter(|c| c.has_tests()).collect();
    let skipped: Vec<String> = manifest
        .chapters
        .iter()
        .filter(|c| !c.has_tests())
        .map(|c| c.number.to_string())
        .collect();
    if !skipped.is_empty() {
        println!(
            "(chapters without tests yet, skipped: {})",
            skipped.join(", ")
        );
    }
    let own_width = if full { 6 + 6 * chapters.len() } else { 14 };
    println!(
        "{:<4} {:<22} {:<own_width$} {:<22} {:>6}",
        "N", "filled", "own tests", "next chapter's tests", "time"
    );
    let mut failures = Vec::new();
    for step in -1..chapters.len() as i64 {
        let started = Instant::now();
        let upto = (step >= 0).then(|| chapters[step as usize]);
        let upto_number = upto.map(|c| c.number);
        write_workshop(&scratch, &tree, &|r| {
            upto_number.is_some_and(|n| r.chapter <= n)
        })?;
        let own = match upto {
            None => "—".to_string(),
            Some(chapter) => {
                let own_chapters: Vec<&Chapter> = if full {
                    chapters.iter().take(step as usize + 1).copied().collect()
                } else {
                    vec![chapter]
                };
                let mut summary = Vec::new();
                for own in own_chapters {
                    let result = run_tests(&scratch, "myferry", &own.test, Some(&target))?;
                    if !result.all_passed() {
                        failures.push(format!(
                            "with chapters 0..={} filled, {} fails:\n{}",
                            chapter.number,
                            own.test,
                            explain(&result)
                        ));
                    }
                    summary.push(format!("{}/{}", result.passed(), result.tests.len()));
                }
                format!("pass {}", summary.join(" "))
            }
        };
        let next = match chapters.get((step + 1) as usize) {
            None => "— (last chapter)".to_string(),
            Some(next) => {
                let result = run_tests(&scratch, "myferry", &next.test, Some(&target))?;
                if !result.built {
                    failures.push(format!(
                        "{} did not build:\n{}",
                        next.test, result.build_error
                    ));
                } else if result.failed() == 0 {
                    failures.push(format!(
                        "{} passes with its chapter still stubbed: its tests do not check chapter {}'s code",
                        next.test, next.number
                    ));
                }
                format!("{} fail of {}", result.failed(), result.tests.len())
            }
        };
        let filled = upto.map_or("nothing".to_string(), |c| {
            format!("0..={} ({})", c.number, c.topic)
        });
        println!(
            "{:<4} {:<22} {:<own_width$} {:<22} {:>5.0}s",
            step,
            filled,
            own,
            next,
            started.elapsed().as_secs_f64()
        );
    }
    if !failures.is_empty() {
        bail!("the ladder is broken:\n\n{}", failures.join("\n\n"));
    }
    println!("\nthe ladder holds: every chapter passes on its own and the next one's tests catch its stubs");
    Ok(())
}

fn explain(run: &TestRun) -> String {
    if !run.built {
        return run.build_error.clone();
    }
    run.failures
        .iter()
        .map(|(name, text)| {
            format!(
                "--- {name}\n{}",
                text.lines().take(25).collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Copies the workspace (without the workshop's sources and build output).
pub fn prepare_scratch(root: &Path, scratch: &Path) -> Result<()> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)
            .with_context(|| format!("failed to clear {}", scratch.display()))?;
    }
    for item in COPIED {
        copy_tree(&root.join(item), &scratch.join(item))?;
    }
    Ok(())
}

/// Writes the generated workshop into the scratch copy, with the regions `fill`
/// picks filled in from the solutions. Files whose contents do not change are left
/// alone, so cargo rebuilds little.
pub fn write_workshop(scratch: &Path, tree: &Tree, fill: &dyn Fn(&Region) -> bool) -> Result<()> {
    for (relative, generated) in tree {
        let name = relative.display().to_string();
        let contents = if name.ends_with(".rs") {
            let solution =
                std::fs::read_to_string(project_root().join("solutions").join(relative))?;
            fill_regions(&name, generated, &solution, fill)?.0
        } else {
            generated.clone()
        };
        let path: PathBuf = scratch.join("workshop").join(relative);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            std::fs::write(&path, contents)?;
        }
    }
    Ok(())
}
