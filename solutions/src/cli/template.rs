//! Output templates: the part of Go's text/template that `docker ps --format` and
//! `docker inspect -f` use, evaluated over JSON.
//!
//! docker formats its output with Go templates run over the object it prints:
//! `{{.State.Status}}` looks up the field `State`, then `Status`. ferry's objects are
//! JSON (`container.json`, an image's config), and their keys are docker's field
//! names, so the same template looks up the same keys in a `serde_json::Value`.
//!
//! What is understood:
//!
//! * text, copied as it is; `{{.}}`, `{{.Field}}` and `{{.A.B.C}}`;
//! * the functions `json`, `upper`, `lower`, `index` and `join`, and pipelines
//!   (`{{.Names | upper}}` is `{{upper .Names}}`);
//! * `{{range .List}}...{{end}}`, with `.` each element in turn;
//! * trim markers: `{{- ` drops the whitespace before the action, ` -}}` the
//!   whitespace after it; comments `{{/* ... */}}`.
//!
//! Values print as Go prints them: strings raw, `true`/`false`, lists `[a b c]`,
//! maps `map[k:v]` (keys sorted), and a missing key or a null as `<no value>` (Go's
//! rule for maps: a typo prints `<no value>` rather than failing).
//!
//! A template is parsed once ([`Template::parse`]) and rendered for every row.
//! `--format 'table {{.ID}}\t{{.Names}}'` asks for a header and aligned columns:
//! [`table`] and [`expand_escapes`] read the format as docker does, and
//! [`header_names`] tells the caller what each column shows.

use std::fmt;

use serde_json::Value;

/// Where in a template something is (both counted from 1, columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

/// A template that cannot be parsed, or an action that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed action at {at}: \"{{{{\" has no \"}}}}\" after it in {snippet}")]
    Unclosed { at: Position, snippet: String },
    #[error(
        "unknown function {name:?} in {action} at {at}: use {}",
        function_names()
    )]
    UnknownFunction {
        name: String,
        action: String,
        at: Position,
    },
    #[error("cannot parse {action} at {at}: {why}")]
    Syntax {
        action: String,
        at: Position,
        why: String,
    },
    #[error("{{{{range}}}} at {at} has no {{{{end}}}}")]
    UnclosedRange { at: Position },
    #[error("failed to execute {action} at {at}: {why}")]
    Execute {
        action: String,
        at: Position,
        why: String,
    },
}

/// A parsed template, ready to render any number of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Action),
    Range { over: Action, body: Vec<Node> },
}

