//! `cargo xtask grade`: every chapter's tests against the student's `myferry`, as
//! points. A chapter is worth one point per test and earns them when all its tests
//! pass — when it is done, as `cargo xtask ladder` proves the reference is. Counting
//! each passing test instead would pay for nothing: the tests of the plumbing the
//! workshop is given (usage errors, `--help`) pass on an untouched workshop. The
//! table still shows every chapter's passed/total. A chapter whose tests do not
//! build scores 0 and says "does not build".
//!
//! With `--tests-from REF` the tests, their harness and snapshots, the chapter list
//! and the cargo runner come from a pristine git ref, in a scratch copy of the
//! workspace under target/grade/ that holds the student's workshop/ (see
//! [`pristine`]): an edited tests/ cannot inflate a grade, and the student's tree
//! is never touched. The report says whether their tests/ differs from REF.
//!
//! Output: a table for people, `--json` for scripts, `--junit` for CI dashboards;
//! `--classroom` writes GitHub Classroom's autograding.json instead (see [`classroom`]).

mod classroom;
mod pristine;
mod render;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::manifest::{project_root, Chapter, Manifest};
use crate::results::{self, TestRun};
use crate::util;

pub use pristine::Pristine;

/// How points are counted, as the reports say it.
pub const WEIGHTING: &str =
    "a chapter earns one point per test once all its tests pass; one that does not build scores 0";

/// Options of `cargo xtask grade`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a machine-readable JSON report instead of the table
    #[arg(long, conflicts_with = "junit")]
    json: bool,
    /// Print JUnit XML instead of the table: one testsuite per chapter, one testcase per test
    #[arg(long)]
    junit: bool,
    /// Write the report to FILE instead of stdout (the table is still printed)
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Take tests/ (harness and snapshots too) from this pristine git ref, e.g. origin/main or a tag
    #[arg(long, value_name = "REF")]
    tests_from: Option<String>,
    /// Grade only chapter N (repeat for several)
    #[arg(long = "chapter", value_name = "N")]
    chapters: Vec<u32>,
    /// Write .github/classroom/autograding.json (one GitHub Classroom step per chapter) and stop
    #[arg(long, conflicts_with_all = ["json", "junit", "output", "tests_from", "chapters"])]
    classroom: bool,
}

/// What was graded and how it went.
#[derive(Debug)]
pub struct Report {
    /// The student's commit (`git rev-parse HEAD`), "unknown" outside git.
    pub commit: String,
    /// Where the tests came from, with `--tests-from`.
    pub tests_from: Option<Pristine>,
    pub chapters: Vec<ChapterGrade>,
}

/// One chapter's tests and points.
#[derive(Debug)]
pub struct ChapterGrade {
    pub number: u32,
    pub slug: String,
    pub title: String,
    pub test: String,
    pub built: bool,
    /// What cargo said when the tests did not build.
    pub build_error: String,
    pub tests: Vec<TestCase>,
}

#[derive(Debug)]
pub struct TestCase {
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Passed,
    /// Failed, with what the test printed.
    Failed(String),
    /// Declared in the test file but never reported: the test binary stopped early.
    NotRun,
    /// The chapter's tests did not build.
    NotBuilt,
}

impl ChapterGrade {
    /// The grade of a chapter from its run. `declared` are the tests its file
    /// declares, so the total stays right when the binary does not build or dies.
    pub fn new(chapter: &Chapter, declared: &[String], run: &TestRun) -> ChapterGrade {
        let mut tests: Vec<TestCase> = Vec::new();
        if run.built {
            for (name, passed) in &run.tests {
                let outcome = match passed {
                    true => Outcome::Passed,
                    false => Outcome::Failed(run.failures.get(name).cloned().unwrap_or_default()),
                };
                tests.push(TestCase {
                    name: name.clone(),
                    outcome,
                });
            }
        }
        for name in declared {
            let reported = run.built
                && run
                    .tests
                    .keys()
                    .any(|run_name| run_name == name || run_name.ends_with(&format!("::{name}")));
            if !reported {
                let outcome = if run.built {
                    Outcome::NotRun
                } else {
                    Outcome::NotBuilt
                };
                tests.push(TestCase {
                    name: name.clone(),
                    outcome,
                });
            }
        }
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        ChapterGrade {
            number: chapter.number,
            slug: chapter.slug.clone(),
            title: chapter.title.clone(),
            test: chapter.test.clone(),
            built: run.built,
            build_error: run.build_error.clone(),
            tests,
        }
    }

    pub fn passed(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| t.outcome == Outcome::Passed)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.total() - self.passed()
    }

    pub fn total(&self) -> usize {
        self.tests.len()
    }

    /// See [`WEIGHTING`].
    pub fn points(&self) -> usize {
        if self.built && self.failed() == 0 {
            self.total()
        } else {
            0
        }
    }
}

impl Report {
    pub fn passed(&self) -> usize {
        self.chapters.iter().map(ChapterGrade::passed).sum()
    }

    pub fn total(&self) -> usize {
        self.chapters.iter().map(ChapterGrade::total).sum()
    }

    pub fn points(&self) -> usize {
        self.chapters.iter().map(ChapterGrade::points).sum()
    }
}

