//! Looking into a container (chapter 8): `inspect` prints its record (docker's
//! inspect shape, `container.json`) or a Go template of it, `top` the processes
//! of its PID namespace, `diff` what it changed in its overlay's upper layer
//! (chapter 5).

use std::path::Path;

use clap::Args;

use super::container::ContainersArgs;
use super::run::CliError;
use crate::engine::containers::{is_alive, ContainerError, Containers, Status};

/// `inspect [-f TEMPLATE] NAME...`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template, e.g. '{{.State.Status}}'
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// `inspect`: containers (and images, as docker's plain `inspect`).
pub fn inspect(args: &InspectArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let mut shown = Vec::new();
    for name in &args.names {
        match containers.get(name) {
            Ok(record) => shown.push(serde_json::to_value(&record).expect("a record serializes")),
            Err(ContainerError::NotFound { .. }) => {
                match super::image::inspect_value(name, state_root) {
                    Ok(value) => shown.push(value),
                    Err(_) => return Err(ContainerError::NotFound { name: name.clone() }.into()),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    match &args.format {
        Some(format) => {
            let template =
                super::template::Template::parse(&super::template::expand_escapes(format))
                    .map_err(|error| CliError::Template(error.to_string()))?;
            for value in &shown {
                let line = template
                    .render(value)
                    .map_err(|error| CliError::Template(error.to_string()))?;
                println!("{line}");
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&shown).expect("JSON")),
    }
    Ok(0)
}

/// `top`: the container's processes, as `ps -ef` columns.
pub fn top(args: &ContainersArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let record = containers.get(&args.containers[0])?;
    let Some(process) = record
        .supervision
        .process
        .filter(|p| record.state.status == Status::Running && is_alive(p))
    else {
        return Err(ContainerError::NotRunning {
            name: args.containers[0].clone(),
        }
        .into());
    };
    let rows = crate::process::in_pid_namespace_of(process.pid)
        .into_iter()
        .map(|p| {
            vec![
                p.user,
                p.pid.to_string(),
                p.ppid.to_string(),
                "0".into(),
                p.started,
                "?".into(),
                p.time,
                p.command,
            ]
        })
        .collect::<Vec<_>>();
    print!(
        "{}",
        super::table::render(
            &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            &rows
        )
    );
    Ok(0)
}

/// `diff`: what the container changed, from its upper layer.
pub fn diff(args: &ContainersArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let record = containers.get(&args.containers[0])?;
    let dir = containers.dir(&record.id);
    let lowers: Vec<std::path::PathBuf> = record
        .graph_driver
        .data
        .get("LowerDir")
        .map(|l| {
            l.split(':')
                .filter(|s| !s.is_empty())
                .map(std::path::PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    let changes = crate::engine::diff::changes(&dir.join("upper"), &lowers).map_err(|source| {
        ContainerError::Io {
            action: "read",
            path: dir.join("upper"),
            source,
        }
    })?;
    // The engine's own files, bound over the image's (created in the upper layer
    // when the image lacks them), are not the container's changes: docker hides
    // them too.
    let engine_files = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];
    for change in changes
        .iter()
        .filter(|c| !engine_files.contains(&c.path.as_str()))
    {
        println!("{change}");
    }
    Ok(0)
}
