//! Comparing what a page shows with what a command printed.
//!
//! Both sides are normalised line by line as the tests' snapshot filters do (ids,
//! digests, times, the engine's name, runs of spaces), blank lines and the engine's
//! `note:` lines are left out, and then the lines must be the same, in order. Exact,
//! because a page that shows three lines of a push should show the lines a push
//! prints; where it shortens, it says so with `…`: inside a line it stands for any
//! text, and a line that is only `…` for any number of lines.

/// A shown line the output did not have where the page has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The page's line, as written; `None` when the output goes on after the page's last line.
    pub expected: Option<String>,
    /// The output's line at that place, as printed; `None` when the output ended first.
    pub got: Option<String>,
}

/// `Ok` when `actual` prints what `shown` shows (see the module's doc).
pub fn compare(shown: &[String], actual: &str) -> Result<(), Mismatch> {
    let expected: Vec<(String, String)> = lines(shown.iter().map(String::as_str));
    let got: Vec<(String, String)> = lines(actual.lines());
    let pattern: Vec<&str> = expected.iter().map(|(_, n)| n.as_str()).collect();
    let text: Vec<&str> = got.iter().map(|(_, n)| n.as_str()).collect();
    if matches(&pattern, &text) {
        return Ok(());
    }
    // Report where a straight walk (a `…` line taking as few lines as it can) stops.
    let (mut p, mut t) = (0, 0);
    while p < pattern.len() {
        if pattern[p] == ELLIPSIS {
            let next = pattern.get(p + 1);
            match next {
                None => return Err(stop(&expected, &got, p, text.len())),
                Some(next) => match (t..text.len()).find(|&i| line_matches(next, text[i])) {
                    Some(i) => (p, t) = (p + 2, i + 1),
                    None => return Err(stop(&expected, &got, p + 1, t)),
                },
            }
        } else if t < text.len() && line_matches(pattern[p], text[t]) {
            (p, t) = (p + 1, t + 1);
        } else {
            return Err(stop(&expected, &got, p, t));
        }
    }
    Err(stop(&expected, &got, p, t))
}

fn stop(expected: &[(String, String)], got: &[(String, String)], p: usize, t: usize) -> Mismatch {
    Mismatch {
        expected: expected.get(p).map(|(raw, _)| raw.clone()),
        got: got.get(t).map(|(raw, _)| raw.clone()),
    }
}

const ELLIPSIS: &str = "…";

/// The lines that count, each as written and normalised.
fn lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        // A terminal shows what follows the last carriage return.
        .map(|line| line.rsplit('\r').next().unwrap_or(line))
        .map(|line| (line.trim_end().to_string(), normalise(line)))
        .filter(|(_, normal)| !normal.is_empty() && !normal.starts_with("[BIN]: note: "))
        .collect()
}

/// Whether the normalised `text` lines match the `pattern` lines, `…` lines included.
fn matches(pattern: &[&str], text: &[&str]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((&ELLIPSIS, rest)) => (0..=text.len()).any(|skip| matches(rest, &text[skip..])),
        Some((first, rest)) => {
            !text.is_empty() && line_matches(first, text[0]) && matches(rest, &text[1..])
        }
    }
}

