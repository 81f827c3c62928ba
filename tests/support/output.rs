//! What a finished command left behind, printed in full when an assertion fails.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The engine's output, with the ladder's `ENGINE: note:` lines taken out.
pub struct Output {
    pub command: String,
    /// The exit code, or 128+n when the engine itself was killed by signal n.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The ladder's notes, taken out of stdout/stderr but shown on failure.
    pub notes: String,
    pub timed_out: bool,
}

/// Lines a not-yet-done chapter prints (see ARCHITECTURE.md): not the container's output.
fn is_note(line: &str) -> bool {
    line.starts_with("ferry: note: ") || line.starts_with("myferry: note: ")
}

/// `text` without its note lines, and the note lines.
fn split_notes(text: &str) -> (String, String) {
    let (notes, rest): (Vec<&str>, Vec<&str>) =
        text.split_inclusive('\n').partition(|line| is_note(line));
    (rest.concat(), notes.concat())
}

impl Output {
    pub fn new(
        command: String,
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        timed_out: bool,
    ) -> Output {
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let (stdout, out_notes) = split_notes(&String::from_utf8_lossy(&stdout));
        let (stderr, err_notes) = split_notes(&String::from_utf8_lossy(&stderr));
        Output {
            command,
            code,
            stdout,
            stderr,
            notes: out_notes + &err_notes,
            timed_out,
        }
    }

    /// Asserts the exit code, showing everything when it differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert!(
            self.code == expected && !self.timed_out,
            "expected exit code {expected}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "expected stdout to contain {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "expected stderr to contain {needle:?}\n{self}"
        );
        self
    }

    /// stdout parsed as the probe's JSON report.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        self.assert_success();
        let line = self.stdout.lines().last().unwrap_or("");
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the probe's output is not JSON ({e})\n{self}"))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        if self.timed_out {
            writeln!(f, "(timed out after {:?}: killed)", super::TIMEOUT)?;
        }
        writeln!(f, "exit code: {}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)?;
        if !self.notes.is_empty() {
            write!(
                f,
                "--- notes (unfinished chapters; not compared) ---\n{}",
                self.notes
            )?;
        }
        Ok(())
    }
}
