//! `.dockerignore` (chapter 11): which files of the build context a build never
//! sees.
//!
//! Before a build reads its context, docker looks for `.dockerignore` at the
//! context's root: one pattern per line, each naming paths to leave out. The
//! rules are docker's (the `patternmatcher` package its CLI and BuildKit share),
//! which differ from `.gitignore` in ways that surprise people:
//!
//! - **Patterns are anchored at the root.** `*.md` excludes `README.md`, not
//!   `docs/guide.md`; `**/*.md` excludes both. (gitignore would match at any depth.)
//! - **A pattern that matches a directory excludes everything in it**: `build`
//!   excludes `build/x/y`, because a path is excluded when the pattern matches it
//!   *or one of its parent directories*.
//! - **The last matching pattern decides**, and `!pattern` is an exception that
//!   re-includes: `docs` then `!docs/README.md` keeps one file of `docs`. Unlike
//!   git, docker can re-include a file under an excluded directory, so a walker
//!   may not simply skip an excluded directory: it asks [`Ignore::may_include_below`].
//!
//! Each line is tidied before it is compiled: a line *starting* with `#` is a
//! comment, whitespace around the pattern is trimmed, and the pattern is cleaned
//! like Go's `filepath.Clean` (`./a//b/` is `a/b`, `a/../b` is `b`) with a
//! leading `/` dropped, since every pattern is relative to the context root. A
//! pattern that climbs out of the context (`../secret`) matches nothing: no path
//! inside the context starts with `..`.
//!
//! A pattern is then split into `/`-separated segments, matched one path segment
//! at a time: `*` is any run of characters and `?` one character (never a `/`),
//! `[a-z]` a class (`[^a-z]` or `[!a-z]` its complement), `\` escapes the next
//! character, and a segment that is exactly `**` stands for any number of path
//! segments, zero included (`**/foo`, `a/**/b`; a trailing `a/**` needs at least
//! one, so it matches what is *in* `a`, not `a` itself).

/// The patterns of one `.dockerignore`, in file order.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A line holds a pattern docker would refuse (`[abc` never closed, `!` alone...).
    #[error("line {line}: bad pattern {pattern:?}: {why}")]
    BadPattern {
        /// 1-based line number in the file.
        line: usize,
        /// The pattern as written (trimmed).
        pattern: String,
        /// What is wrong, lower-case.
        why: String,
    },
}

/// One line, compiled.
#[derive(Debug, Clone)]
struct Pattern {
    /// `!pattern`: a match re-includes instead of excluding.
    exception: bool,
    segments: Vec<Segment>,
}

/// One `/`-separated piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole path segments, zero included.
    AnyDepth,
    /// Anything else: matches exactly one path segment (one name).
    Name(Vec<Token>),
}

/// One piece of a [`Segment::Name`]; escapes are already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A plain character (or an escaped one: `\*` is a literal `*`).
    Literal(char),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters, the empty one included.
    AnyRun,
    /// `[...]`: one character from (or, negated, not from) a set.
    Class(Class),
}

/// A character class: inclusive ranges (`a` alone is the range `a-a`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    /// Whether the class takes the character `c`.
    fn matches(&self, c: char) -> bool {
        let listed = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        listed != self.negated
    }
}