pub fn run(manifest: &Manifest, args: Args) -> Result<()> {
    if args.classroom {
        return classroom::write(manifest);
    }
    util::ensure_packages(util::PACKAGES)?;
    let root = project_root();
    // With --tests-from, the scratch copy builds into the project's target/, so the
    // dependencies are built once for both.
    let (workspace, tests_from, target_dir) = match &args.tests_from {
        None => (root.clone(), None, None),
        Some(reference) => {
            let (workspace, pristine) = pristine::prepare(&root, reference)?;
            (workspace, Some(pristine), Some(root.join("target")))
        }
    };
    // With --tests-from, REF's chapter list: deleting a chapter cannot hide it.
    let pristine_manifest;
    let manifest = match tests_from {
        Some(_) => {
            pristine_manifest = Manifest::read(&workspace)?;
            &pristine_manifest
        }
        None => manifest,
    };
    let mut chapters = Vec::new();
    for chapter in select(manifest, &workspace, &args.chapters)? {
        eprintln!(
            "grading chapter {}: cargo test -p myferry --test {}",
            chapter.number, chapter.test
        );
        let file = chapter.test_file(&workspace);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("failed to read {}", file.display()))?;
        let run = results::run_tests(&workspace, "myferry", &chapter.test, target_dir.as_deref())?;
        if tests_from.is_none() {
            // The student's own tests: what `check` would record, so `progress` shows it.
            results::save(&chapter.test, &run)?;
        }
        chapters.push(ChapterGrade::new(chapter, &declared_tests(&text), &run));
    }
    let report = Report {
        commit: pristine::head_commit(&root),
        tests_from,
        chapters,
    };
    let text = if args.json {
        render::json(&report)?
    } else if args.junit {
        render::junit(&report)
    } else {
        render::table(&report)
    };
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("failed to write {}", path.display()))?;
            if args.json || args.junit {
                print!("{}", render::table(&report));
            }
            eprintln!("report written to {}", path.display());
        }
    }
    Ok(())
}

/// The chapters to grade: those with a test file, or the ones asked for.
fn select<'a>(
    manifest: &'a Manifest,
    workspace: &std::path::Path,
    asked: &[u32],
) -> Result<Vec<&'a Chapter>> {
    let with_tests = |c: &&Chapter| c.test_file(workspace).exists();
    if asked.is_empty() {
        return Ok(manifest.chapters.iter().filter(with_tests).collect());
    }
    let mut chosen = Vec::new();
    for number in asked {
        let chapter = manifest.chapter(*number)?;
        if !with_tests(&chapter) {
            bail!("chapter {number} has no tests yet");
        }
        chosen.push(chapter);
    }
    Ok(chosen)
}

/// The names of the `#[test]` functions a chapter's test file declares.
pub fn declared_tests(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = false;
    for line in text.lines().map(str::trim) {
        if line == "#[test]" {
            pending = true;
        } else if pending && !line.starts_with("#[") && !line.starts_with("//") {
            let name = line
                .strip_prefix("pub ")
                .unwrap_or(line)
                .strip_prefix("fn ")
                .and_then(|rest| rest.split('(').next());
            names.extend(name.map(|n| n.trim().to_string()));
            pending = false;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chapter() -> Chapter {
        Chapter {
            number: 1,
            slug: "01-filesystem".into(),
            title: "A filesystem of its own".into(),
            topic: "filesystem".into(),
            test: "ch01_filesystem".into(),
            minutes: 70,
            hints: Vec::new(),
            probes: Vec::new(),
            written_early: Vec::new(),
            parts: Vec::new(),
        }
    }

    #[test]
    fn declared_tests_are_read_from_the_source() {
        let text = "#[test]\nfn a() {}\n\n#[test]\n#[should_panic]\n// why\npub fn b() {}\nfn helper() {}\n";
        assert_eq!(declared_tests(text), ["a", "b"]);
    }

    #[test]
    fn every_test_file_declares_its_tests_plainly() {
        // The static count is what autograding.json's points and a not-built
        // chapter's total rely on: each chapter must declare at least one test.
        let manifest = Manifest::load().unwrap();
        for chapter in manifest.chapters.iter().filter(|c| c.has_tests()) {
            let text = std::fs::read_to_string(chapter.test_file(&project_root())).unwrap();
            let declared = declared_tests(&text);
            assert!(!declared.is_empty(), "{} declares no #[test]", chapter.test);
            assert_eq!(
                declared.len(),
                text.matches("#[test]").count(),
                "{}: a #[test] whose fn was not found",
                chapter.test
            );
        }
    }

    #[test]
    fn a_chapter_that_does_not_build_scores_zero_of_its_declared_tests() {
        let run = TestRun {
            built: false,
            build_error: "error[E0425]".into(),
            ..TestRun::default()
        };
        let grade = ChapterGrade::new(&chapter(), &["a".into(), "b".into()], &run);
        assert_eq!((grade.points(), grade.total()), (0, 2));
        assert!(grade.tests.iter().all(|t| t.outcome == Outcome::NotBuilt));
    }

    #[test]
    fn tests_the_binary_never_reported_count_as_failed() {
        let mut run = results::parse("running 2 tests\ntest a ... ok\n");
        run.built = true;
        let grade = ChapterGrade::new(&chapter(), &["a".into(), "b".into()], &run);
        assert_eq!((grade.passed(), grade.failed(), grade.total()), (1, 1, 2));
        assert_eq!(
            grade.points(),
            0,
            "a chapter earns its points when it is done"
        );
        assert_eq!(grade.tests[1].outcome, Outcome::NotRun);
    }
}
