//! Word expansion (chapter 11): the quotes, escapes and `$VARIABLES` of the
//! instructions docker expands, done by the builder with the values a build has
//! reached at that step.
//!
//! The rules are a small part of the POSIX shell's, as BuildKit's `shell/lex.go`
//! implements them:
//!
//! - `'single quotes'` keep everything inside as it is;
//! - `"double quotes"` expand variables, and the escape character (`\`, or the
//!   one `# escape=` chose) escapes only `"`, `$` and itself there;
//! - outside quotes the escape character makes the next character literal;
//! - `$NAME` and `${NAME}` are the variable's value, empty when it is unset;
//! - `${NAME:-word}` and its family (below) choose between the value and a word,
//!   and the word is expanded too.
//!
//! Nothing else of the shell is here: no `$(command)`, no globbing, no `~`. RUN,
//! CMD and ENTRYPOINT are never expanded by the builder: their shell does that.

use std::fmt;

/// A word that cannot be expanded: where (in characters from its start) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for WordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for WordError {}

/// Expands one raw word: quotes removed, escapes resolved, variables replaced
/// with what `lookup` says (`None`: unset). `ENV greeting="hello $NAME"` stores
/// the raw `"hello $NAME"`; this turns it into `hello world`.
pub fn expand(
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    Expander::new(raw, escape, lookup, true).word(false)
}

/// Expands a heredoc body (`COPY <<EOF` with an unquoted delimiter): variables
/// are replaced, but quotes are ordinary characters, as in a shell's here-document;
/// only `$` and the escape character itself can be escaped.
pub fn expand_heredoc(
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    Expander::new(raw, escape, lookup, false).word(false)
}

/// The modifiers of `${NAME<modifier>word}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `${NAME-word}` (`colon: false`) or `${NAME:-word}` (`colon: true`): the
    /// value, or the word instead.
    Default { colon: bool },
    /// `${NAME+word}` or `${NAME:+word}`: the word instead of the value, or nothing.
    Alternative { colon: bool },
    /// `${NAME?message}` or `${NAME:?message}`: the value, or the build stops with
    /// the message.
    Required { colon: bool },
}

/// How deep `${A:-${B:-...}}` may nest: real Dockerfiles use two or three levels.
pub const MAX_DEPTH: usize = 64;

/// The longest word an expansion may make (in bytes): `ENV A=$A$A`, repeated,
/// doubles a value at each step.
pub const MAX_LENGTH: usize = 1 << 20;

/// Walks a raw word character by character.
struct Expander<'a> {
    chars: Vec<char>,
    at: usize,
    /// How many `${...:-word}` words are open.
    depth: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Whether quotes are syntax (words) or ordinary characters (heredoc bodies).
    quotes: bool,
}

