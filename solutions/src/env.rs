//! The container's environment: nothing of the host's leaks in.
//!
//! Chapter 0 (chapters/00-process.md). A process inherits its parent's environment
//! unless the parent hands `execve(2)` a new one. ferry builds that new one from a
//! few defaults (as docker sets them) plus what the user asked for with `-e` and
//! `--env-file`.

use std::path::{Path, PathBuf};

/// PATH inside a container when the user sets none: docker's default.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// HOME when the user sets none (the container's user is root until chapter 4).
pub const DEFAULT_HOME: &str = "/root";

/// One `-e` / `--env-file` entry as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EnvEntry {
    /// `KEY=VALUE`: set KEY to VALUE.
    Set(String, String),
    /// `KEY`: pass KEY through from ferry's own environment, if it is set there.
    Inherit(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "invalid environment variable {entry:?}: the name must be non-empty and hold no '=' or NUL"
    )]
    Invalid { entry: String },
    #[error("failed to read env file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid line {line} in env file {path}")]
    FileLine {
        path: PathBuf,
        line: usize,
        #[source]
        source: Box<EnvError>,
    },
}

/// Parses one `-e` argument: `KEY=VALUE` or `KEY`.
pub fn parse_entry(text: &str) -> Result<EnvEntry, EnvError> {
    let invalid = || EnvError::Invalid {
        entry: text.to_string(),
    };
    if text.contains('\0') {
        return Err(invalid());
    }
    match text.split_once('=') {
        Some(("", _)) => Err(invalid()),
        Some((key, value)) => Ok(EnvEntry::Set(key.to_string(), value.to_string())),
        None if text.is_empty() => Err(invalid()),
        None => Ok(EnvEntry::Inherit(text.to_string())),
    }
}

/// Reads an `--env-file`: one entry per line, blank lines and `#` comments skipped.
pub fn read_env_file(path: &Path) -> Result<Vec<EnvEntry>, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = parse_entry(line).map_err(|source| EnvError::FileLine {
            path: path.to_path_buf(),
            line: index + 1,
            source: Box::new(source),
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Builds the container's environment as `KEY=VALUE` strings for execve(2).
///
/// Start from the defaults — `PATH` ([`DEFAULT_PATH`]), `HOSTNAME` (the given
/// hostname) and `HOME` ([`DEFAULT_HOME`]) — then apply the user's entries in
/// order: a `Set` replaces a variable of the same name or adds it; an `Inherit`
/// takes the value from `host_var` and is skipped when the host has no such
/// variable. Nothing else of the host's environment may appear.
pub fn container_environment(
    hostname: &str,
    entries: &[EnvEntry],
    host_var: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    // BEGIN SOLUTION ch00 "build the container's environment: defaults, then -e and --env-file"
    let mut vars: Vec<(String, String)> = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), hostname.to_string()),
        ("HOME".to_string(), DEFAULT_HOME.to_string()),
    ];
    for entry in entries {
        let (key, value) = match entry {
            EnvEntry::Set(key, value) => (key.clone(), value.clone()),
            EnvEntry::Inherit(key) => match host_var(key) {
                Some(value) => (key.clone(), value),
                None => continue,
            },
        };
        match vars.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = value,
            None => vars.push((key, value)),
        }
    }
    vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    // END SOLUTION
}

/// The value of `name` in a `KEY=VALUE` list, as the container will see it.
pub fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_docker_reads_them() {
        assert_eq!(
            parse_entry("A=b=c").unwrap(),
            EnvEntry::Set("A".into(), "b=c".into())
        );
        assert_eq!(
            parse_entry("A=").unwrap(),
            EnvEntry::Set("A".into(), "".into())
        );
        assert_eq!(parse_entry("A").unwrap(), EnvEntry::Inherit("A".into()));
        assert!(parse_entry("=x").is_err());
        assert!(parse_entry("").is_err());
    }

    #[test]
    fn user_entries_override_defaults_and_unknown_inherits_are_skipped() {
        let host = |k: &str| (k == "FROM_HOST").then(|| "h".to_string());
        let env = container_environment(
            "abc",
            &[
                EnvEntry::Set("PATH".into(), "/x".into()),
                EnvEntry::Inherit("FROM_HOST".into()),
                EnvEntry::Inherit("MISSING".into()),
            ],
            &host,
        );
        assert_eq!(
            env,
            ["PATH=/x", "HOSTNAME=abc", "HOME=/root", "FROM_HOST=h"]
        );
    }
}
