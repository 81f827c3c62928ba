//! Finding runnable blocks in a page: the marker, its options, and the block's
//! commands with the output each one shows.
//!
//! ````text
//! <!-- runnable: exit=1 needs=registry -->
//! ```console
//! $ command one \
//!     continued
//! what command one prints
//! $ command two
//! ```
//! ````
//!
//! The marker is the line right before the fence; the fence's language does not
//! matter (`console` on pages, `text` on decks). Its options:
//!
//! * `exit=N`: the block's last command exits N (every other one must exit 0);
//! * `setup`: run the commands and check their exit codes, not their output;
//! * `needs=registry`: a registry must answer at `127.0.0.1:5000` (the page's own, or
//!   one the runner starts).

use std::fmt;

/// One marked block: its commands, in order, and how to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// 1-based line of the opening fence.
    pub line: usize,
    pub options: Options,
    pub steps: Vec<Step>,
}

/// What a marker says about its block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The exit code of the block's last command (the others must exit 0).
    pub exit: i32,
    /// Run the commands, check their exit codes, do not compare their output.
    pub setup: bool,
    /// A registry must answer at 127.0.0.1:5000 before the block runs.
    pub needs_registry: bool,
}

/// One `$ ` command and the lines the block shows after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the `$ `.
    pub line: usize,
    /// The command as the shell reads it: continuation lines and heredoc bodies included.
    pub command: String,
    /// The output the page shows, as written (blank lines included).
    pub output: Vec<String>,
}

/// A marker that cannot be run as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The options a marker may carry, for messages.
pub const OPTIONS: &str = "exit=N, setup, needs=registry";

/// Every marked block of a page, or the first marker that is wrong.
pub fn blocks(text: &str) -> Result<Vec<Block>, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let Some(options) = marker(lines[at]) else {
            at += 1;
            continue;
        };
        let options = options.map_err(|message| ParseError {
            line: at + 1,
            message,
        })?;
        let fence_at = at + 1;
        let Some(fence) = lines.get(fence_at).and_then(|l| Fence::open(l)) else {
            return Err(ParseError {
                line: at + 1,
                message: "a runnable marker must be the line right before a fenced block".into(),
            });
        };
        let body_from = fence_at + 1;
        let Some(len) = lines[body_from..].iter().position(|l| fence.closes(l)) else {
            return Err(ParseError {
                line: fence_at + 1,
                message: "this block is never closed".into(),
            });
        };
        let body: Vec<&str> = lines[body_from..body_from + len]
            .iter()
            .map(|l| fence.dedent(l))
            .collect();
        let steps = steps(&body, body_from + 1)?;
        if steps.is_empty() {
            return Err(ParseError {
                line: fence_at + 1,
                message: "a runnable block needs at least one `$ ` command".into(),
            });
        }
        blocks.push(Block {
            line: fence_at + 1,
            options,
            steps,
        });
        at = body_from + len + 1;
    }
    Ok(blocks)
}

/// `Some` for a line that is a runnable marker: its options, or what is wrong with them.
fn marker(line: &str) -> Option<Result<Options, String>> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let rest = inner.strip_prefix("runnable")?;
    let rest = if rest.is_empty() {
        rest
    } else {
        rest.strip_prefix(':')?
    };
    Some(options(rest))
}

fn options(text: &str) -> Result<Options, String> {
    let mut options = Options::default();
    for word in text.split(|c: char| c.is_whitespace() || c == ',') {
        match word.split_once('=') {
            _ if word.is_empty() => {}
            None if word == "setup" => options.setup = true,
            Some(("needs", "registry")) => options.needs_registry = true,
            Some(("exit", code)) => {
                options.exit = code
                    .parse()
                    .map_err(|_| format!("exit={code}: the exit code must be a number"))?;
            }
            _ => return Err(format!("unknown option `{word}` (the options: {OPTIONS})")),
        }
    }
    Ok(options)
}

/// A fence's character, length and indentation (a block inside a list item is indented).
struct Fence {
    char: char,
    len: usize,
    indent: usize,
}

impl Fence {
    fn open(line: &str) -> Option<Fence> {
        let body = line.trim_start_matches(' ');
        let char = body.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let len = body.chars().take_while(|c| *c == char).count();
        (len >= 3).then_some(Fence {
            char,
            len,
            indent: line.len() - body.len(),
        })
    }

    fn closes(&self, line: &str) -> bool {
        let body = line.trim();
        body.chars().take_while(|c| *c == self.char).count() >= self.len
            && body.chars().all(|c| c == self.char)
    }

    fn dedent<'a>(&self, line: &'a str) -> &'a str {
        let spaces = line.len() - line.trim_start_matches(' ').len();
        &line[spaces.min(self.indent)..]
    }
}