impl Ignore {
    /// Parses a .dockerignore: one pattern per line; `#` comments; blank lines skipped;
    /// whitespace trimmed; a leading `!` makes an exception; patterns cleaned like Go's
    /// filepath.Clean, a leading `/` dropped (patterns are relative to the context root);
    /// `**` matches any number of directories.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        // Editors on Windows like to start a file with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            // As in docker, a comment is a `#` in the first column: `  #x` is a pattern.
            if line.starts_with('#') {
                continue;
            }
            let written = line.trim();
            if written.is_empty() {
                continue;
            }
            let pattern = compile_line(written).map_err(|why| IgnoreError::BadPattern {
                line: index + 1,
                pattern: written.to_string(),
                why,
            })?;
            patterns.push(pattern);
        }
        Ok(Ignore { patterns })
    }

    /// No patterns at all.
    pub fn empty() -> Ignore {
        Ignore::default()
    }

    /// Whether `path` (relative to the context, `/`-separated, no leading `/`, e.g.
    /// "src/main.rs") is excluded: the last pattern that matches the path or one of its
    /// parent directories decides (an exception re-includes).
    pub fn excluded(&self, path: &str) -> bool {
        let path = path_segments(path);
        // The context root itself is never excluded: docker refuses to "exclude everything".
        if path.is_empty() {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that would flip the answer is worth trying: an exclusion
            // while the path is still included, an exception once it is excluded.
            if pattern.exception != excluded {
                continue;
            }
            // `build` must exclude `build/x/y`: try the path and each of its parents.
            let hit = (1..=path.len()).any(|depth| matches(&pattern.segments, &path[..depth]));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether a directory excluded as a whole may still have files re-included by an
    /// exception below it (so the walker must descend into it instead of skipping it):
    /// true when some exception pattern could match a path under `dir`.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = path_segments(dir);
        // An exception can reach below `dir` when some leading part of it matches `dir`
        // whole: the rest of the pattern may then match names inside. (Which names exist
        // is the walker's business; here "could" is enough, so `!**/keep` says yes.)
        self.patterns
            .iter()
            .filter(|pattern| pattern.exception)
            .any(|pattern| {
                let segments = &pattern.segments;
                (0..=segments.len()).any(|len| matches(&segments[..len], &dir))
            })
    }
}

/// Compiles one trimmed, non-comment line, or says what is wrong with it.
fn compile_line(written: &str) -> Result<Pattern, String> {
    let (exception, rest) = match written.strip_prefix('!') {
        // docker trims again after the `!`: `! foo` is `!foo`.
        Some(rest) => (true, rest.trim_start()),
        None => (false, written),
    };
    if exception && rest.is_empty() {
        return Err("an exception `!` needs a pattern after it".to_string());
    }
    let cleaned = clean(rest);
    let relative = cleaned.strip_prefix('/').unwrap_or(&cleaned);
    let mut segments = Vec::new();
    for piece in split_segments(relative) {
        if piece == "**" {
            segments.push(Segment::AnyDepth);
        } else {
            segments.push(Segment::Name(tokenize(&piece)?));
        }
    }
    // docker's trailing `**` takes at least one segment (`a/**` is what is in `a`):
    // store it as "one name, then any depth".
    if segments.last() == Some(&Segment::AnyDepth) {
        segments.insert(segments.len() - 1, Segment::Name(vec![Token::AnyRun]));
    }
    Ok(Pattern {
        exception,
        segments,
    })
}

/// Go's `filepath.Clean` for `/` paths: no empty or `.` segments, `x/..` removed,
/// `..` at the root dropped (`/..` is `/`), `..` kept at the start of a relative
/// path, and `.` for nothing at all.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => match kept.last() {
                Some(&last) if last != ".." => {
                    kept.pop();
                }
                _ if rooted => {}
                _ => kept.push(".."),
            },
            _ => kept.push(segment),
        }
    }
    let joined = kept.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// A path of the context as segments, cleaned as if rooted at the context: a
/// path can never climb out of it, so `a/../../b` is `b`.
fn path_segments(path: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    segments
}

/// Splits a cleaned pattern at its `/`s. Escapes stay in the pieces for
/// [`tokenize`], except `\/`, which is a separator like any `/`.
fn split_segments(pattern: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let next = if c == '\\' { chars.next() } else { None };
        match (c, next) {
            ('/', _) | ('\\', Some('/')) => pieces.push(std::mem::take(&mut current)),
            ('\\', Some(escaped)) => current.extend(['\\', escaped]),
            _ => current.push(c),
        }
    }
    pieces.push(current);
    pieces
}

