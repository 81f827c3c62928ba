//! What the runner says about a page: a line per block, and for a failure the
//! command, what went wrong (the first line that differs, or the exit code) and the
//! end of its output.

use super::matching::Mismatch;
use super::parse::Step;

/// What happened to a page's blocks.
#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub not_run: usize,
    pub seconds: f64,
}

impl Tally {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.not_run == 0
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let blocks = self.passed + self.failed + self.not_run;
        write!(f, "{blocks} blocks, {} passed", self.passed)?;
        if self.failed > 0 {
            write!(f, ", {} failed", self.failed)?;
        }
        if self.not_run > 0 {
            write!(f, ", {} not run", self.not_run)?;
        }
        write!(f, " ({:.1} s)", self.seconds)
    }
}

/// Why a block failed: the command, and what it did.
pub struct BlockFailure<'a> {
    pub step: &'a Step,
    pub what: String,
    pub output: String,
    /// The rest of the page depends on this command having worked.
    pub fatal: bool,
}

/// An output mismatch, for the report: the first line that differs, both ways.
pub fn describe(mismatch: &Mismatch, exit: i32) -> String {
    let line = |l: &Option<String>, end: &str| l.clone().unwrap_or_else(|| end.to_string());
    format!(
        "its output differs (exit code {exit}; compared after normalising ids, times, sizes, the engine's name, spaces):\n  expected: {}\n  got:      {}",
        line(&mismatch.expected, "(nothing more: the page's output ends here)"),
        line(&mismatch.got, "(nothing more: the output ends here)")
    )
}

/// Prints a failed block's command, what went wrong, and the end of its output.
pub fn report(failure: &BlockFailure) {
    let mut command = failure.step.command.lines();
    let first = command.next().unwrap_or("");
    let more = if command.next().is_some() { " …" } else { "" };
    println!("        line {}: $ {first}{more}", failure.step.line);
    for line in failure.what.lines() {
        println!("        {line}");
    }
    let lines: Vec<&str> = failure.output.lines().collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        println!("        (it printed nothing)");
        return;
    }
    const SHOWN: usize = 40;
    println!("        its output:");
    if lines.len() > SHOWN {
        println!("        | … ({} lines before)", lines.len() - SHOWN);
    }
    for line in &lines[lines.len().saturating_sub(SHOWN)..] {
        println!("        | {line}");
    }
}
