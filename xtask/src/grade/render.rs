//! The grade as people read it (a table), as scripts read it (JSON) and as CI
//! dashboards read it (JUnit XML). Pinned by snapshots in `snapshots/`.

use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;

use super::{ChapterGrade, Outcome, Report, WEIGHTING};

/// The table: one row per chapter, then the total.
pub fn table(report: &Report) -> String {
    let mut out = format!("myferry at {}", short(&report.commit));
    match &report.tests_from {
        None => {
            out.push_str(", graded with its own tests/ (--tests-from REF uses pristine ones)\n")
        }
        Some(p) => {
            let verdict = match p.tests_modified {
                true => "your tests/ differ from them and were not used",
                false => "your tests/ are the same",
            };
            let _ = writeln!(
                out,
                ", graded with the tests of {} ({}): {verdict}",
                p.reference,
                short(&p.commit)
            );
        }
    }
    let width = report
        .chapters
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0)
        .max("chapter".len());
    let _ = writeln!(
        out,
        "\n  {:>2}  {:<width$}  {:>14}  {:>6}",
        "#", "chapter", "passed", "points"
    );
    for chapter in &report.chapters {
        let passed = match chapter.built {
            true => format!("{}/{}", chapter.passed(), chapter.total()),
            false => "does not build".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:>2}  {:<width$}  {:>14}  {:>6}",
            chapter.number,
            chapter.title,
            passed,
            chapter.points()
        );
    }
    let _ = writeln!(
        out,
        "\ntotal: {} of {} points\n({WEIGHTING})",
        report.points(),
        report.total()
    );
    if let Some(chapter) = report.chapters.iter().find(|c| c.points() < c.total()) {
        let _ = writeln!(
            out,
            "what chapter {} still lacks: cargo xtask check {}",
            chapter.number, chapter.number
        );
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    commit: &'a str,
    /// The ref given to --tests-from; null when the student's own tests/ were used.
    tests_from: Option<&'a str>,
    tests_from_commit: Option<&'a str>,
    /// Whether the student's tests/ differs from tests_from's; null when not checked.
    tests_modified: Option<bool>,
    weighting: &'static str,
    chapters: Vec<JsonChapter<'a>>,
    total: Totals,
}

#[derive(Serialize)]
struct JsonChapter<'a> {
    number: u32,
    slug: &'a str,
    title: &'a str,
    test: &'a str,
    built: bool,
    passed: usize,
    failed: usize,
    total: usize,
    points: usize,
    failing: Vec<&'a str>,
}

#[derive(Serialize)]
struct Totals {
    passed: usize,
    failed: usize,
    total: usize,
    points: usize,
}

/// The JSON report, pretty-printed.
pub fn json(report: &Report) -> Result<String> {
    let chapters = report
        .chapters
        .iter()
        .map(|c| JsonChapter {
            number: c.number,
            slug: &c.slug,
            title: &c.title,
            test: &c.test,
            built: c.built,
            passed: c.passed(),
            failed: c.failed(),
            total: c.total(),
            points: c.points(),
            failing: c
                .tests
                .iter()
                .filter(|t| t.outcome != Outcome::Passed)
                .map(|t| t.name.as_str())
                .collect(),
        })
        .collect();
    let pristine = report.tests_from.as_ref();
    let json = JsonReport {
        commit: &report.commit,
        tests_from: pristine.map(|p| p.reference.as_str()),
        tests_from_commit: pristine.map(|p| p.commit.as_str()),
        tests_modified: pristine.map(|p| p.tests_modified),
        weighting: WEIGHTING,
        chapters,
        total: Totals {
            passed: report.passed(),
            failed: report.total() - report.passed(),
            total: report.total(),
            points: report.points(),
        },
    };
    Ok(serde_json::to_string_pretty(&json)? + "\n")
}

