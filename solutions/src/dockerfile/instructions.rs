//! One instruction's arguments, typed (chapter 11): flags, exec or shell form,
//! `key=value` pairs, heredoc markers. The rules and messages follow docker's
//! parser; what depends on the build (does that stage exist?) is checked later.

use super::{Command, Copy, Healthcheck, Heredoc, Instruction, Kind, Location, Run};

/// What one logical line turned out to be.
pub enum Parsed {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Instruction(Kind),
}

/// Why an instruction does not parse: a byte offset into its arguments (or
/// `usize::MAX` for the instruction's name) and the message.
#[derive(Debug)]
pub struct Failure {
    pub offset: usize,
    pub message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        offset,
        message: message.into(),
    })
}

/// The instruction names docker knows.
pub const NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Types the arguments `rest` of the instruction `name` (upper-case).
pub fn parse(
    name: &str,
    rest: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
) -> Result<Parsed, Failure> {
    let kind = match name {
        "FROM" => return from(rest, escape),
        "RUN" => {
            let (flags, args, _) = flags(rest, escape, "RUN", &[("network", true)])?;
            if args.is_empty() && heredocs.is_empty() {
                return fail(
                    usize::MAX,
                    "RUN needs a command: RUN COMMAND or RUN [\"exec\", \"form\"]",
                );
            }
            let network = flags.value("network");
            if let Some(network) = &network {
                if !["default", "none", "host"].contains(&network.as_str()) {
                    return fail(
                        0,
                        format!("invalid RUN --network={network}: use default, none or host"),
                    );
                }
            }
            Kind::Run(Run {
                command: command_form(args),
                heredocs,
                network,
            })
        }
        "CMD" | "ENTRYPOINT" => {
            if rest.is_empty() {
                return fail(
                    usize::MAX,
                    format!("{name} needs a command: {name} [\"program\", \"arg\"]"),
                );
            }
            match name {
                "CMD" => Kind::Cmd(command_form(rest)),
                _ => Kind::Entrypoint(command_form(rest)),
            }
        }
        "COPY" | "ADD" => {
            let allowed: &[(&str, bool)] = match name {
                "COPY" => &[
                    ("from", true),
                    ("chown", true),
                    ("chmod", true),
                    ("link", false),
                ],
                _ => &[("chown", true), ("chmod", true), ("link", false)],
            };
            let (flags, args, at) = flags(rest, escape, name, allowed)?;
            let mut words = json_list(args).unwrap_or_else(|| {
                raw_words(args, escape)
                    .into_iter()
                    .map(|(_, w)| w.to_string())
                    .collect()
            });
            if words.len() < 2 {
                return fail(
                    at,
                    format!("{name} needs a source and a destination: {name} SOURCE... DEST"),
                );
            }
            let dest = words.pop().unwrap_or_default();
            let copy = Copy {
                sources: words,
                dest,
                from: flags.value("from"),
                chown: flags.value("chown"),
                chmod: flags.value("chmod"),
                link: flags.switch("link"),
                heredocs,
            };
            match name {
                "COPY" => Kind::Copy(copy),
                _ => Kind::Add(copy),
            }
        }
        "ENV" => Kind::Env(pairs(rest, escape, "ENV")?),
        "LABEL" => Kind::Label(pairs(rest, escape, "LABEL")?),
        "ARG" => {
            let words = raw_words(rest, escape);
            if words.is_empty() {
                return fail(usize::MAX, "ARG needs a name: ARG NAME or ARG NAME=default");
            }
            let mut args = Vec::new();
            for (at, word) in words {
                let (name, default) = match word.split_once('=') {
                    Some((name, default)) => (name, Some(default.to_string())),
                    None => (word, None),
                };
                if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
                    return fail(
                        at,
                        format!("invalid ARG name {name:?}: use letters, digits and _"),
                    );
                }
                args.push((name.to_string(), default));
            }
            Kind::Arg(args)
        }
        "WORKDIR" => Kind::Workdir(one(rest, "WORKDIR needs a directory: WORKDIR /app")?),
        "USER" => Kind::User(one(
            rest,
            "USER needs a user: USER NAME[:GROUP] or USER UID[:GID]",
        )?),
        "STOPSIGNAL" => {
            Kind::StopSignal(one(rest, "STOPSIGNAL needs a signal: STOPSIGNAL SIGTERM")?)
        }
        "MAINTAINER" => Kind::Maintainer(one(rest, "MAINTAINER needs a name")?),
        "EXPOSE" => {
            let ports: Vec<String> = raw_words(rest, escape)
                .into_iter()
                .map(|(_, w)| w.to_string())
                .collect();
            if ports.is_empty() {
                return fail(
                    usize::MAX,
                    "EXPOSE needs a port: EXPOSE 80 or EXPOSE 53/udp",
                );
            }
            Kind::Expose(ports)
        }
        "VOLUME" => {
            let paths = json_list(rest).unwrap_or_else(|| {
                raw_words(rest, escape)
                    .into_iter()
                    .map(|(_, w)| w.to_string())
                    .collect()
            });
            if paths.is_empty() || paths.iter().any(String::is_empty) {
                return fail(
                    usize::MAX,
                    "VOLUME needs a path (not an empty string): VOLUME /data",
                );
            }
            Kind::Volume(paths)
        }
        "SHELL" => match json_list(rest) {
            Some(shell) if !shell.is_empty() => Kind::Shell(shell),
            _ => {
                return fail(
                    0,
                    "SHELL needs the shell in JSON form: SHELL [\"/bin/sh\", \"-c\"]",
                )
            }
        },
        "HEALTHCHECK" => Kind::Healthcheck(healthcheck(rest, escape)?),
        "ONBUILD" => {
            let name_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let inner = rest[..name_len].to_ascii_uppercase();
            let inner_rest = rest[name_len..].trim_start();
            let inner_at = rest.len() - inner_rest.len();
            match inner.as_str() {
                "" => return fail(usize::MAX, "ONBUILD needs an instruction: ONBUILD RUN make"),
                "ONBUILD" | "FROM" | "MAINTAINER" => {
                    return fail(0, format!("ONBUILD {inner} is not allowed"))
                }
                _ => {}
            }
            let kind = match parse(&inner, inner_rest, Vec::new(), escape) {
                Ok(Parsed::Instruction(kind)) => kind,
                Ok(Parsed::From { .. }) => return fail(0, "ONBUILD FROM is not allowed"),
                Err(Failure { offset, message }) if offset == usize::MAX => {
                    return fail(0, message)
                }
                Err(Failure { offset, message }) => return fail(inner_at + offset, message),
            };
            Kind::Onbuild(Box::new(Instruction {
                kind,
                location: Location::default(),
                source: rest.to_string(),
            }))
        }
        _ => return fail(usize::MAX, unknown(name)),
    };
    Ok(Parsed::Instruction(kind))
}