impl<'a> Expander<'a> {
    fn new(
        raw: &str,
        escape: char,
        lookup: &'a dyn Fn(&str) -> Option<String>,
        quotes: bool,
    ) -> Expander<'a> {
        Expander {
            chars: raw.chars().collect(),
            at: 0,
            depth: 0,
            escape,
            lookup,
            quotes,
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied();
        self.at += c.is_some() as usize;
        c
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn error(&self, message: impl Into<String>) -> WordError {
        WordError {
            offset: self.at,
            message: message.into(),
        }
    }

    /// Expands up to the end of the input, or (`in_braces`) up to the `}` that
    /// closes a `${NAME:-word}`.
    fn word(&mut self, in_braces: bool) -> Result<String, WordError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.next() else {
                if in_braces {
                    return Err(self.error("missing '}' to close a ${...} substitution"));
                }
                return Ok(out);
            };
            match c {
                '}' if in_braces => return Ok(out),
                '\'' if self.quotes => out.push_str(&self.single_quoted()?),
                '"' if self.quotes => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => match self.next() {
                    // A lone escape at the very end stays what it is.
                    None => out.push(c),
                    Some(next) if self.quotes || next == '$' || next == self.escape => {
                        out.push(next)
                    }
                    Some(next) => {
                        out.push(c);
                        out.push(next);
                    }
                },
                c => out.push(c),
            }
            if out.len() > MAX_LENGTH {
                return Err(self.error(format!(
                    "the word expands to more than {MAX_LENGTH} bytes: a variable that doubles itself?"
                )));
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String, WordError> {
        let start = self.at;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(unclosed(start, "single")),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, WordError> {
        let start = self.at;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(unclosed(start, "double")),
                Some('"') => return Ok(out),
                Some('$') if out.len() > MAX_LENGTH => {
                    return Err(
                        self.error(format!("the word expands to more than {MAX_LENGTH} bytes"))
                    )
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.at += 1;
                        out.push(next);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// After a `$`: a variable, a `${...}`, or a literal dollar sign.
    fn dollar(&mut self) -> Result<String, WordError> {
        match self.peek() {
            Some('{') => {
                self.at += 1;
                self.braced()
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
        {
            name.push(c);
            self.at += 1;
        }
        name
    }

    /// After `${`: `NAME}`, or `NAME`, a modifier and a word, then `}`.
    fn braced(&mut self) -> Result<String, WordError> {
        let name = self.name();
        if name.is_empty() {
            return Err(self.error("bad substitution: ${ needs a variable name, as in ${NAME}"));
        }
        let value = (self.lookup)(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.at += 1;
        }
        let modifier = match (self.next(), colon) {
            (Some('}'), false) => return Ok(value.unwrap_or_default()),
            (Some('-'), _) => Modifier::Default { colon },
            (Some('+'), _) => Modifier::Alternative { colon },
            (Some('?'), _) => Modifier::Required { colon },
            (Some(c @ ('#' | '%' | '/')), false) => {
                return Err(self.error(format!(
                    "unsupported modifier ({c}) in ${{{name}{c}...}}: ferry expands ${{NAME}}, \
                     ${{NAME:-word}}, ${{NAME:+word}} and ${{NAME:?message}}"
                )))
            }
            (None, _) => return Err(self.error(format!("missing '}}' after ${{{name}"))),
            (Some(c), _) => {
                return Err(self.error(format!(
                "bad substitution: unexpected {c:?} in ${{{name}...}}; expected }}, :-, :+ or :?"
            )))
            }
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("${{...}} nested more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let word = self.word(true)?;
        self.depth -= 1;
        apply_modifier(&name, value.as_deref(), modifier, &word)
            .map_err(|message| self.error(message))
    }
}

/// A quote opened just before `start` that the word never closes.
fn unclosed(start: usize, quote: &str) -> WordError {
    WordError {
        offset: start.saturating_sub(1),
        message: format!("unexpected end of the word while looking for the closing {quote} quote"),
    }
}

/// The value of `${NAME<modifier>word}`, given the variable's value (`None`:
/// unset) and the word, already expanded. With the colon, an empty value counts
/// as unset; without it, only an unset one does.
///
/// | written           | NAME=`x` | NAME=`` (empty) | unset          |
/// |-------------------|----------|-----------------|----------------|
/// | `${NAME:-word}`   | `x`      | `word`          | `word`         |
/// | `${NAME-word}`    | `x`      | ``              | `word`         |
/// | `${NAME:+word}`   | `word`   | ``              | ``             |
/// | `${NAME+word}`    | `word`   | `word`          | ``             |
/// | `${NAME:?msg}`    | `x`      | error `msg`     | error `msg`    |
/// | `${NAME?msg}`     | `x`      | ``              | error `msg`    |
///
/// The error of `?` is `NAME: msg`, or `NAME: is not set` without a message.
pub fn apply_modifier(
    name: &str,
    value: Option<&str>,
    modifier: Modifier,
    word: &str,
) -> Result<String, String> {
    // BEGIN SOLUTION ch11 "the ${NAME:-word} family: with the colon an empty value counts as unset, without it only an unset one"
    let (Modifier::Default { colon }
    | Modifier::Alternative { colon }
    | Modifier::Required { colon }) = modifier;
    let set = match value {
        None => None,
        Some("") if colon => None,
        Some(value) => Some(value),
    };
    match (modifier, set) {
        (Modifier::Default { .. }, Some(value)) => Ok(value.to_string()),
        (Modifier::Default { .. }, None) => Ok(word.to_string()),
        (Modifier::Alternative { .. }, Some(_)) => Ok(word.to_string()),
        (Modifier::Alternative { .. }, None) => Ok(String::new()),
        (Modifier::Required { .. }, Some(value)) => Ok(value.to_string()),
        (Modifier::Required { .. }, None) if word.is_empty() => Err(format!("{name}: is not set")),
        (Modifier::Required { .. }, None) => Err(format!("{name}: {word}")),
    }
    // END SOLUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "NAME" => Some("world".to_string()),
            "EMPTY" => Some(String::new()),
            "PATH" => Some("/usr/bin:/bin".to_string()),
            _ => None,
        }
    }

    fn ex(raw: &str) -> Result<String, String> {
        expand(raw, '\\', &vars).map_err(|e| e.message)
    }

    #[test]
    fn quotes_escapes_and_plain_variables() {
        assert_eq!(ex("hello").unwrap(), "hello");
        assert_eq!(ex("$NAME").unwrap(), "world");
        assert_eq!(ex("${NAME}s").unwrap(), "worlds");
        assert_eq!(ex("$NAMEs").unwrap(), "");
        assert_eq!(ex("$UNSET-x").unwrap(), "-x");
        assert_eq!(ex("\"hello $NAME\"").unwrap(), "hello world");
        assert_eq!(ex("'hello $NAME'").unwrap(), "hello $NAME");
        assert_eq!(ex("\\$NAME").unwrap(), "$NAME");
        assert_eq!(ex("a\\ b").unwrap(), "a b");
        assert_eq!(ex("\"a\\\"b\\n\"").unwrap(), "a\"b\\n");
        assert_eq!(ex("$PATH:/opt").unwrap(), "/usr/bin:/bin:/opt");
        assert_eq!(ex("cost: $5 and $").unwrap(), "cost: $5 and $");
        assert_eq!(ex("trailing\\").unwrap(), "trailing\\");
    }

    #[test]
    fn the_modifier_table() {
        assert_eq!(ex("${NAME:-d}").unwrap(), "world");
        assert_eq!(ex("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(ex("${UNSET:-d}").unwrap(), "d");
        assert_eq!(ex("${EMPTY-d}").unwrap(), "");
        assert_eq!(ex("${UNSET-d}").unwrap(), "d");
        assert_eq!(ex("${NAME:+yes}").unwrap(), "yes");
        assert_eq!(ex("${EMPTY:+yes}").unwrap(), "");
        assert_eq!(ex("${EMPTY+yes}").unwrap(), "yes");
        assert_eq!(ex("${UNSET+yes}").unwrap(), "");
        assert_eq!(ex("${NAME:?no}").unwrap(), "world");
        assert_eq!(ex("${EMPTY?no}").unwrap(), "");
        assert_eq!(ex("${UNSET:?give it}").unwrap_err(), "UNSET: give it");
        assert_eq!(ex("${EMPTY:?}").unwrap_err(), "EMPTY: is not set");
        assert_eq!(
            ex("${UNSET:-$NAME and \"${EMPTY:-x}\"}").unwrap(),
            "world and x"
        );
        assert_eq!(ex("${UNSET:-a}b}").unwrap(), "ab}");
    }

    #[test]
    fn bad_words_are_errors_not_panics() {
        assert!(ex("\"open").unwrap_err().contains("double quote"));
        assert!(ex("'open").unwrap_err().contains("single quote"));
        assert!(ex("${NAME").unwrap_err().contains("missing '}'"));
        assert!(ex("${}").unwrap_err().contains("needs a variable name"));
        assert!(ex("${NAME#x}")
            .unwrap_err()
            .contains("unsupported modifier"));
        assert!(ex("${NAME:x}").unwrap_err().contains("bad substitution"));
        assert!(ex("${UNSET:-unclosed").unwrap_err().contains("missing '}'"));
    }

    #[test]
    fn hostile_words_are_refused_quickly() {
        let deep = format!("{}x{}", "${A:-".repeat(5000), "}".repeat(5000));
        assert!(ex(&deep).unwrap_err().contains("nested more than"));
        let big = "y".repeat(MAX_LENGTH / 2);
        let doubled = |name: &str| (name == "BIG").then(|| big.clone());
        let error = expand("$BIG$BIG$BIG", '\\', &doubled).unwrap_err();
        assert!(error.message.contains("more than"), "{error}");
    }

    #[test]
    fn the_escape_directive_changes_the_escape_character() {
        let raw = "C:\\Windows `$NAME \"`\"\"";
        assert_eq!(expand(raw, '`', &vars).unwrap(), "C:\\Windows $NAME \"");
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let body = "echo \"$NAME\" '$NAME' \\$NAME \\n\n";
        assert_eq!(
            expand_heredoc(body, '\\', &vars).unwrap(),
            "echo \"world\" 'world' $NAME \\n\n"
        );
    }
}
