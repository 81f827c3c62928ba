//! `network create | ls | inspect | rm | prune` and `port`, as docker's (chapter 10).

use std::path::Path;

use clap::{Args, Subcommand};

use super::run::CliError;
use super::table;
use crate::engine::containers::Containers;
use crate::network::{store, Network, Networks, Subnet};

/// `network COMMAND`
#[derive(Debug, Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network (containers on it find each other by name)
    Create {
        /// Its subnet in CIDR form (a free 10.86.N.0/24 when none is given)
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// The driver: only bridge
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks as JSON, with the containers on them
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove the networks no container is on
    Prune {
        /// Do not ask (ferry never asks: accepted for docker's scripts)
        #[arg(short, long)]
        force: bool,
    },
}

/// `port CONTAINER [PORT[/PROTO]]`
#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// Only this port of the container (80 or 80/udp)
    pub port: Option<String>,
}

/// Runs a `network` command; its exit code.
pub fn run(args: &NetworkArgs, state_root: &Path) -> Result<i32, CliError> {
    let networks = Networks::new(state_root);
    match &args.command {
        NetworkCommand::Create {
            subnet,
            driver,
            name,
        } => {
            if driver != "bridge" {
                return Err(CliError::Flag {
                    flag: "--driver",
                    value: driver.clone(),
                    why: "ferry has only the bridge driver (chapter 10 says what macvlan, ipvlan and overlay would need)".into(),
                });
            }
            let subnet = subnet
                .as_deref()
                .map(|text| {
                    text.parse::<Subnet>().map_err(|why| CliError::Flag {
                        flag: "--subnet",
                        value: text.to_string(),
                        why,
                    })
                })
                .transpose()?;
            let network = networks.create(name, subnet)?;
            println!("{}", network.id);
        }
        NetworkCommand::Ls { quiet } => {
            let list = networks.list()?;
            if *quiet {
                list.iter().for_each(|n| println!("{}", &n.id[..12]));
                return Ok(0);
            }
            let mut rows: Vec<Vec<String>> = list
                .iter()
                .map(|n| row(&n.id, &n.name, &n.driver))
                .collect();
            // docker lists its two modes as networks too.
            rows.push(row(&store::fixed_id("host"), "host", "host"));
            rows.push(row(&store::fixed_id("none"), "none", "null"));
            print!(
                "{}",
                table::render(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
            );
        }
        NetworkCommand::Inspect { names } => {
            let shown = names
                .iter()
                .map(|name| {
                    let network = networks.get(name)?;
                    inspect_view(&networks, &network)
                })
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}", serde_json::to_string_pretty(&shown).expect("JSON"));
        }
        NetworkCommand::Rm { names } => {
            settle_all(state_root);
            for name in names {
                networks.remove(name)?;
                println!("{name}");
            }
        }
        NetworkCommand::Prune { .. } => {
            settle_all(state_root);
            let removed = networks.prune()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                removed.iter().for_each(|name| println!("{name}"));
            }
        }
    }
    Ok(0)
}

fn row(id: &str, name: &str, driver: &str) -> Vec<String> {
    vec![
        id[..12.min(id.len())].to_string(),
        name.to_string(),
        driver.to_string(),
        "local".to_string(),
    ]
}

/// Containers whose supervisor was killed give up their leases first.
fn settle_all(state_root: &Path) {
    let containers = Containers::new(state_root);
    for record in containers.all() {
        let _ = containers.settle(record);
    }
}

/// docker's fields of `network inspect`.
fn inspect_view(networks: &Networks, network: &Network) -> Result<serde_json::Value, CliError> {
    let leases = {
        let _lock = networks.lock()?;
        networks.live_leases()?
    };
    let containers: serde_json::Map<String, serde_json::Value> = leases
        .iter()
        .filter(|l| l.network == network.name)
        .map(|l| {
            (
                l.container.clone(),
                serde_json::json!({
                    "Name": l.name,
                    "IPv4Address": format!("{}/{}", l.address, network.subnet.prefix),
                    "Aliases": l.aliases,
                }),
            )
        })
        .collect();
    Ok(serde_json::json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Config": [{ "Subnet": network.subnet.to_string(), "Gateway": network.gateway.to_string() }],
        },
        "Internal": false,
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": network.bridge },
    }))
}

/// `port`: the container's published ports, as docker prints them.
pub fn port(args: &PortArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let record = containers.get(&args.container)?;
    let wanted = args.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (port, hosts) in &record.network_settings.ports {
        if wanted.as_ref().is_some_and(|w| w != port) {
            continue;
        }
        for host in hosts {
            found = true;
            if wanted.is_some() {
                println!("{}:{}", host.host_ip, host.host_port);
            } else {
                println!("{port} -> {}:{}", host.host_ip, host.host_port);
            }
        }
    }
    if !found {
        if let Some(port) = wanted {
            return Err(CliError::Message(format!(
                "No public port '{port}' published for {}",
                record.short_name()
            )));
        }
    }
    Ok(0)
}