/// Turns one segment's text into tokens, checking its syntax as Go's
/// `filepath.Match` does.
fn tokenize(piece: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = piece.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            // `***` is no different from `*`; one token keeps the matcher simple.
            '*' if tokens.last() == Some(&Token::AnyRun) => continue,
            '*' => Token::AnyRun,
            '?' => Token::AnyChar,
            '[' => Token::Class(class(&mut chars)?),
            '\\' => match chars.next() {
                Some(escaped) => Token::Literal(escaped),
                None => return Err("a `\\` at the end escapes nothing".to_string()),
            },
            _ => Token::Literal(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Reads a class after its `[`: an optional `^` or `!`, then characters and
/// ranges up to `]`. As in Go, a `-` or `]` inside must be escaped, and the class
/// must not be empty.
fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Class, String> {
    let negated = chars.next_if(|&c| c == '^' || c == '!').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = match chars.next_if_eq(&'-') {
            Some(_) => class_char(chars)?,
            None => lo,
        };
        if lo > hi {
            return Err(format!("the range {lo}-{hi} in `[...]` is backwards"));
        }
        ranges.push((lo, hi));
    }
}

/// One character of a class, unescaped.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    let unclosed = || "a `[` is never closed by `]`".to_string();
    match chars.next().ok_or_else(unclosed)? {
        '\\' => chars.next().ok_or_else(unclosed),
        c @ ('-' | ']') => Err(format!("a `{c}` in `[...]` must be escaped as `\\{c}`")),
        c => Ok(c),
    }
}

