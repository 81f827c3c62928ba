//! The first pass over a Dockerfile (chapter 11): physical lines into logical
//! lines, then each logical line into an instruction.
//!
//! In file order:
//!
//! 1. **Parser directives**: `# escape=` and `# syntax=` count only in the
//!    comment lines at the very top; the first other line ends them.
//! 2. **Logical lines**: a line ending in the escape character (spaces after it
//!    allowed) goes on in the next one; comment lines and blank lines inside a
//!    continued instruction are skipped, as BuildKit does.
//! 3. **Heredocs**: a RUN, COPY or ADD whose words include `<<EOF` takes the
//!    following physical lines, up to a line that is exactly `EOF`, as a body.
//! 4. **Instructions**: the first word is the instruction's name (in any case),
//!    the rest its arguments, typed by [`super::instructions`].
//!
//! Every error points at a line and column of the file and quotes that line.

use super::instructions::{self, Failure, Parsed};
use super::*;

/// Parses a whole Dockerfile (see [`super::parse`]).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let (directives, mut next) = read_directives(&lines)?;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    while next < lines.len() {
        if is_blank_or_comment(lines[next]) {
            next += 1;
            continue;
        }
        let (pieces, after) = logical_line(&lines, next, directives.escape);
        // Whatever the join returns, the walk goes forward.
        next = after.max(next + 1);
        let line = Line::join(&pieces);
        let Some(words) = line.split_name() else {
            continue;
        };
        let errors = Errors {
            lines: &lines,
            line: &line,
        };
        let name = words.name.to_ascii_uppercase();
        let markers = match name.as_str() {
            "RUN" | "COPY" | "ADD" => instructions::heredoc_markers(words.rest, directives.escape),
            _ => Vec::new(),
        };
        let mut heredocs = Vec::new();
        for marker in markers {
            let (heredoc, after) = read_heredoc(&lines, next, &marker).ok_or_else(|| {
                errors.at(
                    words.rest_at + marker.offset,
                    format!(
                        "unterminated heredoc <<{0}: no line after it is exactly {0}",
                        marker.name
                    ),
                )
            })?;
            heredocs.push(heredoc);
            next = after;
        }
        let location = errors.location(words.name_at);
        let source = line.text.trim().to_string();
        let parsed = instructions::parse(&name, words.rest, heredocs, directives.escape).map_err(
            |Failure { offset, message }| {
                let at = if offset == usize::MAX {
                    words.name_at
                } else {
                    words.rest_at + offset
                };
                errors.at(at, message)
            },
        )?;
        match parsed {
            Parsed::From {
                base,
                name,
                platform,
            } => {
                if let Some(earlier) = stages
                    .iter()
                    .find(|stage| name.is_some() && stage.name == name)
                {
                    return Err(errors.at(
                        words.name_at,
                        format!(
                            "duplicate stage name {:?}: the FROM on line {} has it already",
                            name.unwrap_or_default(),
                            earlier.location.line
                        ),
                    ));
                }
                stages.push(Stage {
                    name,
                    base,
                    platform,
                    location,
                    source,
                    instructions: Vec::new(),
                });
            }
            Parsed::Instruction(kind) => {
                let instruction = Instruction {
                    kind,
                    location,
                    source,
                };
                match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instruction),
                    None if matches!(instruction.kind, Kind::Arg(_)) => {
                        global_args.push(instruction)
                    }
                    None => {
                        return Err(errors.at(
                            words.name_at,
                            format!(
                                "{name} before the first FROM: only ARG may come before FROM \
                                 (a build starts FROM an image, or FROM scratch)"
                            ),
                        ))
                    }
                }
            }
        }
    }
    if stages.is_empty() {
        let message = if global_args.is_empty() {
            "the Dockerfile has no instructions: it needs at least a FROM".to_string()
        } else {
            "the Dockerfile has no FROM: after the ARGs, a build starts FROM an image (or FROM scratch)"
                .to_string()
        };
        let line = global_args.last().map_or(1, |arg| arg.location.line);
        return Err(ParseError {
            location: Location { line, column: 1 },
            line_text: lines.get(line - 1).unwrap_or(&"").to_string(),
            message,
        });
    }
    Ok(Dockerfile {
        directives,
        global_args,
        stages,
    })
}

/// Whether a physical line is blank or a comment (`#` after optional spaces).
pub fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim_start();
    line.is_empty() || line.starts_with('#')
}

/// A physical line that continues: the line without its trailing escape
/// character (and the spaces or tabs after it), or `None` when it does not end
/// in one. An escaped escape (`echo \\`) is a character, not a continuation.
pub fn continued(line: &str, escape: char) -> Option<&str> {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let escapes = trimmed.chars().rev().take_while(|c| *c == escape).count();
    if escapes % 2 == 1 {
        trimmed.strip_suffix(escape)
    } else {
        None
    }
}

/// A physical line's share of a logical line: its index in the file (0-based)
/// and its text, the continuation escape removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<'a> {
    pub line: usize,
    pub text: &'a str,
}