/// One `{{...}}`: commands joined by `|`, each given the one before's value as
/// its last argument.
#[derive(Debug, Clone, PartialEq)]
struct Action {
    /// As written, braces and all, for messages.
    source: String,
    at: Position,
    pipeline: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Value(Arg),
    Call(Function, Vec<Arg>),
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B` as `["A", "B"]`; `.` itself is empty.
    Field(Vec<String>),
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Json,
    Upper,
    Lower,
    Index,
    Join,
}

/// The functions, by name, with how many arguments each takes (at least, at most).
const FUNCTIONS: &[(&str, Function, usize, usize)] = &[
    ("json", Function::Json, 1, 1),
    ("upper", Function::Upper, 1, 1),
    ("lower", Function::Lower, 1, 1),
    ("index", Function::Index, 2, usize::MAX),
    ("join", Function::Join, 2, 2),
];

/// Go's keywords that ferry does not implement, so that they are named as such
/// rather than reported as unknown functions.
const UNSUPPORTED: &[&str] = &["if", "else", "with", "define", "template", "block", "break"];

fn function_names() -> String {
    let names: Vec<&str> = FUNCTIONS.iter().map(|(name, ..)| *name).collect();
    names.join(", ")
}

/// Parses `template` and renders it over `value`: for a template used once.
pub fn render(template: &str, value: &Value) -> Result<String, TemplateError> {
    Template::parse(template)?.render(value)
}

/// The template of a `table ...` format (docker's `--format 'table {{.ID}}'`: a
/// header row, then aligned columns), without the word and the spaces after it;
/// `None` for any other format. docker checks only the prefix, so `table` alone is
/// a table of the default columns (an empty template here).
pub fn table(format: &str) -> Option<&str> {
    format
        .strip_prefix("table")
        .map(|rest| rest.trim_matches(' '))
}

/// A format as docker reads it: the two characters `\t` become a tab and `\n` a
/// newline, so that `--format '{{.ID}}\t{{.Names}}'` works without `$'...'`.
pub fn expand_escapes(format: &str) -> String {
    format.replace("\\t", "\t").replace("\\n", "\n")
}

/// The field each top-level action of `template` shows, as a dotted path (`ID`,
/// `State.Status`; `{{json .Config}}` shows `Config`), in order: what the caller
/// names its header cells after. An action without a field (`{{.}}`, `{{"-"}}`)
/// gives an empty name; `range` blocks have no column and are left out.
pub fn header_names(template: &Template) -> Vec<String> {
    template
        .nodes
        .iter()
        .filter_map(|node| match node {
            Node::Action(action) => Some(action.field_path()),
            _ => None,
        })
        .collect()
}

impl Template {
    /// Parses a template: text and `{{...}}` actions, `range` blocks closed by
    /// `{{end}}`.
    pub fn parse(template: &str) -> Result<Template, TemplateError> {
        // Ranges nest: a stack of open blocks, the template itself at the bottom.
        let mut open: Vec<(Option<Action>, Vec<Node>)> = vec![(None, Vec::new())];
        for piece in lex(template)? {
            let (inner, source, at) = match piece {
                Piece::Text(text) => {
                    push(&mut open, Node::Text(text));
                    continue;
                }
                Piece::Action { inner, source, at } => (inner, source, at),
            };
            match parse_action(&inner, &source, at)? {
                Parsed::Action(action) => push(&mut open, Node::Action(action)),
                Parsed::Range(action) => open.push((Some(action), Vec::new())),
                Parsed::End => {
                    if open.len() == 1 {
                        return Err(TemplateError::Syntax {
                            action: source,
                            at,
                            why: "{{end}} has no {{range}} to end".to_string(),
                        });
                    }
                    let (over, body) = open.pop().expect("a range is open");
                    let over = over.expect("only the bottom of the stack has no range");
                    push(&mut open, Node::Range { over, body });
                }
                Parsed::Comment => {}
            }
        }
        match open.pop() {
            Some((Some(range), _)) => Err(TemplateError::UnclosedRange { at: range.at }),
            Some((None, nodes)) => Ok(Template { nodes }),
            None => unreachable!("the bottom of the stack is never popped in the loop"),
        }
    }

    /// Renders the template over `value` (what `.` is at the top).
    pub fn render(&self, value: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        render_nodes(&self.nodes, value, &mut out)?;
        Ok(out)
    }

    /// The template with each top-level action replaced by `name(field path)` (see
    /// [`header_names`]) and its text kept: a header row that lines up with the
    /// rows, tabs and all.
    pub fn render_header(&self, name: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(action) => out.push_str(&name(&action.field_path())),
                Node::Range { .. } => {}
            }
        }
        out
    }
}

fn push(open: &mut [(Option<Action>, Vec<Node>)], node: Node) {
    open.last_mut()
        .expect("the stack is never empty")
        .1
        .push(node);
}

// ---------------------------------------------------------------------------
// Lexing: text and actions, with the trim markers applied.

enum Piece {
    Text(String),
    Action {
        /// Between the braces, without trim markers or surrounding spaces.
        inner: String,
        source: String,
        at: Position,
    },
}

/// Splits a template into text and actions. `{{- ` trims the text before it and
/// ` -}}` the text after it (the space is required, as in Go: `{{-3}}` is minus 3).
fn lex(template: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut offset = 0;
    let mut trim_next = false;
    while let Some(found) = template[offset..].find("{{") {
        let open = offset + found;
        let after = &template[open + 2..];
        let at = position(template, open);
        let Some(close) = find_close(after) else {
            let snippet: String = template[open..].chars().take(24).collect();
            return Err(TemplateError::Unclosed { at, snippet });
        };
        let mut inner = &after[..close];
        let trim_before = is_trim_marker(inner.strip_prefix('-'), str::starts_with);
        let trim_after = is_trim_marker(inner.strip_suffix('-'), str::ends_with);
        if trim_before {
            inner = &inner[1..];
        }
        if trim_after {
            inner = &inner[..inner.len() - 1];
        }
        let text = trimmed(&template[offset..open], trim_next, trim_before);
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        pieces.push(Piece::Action {
            inner: inner.trim().to_string(),
            source: template[open..open + 2 + close + 2].to_string(),
            at,
        });
        offset = open + 2 + close + 2;
        trim_next = trim_after;
    }
    let text = trimmed(&template[offset..], trim_next, false);
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
    Ok(pieces)
}

/// Whether what is left after taking a `-` off starts (or ends) with whitespace:
/// a trim marker rather than a minus sign.
fn is_trim_marker(rest: Option<&str>, at_edge: fn(&str, char) -> bool) -> bool {
    rest.is_some_and(|rest| [' ', '\t', '\r', '\n'].iter().any(|c| at_edge(rest, *c)))
}

fn trimmed(text: &str, start: bool, end: bool) -> &str {
    let text = if start { text.trim_start() } else { text };
    if end {
        text.trim_end()
    } else {
        text
    }
}

/// Where the `}}` closing an action is, skipping quoted strings (a `"}}"` inside
/// one does not close it).
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quote = None;
    let mut i = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'"' | b'`')) => quote = Some(c),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn position(template: &str, offset: usize) -> Position {
    let before = &template[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

// ---------------------------------------------------------------------------
// Parsing one action.

enum Parsed {
    Action(Action),
    Range(Action),
    End,
    Comment,
}

#[derive(Debug, PartialEq)]
enum Token {
    Arg(Arg),
    Word(String),
    Pipe,
}

fn parse_action(inner: &str, source: &str, at: Position) -> Result<Parsed, TemplateError> {
    let syntax = |why: String| TemplateError::Syntax {
        action: source.to_string(),
        at,
        why,
    };
    if inner.starts_with("/*") && inner.ends_with("*/") {
        return Ok(Parsed::Comment);
    }
    let mut tokens = tokenize(inner).map_err(syntax)?;
    let first_word = match tokens.first() {
        Some(Token::Word(word)) => Some(word.clone()),
        _ => None,
    };
    match first_word.as_deref() {
        Some("end") if tokens.len() == 1 => return Ok(Parsed::End),
        Some("range") => {
            tokens.remove(0);
            let pipeline = parse_pipeline(tokens, source, at)?;
            return Ok(Parsed::Range(Action {
                source: source.to_string(),
                at,
                pipeline,
            }));
        }
        Some(word) if UNSUPPORTED.contains(&word) => {
            return Err(syntax(format!(
                "{word:?} is not supported: ferry's templates have fields, range and the functions {}",
                function_names()
            )));
        }
        _ => {}
    }
    let pipeline = parse_pipeline(tokens, source, at)?;
    Ok(Parsed::Action(Action {
        source: source.to_string(),
        at,
        pipeline,
    }))
}

/// Commands separated by `|`; a command is one value, or a function and its
/// arguments (the value piped in counts as one more).
fn parse_pipeline(
    tokens: Vec<Token>,
    source: &str,
    at: Position,
) -> Result<Vec<Command>, TemplateError> {
    let syntax = |why: String| TemplateError::Syntax {
        action: source.to_string(),
        at,
        why,
    };
    let mut pipeline = Vec::new();
    for words in tokens.split(|token| *token == Token::Pipe) {
        let piped = usize::from(!pipeline.is_empty());
        let command = match words {
            [] => {
                return Err(syntax(
                    "an empty command (nothing between | or braces)".into(),
                ))
            }
            [Token::Word(name), args @ ..] => {
                let Some(&(_, function, least, most)) =
                    FUNCTIONS.iter().find(|(known, ..)| known == name)
                else {
                    return Err(TemplateError::UnknownFunction {
                        name: name.clone(),
                        action: source.to_string(),
                        at,
                    });
                };
                let args = args
                    .iter()
                    .map(|token| match token {
                        Token::Arg(arg) => Ok(arg.clone()),
                        _ => Err(syntax(format!(
                            "{name} takes values, not functions, as arguments"
                        ))),
                    })
                    .collect::<Result<Vec<Arg>, _>>()?;
                let given = args.len() + piped;
                if given < least || given > most {
                    return Err(syntax(format!(
                        "{name} takes {}, got {given}",
                        arity(least, most)
                    )));
                }
                Command::Call(function, args)
            }
            [Token::Arg(arg)] if piped == 0 => Command::Value(arg.clone()),
            [Token::Arg(_)] => return Err(syntax("only a function can follow |".into())),
            [Token::Arg(_), ..] => {
                return Err(syntax(
                    "a value takes no arguments: to show two fields write {{.A}} {{.B}}".into(),
                ))
            }
            [Token::Pipe, ..] => unreachable!("split removed the pipes"),
        };
        pipeline.push(command);
    }
    Ok(pipeline)
}

fn arity(least: usize, most: usize) -> String {
    match (least, most) {
        (1, 1) => "1 argument".to_string(),
        (least, usize::MAX) => format!("at least {least} arguments"),
        (least, most) if least == most => format!("{least} arguments"),
        (least, most) => format!("{least} to {most} arguments"),
    }
}

/// The words of an action: fields, strings, integers, names and `|`.
fn tokenize(inner: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = inner.trim_start();
    while let Some(first) = rest.chars().next() {
        let (token, len) = match first {
            '|' => (Token::Pipe, 1),
            '"' => quoted(rest)?,
            '`' => {
                let end = rest[1..]
                    .find('`')
                    .ok_or("a raw string with no closing `")?
                    + 1;
                (Token::Arg(Arg::Str(rest[1..end].to_string())), end + 1)
            }
            '$' => return Err("variables ($x) are not supported".into()),
            '(' | ')' => return Err("parentheses are not supported".into()),
            _ => {
                let len = rest
                    .find(|c: char| c.is_whitespace() || c == '|')
                    .unwrap_or(rest.len());
                (word(&rest[..len])?, len)
            }
        };
        tokens.push(token);
        rest = rest[len..].trim_start();
    }
    Ok(tokens)
}

/// A double-quoted string at the start of `s`, and its length. Go's escapes are
/// JSON's for everything docker users write (`\"`, `\\`, `\n`, `\t`).
fn quoted(s: &str) -> Result<(Token, usize), String> {
    let close = find_close_quote(s).ok_or("a string with no closing \"")?;
    let text: String = serde_json::from_str(&s[..=close]).map_err(|_| {
        format!(
            "a string with an escape ferry does not know: {}",
            &s[..=close]
        )
    })?;
    Ok((Token::Arg(Arg::Str(text)), close + 1))
}

fn find_close_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A field (`.A.B`), an integer or a name.
fn word(word: &str) -> Result<Token, String> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    if word == "." {
        return Ok(Token::Arg(Arg::Field(Vec::new())));
    }
    if let Some(path) = word.strip_prefix('.') {
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        if keys.iter().all(|key| is_name(key)) {
            return Ok(Token::Arg(Arg::Field(keys)));
        }
        return Err(format!(
            "{word} is not a field: a field is .Name or .A.B (for other keys use index . \"key\")"
        ));
    }
    if let Ok(number) = word.parse::<i64>() {
        return Ok(Token::Arg(Arg::Int(number)));
    }
    if is_name(word) {
        return Ok(Token::Word(word.to_string()));
    }
    Err(format!(
        "{word:?} is neither a field (.Name), a string, a number nor a function"
    ))
}

