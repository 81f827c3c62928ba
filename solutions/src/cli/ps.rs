//! `ps` (chapter 8): the containers of the state root, each settled first so a
//! container whose supervisor died shows as dead, in docker's columns, or
//! through a `--format` Go template with docker's field names (`PsRow`).

use std::path::Path;
use std::time::SystemTime;

use clap::Args;

use super::run::CliError;
use crate::clock;
use crate::engine::containers::{Containers, Record, Status};

/// `ps [-a] [-q] [--no-trunc] [--filter KEY=VALUE] [--format TEMPLATE]`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output: status=created|running|restarting|exited|dead, name=TEXT, id=PREFIX
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Format output with a Go template, e.g. '{{.ID}} {{.Names}}' or 'table {{.ID}}\t{{.Status}}'
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

/// `ps`.
pub fn ps(args: &PsArgs, state_root: &Path) -> Result<i32, CliError> {
    let filters = args
        .filter
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>, _>>()?;
    let containers = Containers::new(state_root);
    let now = SystemTime::now();
    let shown: Vec<Record> = containers
        .all()
        .into_iter()
        .filter(|r| {
            // A status filter names the states it wants, stopped ones too (docker's).
            args.all
                || filters.iter().any(|f| matches!(f, Filter::Status(_)))
                || matches!(r.state.status, Status::Running | Status::Restarting)
        })
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    if args.quiet {
        for record in &shown {
            println!(
                "{}",
                if args.no_trunc {
                    &record.id
                } else {
                    record.short_id()
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<PsRow> = shown
        .iter()
        .map(|r| PsRow::of(r, now, args.no_trunc))
        .collect();
    if let Some(format) = &args.format {
        return print_formatted(format, &rows);
    }
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.image.clone(),
                r.command.clone(),
                r.running_for.clone(),
                r.status.clone(),
                r.ports.clone(),
                r.names.clone(),
            ]
        })
        .collect();
    print!("{}", super::table::render(&header, &cells));
    Ok(0)
}

/// One row of `ps`, with docker's `--format` field names.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PsRow {
    #[serde(rename = "ID")]
    pub id: String,
    pub image: String,
    pub command: String,
    pub created_at: String,
    pub running_for: String,
    pub status: String,
    pub state: String,
    pub ports: String,
    pub names: String,
}

impl PsRow {
    fn of(record: &Record, now: SystemTime, no_trunc: bool) -> PsRow {
        let command = record.command_line();
        PsRow {
            id: if no_trunc {
                record.id.clone()
            } else {
                record.short_id().to_string()
            },
            image: record.config.image.clone(),
            command: if no_trunc {
                format!("\"{command}\"")
            } else {
                format!("\"{}\"", truncate(&command, 20))
            },
            created_at: record.created.clone(),
            running_for: format!(
                "{} ago",
                clock::human_duration(clock::seconds_since(&record.created, now))
            ),
            status: status_text(record, now),
            state: record.state.status.to_string(),
            ports: record.network_settings.ports_column(),
            names: record.short_name().to_string(),
        }
    }
}

/// `text` cut to `width` characters, the last one `…`, as docker's ps.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let cut: String = text.chars().take(width - 1).collect();
    format!("{cut}…")
}

/// STATUS as docker words it: "Up 3 minutes", "Exited (137) 5 seconds ago".
pub fn status_text(record: &Record, now: SystemTime) -> String {
    let since = |time: &str| clock::human_duration(clock::seconds_since(time, now));
    match record.state.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}", since(&record.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            record.state.exit_code,
            since(&record.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            record.state.exit_code,
            since(&record.state.finished_at)
        ),
        Status::Dead => "Dead".to_string(),
    }
}

/// A `--filter KEY=VALUE` of ps.
#[derive(Debug)]
enum Filter {
    Status(Status),
    Name(String),
    Id(String),
}

impl Filter {
    fn matches(&self, record: &Record) -> bool {
        match self {
            Filter::Status(status) => record.state.status == *status,
            Filter::Name(text) => record.short_name().contains(text.trim_start_matches('/')),
            Filter::Id(prefix) => record.id.starts_with(prefix),
        }
    }
}

fn parse_filter(text: &str) -> Result<Filter, CliError> {
    let error = |why: String| CliError::Flag {
        flag: "--filter",
        value: text.to_string(),
        why,
    };
    match text.split_once('=') {
        Some(("status", value)) => value.parse().map(Filter::Status).map_err(error),
        Some(("name", value)) => Ok(Filter::Name(value.to_string())),
        Some(("id", value)) => Ok(Filter::Id(value.to_string())),
        _ => Err(error("use status=STATUS, name=NAME or id=PREFIX".into())),
    }
}

/// `--format`: a Go template per row, or `table TEMPLATE` with a header.
fn print_formatted(format: &str, rows: &[PsRow]) -> Result<i32, CliError> {
    use super::template;
    let format = template::expand_escapes(format);
    let (body, table) = match format.strip_prefix("table") {
        Some(rest) => (rest.trim_start().to_string(), true),
        None => (format.clone(), false),
    };
    let parsed = template::Template::parse(&body).map_err(|e| CliError::Template(e.to_string()))?;
    let mut lines = Vec::new();
    for row in rows {
        let value = serde_json::to_value(row).expect("a row serializes");
        lines.push(
            parsed
                .render(&value)
                .map_err(|e| CliError::Template(e.to_string()))?,
        );
    }
    if table {
        let headers: Vec<String> = template::header_names(&parsed)
            .iter()
            .map(|field| header_of(field))
            .collect();
        let cells: Vec<Vec<String>> = lines
            .iter()
            .map(|l| l.split('\t').map(String::from).collect())
            .collect();
        let header: Vec<&str> = headers.iter().map(String::as_str).collect();
        print!("{}", super::table::render(&header, &cells));
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(0)
}

/// docker's column header for a `--format` field.
fn header_of(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "Status" => "STATUS",
        "State" => "STATE",
        "Ports" => "PORTS",
        "Names" => "NAMES",
        other => return other.to_ascii_uppercase(),
    }
    .to_string()
}