/// `unknown instruction: RNU (did you mean RUN?)`.
fn unknown(name: &str) -> String {
    let closest = NAMES
        .iter()
        .map(|known| (distance(name, known), *known))
        .min()
        .filter(|(d, _)| *d <= 2 && *d < name.len());
    match closest {
        Some((_, known)) => format!("unknown instruction: {name} (did you mean {known}?)"),
        None => format!("unknown instruction: {name}"),
    }
}

/// Edit distance with transpositions (optimal string alignment): how many
/// characters to change, add, drop or swap. `RNU` is one swap from `RUN`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Exec form or shell form: arguments that are a JSON array of strings are the
/// exec form, run as they are; anything else, invalid JSON included, is the
/// shell form, the text handed to the SHELL. So `CMD ["echo", "hi"]` runs echo,
/// and `CMD [echo, hi]` (not JSON: the words are unquoted) runs
/// `/bin/sh -c '[echo, hi]'`, as docker does.
pub fn command_form(args: &str) -> Command {
    // BEGIN SOLUTION ch11 "exec form or shell form: a JSON array of strings is the exec form, anything else (invalid JSON too) the shell form"
    match json_list(args) {
        Some(argv) => Command::Exec(argv),
        None => Command::Shell(args.trim().to_string()),
    }
    // END SOLUTION
}

/// The arguments as a JSON array of strings, if they are one.
pub fn json_list(args: &str) -> Option<Vec<String>> {
    let args = args.trim();
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// Splits arguments into raw words at unquoted, unescaped whitespace, keeping
/// quotes and escapes in the words (they are expanded later). Returns each word
/// with its byte offset.
pub fn raw_words(args: &str, escape: char) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut chars = args.char_indices();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if let Some(begin) = start.take() {
                    words.push((begin, &args[begin..at]));
                }
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), _) => {}
            (_, c) if c == escape => {
                chars.next();
            }
            _ => {}
        }
        start.get_or_insert(at);
    }
    if let Some(begin) = start {
        words.push((begin, &args[begin..]));
    }
    words
}

