//! The container commands of a container's life (chapter 8): create, start,
//! stop, restart, kill, wait, rm, prune, rename, and the `container SUBCOMMAND`
//! group that also reaches the others. Each is a thin adapter over
//! `engine::containers`, printing what docker's CLI prints. Looking at
//! containers lives next door: `ps` (ps.rs), `logs` and `attach` (logs.rs),
//! `exec` (exec.rs, chapter 9), `inspect`, `top` and `diff` (inspect.rs).

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use nix::sys::signal::Signal;

use super::exec::ExecArgs;
use super::inspect::InspectArgs;
use super::logs::{attach_terminal, follow_to_end, has_terminal, AttachArgs, LogsArgs};
use super::ps::PsArgs;
use super::run::{self as run_command, CliError, RunArgs};
use crate::engine::containers::logs;
use crate::engine::containers::supervisor::{self, Failure, Report};
use crate::engine::containers::{
    stop, ContainerError, Containers, CreateRequest, Record, RestartPolicy, Status,
};
use crate::engine::options::RunOptions;
use crate::ENGINE;

/// `start [-a] CONTAINER...`
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it to end (one container)
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Keep stdin open (chapter 9 connects it; accepted for docker's habits)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `stop [-t SECONDS] CONTAINER...`, `restart`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container [default: its --stop-timeout, else 10]
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `kill [-s SIGNAL] CONTAINER...`
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `wait CONTAINER...`, `top`, `diff`
#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rm [-f] [-v] CONTAINER...`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rename CONTAINER NEW_NAME`
#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

/// `container prune [-f]`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (ferry never prompts)
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `supervise ID`: the supervisor (started by ferry itself; not for people).
#[derive(Debug, Args)]
pub struct SuperviseArgs {
    pub id: String,
}

/// `container SUBCOMMAND`
#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Display the running processes of a container
    Top(ContainersArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainersArgs),
    /// Attach to a running container's output
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
}

/// Runs `container SUBCOMMAND`.
pub fn container(args: ContainerArgs, state_root: &Path) -> Result<i32, CliError> {
    match args.command {
        ContainerCommand::Ls(args) => super::ps::ps(&args, state_root),
        ContainerCommand::Create(args) => create(&args, state_root),
        ContainerCommand::Run(args) => run_command::run(&args, state_root),
        ContainerCommand::Start(args) => start(&args, state_root),
        ContainerCommand::Stop(args) => stop_containers(&args, state_root),
        ContainerCommand::Restart(args) => restart(&args, state_root),
        ContainerCommand::Kill(args) => kill(&args, state_root),
        ContainerCommand::Wait(args) => wait(&args, state_root),
        ContainerCommand::Rm(args) => rm(&args, state_root),
        ContainerCommand::Prune(args) => prune(&args, state_root),
        ContainerCommand::Rename(args) => rename(&args, state_root),
        ContainerCommand::Inspect(args) => super::inspect::inspect(&args, state_root),
        ContainerCommand::Logs(args) => super::logs::logs(&args, state_root),
        ContainerCommand::Top(args) => super::inspect::top(&args, state_root),
        ContainerCommand::Diff(args) => super::inspect::diff(&args, state_root),
        ContainerCommand::Attach(args) => super::logs::attach(&args, state_root),
        ContainerCommand::Exec(args) => super::exec::exec(&args, state_root),
    }
}

/// The create request `run` and `create` make from their flags.
pub fn request(
    args: &RunArgs,
    options: RunOptions,
    logged: bool,
) -> Result<CreateRequest, CliError> {
    let restart = match &args.restart {
        Some(text) => text
            .parse::<RestartPolicy>()
            .map_err(|why| CliError::Flag {
                flag: "--restart",
                value: text.clone(),
                why,
            })?,
        None => RestartPolicy::default(),
    };
    if let Some(signal) = &args.stop_signal {
        if stop::parse_signal(signal).is_none() {
            return Err(CliError::Flag {
                flag: "--stop-signal",
                value: signal.clone(),
                why: "use a signal name or number: TERM, SIGQUIT, 2".into(),
            });
        }
    }
    Ok(CreateRequest {
        options,
        name: args.name.clone(),
        restart,
        auto_remove: args.rm,
        logged,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        build: None,
    })
}

/// `create`: makes the container and prints its id.
pub fn create(args: &RunArgs, state_root: &Path) -> Result<i32, CliError> {
    if args.detach {
        return Err(CliError::Flag {
            flag: "--detach",
            value: "true".into(),
            why: "create makes a container without starting it; use run -d to start one in the background".into(),
        });
    }
    let options = run_command::prepare_options(args, state_root)?;
    let record = make(args, options, true, state_root)?;
    println!("{}", record.id);
    Ok(0)
}

/// Makes the container for `run`/`create`; engine errors told as flags.
pub fn make(
    args: &RunArgs,
    options: RunOptions,
    logged: bool,
    state_root: &Path,
) -> Result<Record, CliError> {
    let request = request(args, options, logged)?;
    Containers::new(state_root)
        .create(&request)
        .map_err(|error| match error {
            ContainerError::Engine(error) => run_command::flag_error(*error, args),
            other => CliError::RunContainer(other),
        })
}

