//! `cargo xtask ladder --steps`: the page's order of steps is the order the engine
//! reaches the stubs.
//!
//! A chapter's page promises "take the steps in this order: after each, your engine
//! gets one step further and stops at the next". For each chapter asked for, a
//! scratch copy of the workshop with the chapters before it filled in is built with
//! the page's first k steps filled, for k = 0, 1, ..., n; the chapter's probes
//! (commands in chapters.toml, what the page's "Try it" runs) are run in order, and
//! the first line of their output that says the chapter is not done must name
//! step k+1: its todo!()'s title, or the consequence its polite stub prints. With
//! every step filled, the probes run with no such line and exit 0.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::fixture;
use crate::ladder::{prepare_scratch, write_workshop};
use crate::manifest::{project_root, Chapter, Manifest, Part};
use crate::regions::{self, Piece, Region};
use crate::util;
use crate::workshop::{generate, source_files};

/// How long one probe may take before it counts as hanging.
const PROBE_LIMIT: Duration = Duration::from_secs(60);

/// One step of a page: its heading and the region (stub) it fills.
#[derive(Debug)]
struct Step {
    heading: String,
    region: Region,
}

impl Step {
    /// What the engine prints when it reaches this step's stub unfilled.
    fn reached(&self, line: &str) -> bool {
        match polite_consequence(&self.region) {
            Some(consequence) => line.contains("note:") && line.contains(&consequence),
            None => line.contains(&self.region.title),
        }
    }
}