/// The whole rest as one raw argument (WORKDIR, USER, ...), which must be there.
fn one(rest: &str, needed: &str) -> Result<String, Failure> {
    if rest.is_empty() {
        return fail(usize::MAX, needed);
    }
    Ok(rest.to_string())
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
fn from(rest: &str, escape: char) -> Result<Parsed, Failure> {
    let (flags, args, at) = flags(rest, escape, "FROM", &[("platform", true)])?;
    let words = raw_words(args, escape);
    let name = match words.as_slice() {
        [_] => None,
        [_, (as_at, word), (name_at, name)] => {
            if !word.eq_ignore_ascii_case("as") {
                return fail(
                    at + as_at,
                    format!("expected AS after the image, found {word:?}: FROM IMAGE AS NAME"),
                );
            }
            let name = name.to_ascii_lowercase();
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return fail(
                    at + name_at,
                    format!("invalid stage name {name:?}: start with a letter, then letters, digits, -, _ or ."),
                );
            }
            Some(name)
        }
        _ => {
            return fail(
                usize::MAX,
                "FROM needs an image, and optionally a stage name: FROM IMAGE [AS NAME]",
            )
        }
    };
    Ok(Parsed::From {
        base: words[0].1.to_string(),
        name,
        platform: flags.value("platform"),
    })
}