/// `run -d`: makes the container, starts its supervisor, prints the id.
pub fn run_detached(
    args: &RunArgs,
    options: RunOptions,
    state_root: &Path,
) -> Result<i32, CliError> {
    let record = make(args, options, true, state_root)?;
    let containers = Containers::new(state_root);
    match supervisor::spawn(&containers, &record.id).map_err(CliError::RunContainer)? {
        Report::Started if !args.detach => attach_terminal(&containers, &record, args.interactive),
        Report::Started => {
            println!("{}", record.id);
            Ok(0)
        }
        Report::Failed(failure) => {
            if record.host_config.auto_remove {
                if let Ok(current) = containers.load(&record.id) {
                    let _ = containers.remove(&current, true);
                }
            }
            Err(CliError::Reported(failure))
        }
    }
}

/// `start [-a]`.
pub fn start(args: &StartArgs, state_root: &Path) -> Result<i32, CliError> {
    if args.attach && args.containers.len() > 1 {
        return Err(CliError::Flag {
            flag: "--attach",
            value: args.containers.join(" "),
            why: "you cannot attach to more than one container; start them one by one".into(),
        });
    }
    let containers = Containers::new(state_root);
    let mut failed = None;
    for name in &args.containers {
        match start_one(&containers, name, args.attach, args.interactive) {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => println!("{name}"),
            Err(error) => failed = Some(report(error)),
        }
    }
    Ok(failed.unwrap_or(0))
}

/// Starts one container; with `attach`, follows its output and returns its exit code.
fn start_one(
    containers: &Containers,
    name: &str,
    attach: bool,
    interactive: bool,
) -> Result<Option<i32>, CliError> {
    let record = containers.get(name)?;
    match record.state.status {
        Status::Running | Status::Restarting => {
            // docker: starting a running container is not an error.
            return if attach && has_terminal(containers, &record) {
                attach_terminal(containers, &record, interactive).map(Some)
            } else if attach {
                follow_to_end(containers, &record, logs::end(&record.log_path)).map(Some)
            } else {
                Ok(None)
            };
        }
        Status::Created | Status::Exited | Status::Dead => {}
    }
    let offset = logs::end(&record.log_path);
    match supervisor::spawn(containers, &record.id)? {
        Report::Started => {}
        Report::Failed(failure) => return Err(CliError::Reported(failure)),
    }
    if attach {
        let record = containers.get(&record.id)?;
        if has_terminal(containers, &record) {
            return attach_terminal(containers, &record, interactive).map(Some);
        }
        return follow_to_end(containers, &record, offset).map(Some);
    }
    Ok(None)
}

/// How long `stop` waits: `-t`, else the container's `--stop-timeout`, else 10 s.
fn grace(time: Option<u64>, record: &Record) -> Duration {
    Duration::from_secs(time.or(record.config.stop_timeout).unwrap_or(10))
}

/// The signal a container stops with: `--stop-signal`, else its image's
/// STOPSIGNAL, else SIGTERM.
fn stop_signal(record: &Record) -> Signal {
    stop::parse_signal(&record.config.stop_signal).unwrap_or(Signal::SIGTERM)
}

/// Stops one container and waits until its supervisor has recorded the end.
fn stop_one(
    containers: &Containers,
    record: &Record,
    signal: Signal,
    grace: Duration,
) -> Result<(), CliError> {
    let record = containers.update(&record.id, |r| r.supervision.stopped_by_user = true)?;
    if let Some(process) = record.supervision.process {
        if matches!(record.state.status, Status::Running) {
            stop::stop(&process, signal, grace).map_err(ContainerError::from)?;
        }
    }
    wait_for_supervisor(containers, &record)
}

/// Waits (on a pidfd) until the container's supervisor is gone, so the record
/// says how the container ended.
pub(super) fn wait_for_supervisor(
    containers: &Containers,
    record: &Record,
) -> Result<(), CliError> {
    if let Some(supervisor) = record.supervision.supervisor {
        let me = crate::engine::containers::ProcessRef::me();
        if supervisor != me {
            let _ = stop::wait_for(&supervisor, Duration::from_secs(15));
        }
    }
    // A `--rm` container is gone once its supervisor is: that is its normal end.
    match containers.get(&record.id) {
        Err(_) if record.host_config.auto_remove => Ok(()),
        other => other.map(drop).map_err(CliError::from),
    }
}

/// `stop`.
pub fn stop_containers(args: &StopArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    each(&args.containers, |name| {
        let record = containers.get(name)?;
        stop_one(
            &containers,
            &record,
            stop_signal(&record),
            grace(args.time, &record),
        )
    })
}

/// `restart`: stop (if running), then start.
pub fn restart(args: &StopArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    each(&args.containers, |name| {
        let record = containers.get(name)?;
        if matches!(record.state.status, Status::Running | Status::Restarting) {
            stop_one(
                &containers,
                &record,
                stop_signal(&record),
                grace(args.time, &record),
            )?;
        }
        start_one(&containers, &record.id, false, false).map(drop)
    })
}