/// JUnit XML: a testsuite per chapter, a testcase per test. A failed test has a
/// `<failure>` with its output; a test of a chapter that does not build, or one
/// its binary never reached, has an `<error>` (the build error is the suite's
/// `<system-err>`).
pub fn junit(report: &Report) -> String {
    let errors = |c: &ChapterGrade| {
        c.tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::NotBuilt | Outcome::NotRun))
            .count()
    };
    let failures = |c: &ChapterGrade| {
        c.tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Failed(_)))
            .count()
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ferry grade: myferry at {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        short(&report.commit),
        report.total(),
        report.chapters.iter().map(failures).sum::<usize>(),
        report.chapters.iter().map(errors).sum::<usize>(),
    );
    for chapter in &report.chapters {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
            chapter.test,
            chapter.total(),
            failures(chapter),
            errors(chapter)
        );
        for test in &chapter.tests {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\"",
                chapter.test,
                escape(&test.name)
            );
            let _ = match &test.outcome {
                Outcome::Passed => writeln!(out, "{open}/>"),
                Outcome::Failed(output) => writeln!(
                    out,
                    "{open}>\n      <failure message=\"test failed\">{}</failure>\n    </testcase>",
                    escape(output)
                ),
                Outcome::NotRun => writeln!(
                    out,
                    "{open}>\n      <error message=\"did not run: the test binary stopped before it\"/>\n    </testcase>"
                ),
                Outcome::NotBuilt => writeln!(
                    out,
                    "{open}>\n      <error message=\"does not build\"/>\n    </testcase>"
                ),
            };
        }
        if !chapter.built {
            let _ = writeln!(
                out,
                "    <system-err>{}</system-err>",
                escape(&chapter.build_error)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text for XML: markup escaped; terminal colour sequences and the control
/// characters XML 1.0 forbids (a test's output may hold both) dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters, up to a final byte in @..~.
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
    out
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::super::{Pristine, TestCase};
    use super::*;

    fn case(name: &str, outcome: Outcome) -> TestCase {
        TestCase {
            name: name.into(),
            outcome,
        }
    }

    fn chapter(number: u32, slug: &str, title: &str, tests: Vec<TestCase>) -> ChapterGrade {
        let test = format!("ch{}", slug.replace('-', "_"));
        ChapterGrade {
            number,
            slug: slug.into(),
            title: title.into(),
            test,
            built: !tests.iter().any(|t| t.outcome == Outcome::NotBuilt),
            build_error: String::new(),
            tests,
        }
    }

    /// Three chapters: all passing, one failure and one test never run, not built.
    fn report() -> Report {
        let mut not_built = chapter(
            2,
            "02-namespaces",
            "Namespaces",
            vec![
                case("hostname_is_isolated", Outcome::NotBuilt),
                case("pid_1_is_the_command", Outcome::NotBuilt),
            ],
        );
        not_built.build_error =
            "error[E0308]: mismatched types\n --> workshop/src/namespaces.rs:12:5".into();
        Report {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            tests_from: Some(Pristine {
                reference: "origin/main".into(),
                commit: "89abcdef0123456789abcdef0123456789abcdef".into(),
                tests_modified: true,
            }),
            chapters: vec![
                chapter(
                    0,
                    "00-process",
                    "A process",
                    vec![
                        case("exit_code_passes_through", Outcome::Passed),
                        case("stdin_reaches_the_command", Outcome::Passed),
                    ],
                ),
                chapter(
                    1,
                    "01-filesystem",
                    "A filesystem of its own",
                    vec![
                        case("chroot_is_escaped", Outcome::Passed),
                        case(
                            "proc_is_mounted",
                            Outcome::Failed(
                                "assertion failed: <ENOENT> & \"/proc\" \u{1b}[31mmissing\u{1b}[0m\n"
                                    .into(),
                            ),
                        ),
                        case("sys_is_read_only", Outcome::NotRun),
                    ],
                ),
                not_built,
            ],
        }
    }

    #[test]
    fn table() {
        insta::assert_snapshot!(super::table(&report()));
    }

    #[test]
    fn table_with_the_students_own_tests() {
        let mut report = report();
        report.tests_from = None;
        report.chapters.truncate(1);
        insta::assert_snapshot!(super::table(&report));
    }

    #[test]
    fn json() {
        insta::assert_snapshot!(super::json(&report()).unwrap());
    }

    #[test]
    fn junit() {
        insta::assert_snapshot!(super::junit(&report()));
    }
}
