//! `run`: the flags, their translation into the engine's options, and how the
//! outcome is told (the exit code, the OOM message, errors with their hints).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::engine::options::{ConfigError, Field, RunOptions, SeccompChoice};
use crate::engine::EngineError;
use crate::env::{self, EnvEntry, EnvError};
use crate::errors::EXIT_ENGINE_FAILED;
use crate::privileges::PrivilegeError;
use crate::runtime::RuntimeError;
use crate::seccomp::{self, SeccompError};
use crate::ENGINE;

use super::mounts;

/// `run [OPTIONS] IMAGE [COMMAND [ARG...]]`, or `run --rootfs DIR [OPTIONS] COMMAND [ARG...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory holding the container's files (its root filesystem), instead of
    /// an image
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Replace the image's ENTRYPOINT ("" for none)
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,

    /// Set an environment variable (KEY=VALUE), or pass KEY through from here
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file (KEY=VALUE or KEY per line, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Working directory inside the container (created in the container's own layer when missing, from chapter 5)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// The container's hostname [default: its short id]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Run a small init as PID 1 that forwards signals and reaps orphans
    #[arg(long)]
    pub init: bool,

    /// Memory limit, e.g. 64m or 1g (units b, k, m, g)
    #[arg(long, short = 'm', value_name = "BYTES")]
    pub memory: Option<String>,

    /// Memory plus swap limit (-1: unlimited swap) [default: no swap beyond --memory]
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,

    /// Maximum number of processes and threads in the container
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<i64>,

    /// Number of CPUs the container may use, e.g. 0.5
    #[arg(long, value_name = "CPUS", allow_hyphen_values = true)]
    pub cpus: Option<f64>,

    /// Relative CPU weight (2 to 262144; default 1024)
    #[arg(long = "cpu-shares", short = 'c', value_name = "SHARES")]
    pub cpu_shares: Option<u64>,

    /// CPUs the container may run on, e.g. 0-1,3
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,

    /// The cgroup under which the container's cgroup is created [default: /<engine>]
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,

    /// Run as this user: name, uid, name:group or uid:gid (from the container's /etc/passwd)
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Add a capability to the default set (CHOWN, CAP_NET_ADMIN, ALL, ...)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability from the default set (or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Give the container every capability, no seccomp filter, unmasked /proc and /sys
    #[arg(long)]
    pub privileged: bool,

    /// Mount the container's root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,

    /// no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opt: Vec<String>,

    /// Enter the root with chroot(2) instead of pivot_root(2) (weaker; see chapter 1)
    #[arg(long)]
    pub no_pivot: bool,

    /// Mount a volume: HOST-DIR:PATH, NAME:PATH or PATH (anonymous), with :ro
    #[arg(short = 'v', long = "volume", value_name = "[SOURCE:]PATH[:ro]")]
    pub volume: Vec<String>,

    /// Mount as docker's long form: type=bind|volume|tmpfs,source=..,target=..,readonly
    #[arg(long = "mount", value_name = "SPEC")]
    pub mount: Vec<String>,

    /// Mount a new tmpfs: PATH[:size=64m,mode=1777]
    #[arg(long = "tmpfs", value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,

    /// Show a host device in the container: /dev/HOST[:/dev/CONTAINER][:rwm]
    #[arg(long = "device", value_name = "DEVICE")]
    pub device: Vec<String>,

    /// Pull the image from its registry: missing (when the store lacks it), always, never
    #[arg(
        long,
        value_enum,
        default_value_t,
        hide_possible_values = true,
        hide_default_value = true,
        value_name = "WHEN"
    )]
    pub pull: super::registry::PullPolicy,

    /// The platform to pull for a multi-platform image [default: this machine's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    #[command(flatten)]
    pub registry: super::registry::RegistryFlags,

    /// Connect the container to a network: bridge (the default), NAME (made by
    /// `network create`), none, host, or container:NAME (chapter 10).
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,

    /// Publish a container's port on the host: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]
    /// (no HOSTPORT: a free one, shown by `port` and `ps`).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,

    /// Publish every port the image exposes on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,

    /// Another name for the container on a user-defined network.
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,

    /// A nameserver for the container's /etc/resolv.conf (instead of the host's).
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,

    /// A line of the container's /etc/hosts: NAME:IP.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,

    /// Run the container in the background (under its supervisor) and print its id
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Give the command a terminal (a pty of the container's own; with -d, attach to it later)
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Send your keys to the command (an attached run always passes stdin; with -t, its terminal gets them)
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Assign a name to the container [default: a generated adjective_noun]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,

    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,

    /// Signal to stop the container with [default: the image's STOPSIGNAL, else SIGTERM]
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Seconds to wait for the container to stop before killing it [default: 10]
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,

    /// The image (without --rootfs), then the command to run and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// What `run` can fail with, as the command line tells it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid {flag} {value:?}: {why}")]
    Flag {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("unknown capability {name:?} ({why})")]
    Capability { name: String, why: String },
    #[error("invalid security option {option:?}: use no-new-privileges[=true|false], seccomp=unconfined or seccomp=PROFILE.json")]
    SecurityOption { option: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Volume(#[from] crate::engine::volumes::VolumeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    RunPull(crate::registry::RegistryError),
    #[error(transparent)]
    Container(#[from] crate::engine::containers::ContainerError),
    /// A container error of `run` or `create` (docker exits 125 for those).
    #[error(transparent)]
    RunContainer(crate::engine::containers::ContainerError),
    /// The supervisor's report of why the container did not start.
    #[error("{}", .0.message)]
    Reported(crate::engine::containers::supervisor::Failure),
    #[error("{0}")]
    Template(String),
    #[error(transparent)]
    Build(crate::engine::build::BuildError),
    #[error("{0}")]
    Terminal(String),
}

/// Runs `args`; the container's exit code.
pub fn run(args: &RunArgs, state_root: &Path) -> Result<i32, CliError> {
    let options = prepare_options(args, state_root)?;
    if args.detach || args.tty {
        // A terminal needs a holder that outlives this command (the detach keys
        // leave the container running): the supervisor.
        return super::container::run_detached(args, options, state_root);
    }
    run_attached(args, options, state_root)
}

/// `run` without -d: create, then start in this process, attached to this
/// terminal; the container's exit code.
fn run_attached(args: &RunArgs, options: RunOptions, state_root: &Path) -> Result<i32, CliError> {
    // BEGIN SOLUTION ch08 "run = create + start, attached: the container stays in the store after it ends (unless --rm)"
    let memory_limit = options.memory;
    let record = super::container::make(args, options, false, state_root)?;
    let containers = crate::engine::containers::Containers::new(state_root);
    let exit = crate::engine::containers::supervisor::run_attached(&containers, &record)
        .map_err(|error| flag_error(error, args))?;
    Ok(told_exit(exit, memory_limit))
    // BEGIN STUB
    // if args.name.is_some() || args.restart.is_some() {
    //     crate::note::chapter_not_done(8, "containers", "--name and --restart need the container kept as an object: it is removed when it ends");
    // }
    // let outcome = crate::engine::run(&options, state_root).map_err(|error| flag_error(error, args))?;
    // Ok(told_exit(outcome.exit, outcome.memory_limit))
    // END SOLUTION
}

/// The options of `run`/`create`, with the image pulled when the policy says so.
pub fn prepare_options(args: &RunArgs, state_root: &Path) -> Result<RunOptions, CliError> {
    let options = options(args)?;
    if let Some(image) = &options.image {
        super::registry::pull_for_run(
            image,
            args.pull,
            args.platform.as_deref(),
            &args.registry,
            state_root,
        )
        .map_err(|error| match error {
            // docker run exits 125 when it cannot get its image.
            CliError::Registry(error) => CliError::RunPull(error),
            other => other,
        })?;
    }
    Ok(options)
}

/// The container's exit code, after telling an OOM kill.
fn told_exit(exit: crate::runtime::Exit, memory_limit: Option<u64>) -> i32 {
    if exit.oom_kills > 0 {
        let limit = memory_limit
            .map(|m| format!(" of {} MiB", m >> 20))
            .unwrap_or_default();
        eprintln!(
            "{ENGINE}: the container hit its memory limit{limit}: the kernel's OOM killer killed {} of its processes",
            exit.oom_kills
        );
    }
    exit.code
}

/// The flags as the engine's options. The caller-side work happens here: `-e KEY`
/// reads this process's environment, `--env-file` and `seccomp=FILE` read files.
pub fn options(args: &RunArgs) -> Result<RunOptions, CliError> {
    let mut entries: Vec<EnvEntry> = Vec::new();
    for path in &args.env_file {
        entries.extend(env::read_env_file(path)?);
    }
    for text in &args.env {
        entries.push(env::parse_entry(text)?);
    }
    let inherited_env: BTreeMap<String, String> = entries
        .iter()
        .filter_map(|entry| match entry {
            EnvEntry::Inherit(key) => Some((key.clone(), std::env::var(key).ok()?)),
            EnvEntry::Set(..) => None,
        })
        .collect();
    let memory = args
        .memory
        .as_deref()
        .map(|text| size(text, "--memory", "use a size such as 64m or 1g"))
        .transpose()?;
    let memory_swap = match args.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(text) => Some(size(text, "--memory-swap", "use a size such as 128m, or -1")? as i64),
    };
    let (no_new_privileges, seccomp) = security_options(&args.security_opt)?;
    Ok(RunOptions {
        rootfs: args.rootfs.clone(),
        image: match &args.rootfs {
            Some(_) => None,
            None => args.command.first().cloned(),
        },
        command: match &args.rootfs {
            Some(_) => args.command.clone(),
            None => args.command.iter().skip(1).cloned().collect(),
        },
        entrypoint: args.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        env: entries,
        inherited_env,
        workdir: args.workdir.clone(),
        hostname: args.hostname.clone(),
        init: args.init,
        tty: args.tty,
        memory,
        memory_swap,
        pids_limit: args.pids_limit,
        cpus: args.cpus,
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        user: args.user.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        read_only: args.read_only,
        no_new_privileges,
        seccomp,
        no_pivot: args.no_pivot,
        mounts: args
            .volume
            .iter()
            .map(|v| mounts::volume(v))
            .chain(args.mount.iter().map(|m| mounts::mount(m)))
            .chain(args.tmpfs.iter().map(|t| mounts::tmpfs(t)))
            .collect::<Result<_, _>>()?,
        devices: args
            .device
            .iter()
            .map(|d| mounts::device(d))
            .collect::<Result<_, _>>()?,
        network: args
            .network
            .as_deref()
            .map(|text| text.parse().map_err(|why| flag("--network", text, why)))
            .transpose()?,
        publish: args
            .publish
            .iter()
            .map(|text| text.parse().map_err(|why| flag("--publish", text, why)))
            .collect::<Result<_, _>>()?,
        publish_all: args.publish_all,
        network_aliases: args.network_alias.clone(),
        dns: args
            .dns
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(|_| flag("--dns", text, "an IP address, such as 192.0.2.53".into()))
            })
            .collect::<Result<_, _>>()?,
        extra_hosts: args
            .add_host
            .iter()
            .map(|text| {
                let (name, ip) = text.rsplit_once([':', '=']).unwrap_or((text, ""));
                let ip = ip.parse().map_err(|_| {
                    flag(
                        "--add-host",
                        text,
                        "use NAME:IP with an IPv4 address, such as db:192.0.2.7".into(),
                    )
                })?;
                Ok((name.to_string(), ip))
            })
            .collect::<Result<_, CliError>>()?,
    })
}

/// A flag whose value cannot be used.
fn flag(flag: &'static str, value: &str, why: String) -> CliError {
    CliError::Flag {
        flag,
        value: value.to_string(),
        why,
    }
}

fn size(text: &str, flag: &'static str, why: &str) -> Result<u64, CliError> {
    parse_bytes(text).ok_or_else(|| CliError::Flag {
        flag,
        value: text.to_string(),
        why: why.to_string(),
    })
}

/// `--security-opt` values: no_new_privs (on by default) and the seccomp profile.
fn security_options(list: &[String]) -> Result<(bool, SeccompChoice), CliError> {
    let mut no_new_privileges = true;
    let mut seccomp = SeccompChoice::Default;
    for option in list {
        let (key, value) = option.split_once(['=', ':']).unwrap_or((option, "true"));
        match (key, value) {
            ("no-new-privileges", "true") => no_new_privileges = true,
            ("no-new-privileges", "false") => no_new_privileges = false,
            ("seccomp", "unconfined") => seccomp = SeccompChoice::Unconfined,
            ("seccomp", path) => {
                seccomp = SeccompChoice::Profile(seccomp::read_profile(Path::new(path))?)
            }
            _ => {
                return Err(CliError::SecurityOption {
                    option: option.clone(),
                })
            }
        }
    }
    Ok((no_new_privileges, seccomp))
}

/// `64m` → 67108864. Units b, k, m, g (powers of 1024), case-insensitive.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// An engine error about a field, told as the flag the user typed (with the
/// user's own text); other errors as they are.
pub fn flag_error(error: EngineError, args: &RunArgs) -> CliError {
    let EngineError::Config(ConfigError { field, value, why }) = &error else {
        return CliError::Engine(error);
    };
    let (flag, typed) = match field {
        Field::Memory => ("--memory", args.memory.clone()),
        Field::MemorySwap => ("--memory-swap", args.memory_swap.clone()),
        Field::PidsLimit => ("--pids-limit", None),
        Field::Cpus => ("--cpus", None),
        Field::CpuShares => ("--cpu-shares", None),
        Field::CpusetCpus => ("--cpuset-cpus", None),
        Field::CgroupParent => ("--cgroup-parent", None),
        Field::Workdir => ("--workdir", None),
        Field::Hostname => ("hostname", None),
        Field::User => ("--user", None),
        Field::Mounts => ("mount", None),
        Field::Devices => ("--device", None),
        Field::Network => ("--network", args.network.clone()),
        Field::Capabilities => {
            return CliError::Capability {
                name: value.clone(),
                why: why.clone(),
            }
        }
        Field::Rootfs | Field::Command => return CliError::Engine(error),
    };
    CliError::Flag {
        flag,
        value: typed.unwrap_or_else(|| value.clone()),
        why: why.clone(),
    }
}

impl CliError {
    /// docker's exit code for this failure: 126/127 for a command that cannot be
    /// run, 125 for everything that is ferry's own failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Engine(error) => engine_exit_code(error),
            CliError::Reported(failure) => failure.exit_code,
            // docker's CLI exits 1 when the daemon refuses a volume command.
            CliError::Volume(_)
            | CliError::Network(_)
            | CliError::Message(_)
            | CliError::Image(_)
            | CliError::Registry(_)
            | CliError::Container(_)
            | CliError::Template(_)
            | CliError::Build(_) => 1,
            _ => EXIT_ENGINE_FAILED,
        }
    }

    /// The likely cause and the chapter that explains it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Registry(error) | CliError::RunPull(error) => error.hint(),
            CliError::Engine(error) => engine_hint(error),
            CliError::Reported(failure) => failure.hint.clone(),
            CliError::Container(error) | CliError::RunContainer(error) => container_hint(error),
            CliError::Build(error) => error.hint(),
            _ => None,
        }
    }
}

