//! The container's record (chapter 8): `container.json`, in the shape of
//! docker's `inspect` (`State`, `Config`, `HostConfig`, `Mounts`, `GraphDriver`)
//! plus the engine's own bookkeeping (`Supervision`), and how a new container's
//! record is made from what `prepare` made. The store that reads and writes it
//! is `Containers` (mod.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{CreateRequest, RestartPolicy};
use crate::clock;
use crate::engine::Prepared;

/// docker's "no time yet".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Where a container is in its life, as docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start failed).
    Created,
    /// Its process runs.
    Running,
    /// It ended and its restart policy starts it again after a pause.
    Restarting,
    /// Its process ended; the exit code is recorded.
    Exited,
    /// Its supervisor died without recording the end: what was left is cleaned.
    Dead,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        };
        f.write_str(name)
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(text: &str) -> Result<Status, String> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
            format!("unknown status {text:?}: use created, running, restarting, exited or dead")
        })
    }
}

pub use crate::process::ProcessRef;

/// The record's `State`, as docker's inspect has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    /// The first process's pid on the host (0 when none).
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

impl State {
    fn new() -> State {
        State {
            status: Status::Created,
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
        }
    }

    /// Sets the status and the flags that follow from it.
    pub fn set(&mut self, status: Status) {
        self.status = status;
        self.running = matches!(status, Status::Running | Status::Restarting);
        self.restarting = status == Status::Restarting;
        self.dead = status == Status::Dead;
        if status != Status::Running {
            self.pid = 0;
        }
    }
}

/// The record's `Config`: what the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    /// The image as the user named it (or the --rootfs directory).
    pub image: String,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL, when the container says (`--stop-timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
}

/// The record's `HostConfig`: how the host runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub init: bool,
    pub memory: u64,
    pub nano_cpus: u64,
    pub pids_limit: i64,
    pub cgroup_parent: String,
    /// `bridge`, a network's name, `none`, `host` or `container:NAME`.
    #[serde(default)]
    pub network_mode: String,
    /// What `-p` asked for, in docker's shape: "80/tcp" → [{HostIp, HostPort}].
    #[serde(default)]
    pub port_bindings: BTreeMap<String, Vec<HostPort>>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--add-host` lines as NAME:IP.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
}

/// One host side of a published port, as docker's inspect shows it (the port
/// as text; empty when a free one is picked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostPort {
    pub host_ip: String,
    pub host_port: String,
}

/// Where the running container is on the network (`NetworkSettings`), empty
/// while it does not run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// The published ports as they are: "80/tcp" → [{HostIp, HostPort}].
    pub ports: BTreeMap<String, Vec<HostPort>>,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    pub gateway: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub networks: BTreeMap<String, Endpoint>,
}

/// The container on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    pub gateway: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub aliases: Vec<String>,
}

impl NetworkSettings {
    /// The settings of a container that `attachment` put on its network.
    pub fn of(attachment: &crate::network::Attachment, aliases: &[String]) -> NetworkSettings {
        let mut settings = NetworkSettings::default();
        for port in &attachment.ports {
            settings
                .ports
                .entry(format!("{}/{}", port.container_port, port.protocol))
                .or_default()
                .push(HostPort {
                    host_ip: port.host_ip.to_string(),
                    host_port: port.host_port.to_string(),
                });
        }
        if let (Some(network), Some(address)) = (&attachment.network, attachment.address) {
            settings.ip_address = address.to_string();
            settings.gateway = network.gateway.to_string();
            settings.ip_prefix_len = network.subnet.prefix;
            settings.networks.insert(
                network.name.clone(),
                Endpoint {
                    network_id: network.id.clone(),
                    ip_address: address.to_string(),
                    gateway: network.gateway.to_string(),
                    ip_prefix_len: network.subnet.prefix,
                    aliases: aliases.to_vec(),
                },
            );
        }
        settings
    }

