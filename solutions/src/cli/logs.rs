//! Watching a container (chapter 8): `logs` reads its log (docker's json-file
//! format, written by its supervisor) and `attach` follows it from now on. A
//! container with a terminal (`-t`, chapter 9) has no log lines to follow:
//! `attach` connects this terminal to the supervisor's attach socket instead.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::container::wait_for_supervisor;
use super::run::CliError;
use crate::clock;
use crate::engine::containers::logs::{self, Stream};
use crate::engine::containers::{is_alive, ContainerError, Containers, Record, Status};

/// `attach CONTAINER`
#[derive(Debug, Args)]
pub struct AttachArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `logs [-f] [--tail N] [-t] [--since WHEN] CONTAINER`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output until the container ends
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since a time (2026-12-02T10:00:00Z, a Unix time) or a duration ago (10s, 5m, 2h)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `attach`: the container's output from now on, until it ends; its exit code.
pub fn attach(args: &AttachArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let record = containers.get(&args.container)?;
    if record.state.status != Status::Running && record.state.status != Status::Restarting {
        return Err(ContainerError::WrongState {
            name: args.container.clone(),
            status: record.state.status,
            why: "you cannot attach to a stopped container, start it first",
        }
        .into());
    }
    if !record.supervision.logged {
        return Err(ContainerError::WrongState {
            name: args.container.clone(),
            status: record.state.status,
            why: "it runs attached to the terminal of the run that started it; there is nothing to attach to",
        }
        .into());
    }
    if has_terminal(&containers, &record) {
        return attach_terminal(&containers, &record, true);
    }
    follow_to_end(&containers, &record, logs::end(&record.log_path))
}

/// Whether the container's command has a terminal (`-t`).
pub(super) fn has_terminal(containers: &Containers, record: &Record) -> bool {
    crate::engine::containers::read_spec(&containers.dir(&record.id))
        .is_some_and(|spec| spec.process.terminal)
}

/// Attaches this terminal to the container's (through its supervisor) until the
/// container ends — its exit code — or the detach keys leave it running (0).
pub(super) fn attach_terminal(
    containers: &Containers,
    record: &Record,
    interactive: bool,
) -> Result<i32, CliError> {
    use crate::engine::containers::attach;
    use std::io::IsTerminal;
    let socket =
        attach::connect(&containers.dir(&record.id)).map_err(|source| ContainerError::Io {
            action: "connect to the attach socket of",
            path: containers.dir(&record.id).join(attach::SOCKET),
            source,
        })?;
    let raw = if std::io::stdin().is_terminal() {
        Some(crate::terminal::RawMode::enable().map_err(|e| CliError::Terminal(e.to_string()))?)
    } else {
        None
    };
    let keys = crate::terminal::DetachKeys::new(crate::terminal::DETACH_KEYS);
    let relayed = super::terminal::relay_attached(socket, keys, interactive);
    drop(raw);
    match relayed.map_err(|e| CliError::Terminal(format!("relaying the terminal failed: {e}")))? {
        super::terminal::RelayEnd::Detached => {
            eprintln!("read escape sequence");
            Ok(0)
        }
        super::terminal::RelayEnd::Signalled(signal) => Ok(128 + signal),
        super::terminal::RelayEnd::Ended => {
            let record = containers.get(&record.id)?;
            wait_for_supervisor(containers, &record)?;
            Ok(containers.get(&record.id)?.state.exit_code)
        }
    }
}

/// Prints the log from `offset` as it grows until the container has ended (and
/// will not restart); its exit code.
pub(super) fn follow_to_end(
    containers: &Containers,
    record: &Record,
    offset: u64,
) -> Result<i32, CliError> {
    let mut offset = offset;
    loop {
        let (entries, next) =
            logs::read_from(&record.log_path, offset).map_err(|source| ContainerError::Io {
                action: "read",
                path: record.log_path.clone(),
                source,
            })?;
        offset = next;
        print_entries(&entries, false);
        let now = containers.get(&record.id)?;
        let supervised = now.supervision.supervisor.as_ref().is_some_and(is_alive);
        if !supervised && !matches!(now.state.status, Status::Running | Status::Restarting) {
            let (entries, _) = logs::read_from(&record.log_path, offset).unwrap_or_default();
            print_entries(&entries, false);
            return Ok(now.state.exit_code);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes log entries to stdout and stderr, as their streams were.
fn print_entries(entries: &[logs::Entry], timestamps: bool) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for entry in entries {
        let line = if timestamps {
            format!("{} {}", entry.time, entry.log)
        } else {
            entry.log.clone()
        };
        let _ = match entry.stream {
            Stream::Stdout => out.write_all(line.as_bytes()),
            Stream::Stderr => err.write_all(line.as_bytes()),
        };
    }
    let _ = out.flush();
    let _ = err.flush();
}

/// `logs`.
pub fn logs(args: &LogsArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let record = containers.get(&args.container)?;
    if !record.supervision.logged && record.state.status != Status::Created {
        return Err(ContainerError::WrongState {
            name: args.container.clone(),
            status: record.state.status,
            why: "it ran attached (run without -d): its output went to that terminal, not to a log; run -d or start keeps one",
        }
        .into());
    }
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        text => Some(text.parse::<usize>().map_err(|_| CliError::Flag {
            flag: "--tail",
            value: text.to_string(),
            why: "use a number of lines or all".into(),
        })?),
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let (mut entries, offset) =
        logs::read_from(&record.log_path, 0).map_err(|source| ContainerError::Io {
            action: "read",
            path: record.log_path.clone(),
            source,
        })?;
    if let Some(since) = since {
        entries.retain(|e| clock::parse_rfc3339_nanos(&e.time).is_some_and(|t| t >= since));
    }
    if let Some(tail) = tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    print_entries(&entries, args.timestamps);
    if !args.follow {
        return Ok(0);
    }
    let mut offset = offset;
    loop {
        let now = containers.get(&record.id)?;
        let running = matches!(now.state.status, Status::Running | Status::Restarting)
            && now.supervision.supervisor.as_ref().is_some_and(is_alive);
        let (entries, next) = logs::read_from(&record.log_path, offset).unwrap_or_default();
        offset = next;
        print_entries(&entries, args.timestamps);
        if !running {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--since`: an RFC 3339 time, a Unix time, or a duration before now (10s, 5m,
/// 2h), as nanoseconds since the epoch.
fn parse_since(text: &str) -> Result<i128, CliError> {
    let error = || CliError::Flag {
        flag: "--since",
        value: text.to_string(),
        why: "use a time (2026-12-02T10:00:00Z), a Unix time, or a duration such as 10s, 5m or 2h"
            .into(),
    };
    if let Some(nanos) = clock::parse_rfc3339_nanos(text) {
        return Ok(nanos);
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok((seconds * 1e9) as i128);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?);
    let number: i128 = number.parse().map_err(|_| error())?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(error()),
    };
    Ok(now - seconds * 1_000_000_000)
}