/// `ENV`/`LABEL`: `k=v k2="v 2"`, or the old `k v w` (one pair, the value the
/// rest of the line).
fn pairs(rest: &str, escape: char, name: &str) -> Result<Vec<(String, String)>, Failure> {
    let words = raw_words(rest, escape);
    let Some(&(_, first)) = words.first() else {
        return fail(
            usize::MAX,
            format!("{name} needs a name and a value: {name} KEY=value"),
        );
    };
    if !first.contains('=') {
        let value = rest[first.len()..].trim_start();
        if value.is_empty() {
            return fail(
                0,
                format!(
                    "{name} {first} needs a value: {name} {first}=value (or {name} {first} value)"
                ),
            );
        }
        return Ok(vec![(first.to_string(), value.to_string())]);
    }
    let mut pairs = Vec::new();
    for (at, word) in words {
        let Some((key, value)) = word.split_once('=') else {
            return fail(at, format!("expected KEY=value, found {word:?}: quote values with spaces, {name} KEY=\"a b\""));
        };
        if key.is_empty() {
            return fail(
                at,
                format!("{name} names can not be blank: {name} KEY=value"),
            );
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=...] CMD command`.
fn healthcheck(rest: &str, escape: char) -> Result<Healthcheck, Failure> {
    let allowed = [
        ("interval", true),
        ("timeout", true),
        ("start-period", true),
        ("start-interval", true),
        ("retries", true),
    ];
    let (flags, args, at) = flags(rest, escape, "HEALTHCHECK", &allowed)?;
    let kind_len = args.find(char::is_whitespace).unwrap_or(args.len());
    let command = args[kind_len..].trim_start();
    match args[..kind_len].to_ascii_uppercase().as_str() {
        // docker reads the options only for CMD: with NONE they are ignored.
        "NONE" if command.is_empty() => Ok(Healthcheck::Disable),
        "NONE" => fail(0, "HEALTHCHECK NONE takes no other arguments"),
        "CMD" if command.is_empty() => fail(
            at,
            "HEALTHCHECK CMD needs a command: HEALTHCHECK CMD curl -f http://localhost/",
        ),
        "CMD" => {
            for (flag, _) in &allowed[..4] {
                if let Some((value, offset)) = flags.get(flag) {
                    if !is_duration(&value) {
                        return fail(offset, format!("invalid --{flag}={value}: give a duration such as 30s, 1m30s or 500ms"));
                    }
                }
            }
            let retries = match flags.get("retries") {
                None => None,
                Some((value, offset)) => match value.parse::<u32>() {
                    Ok(retries) => Some(retries),
                    Err(_) => {
                        return fail(
                            offset,
                            format!("invalid --retries={value}: give a whole number, 0 or more"),
                        )
                    }
                },
            };
            Ok(Healthcheck::Check {
                test: command_form(command),
                interval: flags.value("interval"),
                timeout: flags.value("timeout"),
                start_period: flags.value("start-period"),
                start_interval: flags.value("start-interval"),
                retries,
            })
        }
        "" => fail(usize::MAX, "HEALTHCHECK needs CMD COMMAND or NONE"),
        other => fail(
            at,
            format!("unknown type {other:?} in HEALTHCHECK (try CMD or NONE)"),
        ),
    }
}

/// A Go duration, as docker takes it: `0`, or numbers with units, `1m30s`, `1.5h`, `500ms`.
fn is_duration(text: &str) -> bool {
    if text == "0" {
        return true;
    }
    let mut rest = text;
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number == 0 || rest[..number].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[number..];
        let Some(unit) = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    !text.is_empty()
}

/// The flags an instruction was given: name, value (`None` for a bare switch)
/// and the byte offset of the flag.
pub struct Flags(Vec<(String, Option<String>, usize)>);

impl Flags {
    fn get(&self, name: &str) -> Option<(String, usize)> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, at)| (v.clone().unwrap_or_default(), *at))
    }

    fn value(&self, name: &str) -> Option<String> {
        self.get(name).map(|(value, _)| value)
    }

    /// A switch (`--link`, `--link=true`): on unless written `=false`.
    fn switch(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|(n, v, _)| n == name && v.as_deref() != Some("false"))
    }
}

/// The flags RUN, ADD and COPY do not support in ferry, and what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("mount", "ferry does not support RUN --mount (cache, secret and bind mounts); COPY what the step needs instead"),
    ("security", "ferry does not support RUN --security; steps run with the default confinement"),
    ("parents", "ferry does not support COPY --parents; COPY each directory to its place"),
    ("exclude", "ferry does not support --exclude; list what to leave out in .dockerignore"),
    ("checksum", "ferry does not support ADD --checksum (it is for URLs, which ferry does not fetch)"),
    ("keep-git-dir", "ferry does not support ADD --keep-git-dir (it does not fetch git repositories)"),
];

/// Reads the leading `--flag[=value]` words. `allowed` names each flag and
/// whether it takes a value. Returns the flags, the arguments after them and
/// their offset.
fn flags<'a>(
    rest: &'a str,
    escape: char,
    instruction: &str,
    allowed: &[(&str, bool)],
) -> Result<(Flags, &'a str, usize), Failure> {
    let mut flags = Vec::new();
    for (at, word) in raw_words(rest, escape) {
        let Some(flag) = word
            .strip_prefix("--")
            .filter(|f| f.starts_with(|c: char| c.is_ascii_alphabetic()))
        else {
            return Ok((Flags(flags), &rest[at..], at));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        let name = name.to_ascii_lowercase();
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
            return fail(at, format!("--{name}: {why}"));
        }
        let Some(&(_, takes_value)) = allowed.iter().find(|(n, _)| *n == name) else {
            let known: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            let closest = allowed
                .iter()
                .map(|(n, _)| (distance(&name, n), *n))
                .min()
                .filter(|(d, _)| *d <= 2);
            let hint = closest.map_or(String::new(), |(_, n)| format!("did you mean --{n}? "));
            return fail(
                at,
                format!("unknown flag --{name} for {instruction} ({hint}it takes {known})"),
            );
        };
        if takes_value && value.as_deref().is_none_or(str::is_empty) {
            return fail(at, format!("flag --{name} needs a value: --{name}=VALUE"));
        }
        if flags.iter().any(|(n, _, _)| *n == name) {
            return fail(at, format!("duplicate flag --{name}"));
        }
        flags.push((name, value, at));
    }
    Ok((Flags(flags), "", rest.len()))
}

/// A `<<EOF` word of RUN, COPY or ADD: the delimiter, whether `<<-` strips
/// leading tabs, whether the body is expanded (unquoted delimiter), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub name: String,
    pub strip_tabs: bool,
    pub expand: bool,
    pub offset: usize,
}

/// The heredoc markers among the arguments' words, in order.
pub fn heredoc_markers(rest: &str, escape: char) -> Vec<Marker> {
    let mut markers = Vec::new();
    for (offset, word) in raw_words(rest, escape) {
        // `<<EOF`, or with the descriptor it feeds: `3<<EOF`.
        let Some(after) = word
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .strip_prefix("<<")
        else {
            continue;
        };
        let (strip_tabs, after) = match after.strip_prefix('-') {
            Some(after) => (true, after),
            None => (false, after),
        };
        let quoted = ['"', '\'']
            .iter()
            .find_map(|q| after.strip_prefix(*q).and_then(|a| a.strip_suffix(*q)));
        let name = quoted.unwrap_or(after);
        if name.is_empty() || name.contains(['<', '"', '\'']) {
            continue;
        }
        markers.push(Marker {
            name: name.to_string(),
            strip_tabs,
            expand: quoted.is_none(),
            offset,
        });
    }
    markers
}
