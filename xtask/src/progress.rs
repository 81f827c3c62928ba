//! `cargo xtask progress`: where a student stands — stubs left per chapter (read
//! from the code) and tests passing (from the latest `check`, or `--run`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::manifest::{project_root, Manifest};
use crate::regions::{self, Piece, Region};
use crate::results;
use crate::workshop::{generate, source_files};

pub fn run(manifest: &Manifest, rerun: bool) -> Result<()> {
    let stubs = count_regions(manifest)?;
    println!(
        "{:<3} {:<28} {:>12} {:>14}  last run",
        "#", "chapter", "stubs left", "tests"
    );
    for chapter in &manifest.chapters {
        let (left, total) = stubs.get(&chapter.number).copied().unwrap_or((0, 0));
        let run = if rerun && chapter.has_tests() {
            let run = results::run_tests(&project_root(), "myferry", &chapter.test, None)?;
            results::save(&chapter.test, &run)?;
            Some(run)
        } else {
            results::load(&chapter.test)
        };
        let (tests, when) = match (&run, chapter.has_tests()) {
            (_, false) => ("no tests yet".to_string(), String::new()),
            (None, true) => ("not run".to_string(), String::new()),
            (Some(run), true) if !run.built => ("does not build".to_string(), ago(run.when)),
            (Some(run), true) => (
                format!("{}/{} pass", run.passed(), run.tests.len()),
                ago(run.when),
            ),
        };
        println!(
            "{:<3} {:<28} {:>12} {:>14}  {}",
            chapter.number,
            chapter.title,
            format!("{left} of {total}"),
            tests,
            when
        );
    }
    println!(
        "\nrun a chapter's tests: cargo xtask check N   ·   missed a week: cargo xtask catch-up N"
    );
    Ok(())
}

/// Chapter → (regions still exactly as generated, all regions) in workshop/src.
fn count_regions(manifest: &Manifest) -> Result<BTreeMap<u32, (usize, usize)>> {
    let generated = generate(manifest)?;
    let src = project_root().join("workshop/src");
    let mut counts: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for relative in source_files(&src)? {
        let file = Path::new("src").join(&relative);
        let text = std::fs::read_to_string(src.join(&relative))?;
        let stubs = match generated.get(&file) {
            Some(stub_text) => regions_of(&file, stub_text)?,
            None => Vec::new(),
        };
        for region in regions_of(&file, &text)? {
            let entry = counts.entry(region.chapter).or_default();
            entry.1 += 1;
            if stubs.contains(&region) {
                entry.0 += 1;
            }
        }
    }
    Ok(counts)
}

fn regions_of(file: &Path, text: &str) -> Result<Vec<Region>> {
    Ok(regions::parse(&file.display().to_string(), text)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Region(region) => Some(region),
            Piece::Text(_) => None,
        })
        .collect())
}

fn ago(when: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(when);
    match now.saturating_sub(when) {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}