/// Splits a block's lines into commands and the output each shows. A command goes on
/// while its line ends with `\` and while a heredoc it opened is not closed.
fn steps(body: &[&str], first_line: usize) -> Result<Vec<Step>, ParseError> {
    let mut steps: Vec<Step> = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let line = body[at];
        let Some(command) = line.strip_prefix("$ ").or((line == "$").then_some("")) else {
            match steps.last_mut() {
                Some(step) => step.output.push(line.to_string()),
                None if line.trim().is_empty() => {}
                None => {
                    return Err(ParseError {
                        line: first_line + at,
                        message: "a runnable block starts with its first `$ ` command".into(),
                    })
                }
            }
            at += 1;
            continue;
        };
        let line_number = first_line + at;
        let mut text = command.to_string();
        let mut pending = heredocs(command);
        at += 1;
        while text.ends_with('\\') || !pending.is_empty() {
            let Some(next) = body.get(at) else {
                return Err(ParseError {
                    line: line_number,
                    message: match pending.first() {
                        Some(word) => format!("the heredoc `{word}` is never closed"),
                        None => "the block ends inside a continued command".into(),
                    },
                });
            };
            text.push('\n');
            text.push_str(next);
            at += 1;
            if let Some(word) = pending.first() {
                if next.trim_start_matches('\t') == word {
                    pending.remove(0);
                }
            } else {
                pending = heredocs(next);
            }
        }
        steps.push(Step {
            line: line_number,
            command: text,
            output: Vec::new(),
        });
    }
    Ok(steps)
}

/// The delimiters of the heredocs a command line opens (`<<EOF`, `<<'EOF'`, `<<-"EOF"`),
/// in order; here-strings (`<<<`) are not heredocs.
fn heredocs(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("<<") {
        rest = &rest[at + 2..];
        if let Some(after) = rest.strip_prefix('<') {
            rest = after;
            continue;
        }
        let spec = rest.strip_prefix('-').unwrap_or(rest).trim_start();
        let word: String = match spec.chars().next() {
            Some(quote @ ('\'' | '"')) => spec[1..].chars().take_while(|c| *c != quote).collect(),
            _ => spec
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect(),
        };
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_block_becomes_commands_with_their_output() {
        let page = "text\n\n<!-- runnable -->\n```console\n$ echo hi\nhi\n\n$ true\n```\n";
        let blocks = blocks(page).unwrap();
        assert_eq!(
            blocks,
            vec![Block {
                line: 4,
                options: Options::default(),
                steps: vec![
                    Step {
                        line: 5,
                        command: "echo hi".into(),
                        output: vec!["hi".into(), "".into()],
                    },
                    Step {
                        line: 8,
                        command: "true".into(),
                        output: vec![],
                    },
                ],
            }]
        );
    }

    #[test]
    fn unmarked_blocks_are_left_alone() {
        let page = "```console\n$ rm -rf /\n```\n<!-- a comment -->\n```text\n$ x\n```\n";
        assert_eq!(blocks(page).unwrap(), vec![]);
    }

    #[test]
    fn options_are_read_and_unknown_ones_refused() {
        let page = "<!-- runnable: exit=1, needs=registry setup -->\n```\n$ false\n```\n";
        let options = &blocks(page).unwrap()[0].options;
        assert_eq!(
            *options,
            Options {
                exit: 1,
                setup: true,
                needs_registry: true
            }
        );
        let error = blocks("<!-- runnable: exti=1 -->\n```\n$ false\n```\n").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("unknown option `exti=1`"), "{error}");
    }

    #[test]
    fn a_marker_must_sit_right_before_its_fence() {
        let error = blocks("<!-- runnable -->\n\n```\n$ true\n```\n").unwrap_err();
        assert!(
            error.message.contains("right before a fenced block"),
            "{error}"
        );
        let error = blocks("<!-- runnable -->\n```\nhello\n```\n").unwrap_err();
        assert!(error.message.contains("first `$ ` command"), "{error}");
        let error = blocks("<!-- runnable -->\n```\n$ true\n").unwrap_err();
        assert!(error.message.contains("never closed"), "{error}");
    }

    #[test]
    fn continuations_and_heredocs_belong_to_their_command() {
        let page = "<!-- runnable -->\n```console\n$ printf x \\\n  | cat\nx\n$ cat > f <<'EOF'\n$ not a command\nEOF\n$ cat f\n$ ls\n```\n";
        let steps = &blocks(page).unwrap()[0].steps;
        let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
        assert_eq!(
            commands,
            [
                "printf x \\\n  | cat",
                "cat > f <<'EOF'\n$ not a command\nEOF",
                "cat f",
                "ls"
            ]
        );
        assert_eq!(steps[0].output, ["x"]);
        assert!(steps[1].output.is_empty());
        assert_eq!(heredocs("a <<< 'x' <<-\"E1\" b << E2"), ["E1", "E2"]);
    }

    #[test]
    fn indented_blocks_in_lists_are_dedented() {
        let page = "1. Do:\n\n   <!-- runnable -->\n   ```console\n   $ echo hi\n   hi\n   ```\n";
        let step = &blocks(page).unwrap()[0].steps[0];
        assert_eq!(
            (step.command.as_str(), step.output.as_slice()),
            ("echo hi", &["hi".to_string()][..])
        );
    }
}