/// docker's exit code for an engine error: the command's 126/127 when it cannot
/// be run, 125 for ferry's own failures.
pub fn engine_exit_code(error: &EngineError) -> i32 {
    match error {
        EngineError::Runtime(RuntimeError::Child { exit_code, .. }) => *exit_code,
        _ => EXIT_ENGINE_FAILED,
    }
}

/// What to do about a container store error.
fn container_hint(error: &crate::engine::containers::ContainerError) -> Option<String> {
    use crate::engine::containers::ContainerError;
    match error {
        ContainerError::NotFound { .. } => Some("`ps -a` lists the containers there are, with their names and ids (see chapters/08-containers.md)".into()),
        ContainerError::NameInUse { .. } => Some("pick another --name, or `rm` the old container first (`ps -a` shows it)".into()),
        ContainerError::NotStopped { .. } => Some("`stop` it first, or `rm -f` to kill and remove it".into()),
        ContainerError::Engine(error) => engine_hint(error),
        _ => None,
    }
}

/// The likely cause of an engine error and the chapter that explains it.
pub fn engine_hint(error: &EngineError) -> Option<String> {
    match error {
            EngineError::Image(crate::images::ImageError::NotFound { .. }) => Some(
                "pull it (`pull NAME`), load it (`load -i FILE`, `import`), or name a directory with --rootfs (see chapters/06-images.md and chapters/07-registry.md)".into(),
            ),
            EngineError::RootfsMissing { .. } | EngineError::RootfsNotDirectory { .. } => Some(
                "--rootfs needs a directory holding the container's files, such as an unpacked busybox (see chapters/00-process.md)".into(),
            ),
            EngineError::Bundle(_) | EngineError::Runtime(RuntimeError::State(_)) => Some(
                "the state root needs root to write: run as root, or give --root a directory you own".into(),
            ),
            EngineError::User(PrivilegeError::Unsafe(error)) | EngineError::Unsafe(error) => {
                error.hint().map(String::from)
            }
            EngineError::Network(crate::network::NetworkError::HeldElsewhere {
                engine,
                state_root,
                containers,
            }) => Some(format!(
                "one state root's networks at a time on a host (ferry and myferry share them): stop those containers (`{engine} --root {} stop {containers}`), or run this one with --network none or --network host (see chapters/10-network.md, troubleshooting)",
                state_root.display()
            )),
            EngineError::Runtime(RuntimeError::Cgroup(_)) => Some(
                "cgroups need root and a mounted cgroup filesystem: `cargo xtask doctor` shows the layout (see chapters/03-cgroups.md)".into(),
            ),
            EngineError::Runtime(RuntimeError::Sys { source: nix::Error::EPERM, .. }) => Some(
                "creating namespaces needs root: run with sudo (see chapters/setup.md)".into(),
            ),
            EngineError::Runtime(RuntimeError::DiedInSetup { oom_killed: true, .. }) => Some(
                "the kernel's OOM killer struck during the setup, not in your command: the --memory limit is too small for ferry's own setup (see chapters/03-cgroups.md)".into(),
            ),
            _ => None,
        }
}