// ---------------------------------------------------------------------------
// Rendering.

/// What a missing key evaluates to: Go's zero value, printed `<no value>`.
static NULL: Value = Value::Null;

fn render_nodes(nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Action(action) => print_top(&action.evaluate(dot)?, out),
            Node::Range { over, body } => {
                let list = over.evaluate(dot)?;
                let items: Vec<&Value> = match &list {
                    Value::Array(items) => items.iter().collect(),
                    Value::Object(map) => map.values().collect(),
                    // Ranging over nothing renders nothing, as in Go.
                    Value::Null => Vec::new(),
                    other => {
                        return Err(over.error(format!("range cannot go over {}", kind(other))))
                    }
                };
                for item in items {
                    render_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

impl Action {
    fn error(&self, why: String) -> TemplateError {
        TemplateError::Execute {
            action: self.source.clone(),
            at: self.at,
            why,
        }
    }

    /// The first field the action names, dotted (see [`header_names`]).
    fn field_path(&self) -> String {
        let args = self.pipeline.iter().flat_map(|command| match command {
            Command::Value(arg) => std::slice::from_ref(arg),
            Command::Call(_, args) => args.as_slice(),
        });
        args.into_iter()
            .find_map(|arg| match arg {
                Arg::Field(keys) => Some(keys.join(".")),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The pipeline's value: each command's, handed to the next as its last argument.
    fn evaluate(&self, dot: &Value) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for command in &self.pipeline {
            let value = match command {
                Command::Value(arg) => self.argument(arg, dot)?,
                Command::Call(function, args) => {
                    let mut values = args
                        .iter()
                        .map(|arg| self.argument(arg, dot))
                        .collect::<Result<Vec<Value>, _>>()?;
                    values.extend(piped.take());
                    call(*function, &values).map_err(|why| self.error(why))?
                }
            };
            piped = Some(value);
        }
        Ok(piped.unwrap_or(Value::Null))
    }

    fn argument(&self, arg: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        match arg {
            Arg::Field(keys) => lookup(dot, keys).cloned().map_err(|why| self.error(why)),
            Arg::Str(text) => Ok(Value::String(text.clone())),
            Arg::Int(number) => Ok(Value::from(*number)),
        }
    }
}

/// `.A.B` in `dot`: a missing key is null; a key of something that is not a map
/// is an error that names what it is.
fn lookup<'v>(dot: &'v Value, keys: &[String]) -> Result<&'v Value, String> {
    let mut value = dot;
    for (at, key) in keys.iter().enumerate() {
        let walked = match at {
            0 => ".".to_string(),
            _ => format!(".{}", keys[..at].join(".")),
        };
        value = match value {
            Value::Object(map) => map.get(key).unwrap_or(&NULL),
            Value::Null => return Err(format!("{walked} has no value, so it has no field {key}")),
            other => {
                return Err(format!(
                    "{walked} is {}, not a map: it has no field {key}",
                    kind(other)
                ))
            }
        };
    }
    Ok(value)
}

fn call(function: Function, args: &[Value]) -> Result<Value, String> {
    match function {
        Function::Json => serde_json::to_string(&args[0])
            .map(Value::String)
            .map_err(|error| format!("json failed: {error}")),
        Function::Upper => string_arg("upper", &args[0]).map(|s| s.to_uppercase().into()),
        Function::Lower => string_arg("lower", &args[0]).map(|s| s.to_lowercase().into()),
        Function::Index => args[1..].iter().try_fold(args[0].clone(), index),
        Function::Join => join(&args[0], &args[1]),
    }
}

fn string_arg<'v>(function: &str, value: &'v Value) -> Result<&'v str, String> {
    value.as_str().ok_or_else(|| {
        format!(
            "{function} takes a string, got {}: try {{{{json ...}}}} for other values",
            kind(value)
        )
    })
}

/// `index COLLECTION KEY`: a map's entry (null when missing) or a list's item.
fn index(collection: Value, key: &Value) -> Result<Value, String> {
    match (&collection, key) {
        (Value::Object(map), Value::String(key)) => Ok(map.get(key).cloned().unwrap_or_default()),
        (Value::Array(items), Value::Number(n)) => {
            let at = n.as_u64().and_then(|at| usize::try_from(at).ok());
            at.and_then(|at| items.get(at)).cloned().ok_or_else(|| {
                format!(
                    "index {n} is out of range: the list has {} items",
                    items.len()
                )
            })
        }
        (Value::Object(_), other) => Err(format!("a map's key is a string, got {}", kind(other))),
        (Value::Array(_), other) => Err(format!("a list's index is a number, got {}", kind(other))),
        (other, _) => Err(format!("index needs a map or a list, got {}", kind(other))),
    }
}

/// `join LIST SEPARATOR`: the items printed and joined, as Go's strings.Join.
fn join(list: &Value, separator: &Value) -> Result<Value, String> {
    let separator = string_arg("join's separator", separator)?;
    let items = match list {
        Value::Array(items) => items,
        Value::Null => return Ok(Value::String(String::new())),
        other => return Err(format!("join takes a list, got {}", kind(other))),
    };
    let printed: Vec<String> = items
        .iter()
        .map(|item| {
            let mut out = String::new();
            print_top(item, &mut out);
            out
        })
        .collect();
    Ok(Value::String(printed.join(separator)))
}

/// What a value is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "no value",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Prints an action's value as Go does: null is `<no value>` at the top.
fn print_top(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<no value>"),
        other => print(other, out),
    }
}

