//! Solution regions: the parser and the three ways xtask rewrites them.
//!
//! ```text
//! // BEGIN SOLUTION ch01 "title the student reads"
//! <reference code>
//! // BEGIN STUB            (optional: an explicit stub, each line commented out)
//! // <stub code>
//! // END SOLUTION
//! ```
//! * `stub`: the workshop's form (the explicit stub, or `todo!("chapter N: title — see chapters/SLUG.md")`);
//! * `solution`: the reference form, used by catch-up and the ladder to fill chapters in.

use anyhow::{bail, Result};

const BEGIN: &str = "// BEGIN SOLUTION ";
const STUB: &str = "// BEGIN STUB";
const END: &str = "// END SOLUTION";

/// A piece of a source file: plain text, or a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Region(Region),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub chapter: u32,
    pub title: String,
    pub indent: String,
    /// The lines between the markers as written (reference code, or a student's code).
    pub body: Vec<String>,
    /// The explicit stub, uncommented, without indentation; `None` for the default todo!().
    pub stub: Option<Vec<String>>,
}

/// Splits a file into text and regions. Errors name the file and line.
pub fn parse(file: &str, text: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut plain = String::new();
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((number, line)) = lines.next() {
        let trimmed = line.trim();
        let Some(header) = trimmed.strip_prefix(BEGIN) else {
            if trimmed == STUB || trimmed == END {
                bail!(
                    "{file}:{}: `{trimmed}` without a BEGIN SOLUTION before it",
                    number + 1
                );
            }
            plain.push_str(line);
            continue;
        };
        let (chapter, title) =
            parse_header(header).map_err(|why| anyhow::anyhow!("{file}:{}: {why}", number + 1))?;
        let indent = line[..line.len() - line.trim_start().len()].to_string();
        let mut body = Vec::new();
        let mut stub: Option<Vec<String>> = None;
        let mut closed = false;
        for (_, inner) in lines.by_ref() {
            let inner_trimmed = inner.trim();
            if inner_trimmed == END {
                closed = true;
                break;
            }
            if inner_trimmed == STUB {
                stub = Some(Vec::new());
                continue;
            }
            match stub.as_mut() {
                Some(stub) => {
                    let code = inner_trimmed.strip_prefix("//").unwrap_or(inner_trimmed);
                    stub.push(code.strip_prefix(' ').unwrap_or(code).to_string());
                }
                None => body.push(inner.trim_end_matches('\n').to_string()),
            }
        }
        if !closed {
            bail!("{file}:{}: BEGIN SOLUTION without END SOLUTION", number + 1);
        }
        if !plain.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut plain)));
        }
        pieces.push(Piece::Region(Region {
            chapter,
            title,
            indent,
            body,
            stub,
        }));
    }
    if !plain.is_empty() {
        pieces.push(Piece::Text(plain));
    }
    Ok(pieces)
}

/// `ch01 "title"` → (1, "title").
fn parse_header(header: &str) -> std::result::Result<(u32, String), String> {
    let (chapter, title) = header
        .split_once(' ')
        .ok_or_else(|| format!("expected `{BEGIN}chNN \"title\"`, found `{header}`"))?;
    let chapter = chapter
        .strip_prefix("ch")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("expected a chapter like ch01, found `{chapter}`"))?;
    let title = title
        .trim()
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| format!("the title must be in double quotes: `{title}`"))?;
    if title.contains(['"', '\\']) {
        return Err(format!(
            "a title may not hold quotes or backslashes: `{title}`"
        ));
    }
    Ok((chapter, title.to_string()))
}

impl Region {
    fn header(&self) -> String {
        format!(
            "{}{BEGIN}ch{:02} \"{}\"\n",
            self.indent, self.chapter, self.title
        )
    }

    fn footer(&self) -> String {
        format!("{}{END}\n", self.indent)
    }

    /// The region as the workshop has it: markers around the stub. `chapter` is
    /// the chapter's slug and topic (`01-filesystem`, `filesystem`).
    pub fn render_stub(&self, slug: &str, topic: &str) -> String {
        let mut out = self.header();
        match &self.stub {
            Some(lines) => {
                for line in lines {
                    out.push_str(&format!("{}{line}\n", self.indent));
                }
            }
            None => out.push_str(&format!("{}{}\n", self.indent, self.todo(slug, topic))),
        }
        out.push_str(&self.footer());
        out
    }

    /// The default stub: what the student sees and what a panic reports
    /// (`chapter 1 (filesystem) is not done yet: ...`, see errors::describe_panic).
    pub fn todo(&self, slug: &str, topic: &str) -> String {
        // todo!() takes a format string: a title's braces (`${NAME:-word}`) are doubled.
        let title = self
            .title
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('{', "{{")
            .replace('}', "}}");
        format!(
            "todo!(\"chapter {} ({topic}): {title} — see chapters/{slug}.md\")",
            self.chapter
        )
    }

    /// The region with its reference code (as the solutions have it, without the stub).
    pub fn render_solution(&self) -> String {
        let mut out = self.header();
        for line in &self.body {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&self.footer());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "fn a() {\n    // BEGIN SOLUTION ch02 \"set the name\"\n    real();\n    // END SOLUTION\n}\nfn b() {\n    // BEGIN SOLUTION ch03 \"limits\"\n    limit();\n    // BEGIN STUB\n    // note();\n    // Ok(())\n    // END SOLUTION\n}\n";

    fn regions(pieces: &[Piece]) -> Vec<&Region> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Region(r) => Some(r),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn parses_default_and_explicit_stubs() {
        let pieces = parse("x.rs", SOURCE).unwrap();
        let regions = regions(&pieces);
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[0].chapter, 2);
        assert_eq!(regions[0].body, ["    real();"]);
        assert_eq!(
            regions[1].stub.as_deref(),
            Some(&["note();".to_string(), "Ok(())".to_string()][..])
        );
    }

    #[test]
    fn renders_stubs_and_solutions() {
        let pieces = parse("x.rs", SOURCE).unwrap();
        let regions = regions(&pieces);
        assert_eq!(
            regions[1].render_stub("03-cgroups", "cgroups"),
            "    // BEGIN SOLUTION ch03 \"limits\"\n    note();\n    Ok(())\n    // END SOLUTION\n"
        );
        assert!(regions[0]
            .render_stub("02-namespaces", "namespaces")
            .contains("todo!(\"chapter 2 (namespaces): set the"));
        assert_eq!(
            regions[0].render_solution(),
            "    // BEGIN SOLUTION ch02 \"set the name\"\n    real();\n    // END SOLUTION\n"
        );
    }

    #[test]
    fn unclosed_regions_and_stray_markers_are_errors() {
        assert!(parse("x.rs", "// BEGIN SOLUTION ch01 \"t\"\nx\n").is_err());
        assert!(parse("x.rs", "// END SOLUTION\n").is_err());
        assert!(parse("x.rs", "// BEGIN SOLUTION 1 \"t\"\n// END SOLUTION\n").is_err());
        assert!(parse(
            "x.rs",
            "// BEGIN SOLUTION ch01 \"a \\\"b\\\"\"\n// END SOLUTION\n"
        )
        .is_err());
    }
}
