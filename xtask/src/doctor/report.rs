//! Printing: the status column (coloured on a terminal) and a check's lines, with
//! its further findings and its fix indented under the first.

use super::{Check, Status};

/// Width of the status column and of the check names.
const MARK: usize = 6;
const NAME: usize = 13;

/// The status label, padded to its column (padding outside the colour codes).
pub(super) fn mark(status: Status, colour: bool) -> String {
    let label = status.label();
    let pad = " ".repeat(MARK - label.len());
    match colour {
        true => format!("\x1b[{}m{label}\x1b[0m{pad}", status.colour()),
        false => format!("{label}{pad}"),
    }
}

pub(super) fn print_check(check: &Check, colour: bool) {
    let indent = " ".repeat(2 + MARK + NAME);
    let mut lines = check.finding.lines();
    let first = lines.next().unwrap_or("");
    println!(
        "  {}{:<NAME$}{first}",
        mark(check.status, colour),
        check.name
    );
    for line in lines {
        println!("{indent}{line}");
    }
    if let Some(fix) = &check.fix {
        println!("{indent}fix: {fix}");
    }
}
