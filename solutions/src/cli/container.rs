//! The container commands (chapter 8): create, start, attach, ps, logs, stop,
//! kill, restart, wait, rm, prune, rename, inspect, top, diff — each a thin
//! adapter over `engine::containers`, printing what docker's CLI prints.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use nix::sys::signal::Signal;

use super::run::{self as run_command, CliError, RunArgs};
use crate::clock;
use crate::engine::containers::logs::{self, Stream};
use crate::engine::containers::supervisor::{self, Failure, Report};
use crate::engine::containers::{
    is_alive, stop, ContainerError, Containers, CreateRequest, Record, RestartPolicy, Status,
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

/// `attach CONTAINER`
#[derive(Debug, Args)]
pub struct AttachArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

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

/// `stop [-t SECONDS] CONTAINER...`, `restart`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,
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

/// `inspect [-f TEMPLATE] NAME...`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template, e.g. '{{.State.Status}}'
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// `container prune [-f]`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (ferry never prompts)
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `exec [-d] [-i] [-e K=V] [-w DIR] [-u USER] [--privileged] CONTAINER COMMAND...`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open for the command (without it the command reads /dev/null)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal (a pty of the container's own)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE), or pass KEY through from here
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Working directory inside the container [default: the container's]
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as this user: name, uid, name:group or uid:gid (from the container's /etc/passwd)
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Give the command every capability ferry holds (its seccomp filter stays the container's)
    #[arg(long)]
    pub privileged: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command to run and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// `exec`: the command's exit code (or 0 once it runs, detached).
pub fn exec(args: &ExecArgs, state_root: &Path) -> Result<i32, CliError> {
    use crate::engine::containers::exec::{self as container_exec, ExecOptions};
    use crate::runtime::exec::ExecOutcome;
    let mut env = Vec::new();
    for text in &args.env {
        match crate::env::parse_entry(text)? {
            crate::env::EnvEntry::Set(key, value) => env.push((key, value)),
            crate::env::EnvEntry::Inherit(key) => {
                if let Ok(value) = std::env::var(&key) {
                    env.push((key, value));
                }
            }
        }
    }
    let containers = Containers::new(state_root);
    let record = containers.get(&args.container)?;
    if !args.interactive || args.detach {
        // docker's exec gives the command no stdin unless -i.
        if let Ok(null) = std::fs::File::open("/dev/null") {
            use std::os::fd::AsRawFd;
            let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        }
    }
    if args.detach {
        for fd in [1, 2] {
            if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
                use std::os::fd::AsRawFd;
                let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
            }
        }
    }
    let options = ExecOptions {
        command: args.command.clone(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        privileged: args.privileged,
        detach: args.detach,
        tty: args.tty && !args.detach,
    };
    let mut started =
        container_exec::start(&containers, &record, &options).map_err(|error| match error {
            ContainerError::Engine(error) => CliError::Engine(*error),
            other => CliError::Container(other),
        })?;
    if let Some(master) = started.console.take() {
        use std::io::IsTerminal;
        // Your terminal goes raw while the container's does the editing; the
        // guard puts it back on every way out of this block.
        let raw = if std::io::stdin().is_terminal() {
            Some(
                crate::terminal::RawMode::enable()
                    .map_err(|e| CliError::Terminal(e.to_string()))?,
            )
        } else {
            None
        };
        let ended = started
            .ended()
            .map_err(|error| CliError::Engine(error.into()))?;
        let relayed =
            super::terminal::relay(master.as_fd(), Some(ended.as_fd()), args.interactive, None);
        drop(raw);
        drop(master);
        relayed.map_err(|e| CliError::Terminal(format!("relaying the terminal failed: {e}")))?;
    }
    match started
        .wait()
        .map_err(|error| CliError::Engine(error.into()))?
    {
        ExecOutcome::Exited(exit) => Ok(exit.code),
        ExecOutcome::Detached => Ok(0),
    }
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
        ContainerCommand::Ls(args) => ps(&args, state_root),
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
        ContainerCommand::Inspect(args) => inspect(&args, state_root),
        ContainerCommand::Logs(args) => logs(&args, state_root),
        ContainerCommand::Top(args) => top(&args, state_root),
        ContainerCommand::Diff(args) => diff(&args, state_root),
        ContainerCommand::Attach(args) => attach(&args, state_root),
        ContainerCommand::Exec(args) => exec(&args, state_root),
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
    Ok(CreateRequest {
        options,
        name: args.name.clone(),
        restart,
        auto_remove: args.rm,
        logged,
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
        Report::Started if !args.detach => attach_terminal(&containers, &record),
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
        match start_one(&containers, name, args.attach) {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => println!("{name}"),
            Err(error) => failed = Some(report(error)),
        }
    }
    Ok(failed.unwrap_or(0))
}

/// Starts one container; with `attach`, follows its output and returns its exit code.
fn start_one(containers: &Containers, name: &str, attach: bool) -> Result<Option<i32>, CliError> {
    let record = containers.get(name)?;
    match record.state.status {
        Status::Running | Status::Restarting => {
            // docker: starting a running container is not an error.
            return if attach {
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
            return attach_terminal(containers, &record).map(Some);
        }
        return follow_to_end(containers, &record, offset).map(Some);
    }
    Ok(None)
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
        return attach_terminal(&containers, &record);
    }
    follow_to_end(&containers, &record, logs::end(&record.log_path))
}

/// Whether the container's command has a terminal (`-t`).
fn has_terminal(containers: &Containers, record: &Record) -> bool {
    crate::engine::containers::read_spec(&containers.dir(&record.id))
        .is_some_and(|spec| spec.process.terminal)
}

/// Attaches this terminal to the container's (through its supervisor) until the
/// container ends — its exit code — or the detach keys leave it running (0).
fn attach_terminal(containers: &Containers, record: &Record) -> Result<i32, CliError> {
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
    let relayed = super::terminal::relay_attached(socket, keys);
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
fn follow_to_end(containers: &Containers, record: &Record, offset: u64) -> Result<i32, CliError> {
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

/// The signal a container stops with: its image's STOPSIGNAL, else SIGTERM.
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
fn wait_for_supervisor(containers: &Containers, record: &Record) -> Result<(), CliError> {
    if let Some(supervisor) = record.supervision.supervisor {
        let me = crate::engine::containers::ProcessRef::me();
        if supervisor != me {
            let _ = stop::wait_for(&supervisor, Duration::from_secs(15));
        }
    }
    containers.get(&record.id)?;
    Ok(())
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
            Duration::from_secs(args.time),
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
                Duration::from_secs(args.time),
            )?;
        }
        start_one(&containers, &record.id, false).map(drop)
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
        if matches!(record.state.status, Status::Running | Status::Restarting) {
            if !args.force {
                return Err(ContainerError::NotStopped {
                    id: record.id.clone(),
                    status: record.state.status,
                }
                .into());
            }
            stop_one(&containers, &record, Signal::SIGKILL, Duration::ZERO)?;
        }
        let record = containers.get(&record.id)?;
        containers.remove(&record, args.volumes)?;
        Ok(())
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
            ports: String::new(),
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
