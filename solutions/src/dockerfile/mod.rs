//! Dockerfiles (chapter 11, chapters/11-build.md): the text a build starts from,
//! parsed into stages and typed instructions.
//!
//! A Dockerfile is read in two passes, as BuildKit reads it:
//!
//! 1. **Lines** (`parser`): parser directives at the very top (`# escape=`,
//!    `# syntax=`), comments, line continuations (with comments and blank lines
//!    allowed inside them), heredocs (`<<EOF`), then each logical line split into
//!    an instruction name and its arguments: JSON exec form (`["a", "b"]`) or
//!    shell form, flags (`--from=`), `key=value` pairs.
//! 2. **Words** (`words`), later, at build time: the quotes, escapes and
//!    `$VARIABLES` of the instructions docker expands (ADD, COPY, ENV, EXPOSE,
//!    FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG), with the values the
//!    build has reached at that step. RUN, CMD and ENTRYPOINT are never
//!    expanded by the builder: their shell does it, in the container.
//!
//! So the types below keep *raw words* (quotes and `$` still in them) wherever
//! docker expands later, and plain text where it does not. Nothing here touches a
//! file or runs anything: `ferry build --check` is `parse` plus the stage checks
//! of the build plan.

pub mod ignore;
mod instructions;
mod parser;
pub mod words;

#[cfg(test)]
mod tests;

use std::fmt;

/// Where something is in the Dockerfile: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// The ARG instructions before the first FROM: the only instruction allowed
    /// there; their values are seen by the FROM lines only (unless a stage
    /// declares the ARG again).
    pub global_args: Vec<Instruction>,
    /// The stages, in file order (at least one).
    pub stages: Vec<Stage>,
}

/// The parser directives of the first lines (`# escape=` and `# syntax=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (the default) or `` ` `` (for Windows paths).
    pub escape: char,
    /// The frontend image a `# syntax=` line names. ferry has one frontend (its
    /// own); it is recorded, not pulled.
    pub syntax: Option<String>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            escape: '\\',
            syntax: None,
        }
    }
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The name of `FROM base AS name`, lower-cased as docker does.
    pub name: Option<String>,
    /// The base, a raw word: `scratch`, an image reference, or an earlier stage's
    /// name (expanded with the global ARGs at build time).
    pub base: String,
    /// `FROM --platform=...`, a raw word.
    pub platform: Option<String>,
    /// Where its FROM is.
    pub location: Location,
    /// The FROM line as written (continuations joined).
    pub source: String,
    pub instructions: Vec<Instruction>,
}

/// One instruction: what it does, where it is, and how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub kind: Kind,
    /// The start of its line (column 1, or where the name starts).
    pub location: Location,
    /// The instruction as written, continuations joined with the escape and
    /// newline removed, heredoc bodies left out: `RUN apk add curl`. Used for
    /// history entries and progress lines.
    pub source: String,
}

/// The instructions, typed. `String`s marked *raw* still hold quotes, escapes and
/// `$VARIABLES`: expand them with [`words::expand`] at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Run(Run),
    Copy(Copy),
    Add(Copy),
    /// `ENV k=v k2="v 2"` or the old `ENV k v w`: raw keys and values.
    Env(Vec<(String, String)>),
    /// `ARG name` or `ARG name=default`: names, raw defaults.
    Arg(Vec<(String, Option<String>)>),
    /// Raw.
    Workdir(String),
    /// Raw.
    User(String),
    Cmd(Command),
    Entrypoint(Command),
    /// Raw words: `80`, `53/udp`, `8000-8010`, `$PORT`.
    Expose(Vec<String>),
    /// Raw keys and values.
    Label(Vec<(String, String)>),
    /// Raw paths (JSON form or space-separated).
    Volume(Vec<String>),
    /// Raw.
    StopSignal(String),
    /// The new shell, exec form only (docker requires JSON).
    Shell(Vec<String>),
    Healthcheck(Healthcheck),
    /// An instruction kept in the image for its children's builds; never
    /// ONBUILD, FROM or MAINTAINER.
    Onbuild(Box<Instruction>),
    /// Deprecated; accepted, recorded as the `Author`.
    Maintainer(String),
}