/// Joins the physical lines from `first` (which is neither blank nor a comment)
/// into one logical line. A line that [`continued`] goes on in the next one;
/// blank and comment lines met inside the instruction are skipped; the end of the
/// file ends it too. Returns the pieces, in order, and the index of the first
/// line after them.
///
/// ```text
/// RUN apk add \          →  Piece { line: 0, text: "RUN apk add " }
///     # the server           (skipped)
///     busybox-extras         Piece { line: 2, text: "    busybox-extras" }
/// ```
pub fn logical_line<'a>(lines: &[&'a str], first: usize, escape: char) -> (Vec<Piece<'a>>, usize) {
    // BEGIN SOLUTION ch11 "join continued lines into one logical line: a trailing escape goes on in the next line, blank and comment lines inside are skipped"
    let mut pieces = Vec::new();
    let mut next = first;
    while let Some(&line) = lines.get(next) {
        next += 1;
        if next - 1 > first && is_blank_or_comment(line) {
            continue;
        }
        match continued(line, escape) {
            Some(kept) => pieces.push(Piece {
                line: next - 1,
                text: kept,
            }),
            None => {
                pieces.push(Piece {
                    line: next - 1,
                    text: line,
                });
                break;
            }
        }
    }
    (pieces, next)
    // END SOLUTION
}

/// A logical line: the joined text, and where each piece of it starts (an offset
/// into `text` and the physical line's index), to point errors at the file.
struct Line {
    text: String,
    starts: Vec<(usize, usize)>,
}

/// A logical line cut into its instruction name and the rest.
struct Words<'a> {
    name: &'a str,
    name_at: usize,
    rest: &'a str,
    rest_at: usize,
}

impl Line {
    fn join(pieces: &[Piece]) -> Line {
        let mut line = Line {
            text: String::new(),
            starts: Vec::new(),
        };
        for piece in pieces {
            line.starts.push((line.text.len(), piece.line));
            line.text.push_str(piece.text);
        }
        line
    }

    /// The first word and the rest after its spaces; `None` for an empty line
    /// (a lone continuation).
    fn split_name(&self) -> Option<Words<'_>> {
        let name_at = self.text.len() - self.text.trim_start().len();
        let after = &self.text[name_at..];
        if after.trim().is_empty() {
            return None;
        }
        let name_len = after.find(char::is_whitespace).unwrap_or(after.len());
        let rest_at =
            name_at + name_len + (after[name_len..].len() - after[name_len..].trim_start().len());
        Some(Words {
            name: &after[..name_len],
            name_at,
            rest: self.text[rest_at..].trim_end(),
            rest_at,
        })
    }
}

/// Makes errors that point into one logical line.
struct Errors<'a> {
    lines: &'a [&'a str],
    line: &'a Line,
}

impl Errors<'_> {
    /// The file position of a byte offset into the logical line.
    fn location(&self, offset: usize) -> Location {
        let (start, index) = self
            .line
            .starts
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .copied()
            .unwrap_or((0, 0));
        let end = offset.min(self.line.text.len());
        let column = self
            .line
            .text
            .get(start..end)
            .map_or(0, |s| s.chars().count())
            + 1;
        Location {
            line: index + 1,
            column,
        }
    }

    fn at(&self, offset: usize, message: String) -> ParseError {
        let location = self.location(offset);
        ParseError {
            location,
            line_text: self.lines.get(location.line - 1).unwrap_or(&"").to_string(),
            message,
        }
    }
}

/// Reads the parser directives at the top of the file. Returns them and the
/// index of the first line that is not one.
fn read_directives(lines: &[&str]) -> Result<(Directives, usize), ParseError> {
    let mut directives = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some((key, value)) = directive(line) else {
            return Ok((directives, index));
        };
        let error = |message: String| ParseError {
            location: Location {
                line: index + 1,
                column: 1,
            },
            line_text: line.to_string(),
            message,
        };
        match key.as_str() {
            "escape" | "syntax" | "check" if seen.contains(&key) => {
                return Err(error(format!(
                    "only one {key} parser directive can be used"
                )))
            }
            "escape" => match value {
                "\\" => directives.escape = '\\',
                "`" => directives.escape = '`',
                _ => {
                    return Err(error(format!(
                        "invalid escape character {value:?}: the escape directive takes \\ or `"
                    )))
                }
            },
            "syntax" => directives.syntax = Some(value.to_string()),
            // `# check=skip=...` configures BuildKit's linter, which ferry has not.
            "check" => {}
            // An unknown directive is a comment, and ends the directives.
            _ => return Ok((directives, index)),
        }
        seen.push(key);
    }
    Ok((directives, lines.len()))
}

/// `# key=value` with a key of letters: a lower-cased key and the trimmed value.
fn directive(line: &str) -> Option<(String, &str)> {
    let body = line.trim_start().strip_prefix('#')?;
    let (key, value) = body.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim()))
}

/// Reads one heredoc's body from line `first` on: the lines up to its
/// terminator. Returns the heredoc and the index after the terminator, or `None`
/// when the file ends first.
fn read_heredoc(
    lines: &[&str],
    first: usize,
    marker: &instructions::Marker,
) -> Option<(Heredoc, usize)> {
    let mut content = String::new();
    for (index, line) in lines.iter().enumerate().skip(first) {
        let line = if marker.strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        if line == marker.name {
            let heredoc = Heredoc {
                name: marker.name.clone(),
                content,
                expand: marker.expand,
            };
            return Some((heredoc, index + 1));
        }
        content.push_str(line);
        content.push('\n');
    }
    None
}