/// Prints a value as Go's fmt prints an `interface{}`: inside a list or a map,
/// null is `<nil>`.
fn print(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(' ');
                }
                print(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map is sorted by key, as Go prints maps.
            out.push_str("map[");
            for (at, (key, item)) in map.iter().enumerate() {
                if at > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                print(item, out);
            }
            out.push(']');
        }
    }
}

/// A number as docker shows it: integers without a fraction (docker's fields are
/// Go integers, even when JSON carried them as `3.0`).
fn number(n: &serde_json::Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Value {
        json!({
            "ID": "4f1c2e9a7b3d",
            "Names": "calm_harbour",
            "State": {"Status": "running", "Pid": 4242, "Running": true, "ExitCode": 0.0},
            "Labels": {"b": "2", "a": "1"},
            "Args": ["-c", "sleep 60"],
            "Ports": [],
            "Mounts": [{"Source": "/data", "RW": false}],
            "Error": null,
        })
    }

    fn ok(template: &str) -> String {
        render(template, &container()).unwrap_or_else(|error| panic!("{template}: {error}"))
    }

    fn err(template: &str) -> String {
        match render(template, &container()) {
            Ok(out) => panic!("{template} rendered {out:?}, expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn text_and_fields_render_as_docker_renders_them() {
        assert_eq!(ok("plain text"), "plain text");
        assert_eq!(ok("{{.ID}}"), "4f1c2e9a7b3d");
        assert_eq!(ok("{{ .State.Status }}"), "running");
        assert_eq!(ok("{{.ID}}\t{{.Names}}"), "4f1c2e9a7b3d\tcalm_harbour");
        assert_eq!(
            ok("pid={{.State.Pid}} up={{.State.Running}}"),
            "pid=4242 up=true"
        );
        assert_eq!(render("{{.}}", &json!("just me")).unwrap(), "just me");
    }

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(ok("{{.State.ExitCode}}"), "0");
        assert_eq!(render("{{.}}", &json!(1.5)).unwrap(), "1.5");
        assert_eq!(ok("{{.Args}}"), "[-c sleep 60]");
        assert_eq!(ok("{{.Ports}}"), "[]");
        assert_eq!(ok("{{.Labels}}"), "map[a:1 b:2]");
        assert_eq!(ok("{{.Mounts}}"), "[map[RW:false Source:/data]]");
        assert_eq!(render("{{.}}", &json!([1, null])).unwrap(), "[1 <nil>]");
    }

    #[test]
    fn a_missing_key_or_a_null_prints_no_value() {
        assert_eq!(ok("{{.Stat}}"), "<no value>");
        assert_eq!(ok("{{.State.Stat}}"), "<no value>");
        assert_eq!(ok("{{.Error}}"), "<no value>");
        assert_eq!(ok("{{json .Missing}}"), "null");
    }

    #[test]
    fn functions_json_upper_lower_index_join() {
        assert_eq!(ok("{{json .Labels}}"), r#"{"a":"1","b":"2"}"#);
        assert_eq!(ok("{{json .Names}}"), r#""calm_harbour""#);
        assert_eq!(ok("{{upper .Names}}"), "CALM_HARBOUR");
        assert_eq!(ok("{{lower \"ABC\"}}"), "abc");
        assert_eq!(ok(r#"{{index .Labels "a"}}"#), "1");
        assert_eq!(ok(r#"{{index .Labels "zzz"}}"#), "<no value>");
        assert_eq!(ok("{{index .Args 1}}"), "sleep 60");
        assert_eq!(ok(r#"{{index .Mounts 0 "Source"}}"#), "/data");
        assert_eq!(ok(r#"{{join .Args ","}}"#), "-c,sleep 60");
        assert_eq!(ok(r#"{{join .Ports ", "}}"#), "");
    }

    #[test]
    fn pipelines_hand_the_value_on_as_the_last_argument() {
        assert_eq!(ok("{{.Names | upper}}"), "CALM_HARBOUR");
        assert_eq!(ok("{{.State | json}}").chars().next(), Some('{'));
        assert_eq!(ok(r#"{{"Mixed" | upper | lower}}"#), "mixed");
        // As in Go, the piped value is the last argument: join's separator here.
        assert!(err(r#"{{.Args | join " "}}"#).contains("join's separator takes a string"));
    }

    #[test]
    fn range_binds_dot_to_each_element() {
        assert_eq!(ok("{{range .Args}}[{{.}}]{{end}}"), "[-c][sleep 60]");
        assert_eq!(ok("{{range .Mounts}}{{.Source}} {{end}}"), "/data ");
        assert_eq!(ok("{{range .Labels}}{{.}}{{end}}"), "12");
        assert_eq!(ok("{{range .Missing}}x{{end}}"), "");
        assert_eq!(
            ok("{{range .Mounts}}{{range .}}<{{.}}>{{end}}{{end}}"),
            "<false></data>"
        );
    }

    #[test]
    fn trim_markers_eat_the_whitespace_beside_them() {
        assert_eq!(ok("a  {{- .Names -}}  \n b"), "acalm_harbourb");
        assert_eq!(ok("a {{- .Names}} b"), "acalm_harbour b");
        assert_eq!(ok("{{range .Args -}}\n  {{.}}\n{{- end}}"), "-csleep 60");
        // Without a space the minus is part of the number.
        assert_eq!(ok("{{-1}}"), "-1");
    }

    #[test]
    fn comments_and_quoted_braces_are_understood() {
        assert_eq!(ok("a{{/* why */}}b"), "ab");
        assert_eq!(ok(r#"{{"}}"}}"#), "}}");
        assert_eq!(ok(r#"{{"tab\there"}}"#), "tab\there");
        assert_eq!(ok("{{`raw\\t`}}"), "raw\\t");
    }

    #[test]
    fn a_template_parses_once_and_renders_many_rows() {
        let template = Template::parse("{{.ID}} {{.State.Status}}").unwrap();
        let rows = [
            json!({"ID": "a", "State": {"Status": "exited"}}),
            container(),
        ];
        let out: Vec<String> = rows
            .iter()
            .map(|row| template.render(row).unwrap())
            .collect();
        assert_eq!(out, ["a exited", "4f1c2e9a7b3d running"]);
    }

    #[test]
    fn errors_say_where_and_what() {
        assert_eq!(
            err("{{.ID}} {{jsn .ID}}"),
            "unknown function \"jsn\" in {{jsn .ID}} at column 9: use json, upper, lower, index, join"
        );
        assert_eq!(
            err("{{.ID}} {{.Names"),
            "unclosed action at column 9: \"{{\" has no \"}}\" after it in {{.Names"
        );
        assert_eq!(
            err("{{range .Args}}x"),
            "{{range}} at column 1 has no {{end}}"
        );
        assert!(err("x\n{{end}}").starts_with("cannot parse {{end}} at line 2, column 1:"));
        assert!(err("{{.ID .Names}}").contains("a value takes no arguments"));
        assert!(err("{{json .A .B}}").contains("json takes 1 argument, got 2"));
        assert!(err("{{if .ID}}x{{end}}").contains("\"if\" is not supported"));
        assert!(err("{{$x}}").contains("variables ($x) are not supported"));
        assert!(err("{{.A..B}}").contains("is not a field"));
        assert!(err("{{}}").contains("an empty command"));
    }

    #[test]
    fn evaluation_errors_name_the_action_and_the_value() {
        assert_eq!(
            err("{{.Names.First}}"),
            "failed to execute {{.Names.First}} at column 1: .Names is a string, not a map: it has no field First"
        );
        assert!(
            err("{{.Missing.Deeper}}").contains(".Missing has no value, so it has no field Deeper")
        );
        assert!(err("{{index .Args 5}}").contains("index 5 is out of range: the list has 2 items"));
        assert!(err("{{index .Args -1}}").contains("out of range"));
        assert!(err("{{index .Names 0}}").contains("index needs a map or a list, got a string"));
        assert!(err("{{upper .State.Pid}}").contains("upper takes a string, got a number"));
        assert!(err("{{range .Names}}{{end}}").contains("range cannot go over a string"));
    }

    #[test]
    fn table_formats_are_recognised_and_escapes_expanded() {
        assert_eq!(
            table("table {{.ID}}\\t{{.Names}}"),
            Some("{{.ID}}\\t{{.Names}}")
        );
        assert_eq!(table("table"), Some(""));
        assert_eq!(table("{{.ID}}"), None);
        assert_eq!(
            expand_escapes("{{.ID}}\\t{{.Names}}\\n"),
            "{{.ID}}\t{{.Names}}\n"
        );
    }

    #[test]
    fn header_names_are_the_field_of_each_action() {
        let template = Template::parse(
            "{{.ID}}\t{{.Names}}\t{{json .State.Status}}\t{{.}}{{range .Args}}{{.}}{{end}}",
        )
        .unwrap();
        assert_eq!(header_names(&template), ["ID", "Names", "State.Status", ""]);
        let header = template.render_header(|name| name.to_uppercase());
        assert_eq!(header, "ID\tNAMES\tSTATE.STATUS\t");
    }
}
