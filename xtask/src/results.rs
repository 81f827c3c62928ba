//! Running a chapter's tests and reading what libtest printed: the board that
//! `check`, `progress` and `ladder` show, and the record `progress` reads later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::manifest::project_root;

/// One chapter's test run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TestRun {
    /// Test name → passed.
    pub tests: BTreeMap<String, bool>,
    /// The output printed for each failed test (libtest's "---- name stdout ----").
    pub failures: BTreeMap<String, String>,
    /// Whether the test binary built at all.
    pub built: bool,
    /// What cargo printed on stderr when it did not build.
    pub build_error: String,
    /// Seconds since the epoch when it ran.
    pub when: u64,
}

impl TestRun {
    pub fn passed(&self) -> usize {
        self.tests.values().filter(|ok| **ok).count()
    }

    pub fn failed(&self) -> usize {
        self.tests.len() - self.passed()
    }

    pub fn all_passed(&self) -> bool {
        self.built && !self.tests.is_empty() && self.failed() == 0
    }
}

/// Runs `cargo test -p PACKAGE --test TEST --no-fail-fast` in `workspace`, quietly.
pub fn run_tests(
    workspace: &Path,
    package: &str,
    test: &str,
    target_dir: Option<&Path>,
) -> Result<TestRun> {
    run_some_tests(workspace, package, test, target_dir, &[])
}

/// `run_tests` with libtest arguments after `--` (name filters, `--skip NAME`).
pub fn run_some_tests(
    workspace: &Path,
    package: &str,
    test: &str,
    target_dir: Option<&Path>,
    filter: &[String],
) -> Result<TestRun> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace).args([
        "test",
        "-p",
        package,
        "--test",
        test,
        "--no-fail-fast",
        "--",
        "--color",
        "never",
    ]);
    command.args(filter);
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let output = command
        .output()
        .with_context(|| format!("failed to run cargo test for {test}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut run = parse(&stdout);
    run.built = stdout.contains("running ");
    if !run.built {
        run.build_error = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(40)
            .collect::<Vec<_>>()
            .join("\n");
    }
    run.when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Ok(run)
}

/// Reads libtest's plain output: `test NAME ... ok|FAILED` and the failure sections.
pub fn parse(stdout: &str) -> TestRun {
    let mut run = TestRun::default();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, verdict)) = rest.rsplit_once(" ... ") {
                match verdict.trim() {
                    "ok" => drop(run.tests.insert(name.to_string(), true)),
                    "FAILED" => drop(run.tests.insert(name.to_string(), false)),
                    _ => {}
                }
            }
        }
    }
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            current = Some(name.to_string());
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            current = None;
        }
        if let Some(name) = &current {
            let text = run.failures.entry(name.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    run
}

/// Where the latest run of a chapter's tests is kept for `progress`.
pub fn record_path(test: &str) -> PathBuf {
    project_root()
        .join("target/xtask/results")
        .join(format!("{test}.json"))
}

pub fn save(test: &str, run: &TestRun) -> Result<()> {
    let path = record_path(test);
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(&path, serde_json::to_vec_pretty(run)?)?;
    Ok(())
}

pub fn load(test: &str) -> Option<TestRun> {
    serde_json::from_slice(&std::fs::read(record_path(test)).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_verdicts_and_failure_sections() {
        let out = "running 2 tests\ntest a ... ok\ntest b ... FAILED\n\nfailures:\n\n---- b stdout ----\nboom EINVAL\n\nfailures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed\n";
        let run = parse(out);
        assert_eq!(run.tests.len(), 2);
        assert_eq!(run.passed(), 1);
        assert!(run.failures["b"].contains("EINVAL"));
    }
}