/// `kill`.
pub fn kill(args: &KillArgs, state_root: &Path) -> Result<i32, CliError> {
    let signal = stop::parse_signal(&args.signal).ok_or_else(|| CliError::Flag {
        flag: "--signal",
        value: args.signal.clone(),
        why: "use a signal name or number: KILL, TERM, HUP, 9".into(),
    })?;
    let containers = Containers::new(state_root);
    each(&args.containers, |name| {
        let record = containers.get(name)?;
        let Some(process) = record
            .supervision
            .process
            .filter(|_| record.state.status == Status::Running)
        else {
            return Err(ContainerError::NotRunning {
                name: name.to_string(),
            }
            .into());
        };
        if matches!(signal, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            containers.update(&record.id, |r| r.supervision.stopped_by_user = true)?;
        }
        stop::signal(&process, signal).map_err(ContainerError::from)?;
        Ok(())
    })
}

/// `wait`: blocks until each container has ended; prints their exit codes.
pub fn wait(args: &ContainersArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let mut failed = None;
    for name in &args.containers {
        let outcome = containers
            .get(name)
            .map_err(CliError::from)
            .and_then(|record| loop {
                let record = containers.get(&record.id)?;
                match (record.state.status, record.supervision.supervisor) {
                    (Status::Running | Status::Restarting, Some(supervisor)) => {
                        let _ = stop::wait_for(&supervisor, Duration::from_secs(3600));
                    }
                    _ => return Ok(record.state.exit_code),
                }
            });
        match outcome {
            Ok(code) => println!("{code}"),
            Err(error) => failed = Some(report(error)),
        }
    }
    Ok(failed.unwrap_or(0))
}

/// `rm`.
pub fn rm(args: &RmArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    each(&args.containers, |name| {
        let record = containers.get(name)?;
        crate::engine::containers::refuse_a_running_builds_step(&record)?;
        let supervised = record
            .supervision
            .supervisor
            .as_ref()
            .is_some_and(crate::engine::containers::is_alive);
        if supervised || matches!(record.state.status, Status::Running | Status::Restarting) {
            if !args.force {
                return Err(ContainerError::NotStopped {
                    id: record.id.clone(),
                    status: record.state.status,
                }
                .into());
            }
            // Also a container its supervisor is still making: marked stopped, it is
            // killed the moment it runs, and the supervisor ends.
            stop_one(&containers, &record, Signal::SIGKILL, Duration::ZERO)?;
        }
        // A supervisor can claim the container between our look and the removal
        // (a `start` racing this `rm -f`): then stop it too, and try again.
        for _ in 0..5 {
            let record = containers.get(&record.id)?;
            match containers.remove(&record, args.volumes) {
                Err(ContainerError::NotStopped { .. }) if args.force => {
                    stop_one(&containers, &record, Signal::SIGKILL, Duration::ZERO)?;
                }
                other => return Ok(other?),
            }
        }
        let record = containers.get(&record.id)?;
        Ok(containers.remove(&record, args.volumes)?)
    })
}

/// `container prune`: removes every stopped container.
pub fn prune(_args: &PruneArgs, state_root: &Path) -> Result<i32, CliError> {
    let containers = Containers::new(state_root);
    let mut removed = Vec::new();
    let mut reclaimed = 0u64;
    for record in containers.all() {
        if matches!(record.state.status, Status::Running | Status::Restarting) {
            continue;
        }
        let size = dir_size(&containers.dir(&record.id).join("upper"));
        if containers.remove(&record, false).is_ok() {
            removed.push(record.id);
            reclaimed += size;
        }
    }
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        super::image::human_size(reclaimed)
    );
    Ok(0)
}

/// The bytes of the files under `dir` (not following symlinks).
fn dir_size(dir: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// `rename`.
pub fn rename(args: &RenameArgs, state_root: &Path) -> Result<i32, CliError> {
    Containers::new(state_root).rename(&args.container, &args.new_name)?;
    Ok(0)
}

/// Runs `action` for each name, printing the name when it succeeds (docker's
/// habit) and the error when it fails; exit 1 if any failed.
fn each(
    names: &[String],
    mut action: impl FnMut(&str) -> Result<(), CliError>,
) -> Result<i32, CliError> {
    let mut failed = None;
    for name in names {
        match action(name) {
            Ok(()) => println!("{name}"),
            Err(error) => failed = Some(report(error)),
        }
    }
    Ok(failed.unwrap_or(0))
}

/// Prints an error of one of several containers and goes on; its exit code.
fn report(error: CliError) -> i32 {
    eprintln!("{ENGINE}: error: {}", crate::errors::chain(&error));
    if let Some(hint) = error.hint() {
        eprintln!("{ENGINE}: hint: {hint}");
    }
    error.exit_code()
}

/// `supervise ID`: the supervisor's main.
pub fn supervise(args: &SuperviseArgs, state_root: &Path) -> i32 {
    supervisor::main(state_root, &args.id, &|error| Failure {
        message: crate::errors::chain(error),
        hint: run_command::engine_hint(error),
        exit_code: run_command::engine_exit_code(error),
    })
}
