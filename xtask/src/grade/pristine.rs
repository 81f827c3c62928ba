//! `--tests-from REF`: grade with pristine tests, in a scratch copy of the workspace.
//!
//! target/grade/workspace gets everything that is not the student's code from REF
//! (`git archive REF PATHS | tar -x`): tests/ with its harness and snapshots, the
//! chapter manifest, the cargo runner, the workspace manifest, the probe. Then the
//! student's workshop/ and Cargo.lock are copied in, and their workshop/Cargo.toml
//! keeps its dependencies but gets REF's `[[test]]` targets, so a target cannot be
//! pointed at another file. The student's tree is only read, never written: there is
//! nothing to restore, even when grading is interrupted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::copy_tree;

/// Paths taken from REF: everything the tests and their build rely on but the workshop.
const FROM_REF: &[&str] = &[
    "Cargo.toml",
    "chapters.toml",
    ".cargo",
    "scripts",
    "probe",
    "solutions",
    "xtask",
    "tests",
    "workshop/Cargo.toml",
];

/// Where the tests came from.
#[derive(Debug)]
pub struct Pristine {
    /// The ref as given (`origin/main`, a tag).
    pub reference: String,
    /// The commit it names.
    pub commit: String,
    /// Whether the student's tests/ differs from REF's (edited, added or removed files).
    pub tests_modified: bool,
}

/// Builds the scratch workspace; returns its path and where its tests came from.
pub fn prepare(root: &Path, reference: &str) -> Result<(PathBuf, Pristine)> {
    let commit = git(
        root,
        &["rev-parse", "--verify", &format!("{reference}^{{commit}}")],
    )
    .with_context(|| {
        format!(
            "`{reference}` is not a commit of this repository (fetch it first: git fetch origin)"
        )
    })?;
    let pristine = Pristine {
        reference: reference.to_string(),
        tests_modified: tests_differ(root, &commit)?,
        commit,
    };
    let workspace = root.join("target/grade/workspace");
    clear_keeping_target(&workspace)?;
    extract(root, &pristine.commit, &workspace)?;
    for entry in std::fs::read_dir(root.join("workshop")).context("failed to read workshop/")? {
        let entry = entry?;
        if entry.file_name() != "Cargo.toml" {
            copy_tree(
                &entry.path(),
                &workspace.join("workshop").join(entry.file_name()),
            )?;
        }
    }
    if root.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), workspace.join("Cargo.lock"))?;
    }
    let manifest = workspace.join("workshop/Cargo.toml");
    let merged = with_pristine_test_targets(
        &std::fs::read_to_string(root.join("workshop/Cargo.toml"))?,
        &std::fs::read_to_string(&manifest)?,
    )?;
    std::fs::write(&manifest, merged)?;
    Ok((workspace, pristine))
}

/// `git diff --quiet REF -- tests`, plus files in tests/ that git does not track.
fn tests_differ(root: &Path, commit: &str) -> Result<bool> {
    let diff = Command::new("git")
        .current_dir(root)
        .args(["diff", "--quiet", commit, "--", "tests"])
        .status()
        .context("failed to run git diff")?;
    let untracked = git(
        root,
        &["ls-files", "--others", "--exclude-standard", "--", "tests"],
    )?;
    match diff.code() {
        Some(0) => Ok(!untracked.is_empty()),
        Some(1) => Ok(true),
        _ => bail!("`git diff --quiet {commit} -- tests` failed ({diff})"),
    }
}

/// Empties the scratch workspace but its target/ (the probe it built stays).
fn clear_keeping_target(workspace: &Path) -> Result<()> {
    std::fs::create_dir_all(workspace)?;
    for entry in std::fs::read_dir(workspace)? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("failed to clear {}", path.display()))?;
    }
    Ok(())
}

/// `git archive COMMIT FROM_REF... | tar -x -C workspace`.
fn extract(root: &Path, commit: &str, workspace: &Path) -> Result<()> {
    let mut archive = Command::new("git")
        .current_dir(root)
        .args(["archive", "--format=tar", commit, "--"])
        .args(FROM_REF)
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run git archive")?;
    let tar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(workspace)
        .stdin(archive.stdout.take().expect("piped"))
        .status()
        .context("failed to run tar")?;
    let archived = archive.wait()?;
    if !archived.success() || !tar.success() {
        bail!(
            "failed to extract {} from {commit} (git archive: {archived}, tar: {tar})",
            FROM_REF.join(" ")
        );
    }
    Ok(())
}

/// The student's workshop/Cargo.toml with REF's `[[test]]` targets (and `autotests`).
fn with_pristine_test_targets(student: &str, pristine: &str) -> Result<String> {
    let mut student: toml::Table = student
        .parse()
        .context("failed to parse workshop/Cargo.toml")?;
    let pristine: toml::Table = pristine
        .parse()
        .context("failed to parse REF's workshop/Cargo.toml")?;
    match pristine.get("test") {
        Some(targets) => student.insert("test".into(), targets.clone()),
        None => student.remove("test"),
    };
    let autotests = pristine
        .get("package")
        .and_then(|p| p.get("autotests"))
        .cloned();
    if let (Some(toml::Value::Table(package)), Some(autotests)) =
        (student.get_mut("package"), autotests)
    {
        package.insert("autotests".into(), autotests);
    }
    Ok(toml::to_string(&student)?)
}

/// The commit checked out in `root`, "unknown" outside git.
pub fn head_commit(root: &Path) -> String {
    git(root, &["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".to_string())
}

/// `git ARGS` in `root`: its trimmed stdout, or an error with what it printed.
fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .context("failed to run git")?;
    if !output.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_targets_come_from_ref_and_dependencies_stay_the_students() {
        let student = r#"
[package]
name = "myferry"
autotests = true

[dependencies]
rand = "0.8"

[[test]]
name = "ch00_process"
path = "src/always_passes.rs"
"#;
        let pristine = r#"
[package]
name = "myferry"
autotests = false

[[test]]
name = "ch00_process"
path = "../tests/ch00_process.rs"
"#;
        let merged: toml::Table = with_pristine_test_targets(student, pristine)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            merged["test"][0]["path"].as_str(),
            Some("../tests/ch00_process.rs")
        );
        assert_eq!(merged["package"]["autotests"].as_bool(), Some(false));
        assert_eq!(merged["dependencies"]["rand"].as_str(), Some("0.8"));
    }
}