pub fn run(manifest: &Manifest, numbers: &[u32]) -> Result<()> {
    let root = project_root();
    let scratch = root.join("target/ladder/workspace");
    let target = root.join("target");
    prepare_scratch(&root, &scratch)?;
    let tree = generate(manifest)?;
    let work = root.join("target/ladder/steps");
    let rootfs = work.join("rootfs");
    fixture::busybox_rootfs(&rootfs, Some(&fixture::build_probe()?))?;
    let regions = solution_regions(&root)?;
    let chosen: Vec<&Chapter> = if numbers.is_empty() {
        manifest
            .chapters
            .iter()
            .filter(|c| !c.probes.is_empty())
            .collect()
    } else {
        numbers
            .iter()
            .map(|n| manifest.chapter(*n))
            .collect::<Result<_>>()?
    };
    let mut failures = Vec::new();
    for chapter in chosen {
        if chapter.probes.is_empty() {
            bail!(
                "chapter {} has no probes in chapters.toml: nothing to run after each step",
                chapter.number
            );
        }
        let (pages, text) = read_pages(&root, chapter)?;
        let steps = page_steps(chapter, &text, &regions)?;
        println!(
            "\nchapter {} ({}): {} steps in {}",
            chapter.number,
            chapter.topic,
            steps.len(),
            pages
        );
        for filled in 0..=steps.len() {
            let started = Instant::now();
            let titles: Vec<&str> = steps[..filled]
                .iter()
                .map(|s| s.region.title.as_str())
                .collect();
            let number = chapter.number;
            write_workshop(&scratch, &tree, &|r| {
                r.chapter < number || (r.chapter == number && titles.contains(&r.title.as_str()))
            })?;
            build(&scratch, &target)?;
            let engine = target.join("debug/myferry");
            // Notes of polite stubs further on are not stops: the engine carries on.
            let next = next_step(chapter, &steps, filled);
            let later_notes: Vec<&Step> = steps
                .iter()
                .enumerate()
                .skip(filled)
                .filter(|(i, step)| Some(*i) != next && polite_consequence(&step.region).is_some())
                .map(|(_, step)| step)
                .collect();
            let passing = |line: &str| later_notes.iter().any(|step| step.reached(line));
            let seen = run_probes(chapter, &engine, &rootfs, &work.join("state"), &passing)?;
            let verdict = judge(chapter, &steps, filled, &seen);
            println!(
                "  {:>2} filled  {:<60} {:>4.0}s",
                filled,
                match &verdict {
                    Ok(what) => what.clone(),
                    Err(_) => "WRONG (below)".to_string(),
                },
                started.elapsed().as_secs_f64()
            );
            if let Err(why) = verdict {
                failures.push(format!(
                    "chapter {}, after step {filled}: {why}",
                    chapter.number
                ));
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "the pages' order of steps is not the engine's:\n\n{}",
            failures.join("\n\n")
        );
    }
    println!("\nevery step leads to the next: the engine reaches the stubs in the pages' order");
    Ok(())
}

/// What running the probes showed: the first line that says the chapter is not
/// done (with the probe that printed it), and whether every probe exited 0.
struct Seen {
    first_not_done: Option<(String, String)>,
    failed_probe: Option<String>,
}

/// The step the engine should stop at with `filled` steps done: the next one, but
/// past a stub the page has written early (the engine reaches it later).
fn next_step(chapter: &Chapter, steps: &[Step], filled: usize) -> Option<usize> {
    (filled..steps.len()).find(|&i| !chapter.written_early.contains(&steps[i].region.title))
}

fn judge(chapter: &Chapter, steps: &[Step], filled: usize, seen: &Seen) -> Result<String, String> {
    let next = next_step(chapter, steps, filled).map(|i| (i, &steps[i]));
    let early = steps
        .get(filled)
        .is_some_and(|step| chapter.written_early.contains(&step.region.title));
    match (next.map(|(_, step)| step), &seen.first_not_done) {
        (Some(next), Some((_, line))) if next.reached(line) => {
            let (number, _) = next.heading.split_once('.').unwrap_or(("?", ""));
            Ok(format!(
                "stops at step {number}{}",
                if early {
                    " (the page's next one is written early)"
                } else {
                    ""
                }
            ))
        }
        (Some(next), Some((probe, line))) => Err(format!(
            "the page's next step is \"{}\", but `{probe}` first says:\n    {line}",
            next.heading
        )),
        (Some(next), None) => Err(format!(
            "the page's next step is \"{}\", but no probe reached a stub of chapter {}{}",
            next.heading,
            chapter.number,
            seen.failed_probe
                .as_ref()
                .map(|p| format!(" (`{p}` failed)"))
                .unwrap_or_default()
        )),
        (None, Some((probe, line))) if filled == steps.len() => Err(format!(
            "every step is filled, but `{probe}` still says:\n    {line}"
        )),
        (None, Some(_)) => Ok("stops at a step written early".to_string()),
        (None, None) if filled < steps.len() => Err(format!(
            "step {} is not filled, but no probe reached it",
            filled + 1
        )),
        (None, None) => match &seen.failed_probe {
            Some(probe) => Err(format!("every step is filled, but `{probe}` failed")),
            None => Ok("every probe runs".to_string()),
        },
    }
}

/// Runs the chapter's probes in order, each in a mount namespace of its own, until
/// one says the chapter is not done (in a line `passing` does not wave through).
fn run_probes(
    chapter: &Chapter,
    engine: &Path,
    rootfs: &Path,
    state: &Path,
    passing: &dyn Fn(&str) -> bool,
) -> Result<Seen> {
    let marker = format!("chapter {} (", chapter.number);
    let mut seen = Seen {
        first_not_done: None,
        failed_probe: None,
    };
    for probe in &chapter.probes {
        let args: Vec<String> = probe
            .iter()
            .map(|a| a.replace("{rootfs}", &rootfs.display().to_string()))
            .collect();
        let shown = format!("myferry {}", probe.join(" "));
        let mut command = util::as_root("unshare");
        command
            .args(["--mount", "--propagation", "private", "--"])
            .arg(engine)
            .arg("--root")
            .arg(state)
            .args(&args)
            .stdin(std::process::Stdio::null());
        let output = util::output_within(&mut command, PROBE_LIMIT)
            .with_context(|| format!("`{shown}` did not finish"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        if let Some(line) = text
            .lines()
            .find(|l| l.contains(&marker) && l.contains("not done yet") && !passing(l))
        {
            seen.first_not_done = Some((shown, line.trim().to_string()));
            return Ok(seen);
        }
        if !output.status.success() && seen.failed_probe.is_none() {
            seen.failed_probe = Some(format!(
                "{shown}` (exit {:?}): `{}",
                output.status.code(),
                last_line(&text)
            ));
        }
    }
    Ok(seen)
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

fn build(scratch: &Path, target: &Path) -> Result<()> {
    let output = util::cargo()
        .current_dir(scratch)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--quiet", "-p", "myferry"])
        .output()
        .context("failed to run cargo build")?;
    if !output.status.success() {
        bail!(
            "the scratch workshop does not build:\n{}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(())
}

/// The chapter's pages (its own, then its parts'), as one text, and their names.
fn read_pages(root: &Path, chapter: &Chapter) -> Result<(String, String)> {
    let mut names = Vec::new();
    let mut text = String::new();
    for slug in chapter.pages() {
        let path = root.join("chapters").join(format!("{slug}.md"));
        text.push_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?,
        );
        text.push('\n');
        names.push(format!("chapters/{slug}.md"));
    }
    Ok((names.join(" + "), text))
}

/// Every region of the solutions, by chapter and title.
fn solution_regions(root: &Path) -> Result<Vec<Region>> {
    let mut all = Vec::new();
    for relative in source_files(&root.join("solutions"))?
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let path: PathBuf = root.join("solutions").join(&relative);
        let text = std::fs::read_to_string(&path)?;
        for piece in regions::parse(&format!("solutions/{}", relative.display()), &text)? {
            if let Piece::Region(region) = piece {
                all.push(region);
            }
        }
    }
    Ok(all)
}

/// The page's steps in order: every `### N. ...` (or `#### N. ...`) heading, with
/// the stub its section quotes (a `todo!("chapter N (topic): TITLE — see` or a
/// `BEGIN SOLUTION chNN "TITLE"` block). Every region of the chapter must be a step,
/// exactly once.
fn page_steps(chapter: &Chapter, page: &str, regions: &[Region]) -> Result<Vec<Step>> {
    let steps = quoted_steps(chapter, page, regions)?;
    let missing: Vec<&str> = regions
        .iter()
        .filter(|r| r.chapter == chapter.number)
        .filter(|r| !steps.iter().any(|s| s.region.title == r.title))
        .map(|r| r.title.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: these stubs of chapter {} are in no step of the page: {}",
            chapter.slug,
            chapter.number,
            missing.join("; ")
        );
    }
    if let Some(unknown) = chapter
        .written_early
        .iter()
        .find(|title| !steps.iter().any(|s| &s.region.title == *title))
    {
        bail!(
            "chapters.toml: chapter {}'s written_early names no step of its page: \"{unknown}\"",
            chapter.number
        );
    }
    Ok(steps)
}

/// The titles of the stubs taught by the pages of `chapter`'s parts up to and
/// including `last` (`catch-up 4a` fills these).
pub fn titles_through(root: &Path, chapter: &Chapter, last: &Part) -> Result<Vec<String>> {
    let regions = solution_regions(root)?;
    let mut pages: Vec<&str> = Vec::new();
    for part in &chapter.parts {
        if !pages.contains(&chapter.page_of(part)) {
            pages.push(chapter.page_of(part));
        }
        if part.name == last.name {
            break;
        }
    }
    let mut titles = Vec::new();
    for slug in pages {
        let path = root.join("chapters").join(format!("{slug}.md"));
        let page = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let steps = quoted_steps(chapter, &page, &regions)?;
        titles.extend(steps.into_iter().map(|step| step.region.title));
    }
    Ok(titles)
}

/// The steps a page quotes, in its order, without checking that they are all.
fn quoted_steps(chapter: &Chapter, page: &str, regions: &[Region]) -> Result<Vec<Step>> {
    let todo = format!("todo!(\"chapter {} ({}): ", chapter.number, chapter.topic);
    let begin = format!("BEGIN SOLUTION ch{:02} \"", chapter.number);
    let mut steps: Vec<Step> = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        if let Some(heading) = step_heading(line) {
            current = Some(heading);
            continue;
        }
        if line.starts_with("## ") || line.starts_with("### ") {
            current = None;
            continue;
        }
        let Some(heading) = current.as_ref() else {
            continue;
        };
        let title = if let Some((_, rest)) = line.split_once(&todo) {
            rest.split_once(" — see").map(|(title, _)| title)
        } else if let Some((_, rest)) = line.split_once(&begin) {
            rest.split_once('"').map(|(title, _)| title)
        } else {
            None
        };
        let Some(title) = title else { continue };
        let Some(region) = regions
            .iter()
            .find(|r| r.chapter == chapter.number && r.title == title)
        else {
            bail!(
                "{}: step \"{heading}\" quotes a stub that is not in solutions/: \"{title}\"",
                chapter.slug
            );
        };
        if !steps.iter().any(|s| s.region.title == title) {
            steps.push(Step {
                heading: heading.clone(),
                region: region.clone(),
            });
        }
        current = None;
    }
    Ok(steps)
}

/// `### 3. Find the program — `resolve_program`` → its text after the hashes.
fn step_heading(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix("### ")
        .or_else(|| line.strip_prefix("#### "))?;
    let (number, _) = rest.split_once(". ")?;
    number
        .chars()
        .all(|c| c.is_ascii_digit())
        .then(|| rest.trim().to_string())
}

/// The consequence a polite stub prints (`chapter_not_done(N, "topic", "CONSEQUENCE")`):
/// the last string literal of its stub; `None` for a todo!() stub.
fn polite_consequence(region: &Region) -> Option<String> {
    let stub = region.stub.as_ref()?.join(" ");
    if !stub.contains("chapter_not_done") {
        return None;
    }
    let literals: Vec<&str> = stub.split('"').skip(1).step_by(2).collect();
    literals.last().map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page with probes lists every stub of its chapter as a step.
    #[test]
    fn every_stub_is_a_step_of_its_page() {
        let manifest = Manifest::load().unwrap();
        let root = project_root();
        let regions = solution_regions(&root).unwrap();
        for chapter in manifest.chapters.iter().filter(|c| !c.probes.is_empty()) {
            let (_, page) = read_pages(&root, chapter).unwrap();
            if let Err(error) = page_steps(chapter, &page, &regions) {
                panic!("{error:#}");
            }
        }
    }

    #[test]
    fn headings_and_consequences() {
        assert_eq!(
            step_heading("### 3. Find the program — `resolve_program`").as_deref(),
            Some("3. Find the program — `resolve_program`")
        );
        assert_eq!(step_heading("### What the tests check"), None);
        let region = Region {
            chapter: 3,
            title: "t".into(),
            indent: String::new(),
            body: vec![],
            stub: Some(vec![
                "crate::note::chapter_not_done(3, \"cgroups\", \"running without limits\");".into(),
                "Ok(None)".into(),
            ]),
        };
        assert_eq!(
            polite_consequence(&region).as_deref(),
            Some("running without limits")
        );
    }
}