impl Kind {
    /// The instruction's name as docker writes it: `RUN`, `COPY`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Run(_) => "RUN",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Expose(_) => "EXPOSE",
            Kind::Label(_) => "LABEL",
            Kind::Volume(_) => "VOLUME",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Shell(_) => "SHELL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// A command: exec form (JSON array, run as it is) or shell form (handed to the
/// stage's SHELL, `/bin/sh -c` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    /// The text as written (continuations joined), not expanded.
    Shell(String),
}

/// `RUN [--network=...] command`, with its heredocs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    /// `RUN <<EOF ... EOF`: the bodies, in order. With a heredoc and no other
    /// command, the first body is the script the shell runs.
    pub heredocs: Vec<Heredoc>,
    /// `--network=default|none|host`, as written.
    pub network: Option<String>,
}

/// `COPY`/`ADD [--from=] [--chown=] [--chmod=] [--link] SRC... DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Raw words (paths relative to the context or the `--from` stage, globs).
    /// A heredoc source appears here as its delimiter, e.g. `<<EOF`.
    pub sources: Vec<String>,
    /// Raw.
    pub dest: String,
    /// Raw: a stage name or index, or an image reference.
    pub from: Option<String>,
    /// Raw: `user`, `user:group`, numeric or names.
    pub chown: Option<String>,
    /// Raw: octal, `0755`.
    pub chmod: Option<String>,
    /// `--link`: accepted; ferry's layers are always independent of the base.
    pub link: bool,
    /// `COPY <<EOF /dest`: files made from heredoc bodies, named by delimiter.
    pub heredocs: Vec<Heredoc>,
}

/// A here-document: `<<EOF`, `<<-EOF` (leading tabs stripped), `<<"EOF"` or
/// `<<'EOF'` (no expansion in the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, unquoted: `EOF`.
    pub name: String,
    /// The body, each line ending in `\n` (tabs already stripped for `<<-`).
    pub content: String,
    /// Whether variables in the body are expanded (the delimiter was unquoted).
    pub expand: bool,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// Turns off a check the base image has.
    Disable,
    Check {
        /// The test command (CMD's exec or shell form).
        test: Command,
        /// `--interval=30s` and friends, as written (durations checked by the parser).
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<u32>,
    },
}

/// A Dockerfile that does not parse: where, the line as written, and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub location: Location,
    /// The physical line the error is on, as written (no newline).
    pub line_text: String,
    /// What is wrong and what was expected, lower-case, no trailing period:
    /// `unknown instruction: RNU (did you mean RUN?)`.
    pub message: String,
}

impl ParseError {
    /// The error as ferry prints it, naming the file: the message, then the
    /// line, and a caret under the column.
    ///
    /// ```text
    /// Dockerfile:3:1: unknown instruction: RNU (did you mean RUN?)
    ///    3 | RNU echo hi
    ///      | ^
    /// ```
    pub fn render(&self, file: &str) -> String {
        let number = self.location.line.to_string();
        let pad = " ".repeat(number.len());
        let caret = " ".repeat(self.location.column.saturating_sub(1));
        format!(
            "{file}:{}: {}\n {number} | {}\n {pad} | {caret}^",
            self.location,
            self.message,
            self.line_text.trim_end()
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.location, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The most bytes of Dockerfile ferry reads: real ones are a few kilobytes.
pub const MAX_SIZE: u64 = 1 << 20;

/// Parses a Dockerfile's text: directives, stages and their instructions. It
/// checks what docker's parser checks (instruction names, argument counts and
/// forms, flags, heredocs), not what depends on the build (whether a stage or
/// an image named by `--from` exists: that is the build plan's).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    parser::parse(text)
}