/// One line against one pattern line, where `…` stands for any text.
fn line_matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split(ELLIPSIS);
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// One line with what changes from run to run replaced, as the snapshot filters do:
/// hex ids of 12 characters or more (with a registry's `ab/` fan-out directory before
/// them) `[ID]`, timestamps `[TIME]`, docker's "2 minutes ago" `[AGO]` and "3.89MB"
/// `[SIZE]` (the size of the reader's files), "pid 1234" `pid [PID]`, the engine's
/// name `[BIN]`; spaces collapsed.
pub fn normalise(line: &str) -> String {
    let chars: Vec<char> = line.trim().chars().collect();
    let mut out = String::new();
    let mut at = 0;
    while at < chars.len() {
        let starts_word = at == 0 || !is_word(chars[at - 1]);
        let rest = &chars[at..];
        if starts_word {
            if let Some(len) = engine_name(rest) {
                out.push_str("[BIN]");
                at += len;
                continue;
            }
            if let Some(len) = timestamp(rest) {
                out.push_str("[TIME]");
                at += len;
                continue;
            }
            if let Some(len) = ago(rest) {
                out.push_str("[AGO]");
                at += len;
                continue;
            }
            if let Some(len) = size(rest) {
                out.push_str("[SIZE]");
                at += len;
                continue;
            }
            let hex = rest
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                .count();
            if hex >= 12 && !rest.get(hex).is_some_and(|c| is_word(*c)) {
                drop_fan_out(&mut out, &rest[..2]);
                out.push_str("[ID]");
                at += hex;
                continue;
            }
            if out.ends_with("pid ") {
                let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
                if digits >= 2 && !rest.get(digits).is_some_and(|c| is_word(*c)) {
                    out.push_str("[PID]");
                    at += digits;
                    continue;
                }
            }
        }
        if chars[at].is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(chars[at]);
        }
        at += 1;
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `myferry` or `ferry` as a word: pages are written for the student's engine, the
/// runner runs the reference.
fn engine_name(text: &[char]) -> Option<usize> {
    ["myferry", "ferry"].iter().find_map(|name| {
        let len = name.chars().count();
        (text.len() >= len
            && text[..len].iter().copied().eq(name.chars())
            && !text.get(len).is_some_and(|c| is_word(*c)))
        .then_some(len)
    })
}

/// A registry stores blob `sha256:abcd…` under `ab/abcd…`: the `ab/` goes with the id.
fn drop_fan_out(out: &mut String, id_start: &[char]) {
    let fan_out: String = id_start.iter().chain(['/'].iter()).collect();
    if let Some(before) = out.strip_suffix(&fan_out) {
        if !before.chars().last().is_some_and(is_word) {
            out.truncate(before.len());
        }
    }
}

/// `2024-05-07T12:00:00.123Z`, `2024-05-07 12:00:00 +02:00` and the like: its length.
fn timestamp(text: &[char]) -> Option<usize> {
    let shape = "dddd-dd-dd?dd:dd:dd";
    if text.len() < shape.len() {
        return None;
    }
    for (c, s) in text.iter().zip(shape.chars()) {
        let fits = match s {
            'd' => c.is_ascii_digit(),
            '?' => *c == 'T' || *c == ' ',
            s => *c == s,
        };
        if !fits {
            return None;
        }
    }
    let mut at = shape.len();
    let digits = |from: usize| {
        text[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    if text.get(at) == Some(&'.') && digits(at + 1) > 0 {
        at += 1 + digits(at + 1);
    }
    match text.get(at) {
        Some('Z') => at += 1,
        Some('+' | '-') if digits(at + 1) == 2 => {
            let colon = usize::from(text.get(at + 3) == Some(&':'));
            if digits(at + 3 + colon) == 2 {
                at += 5 + colon;
            }
        }
        _ => {}
    }
    Some(at)
}

/// docker's relative times, "Less than a minute ago", "About an hour ago", "3 days ago": its length.
fn ago(text: &[char]) -> Option<usize> {
    let text: String = text.iter().take(40).collect();
    let count_len = ["Less than a ", "About a ", "About an "]
        .iter()
        .find(|p| text.starts_with(*p))
        .map(|p| p.len())
        .or_else(|| {
            let digits = text.chars().take_while(|c| c.is_ascii_digit()).count();
            (digits > 0 && text[digits..].starts_with(' ')).then_some(digits + 1)
        })?;
    let rest = &text[count_len..];
    ["second", "minute", "hour", "day", "week", "month", "year"]
        .iter()
        .find_map(|unit| {
            let after = rest.strip_prefix(unit)?;
            let after_s = after.strip_prefix('s').unwrap_or(after);
            after_s
                .starts_with(" ago")
                .then(|| count_len + (rest.len() - after_s.len()) + " ago".len())
        })
}

/// docker's human sizes, "2MB", "3.89MB", "512B", "1.5GiB": its length.
fn size(text: &[char]) -> Option<usize> {
    let digits = |from: usize| {
        text[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut at = digits(0);
    if at == 0 {
        return None;
    }
    if text.get(at) == Some(&'.') && digits(at + 1) > 0 {
        at += 1 + digits(at + 1);
    }
    let rest: String = text[at..].iter().take(4).collect();
    let unit = ["KiB", "MiB", "GiB", "kB", "KB", "MB", "GB", "TB", "B"]
        .iter()
        .find(|u| rest.starts_with(**u))?;
    let end = at + unit.len();
    (!text.get(end).is_some_and(|c| is_word(*c))).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn what_changes_between_runs_is_normalised() {
        assert_eq!(
            normalise("myferry: error: layer 91b9dc97f211 does not match: expected sha256:91b9dc97f21172bf82870b5fa27d8fe98ff067f761063fccdac329afe82e28b7"),
            "[BIN]: error: layer [ID] does not match: expected sha256:[ID]"
        );
        assert_eq!(
            normalise("/tmp/reg/data/docker/registry/v2/blobs/sha256/91/91b9dc97f21172bf82870b5fa27d8fe98ff067f761063fccdac329afe82e28b7/data"),
            "/tmp/reg/data/docker/registry/v2/blobs/sha256/[ID]/data"
        );
        assert_eq!(
            normalise("created 2024-05-07T12:00:01.123456789Z by pid 4242, ferry-rootfs"),
            "created [TIME] by pid [PID], [BIN]-rootfs"
        );
        assert_eq!(
            normalise("127.0.0.1:5000/test/bb   1    f40dcf2b3904   Less than a minute ago   2MB"),
            "127.0.0.1:5000/test/bb 1 [ID] [AGO] [SIZE]"
        );
        assert_eq!(normalise("About an hour ago, 3 days ago"), "[AGO], [AGO]");
        assert_eq!(
            normalise("3.89MB 512B 1.5GiB 2MBit size: 400"),
            "[SIZE] [SIZE] [SIZE] 2MBit size: 400"
        );
        // Words that merely contain the name or hex stay.
        assert_eq!(
            normalise("ferry2 cafebabe deadbeefcafe0x"),
            "ferry2 cafebabe deadbeefcafe0x"
        );
    }

    #[test]
    fn the_output_must_show_the_same_lines() {
        let page = shown(&["1: Pulling from test/bb", "", "91b9dc97f211: Pull complete"]);
        let out = "1: Pulling from test/bb\n0a1b2c3d4e5f: Pull complete\n";
        assert_eq!(compare(&page, out), Ok(()));
        let out = "1: Pulling from test/bb\n0a1b2c3d4e5f: Pulling fs layer\n0a1b2c3d4e5f: Pull complete\n";
        assert_eq!(
            compare(&page, out),
            Err(Mismatch {
                expected: Some("91b9dc97f211: Pull complete".into()),
                got: Some("0a1b2c3d4e5f: Pulling fs layer".into()),
            })
        );
        assert_eq!(
            compare(
                &page,
                "1: Pulling from test/bb\n0a1b2c3d4e5f: Pull complete\nmore\n"
            ),
            Err(Mismatch {
                expected: None,
                got: Some("more".into())
            })
        );
        assert_eq!(
            compare(&page, "1: Pulling from test/bb\n"),
            Err(Mismatch {
                expected: Some("91b9dc97f211: Pull complete".into()),
                got: None
            })
        );
    }

    #[test]
    fn an_ellipsis_stands_for_text_or_lines() {
        let page = shown(&["Digest: sha256:…", "…", "Status: …"]);
        assert_eq!(
            compare(&page, "Digest: sha256:x\na\nb\nStatus: up to date"),
            Ok(())
        );
        assert_eq!(compare(&page, "Digest: sha256:x\nStatus: new"), Ok(()));
        assert_eq!(
            compare(&page, "Digest: sha256:x\na\n"),
            Err(Mismatch {
                expected: Some("Status: …".into()),
                got: Some("a".into()),
            })
        );
        assert!(line_matches("a…c…e", "abcde"));
        assert!(!line_matches("a…c…e", "abcdef"));
        assert!(!line_matches("x…", "yx"));
    }

    #[test]
    fn notes_and_terminal_rewrites_do_not_count() {
        let page = shown(&["done"]);
        let out = "ferry: note: chapter 3 (cgroups) is not done yet\nworking\rdone\n";
        assert_eq!(compare(&page, out), Ok(()));
    }
}
