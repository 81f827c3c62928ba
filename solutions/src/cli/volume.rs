//! `volume create | ls | inspect | rm | prune`, as docker's.

use std::path::Path;

use clap::{Args, Subcommand};

use super::run::CliError;
use super::table;
use crate::engine::options::check_volume_name;
use crate::engine::volumes::{Volume, VolumeStore};

/// `volume COMMAND`
#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given)
    Create {
        /// The volume's name
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only the names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes
    #[command(alias = "remove")]
    Rm {
        /// Remove even a volume a container uses
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove the volumes no container uses (anonymous ones only, unless --all)
    Prune {
        /// Named volumes too
        #[arg(short, long)]
        all: bool,
        /// Do not ask (ferry never asks: accepted for docker's scripts)
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs a `volume` command; its exit code.
pub fn run(args: &VolumeArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = VolumeStore::new(state_root);
    match &args.command {
        VolumeCommand::Create { name } => {
            if let Some(name) = name {
                check_volume_name(name).map_err(|e| CliError::Flag {
                    flag: "volume name",
                    value: e.value,
                    why: e.why,
                })?;
            }
            let volume = store.create(name.as_deref(), false)?;
            println!("{}", volume.name);
        }
        VolumeCommand::Ls { quiet } => {
            let volumes = store.list()?;
            if *quiet {
                volumes.iter().for_each(|v| println!("{}", v.name));
            } else {
                let rows: Vec<Vec<String>> = volumes
                    .iter()
                    .map(|v| vec![v.driver.clone(), v.name.clone()])
                    .collect();
                print!("{}", table::render(&["DRIVER", "VOLUME NAME"], &rows));
            }
        }
        VolumeCommand::Inspect { names } => {
            let shown = names
                .iter()
                .map(|name| store.get(name).map(|v| inspect_view(&v)))
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}", serde_json::to_string_pretty(&shown).expect("JSON"));
        }
        VolumeCommand::Rm { force, names } => {
            for name in names {
                store.remove(name, *force)?;
                println!("{name}");
            }
        }
        VolumeCommand::Prune { all, .. } => {
            crate::engine::sweep::sweep(state_root);
            let removed = store.prune(*all)?;
            println!("Deleted Volumes:");
            removed.iter().for_each(|name| println!("{name}"));
            println!();
            println!("Total reclaimed volumes: {}", removed.len());
        }
    }
    Ok(0)
}

/// docker's fields of `volume inspect`, in its order.
fn inspect_view(volume: &Volume) -> serde_json::Value {
    serde_json::json!({
        "CreatedAt": volume.created_at,
        "Driver": volume.driver,
        "Labels": volume.labels,
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Options": volume.options,
        "Scope": volume.scope,
    })
}