    /// docker's `ps` PORTS column: `0.0.0.0:8080->80/tcp, ...`.
    pub fn ports_column(&self) -> String {
        self.ports
            .iter()
            .flat_map(|(port, hosts)| {
                hosts
                    .iter()
                    .map(move |host| format!("{}:{}->{port}", host.host_ip, host.host_port))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the supervisor needs to put the container on its network at each start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRequest {
    pub mode: Option<crate::network::Mode>,
    pub ports: Vec<crate::network::PortRequest>,
    pub aliases: Vec<String>,
    pub extra_hosts: Vec<(String, std::net::Ipv4Addr)>,
}

/// One of the container's mounts, as inspect lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// Where its files are: the overlay's directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// The engine's own bookkeeping, not in docker's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Supervision {
    /// The process that runs it (its supervisor, or the attached `run`).
    pub supervisor: Option<ProcessRef>,
    /// The container's first process, while it runs.
    pub process: Option<ProcessRef>,
    /// `stop`, `kill` or `rm -f` ended it: the restart policy leaves it stopped.
    pub stopped_by_user: bool,
    /// Anonymous volumes made for it: removed with `--rm` and `rm -v`.
    pub anonymous_volumes: Vec<String>,
    /// Whether its output goes to its log (run -d, start) or went to a terminal.
    pub logged: bool,
    pub no_pivot: bool,
    /// Its network, as asked for (chapter 10).
    #[serde(default)]
    pub network: NetworkRequest,
    /// A build's RUN step (chapter 11): the build that made it. It goes with its
    /// step; one whose build was killed is removed by the next build or `builder
    /// prune`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<ProcessRef>,
}

/// A container: `container.json`, which `inspect` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    /// The image id (the config's digest), empty for --rootfs.
    pub image: String,
    pub log_path: PathBuf,
    /// docker's form: `/NAME`.
    pub name: String,
    pub restart_count: u32,
    pub driver: String,
    pub config: Config,
    pub host_config: HostConfig,
    pub mounts: Vec<MountPoint>,
    pub graph_driver: GraphDriver,
    #[serde(default)]
    pub network_settings: NetworkSettings,
    #[serde(rename = "Ferry")]
    pub supervision: Supervision,
}

impl Record {
    /// The name without docker's leading `/`.
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    /// The 12 digits tables show.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// The command line as `ps` shows it: entrypoint and command.
    pub fn command_line(&self) -> String {
        std::iter::once(self.path.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A new container's record.
pub(super) fn record_of(prepared: &Prepared, request: &CreateRequest, name: &str) -> Record {
    let spec = &prepared.spec;
    let options = &prepared.options;
    let process = &spec.process;
    let args = process.args.clone();
    let dir = prepared.bundle.dir();
    let id = prepared.id.as_str().to_string();
    let image_config = prepared
        .image
        .as_ref()
        .and_then(|image| image.config.config.clone());
    let graph = BTreeMap::from([
        (
            "LowerDir".to_string(),
            prepared
                .lowers
                .iter()
                .map(|l| l.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        ),
        (
            "UpperDir".to_string(),
            dir.join("upper").display().to_string(),
        ),
        (
            "WorkDir".to_string(),
            dir.join("work").display().to_string(),
        ),
        (
            "MergedDir".to_string(),
            dir.join("rootfs").display().to_string(),
        ),
    ]);
    Record {
        log_path: dir.join(format!("{id}-json.log")),
        created: clock::rfc3339_nanos(SystemTime::now()),
        path: args.first().cloned().unwrap_or_default(),
        args: args.iter().skip(1).cloned().collect(),
        state: State::new(),
        image: prepared
            .image
            .as_ref()
            .map(|image| image.id().to_string())
            .unwrap_or_default(),
        name: format!("/{name}"),
        restart_count: 0,
        driver: "overlay".to_string(),
        config: Config {
            hostname: spec.hostname.clone().unwrap_or_default(),
            user: options.user.clone().unwrap_or_default(),
            env: process.env.clone(),
            cmd: options.command.clone(),
            entrypoint: options.entrypoint.clone(),
            image: match (&options.image, &options.rootfs) {
                (Some(image), _) => image.clone(),
                (None, Some(dir)) => dir.display().to_string(),
                (None, None) => String::new(),
            },
            working_dir: process.cwd.clone(),
            labels: image_config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default(),
            stop_signal: request
                .stop_signal
                .clone()
                .or_else(|| image_config.as_ref().and_then(|c| c.stop_signal.clone()))
                .unwrap_or_default(),
            stop_timeout: request.stop_timeout,
        },
        host_config: HostConfig {
            restart_policy: request.restart.clone(),
            auto_remove: request.auto_remove,
            privileged: options.privileged,
            readonly_rootfs: options.read_only,
            init: options.init,
            memory: options.memory.unwrap_or(0),
            nano_cpus: options.cpus.map_or(0, |cpus| (cpus * 1e9) as u64),
            pids_limit: options.pids_limit.unwrap_or(0),
            cgroup_parent: options.cgroup_parent.clone().unwrap_or_default(),
            network_mode: options.network_mode().name(),
            port_bindings: options.publish.iter().fold(
                BTreeMap::new(),
                |mut bindings: BTreeMap<String, Vec<HostPort>>, port| {
                    bindings
                        .entry(format!("{}/{}", port.container_port, port.protocol))
                        .or_default()
                        .push(HostPort {
                            host_ip: port.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                            host_port: port.host_port.map(|p| p.to_string()).unwrap_or_default(),
                        });
                    bindings
                },
            ),
            dns: options.dns.iter().map(|ip| ip.to_string()).collect(),
            extra_hosts: options
                .extra_hosts
                .iter()
                .map(|(name, ip)| format!("{name}:{ip}"))
                .collect(),
        },
        mounts: mount_points(prepared),
        graph_driver: GraphDriver {
            name: "overlay".to_string(),
            data: graph,
        },
        network_settings: NetworkSettings::default(),
        supervision: Supervision {
            network: NetworkRequest {
                mode: Some(options.network_mode()),
                ports: options.publish.clone(),
                aliases: options.network_aliases.clone(),
                extra_hosts: options.extra_hosts.clone(),
            },
            anonymous_volumes: prepared.anonymous_volumes.clone(),
            logged: request.logged,
            no_pivot: prepared.no_pivot,
            build: request.build,
            ..Supervision::default()
        },
        id,
    }
}

/// The user's mounts as inspect lists them.
fn mount_points(prepared: &Prepared) -> Vec<MountPoint> {
    // ROOT/containers/ID → ROOT/volumes
    let dir = prepared.bundle.dir();
    let volumes = dir
        .parent()
        .and_then(Path::parent)
        .map(|root| root.join("volumes"))
        .unwrap_or_default();
    prepared
        .user_mounts
        .iter()
        .map(|mount| {
            let source = mount.source.clone().unwrap_or_default();
            let volume = Path::new(&source)
                .strip_prefix(&volumes)
                .ok()
                .and_then(|rest| rest.components().next())
                .map(|name| name.as_os_str().to_string_lossy().into_owned());
            let kind = match (mount.kind.as_deref(), &volume) {
                (Some("bind"), Some(_)) => "volume",
                (Some(kind), _) => kind,
                (None, _) => "bind",
            };
            MountPoint {
                kind: kind.to_string(),
                name: volume.unwrap_or_default(),
                source,
                destination: mount.destination.clone(),
                rw: !mount.options.iter().any(|o| o == "ro"),
            }
        })
        .collect()
}