/// Whether the pattern's segments match the whole of `path`, segment for segment.
///
/// This is the heart of `.dockerignore`, and it is one plan used at two levels.
/// Across segments, a `Segment::Name` must match exactly one path segment and
/// `Segment::AnyDepth` (`**`) may swallow any number of them. Inside one name,
/// `Token::Literal`, `Token::AnyChar` (`?`) and `Token::Class` (ask
/// `Class::matches`) take exactly one character, and `Token::AnyRun` (`*`) may
/// swallow any number.
///
/// The plan: walk pattern and input together, letting each wildcard swallow
/// nothing at first. On a mismatch, go back to the *last* wildcard seen, let it
/// swallow one more item, and carry on from just after it. Going back to an
/// earlier wildcard is never needed (the later one can swallow whatever the
/// earlier one would have), so this takes time proportional to pattern length
/// times input length, where trying every split could take exponential time on
/// patterns like `*a*a*a*b`. Once the input is used up, what is left of the
/// pattern must be wildcards only.
fn matches(pattern: &[Segment], path: &[&str]) -> bool {
    // BEGIN SOLUTION ch11 "match one .dockerignore pattern against a path: * and ? within a segment, ** across segments"
    fn wildcard<P, T>(
        pattern: &[P],
        input: &[T],
        is_wildcard: impl Fn(&P) -> bool,
        matches_one: impl Fn(&P, &T) -> bool,
    ) -> bool {
        let (mut p, mut i) = (0, 0);
        // The last wildcard seen: the pattern item after it, and where its swallowing ends.
        let mut last: Option<(usize, usize)> = None;
        while i < input.len() {
            match pattern.get(p) {
                Some(item) if is_wildcard(item) => {
                    last = Some((p + 1, i));
                    p += 1;
                }
                Some(item) if matches_one(item, &input[i]) => (p, i) = (p + 1, i + 1),
                _ => match last.as_mut() {
                    Some((after, end)) => {
                        *end += 1;
                        (p, i) = (*after, *end);
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(is_wildcard)
    }

    let is_star = |token: &Token| *token == Token::AnyRun;
    let takes = |token: &Token, c: &char| match token {
        Token::Literal(literal) => literal == c,
        Token::AnyChar => true,
        Token::Class(class) => class.matches(*c),
        Token::AnyRun => false,
    };
    let names: Vec<Vec<char>> = path.iter().map(|name| name.chars().collect()).collect();
    let is_any_depth = |segment: &Segment| *segment == Segment::AnyDepth;
    wildcard(
        pattern,
        &names,
        is_any_depth,
        |segment, name| match segment {
            Segment::Name(tokens) => wildcard(tokens, name.as_slice(), is_star, takes),
            Segment::AnyDepth => false,
        },
    )
    // END SOLUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
    }

    #[test]
    fn one_pattern_against_paths() {
        // (pattern, path, excluded)
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc", "x/abc", false),
            ("*", "abc", true),
            ("*", "a/b/c", true), // `*` matches `a`, a parent of everything under it
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            (".*", ".git", true),
            (".*", "git", false),
            ("abc.def", "abcZdef", false),
            ("a(b)c/de+f", "a(b)c/de+f", true),
            // Classes: ranges, negation with `^` or `!`, escapes, any character.
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("ab[!e-g]", "abc", true),
            ("ab[!c]", "abc", false),
            ("a[^a]b", "a☺b", true),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\!]x", "!x", true),
            // Escapes.
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a\\\\", "a\\", true),
            ("a\\/b", "a/b", true),
            ("\\!keep", "!keep", true),
            // Only at the top level, unless the pattern says otherwise.
            ("*.md", "README.md", true),
            ("*.md", "docs/guide.md", false),
            ("*/*.md", "docs/guide.md", true),
            ("*/*.md", "README.md", false),
            ("docs/*.md", "docs/a/b.md", false),
            // `**`.
            ("**", "file", true),
            ("**", "dir/file", true),
            ("**/**", "dir/file", true),
            ("**/*.log", "app.log", true),
            ("**/*.log", "var/log/app.log", true),
            ("**/*.log", "var/log/app.txt", false),
            ("**/*.log", "a/old.log/x", true), // a matching parent excludes what is in it
            ("**/dir", "dir", true),
            ("**/dir", "a/b/dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "x/y/foo/bar", true),
            ("**/.foo", "bar.foo", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("a/**/b", "x/a/b", false),
            ("a/**/b/*.txt", "a/1/2/b/c.txt", true),
            ("abc/**", "abc", false), // what is in abc, not abc itself (docker)
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/**/*.txt2", "dir/file.txt", false),
            ("a**", "abc", true), // `**` inside a name is a plain `*`
            ("\\*\\*", "**", true),
            ("\\*\\*", "x", false),
            // Cleaning: trailing and doubled slashes, `./`, `..`, a leading `/`.
            ("build/", "build", true),
            ("build/", "build/out/x.o", true),
            ("a//b", "a/b", true),
            ("./foo", "foo", true),
            ("/foo", "foo", true),
            ("/foo", "x/foo", false),
            ("a/../b", "b", true),
            ("a/./b/.", "a/b/c", true),
            ("/../secret", "secret", true), // `/..` is `/`, as in Go
            ("../secret", "secret", false), // outside the context: matches nothing
            ("../*", "secret", false),
            ("a/../../b", "b", false),
            // `.` names the context itself, which is never excluded.
            (".", "foo", false),
            ("./", "foo", false),
            ("/", "foo", false),
            ("*", "", false),
            ("*", ".", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(
                ignore(pattern).excluded(path),
                want,
                "pattern {pattern:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn the_last_matching_pattern_decides() {
        // (.dockerignore, path, excluded)
        let cases = [
            ("docs\n!docs/README.md", "docs/README.md", false),
            ("docs\n!docs/README.md", "docs/other.md", true),
            ("docs\n!docs/README.md", "docs", true),
            ("docs/\n!docs/README.md", "docs/README.md", false),
            ("docs/*\n!docs/README.md", "docs/README.md", false),
            ("!docs/README.md\ndocs", "docs/README.md", true),
            ("*.go\n!fileutils.go", "fileutils.go", false),
            ("!fileutils.go\n*.go", "fileutils.go", true),
            ("*\n!src", "src/main.rs", false),
            ("*\n!src", "target/debug", true),
            ("*\n!*.md", "README.md", false),
            ("**\n!util/docker/web", "util/docker/web/foo", false),
            (
                "**\n!util/docker/web\nutil/docker/web/foo",
                "util/docker/web/foo",
                true,
            ),
            (
                "**\n!dist/*.whl",
                "dist/proxy-2.4.0rc3.dev36+g08-py3-none-any.whl",
                false,
            ),
            ("*.log\n!keep.log\n*.log", "keep.log", true),
            ("**/*.log\n!important/**", "important/a/b.log", false),
            (
                "node_modules\n!node_modules/x\nnode_modules/x/test",
                "node_modules/x/test/a",
                true,
            ),
            (
                "node_modules\n!node_modules/x\nnode_modules/x/test",
                "node_modules/x/lib/a",
                false,
            ),
            ("a\n!a/b\na/b/c\n!a/b/c/d", "a/b/c/d/e", false),
            ("a\n!a/b\na/b/c\n!a/b/c/d", "a/b/c/e", true),
        ];
        for (text, path, want) in cases {
            assert_eq!(ignore(text).excluded(path), want, "{text:?}, path {path:?}");
        }
    }

    #[test]
    fn lines_comments_and_whitespace() {
        let text = "\u{feff}# a comment\n\n  target  \r\n\t*.o\n!  keep.o\n  #notacomment\n";
        let rules = ignore(text);
        assert!(rules.excluded("target/debug/app"));
        assert!(rules.excluded("x.o"));
        assert!(!rules.excluded("keep.o"));
        assert!(
            rules.excluded("#notacomment"),
            "a `#` is a comment in column 1 only"
        );
        assert!(!rules.excluded("# a comment"));
        assert!(!rules.excluded("src/main.rs"));
        assert!(!Ignore::empty().excluded("anything/at/all"));
        assert!(!Ignore::empty().may_include_below("anything"));
        assert!(!ignore("").excluded("x") && !ignore("# only\n\n   \n").excluded("x"));
    }

    #[test]
    fn bad_patterns_name_their_line() {
        // (.dockerignore, line of the bad pattern, the pattern)
        let cases = [
            ("!", 1, "!"),
            ("ok\n\n  !  ", 3, "!"),
            ("[", 1, "["),
            ("a\nb\n[abc", 3, "[abc"),
            ("x/[^", 1, "x/[^"),
            ("a[", 1, "a["),
            ("[]a]", 1, "[]a]"),
            ("[-]", 1, "[-]"),
            ("[x-]", 1, "[x-]"),
            ("[-x]", 1, "[-x]"),
            ("[a-b-c]", 1, "[a-b-c]"),
            ("[z-a]", 1, "[z-a]"),
            ("[\\", 1, "[\\"),
            ("ok\nfoo\\", 2, "foo\\"),
            ("!**/[x", 1, "!**/[x"),
        ];
        for (text, line, pattern) in cases {
            match Ignore::parse(text) {
                Err(IgnoreError::BadPattern {
                    line: l,
                    pattern: p,
                    why,
                }) => {
                    assert_eq!((l, p.as_str()), (line, pattern), "{text:?}");
                    assert!(!why.is_empty());
                }
                Ok(_) => panic!("{text:?} parsed"),
            }
        }
        let error = Ignore::parse("ok\n[abc").err().map(|e| e.to_string());
        let want = "line 2: bad pattern \"[abc\": a `[` is never closed by `]`";
        assert_eq!(error.as_deref(), Some(want));
    }

    #[test]
    fn when_the_walker_must_descend() {
        // (.dockerignore, directory, may an exception re-include something under it)
        let cases = [
            ("docs\n!docs/README.md", "docs", true),
            ("docs\n!docs/README.md", "src", false),
            ("docs\n!docs/README.md", "docs/api", false),
            ("docs\n!docs/api/index.md", "docs/api", true),
            ("*\n!*/README.md", "docs", true),
            ("*\n!*/README.md", "docs/api", false),
            ("*\n!**/keep", "a/b/c", true),
            ("*\n!a/**", "a", true),
            ("*\n!a/**", "b", false),
            ("*\n!a/**/z", "a/b/c", true),
            ("*\n!a", "a", true),
            ("*\n!src", "target", false),
            ("*\n!d[0-9]/x", "d7", true),
            ("*\n!d[0-9]/x", "dx", false),
            ("docs", "docs", false),
            ("docs\n!docs/README.md", "", true),
        ];
        for (text, dir, want) in cases {
            assert_eq!(
                ignore(text).may_include_below(dir),
                want,
                "{text:?}, dir {dir:?}"
            );
        }
    }

    #[test]
    fn paths_are_cleaned_and_cannot_escape() {
        let rules = ignore("secret\n*.key");
        for path in [
            "secret",
            "./secret",
            "a/../secret",
            "../secret",
            "../../x.key",
            "/secret",
        ] {
            assert!(rules.excluded(path), "{path:?}");
        }
        assert!(rules.excluded("secret//x/"));
        assert!(!rules.excluded("a/secret"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        // Trying every split would take ages here; the last-wildcard plan does not.
        let name = "a".repeat(200);
        assert!(!ignore(&format!("{}b", "*a".repeat(30))).excluded(&name));
        let deep = vec!["d"; 200].join("/");
        let rules = ignore(&format!("{}z", "**/".repeat(30)));
        assert!(!rules.excluded(&deep));
        assert!(rules.excluded(&format!("{deep}/z")));
    }

    /// A slow, obviously right matcher: try every split (exponential, fine on small input).
    fn oracle(pattern: &[Segment], path: &[&str]) -> bool {
        fn name_oracle(tokens: &[Token], name: &[char]) -> bool {
            match tokens.split_first() {
                None => name.is_empty(),
                Some((Token::AnyRun, rest)) => {
                    (0..=name.len()).any(|i| name_oracle(rest, &name[i..]))
                }
                Some((token, rest)) => match name.split_first() {
                    None => false,
                    Some((&c, others)) => {
                        let one = match token {
                            Token::Literal(l) => *l == c,
                            Token::Class(class) => class.matches(c),
                            _ => true,
                        };
                        one && name_oracle(rest, others)
                    }
                },
            }
        }
        match pattern.split_first() {
            None => path.is_empty(),
            Some((Segment::AnyDepth, rest)) => (0..=path.len()).any(|i| oracle(rest, &path[i..])),
            Some((Segment::Name(tokens), rest)) => match path.split_first() {
                None => false,
                Some((first, others)) => {
                    name_oracle(tokens, &first.chars().collect::<Vec<_>>()) && oracle(rest, others)
                }
            },
        }
    }

    /// Random patterns and paths from a small alphabet, so that they often match:
    /// nothing may panic, and the fast matcher must agree with the oracle.
    #[test]
    fn fuzz() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Weighted towards what matches: letters, `/` and wildcards.
        let pattern_chars: Vec<char> = "aabb//***?[]^!-\\ #☺.".chars().collect();
        let path_chars: Vec<char> = "aabb//-!☺.".chars().collect();
        let mut random = |alphabet: &[char], most: u64| -> String {
            let len = next() % most;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        };
        let (mut parsed, mut hits) = (0, 0);
        for _ in 0..20_000 {
            let text = format!(
                "{}\n{}",
                random(&pattern_chars, 10),
                random(&pattern_chars, 8)
            );
            let path = random(&path_chars, 12);
            let Ok(rules) = Ignore::parse(&text) else {
                continue;
            };
            parsed += 1;
            rules.excluded(&path);
            rules.may_include_below(&path);
            let segments = path_segments(&path);
            for pattern in &rules.patterns {
                for depth in 0..=segments.len() {
                    let (segments, path) = (&pattern.segments, &segments[..depth]);
                    let fast = matches(segments, path);
                    hits += usize::from(fast);
                    assert_eq!(fast, oracle(segments, path), "{text:?} {path:?}");
                }
            }
        }
        // The fuzzer is only worth something if it makes valid patterns that match.
        assert!(
            parsed > 5000 && hits > 1000,
            "{parsed} valid, {hits} matches"
        );
    }
}
