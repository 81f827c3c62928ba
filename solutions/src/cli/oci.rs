//! `ferry runtime ...`: the runtime's own command line, in runc's dialect — the
//! one podman (through conmon), containerd's shim and CRI-O speak to runc, crun or
//! youki (chapter 12). The same binary answers to it when it is called
//! `ferry-runtime` (a symlink), so `podman --runtime /usr/local/bin/ferry-runtime`
//! works.
//!
//! It drives ferry's runtime directly — no images, names or store: an engine
//! hands it an OCI bundle (a directory with `config.json` and usually `rootfs/`).
//! State lives in `ROOT/ID` (default `/run/ferry`, as runc's `/run/runc`). As
//! runc, it exits 1 when a command fails, and prints nothing on success but what
//! the command is for (`state`, `ps`, `features`).

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::errors;
use crate::runtime::exec::{ExecOutcome, ExecRequest};
use crate::runtime::oci::{Handle, CONFIG_FILE, EXEC_FIFO};
use crate::runtime::plan::SpecError;
use crate::runtime::spec::{self, Process, Resources, Spec};
use crate::runtime::state;
use crate::runtime::{self, CreateOptions, RuntimeError};
use crate::ENGINE;

/// An OCI runtime with runc's command line (chapter 12).
#[derive(Debug, Parser)]
#[command(name = NAME, version = VERSION, disable_help_subcommand = true)]
pub struct RuntimeCli {
    /// Directory of the containers' state [default: /run/<engine>]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also write what is logged (errors, warnings, with --debug the steps) to FILE
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// How --log writes: text, or json lines with level, msg and time
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// cgroupsPath is systemd's slice:prefix:name (mapped to its path; no units are made)
    #[arg(long)]
    systemd_cgroup: bool,
    /// Log every step
    #[arg(long)]
    debug: bool,
    #[command(subcommand)]
    command: RuntimeCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum RuntimeCommand {
    /// Create a container from a bundle: set up, waiting before its program
    Create(CreateArgs),
    /// Create, start and wait for a container (its exit code is ours)
    Run(RunArgs),
    /// Run the program of a created container
    Start { id: String },
    /// Print a container's state (the OCI state JSON)
    State { id: String },
    /// Send a signal (a name such as TERM or SIGTERM, or a number) [default: TERM]
    Kill {
        id: String,
        signal: Option<String>,
        /// Every process of the container, not only its first
        #[arg(short, long)]
        all: bool,
    },
    /// Remove a container (a running one only with --force)
    Delete {
        id: String,
        /// Kill it first if it runs
        #[arg(short, long)]
        force: bool,
    },
    /// Run another process in a running container
    Exec(Box<ExecArgs>),
    /// List the processes of a container
    Ps {
        id: String,
        /// table or json (a list of host pids)
        #[arg(short, long, default_value = "table")]
        format: String,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change a running container's limits
    Update {
        id: String,
        /// The linux.resources JSON to apply, from FILE or - (stdin)
        #[arg(short, long, value_name = "FILE")]
        resources: PathBuf,
    },
    /// List the containers under the root
    List {
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
    },
    /// Write a config.json for a rootfs/ next to it: the defaults of ferry's engine
    Spec {
        /// The bundle directory [default: .]
        #[arg(short, long, value_name = "DIR", default_value = ".")]
        bundle: PathBuf,
    },
    /// Print what this runtime implements (runc's features JSON)
    Features,
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The bundle: a directory with config.json [default: .]
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    bundle: PathBuf,
    /// Write the host pid of the container's process to FILE
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// With process.terminal: send the pty's master to this unix socket (SCM_RIGHTS)
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root (for a root on a ramdisk)
    #[arg(long)]
    no_pivot: bool,
    /// Accepted: ferry makes no session keyring (keyrings are not namespaced)
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass descriptors 3 to 3+N-1 on to the program
    #[arg(long, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once the program runs (create, then start)
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it ends (delete it later)
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// The process to run, as the spec's `process` JSON (FILE)
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the command runs; whoever reaps our orphans waits for it
    #[arg(short, long)]
    detach: bool,
    /// Write the command's host pid to FILE
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// With a terminal: send the pty's master to this unix socket
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Give the command a terminal (needs --console-socket)
    #[arg(short, long)]
    tty: bool,
    /// The working directory [default: the container's]
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Add KEY=VALUE to the environment
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Add a capability (CAP_NET_ADMIN) to the command's sets
    #[arg(short, long, value_name = "CAP")]
    cap: Vec<String>,
    /// Pass descriptors 3 to 3+N-1 on to the command
    #[arg(long, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    /// The command (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The name it answers to: `ferry-runtime` (`ferry runtime` works too).
const NAME: &str = concat!(env!("CARGO_PKG_NAME"), "-runtime");

/// `--version`, as runc prints it: the version, then the spec's.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (OCI runtime)\nspec: 1.0.2");

/// What the runtime's commands fail with.
#[derive(Debug, thiserror::Error)]
enum OciError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("container {id} does not exist (no {dir})")]
    NoSuchContainer { id: String, dir: PathBuf },
    #[error("container {id} already exists")]
    Exists { id: String },
    #[error("{id:?} is not a container id: use letters, digits, '_', '-' and '.' (not only dots)")]
    BadId { id: String },
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// `ferry runtime ARGS...` (or `ferry-runtime ARGS...`): the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match RuntimeCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 1 } else { 0 };
            let _ = error.print();
            return code;
        }
    };
    // Before anything of ferry's opens a descriptor (the log file first): a
    // number the caller did not fill would be taken by ferry's own, and passed.
    if let Err(error) = check_preserved(&cli.command) {
        eprintln!("{ENGINE}: error: {error}");
        return 1;
    }
    init_logging(cli.debug, cli.log.as_deref(), cli.log_format);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&cli)));
    let message = match outcome {
        Ok(Ok(code)) => return code,
        Ok(Err(error)) => errors::chain(&error),
        Err(panic) => errors::describe_panic(panic.as_ref()),
    };
    // Callers read the log file (podman, containerd) or our stderr (conmon).
    log::error!("{message}");
    if cli.log.is_some() {
        eprintln!("{ENGINE}: error: {message}");
    }
    1
}

/// `--preserve-fds N` needs descriptors 3 to 3+N-1 open in the caller's process.
fn check_preserved(command: &RuntimeCommand) -> Result<(), OciError> {
    let count = match command {
        RuntimeCommand::Create(args) => args.preserve_fds,
        RuntimeCommand::Run(args) => args.create.preserve_fds,
        RuntimeCommand::Exec(args) => args.preserve_fds,
        _ => 0,
    };
    let (open_max, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    if u64::from(count) + 3 > open_max {
        return Err(OciError::Usage(format!(
            "--preserve-fds {count} reaches past this process's descriptor limit ({open_max}, RLIMIT_NOFILE)"
        )));
    }
    match runtime::exec::preserved_fds(count)
        .into_iter()
        .find(|&fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err())
    {
        None => Ok(()),
        Some(fd) => Err(OciError::Usage(format!(
            "--preserve-fds {count} passes descriptors 3 to {}, but descriptor {fd} is not open: open them before calling, or pass fewer",
            2 + count
        ))),
    }
}

fn dispatch(cli: &RuntimeCli) -> Result<i32, OciError> {
    let root = cli
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/run/{ENGINE}")));
    let root = std::path::absolute(&root).unwrap_or(root);
    let dir = |id: &str| container_dir(&root, id);
    let existing = |id: &str| -> Result<Handle, OciError> {
        let dir = dir(id)?;
        if !dir.join(state::STATE_FILE).exists() {
            return Err(OciError::NoSuchContainer {
                id: id.to_string(),
                dir,
            });
        }
        Ok(Handle::load(&dir)?)
    };
    match &cli.command {
        RuntimeCommand::Create(args) => {
            create(&root, args, cli.systemd_cgroup)?;
            Ok(0)
        }
        RuntimeCommand::Run(args) => run(&root, args, cli.systemd_cgroup),
        RuntimeCommand::Start { id } => {
            existing(id)?.start()?;
            Ok(0)
        }
        RuntimeCommand::State { id } => {
            let state = existing(id)?.current_state();
            println!(
                "{}",
                serde_json::to_string_pretty(&state).expect("state serializes")
            );
            Ok(0)
        }
        RuntimeCommand::Kill { id, signal, all } => {
            let signal = parse_signal(signal.as_deref().unwrap_or("TERM"))?;
            existing(id)?.kill(signal, *all)?;
            Ok(0)
        }
        RuntimeCommand::Delete { id, force } => {
            match existing(id) {
                Ok(handle) => handle.delete(*force)?,
                // A half-created container (create failed before its state) leaves
                // at most an empty directory.
                Err(OciError::NoSuchContainer { dir, .. }) if *force && dir.exists() => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Err(error) => return Err(error),
            }
            Ok(0)
        }
        RuntimeCommand::Exec(args) => exec(&existing(&args.id)?, args),
        RuntimeCommand::Ps { id, format } => {
            let pids = existing(id)?.pids()?;
            print_pids(&pids, format)?;
            Ok(0)
        }
        RuntimeCommand::Pause { id } => {
            existing(id)?.set_frozen(true)?;
            Ok(0)
        }
        RuntimeCommand::Resume { id } => {
            existing(id)?.set_frozen(false)?;
            Ok(0)
        }
        RuntimeCommand::Update { id, resources } => {
            let text = read_input(resources)?;
            let resources: Resources = spec::from_json_strict(&text, "linux.resources")?;
            existing(id)?.update(resources)?;
            Ok(0)
        }
        RuntimeCommand::List { format } => {
            list(&root, format)?;
            Ok(0)
        }
        RuntimeCommand::Spec { bundle } => {
            write_default_spec(bundle)?;
            Ok(0)
        }
        RuntimeCommand::Features => {
            println!("{}", serde_json::to_string_pretty(&features()).unwrap());
            Ok(0)
        }
    }
}

/// `ROOT/ID`, for an id that cannot name anything else: no `/`, no `..`.
fn container_dir(root: &Path, id: &str) -> Result<PathBuf, OciError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if id.is_empty() || id.len() > 1024 || !id.chars().all(allowed) || id.chars().all(|c| c == '.')
    {
        return Err(OciError::BadId { id: id.to_string() });
    }
    Ok(root.join(id))
}

/// Reads the bundle's config.json, strictly, with paths made absolute.
fn read_bundle_spec(bundle: &Path, systemd_cgroup: bool) -> Result<Spec, OciError> {
    let path = bundle.join("config.json");
    let text = read_capped(&path)?;
    let mut spec: Spec = spec::from_json_strict(&text, "config.json")?;
    if !Path::new(&spec.root.path).is_absolute() {
        spec.root.path = bundle.join(&spec.root.path).display().to_string();
    }
    for mount in &mut spec.mounts {
        let is_bind = mount.kind.as_deref() == Some("bind")
            || mount.options.iter().any(|o| o == "bind" || o == "rbind");
        if let (true, Some(source)) = (is_bind, &mut mount.source) {
            if !source.starts_with('/') {
                *source = bundle.join(&*source).display().to_string();
            }
        }
    }
    // The child sets a hostname only in a uts namespace of its own: a bundle that
    // asks for one without it would get none (runc refuses it too).
    let own_uts = spec.linux.namespaces.iter().any(|ns| ns.kind == "uts");
    if spec.hostname.is_some() && !own_uts {
        return Err(SpecError {
            field: "hostname".into(),
            why: "needs a uts namespace of the container's own (linux.namespaces): it would rename the host".into(),
        }
        .into());
    }
    if let (true, Some(path)) = (systemd_cgroup, &spec.linux.cgroups_path) {
        spec.linux.cgroups_path = Some(systemd_cgroup_path(path)?);
    }
    Ok(spec)
}

/// systemd's `slice:prefix:name` as the path systemd gives it: `machine.slice`,
/// `libpod`, `ID` → `/machine.slice/libpod-ID.scope` (a slice `a-b.slice` sits in
/// `a.slice`). ferry makes no systemd unit: this is only the path.
fn systemd_cgroup_path(path: &str) -> Result<String, OciError> {
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(OciError::Usage(format!(
            "--systemd-cgroup: linux.cgroupsPath {path:?} is not slice:prefix:name"
        )));
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    let mut levels = Vec::new();
    let mut so_far = String::new();
    for part in stem.split('-') {
        if !so_far.is_empty() {
            so_far.push('-');
        }
        so_far.push_str(part);
        levels.push(format!("{so_far}.slice"));
    }
    Ok(format!("/{}/{prefix}-{name}.scope", levels.join("/")))
}

fn create(root: &Path, args: &CreateArgs, systemd_cgroup: bool) -> Result<(), OciError> {
    create_container(root, args, systemd_cgroup, true).map(|_| ())
}

/// Creates the container; with `detached`, leaves it waiting on its exec FIFO for
/// a later `start` (else the caller starts it through the pipe).
fn create_container(
    root: &Path,
    args: &CreateArgs,
    systemd_cgroup: bool,
    detached: bool,
) -> Result<Option<runtime::Container>, OciError> {
    let bundle = std::path::absolute(&args.bundle).unwrap_or(args.bundle.clone());
    let spec = read_bundle_spec(&bundle, systemd_cgroup)?;
    if spec.process.terminal && args.console_socket.is_none() {
        return Err(OciError::Usage(
            "process.terminal needs --console-socket: the pty's master goes out on it".into(),
        ));
    }
    let dir = container_dir(root, &args.id)?;
    std::fs::create_dir_all(root).map_err(io("create the state root", root))?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OciError::Exists {
                id: args.id.clone(),
            })
        }
        Err(source) => return Err(io("create", &dir)(source)),
    }
    let made = (|| {
        let config = dir.join(CONFIG_FILE);
        state::write_atomically(&config, spec.to_json().as_bytes())
            .map_err(io("write", &config))?;
        let options = CreateOptions {
            no_pivot: args.no_pivot,
            bundle: Some(bundle.clone()),
            exec_fifo: detached.then(|| dir.join(EXEC_FIFO)),
            preserve_fds: args.preserve_fds,
        };
        let mut container = runtime::create(&args.id, &dir, &spec, &options)?;
        if let Some(path) = &args.pid_file {
            write_pid_file(path, container.pid().as_raw())?;
        }
        if let (Some(socket), Some(master)) = (&args.console_socket, container.take_console()) {
            send_console(socket, master, spec.process.console_size)?;
        }
        Ok(container)
    })();
    match made {
        Ok(container) if detached => {
            container.leave_running();
            Ok(None)
        }
        Ok(container) => Ok(Some(container)),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(error)
        }
    }
}

fn run(root: &Path, args: &RunArgs, systemd_cgroup: bool) -> Result<i32, OciError> {
    if args.detach {
        create(root, &args.create, systemd_cgroup)?;
        Handle::load(&container_dir(root, &args.create.id)?)?.start()?;
        return Ok(0);
    }
    let dir = container_dir(root, &args.create.id)?;
    let mut container = create_container(root, &args.create, systemd_cgroup, false)?
        .expect("a container that is not detached");
    let outcome = container.start().and_then(|()| container.wait());
    if args.keep {
        container.leave_running();
    } else {
        let deleted = container.delete();
        let _ = std::fs::remove_dir_all(&dir);
        deleted?;
    }
    Ok(outcome?.code)
}

fn exec(handle: &Handle, args: &ExecArgs) -> Result<i32, OciError> {
    let mut process: Process = match &args.process {
        Some(path) => spec::from_json_strict(&read_capped(path)?, "process")?,
        None => {
            if args.command.is_empty() {
                return Err(OciError::Usage(
                    "exec needs --process FILE or a command after the id".into(),
                ));
            }
            let mut process = handle.spec.process.clone();
            process.args = args.command.clone();
            process
        }
    };
    if let Some(cwd) = &args.cwd {
        process.cwd = cwd.clone();
    }
    process.env.extend(args.env.iter().cloned());
    process.terminal |= args.tty;
    if !args.cap.is_empty() {
        let sets = process.capabilities.get_or_insert_with(Default::default);
        for cap in &args.cap {
            for set in [&mut sets.bounding, &mut sets.effective, &mut sets.permitted] {
                if !set.contains(cap) {
                    set.push(cap.clone());
                }
            }
        }
    }
    if process.terminal && args.console_socket.is_none() {
        return Err(OciError::Usage(
            "a terminal (--tty or process.terminal) needs --console-socket: the pty's master goes out on it".into(),
        ));
    }
    let console_size = process.console_size;
    let request = ExecRequest {
        process,
        detach: args.detach,
        leave_to_caller: true,
        preserve_fds: args.preserve_fds,
    };
    let mut exec = runtime::exec::start(&handle.dir, &request)?;
    if let (Some(path), Some(pid)) = (&args.pid_file, exec.command) {
        write_pid_file(path, pid.as_raw())?;
    }
    if let (Some(socket), Some(master)) = (&args.console_socket, exec.console.take()) {
        send_console(socket, master, console_size)?;
    }
    match exec.wait()? {
        ExecOutcome::Exited(exit) => Ok(exit.code),
        ExecOutcome::Detached => Ok(0),
    }
}

/// Sends the pty's master over the unix socket at `path`, as runc does for conmon
/// (which then relays it), with the spec's window size set first.
fn send_console(
    path: &Path,
    master: std::os::fd::OwnedFd,
    size: Option<spec::ConsoleSize>,
) -> Result<(), OciError> {
    if let Some(size) = size {
        let size = crate::sys::WindowSize {
            ws_row: size.height,
            ws_col: size.width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let _ = crate::sys::set_window_size(master.as_fd(), &size);
    }
    let socket = std::os::unix::net::UnixStream::connect(path)
        .map_err(io("connect to the console socket", path))?;
    crate::terminal::send_fd(socket.as_fd(), master.as_fd())
        .map_err(|error| OciError::Usage(errors::chain(&error)))
}

/// Writes `pid` to `path` atomically, as runc does: a reader sees all or nothing.
fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    state::write_atomically(path, pid.to_string().as_bytes())
        .map_err(io("write the pid file", path))
}

/// The most a caller's JSON (config.json, process.json, resources) may hold.
const MAX_INPUT: u64 = 4 << 20;

/// A file the caller gave, at most [`MAX_INPUT`]: a regular file (opened without
/// blocking, so a FIFO in its place cannot hang the runtime).
fn read_capped(path: &Path) -> Result<String, OciError> {
    use crate::safe_path::HostFileError;
    let bytes = crate::safe_path::read_host_file(path, MAX_INPUT).map_err(|error| match error {
        HostFileError::Io(source) => OciError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        },
        refused => OciError::Usage(format!("{}: {refused}", path.display())),
    })?;
    text_of(bytes, path)
}

/// `read_capped`, or stdin for `-`.
fn read_input(path: &Path) -> Result<String, OciError> {
    if path != Path::new("-") {
        return read_capped(path);
    }
    match crate::safe_path::read_with_cap(std::io::stdin(), MAX_INPUT) {
        Ok(Some(bytes)) => text_of(bytes, path),
        Ok(None) => Err(OciError::Usage(format!(
            "standard input: it is larger than {MAX_INPUT} bytes"
        ))),
        Err(source) => Err(OciError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn text_of(bytes: Vec<u8>, path: &Path) -> Result<String, OciError> {
    String::from_utf8(bytes)
        .map_err(|_| OciError::Usage(format!("{}: it is not UTF-8 text", path.display())))
}

/// A signal by name (`KILL`, `SIGKILL`) or number (`9`).
fn parse_signal(text: &str) -> Result<nix::sys::signal::Signal, OciError> {
    use nix::sys::signal::Signal;
    let parsed = match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let upper = text.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            name.parse::<Signal>().ok()
        }
    };
    parsed.ok_or_else(|| OciError::Usage(format!("{text:?} is not a signal (TERM, SIGKILL, 9...)")))
}

fn print_pids(pids: &[i32], format: &str) -> Result<(), OciError> {
    match format {
        "json" => println!("{}", serde_json::to_string(pids).unwrap()),
        "table" => {
            println!("{:<8} COMMAND", "PID");
            for pid in pids {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                println!("{pid:<8} {}", comm.trim());
            }
        }
        other => return Err(OciError::Usage(format!("--format {other}: table or json"))),
    }
    Ok(())
}

fn list(root: &Path, format: &str) -> Result<(), OciError> {
    let mut states = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            if let Ok(handle) = Handle::load(&entry.path()) {
                states.push(handle.current_state());
            }
        }
    }
    states.sort_by(|a, b| a.id.cmp(&b.id));
    match format {
        "json" => println!("{}", serde_json::to_string(&states).unwrap()),
        "table" => {
            println!("{:<20} {:<8} {:<8} BUNDLE", "ID", "PID", "STATUS");
            for state in &states {
                let pid = state
                    .pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "0".into());
                println!(
                    "{:<20} {:<8} {:<8} {}",
                    state.id,
                    pid,
                    state.status,
                    state.bundle.display()
                );
            }
        }
        other => return Err(OciError::Usage(format!("--format {other}: table or json"))),
    }
    Ok(())
}

/// `spec`: a config.json with the defaults of ferry's engine, for `rootfs/`.
fn write_default_spec(bundle: &Path) -> Result<(), OciError> {
    use crate::engine::defaults;
    use crate::privileges::capabilities;
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(OciError::Usage(format!(
            "{} exists already",
            path.display()
        )));
    }
    let flags = defaults::namespace_flags();
    let caps: caps::CapsHashSet = capabilities::DEFAULT_CAPABILITIES.iter().copied().collect();
    let mut names: Vec<String> = capabilities::names(&caps).into_iter().collect();
    names.sort();
    let (masked_paths, readonly_paths) = defaults::protected_paths(false);
    let json = serde_json::json!({
        "ociVersion": spec::OCI_VERSION,
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": names, "effective": names, "permitted": names},
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs"},
        "hostname": ENGINE,
        "mounts": defaults::mounts(flags, None),
        "linux": {
            "namespaces": defaults::namespaces(flags),
            "maskedPaths": masked_paths,
            "readonlyPaths": readonly_paths,
            "seccomp": crate::seccomp::default_profile().resolved_for(&capabilities::names(&caps)),
        },
    });
    let text = serde_json::to_string_pretty(&json).unwrap();
    std::fs::write(&path, text + "\n").map_err(io("write", &path))
}

/// runc's `features` document: what a caller may ask of this runtime.
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "private", "rprivate",
            "relatime", "strictatime", "noatime", "nodiratime"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {"org.ferry.runtime": ENGINE},
    })
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OciError {
    let path = path.to_path_buf();
    move |source| OciError::Io {
        action,
        path,
        source,
    }
}

/// The logger: stderr, and with `--log FILE` that file — as JSON lines
/// (`{"level":"error","msg":"...","time":"..."}`) with `--log-format json`,
/// which podman and containerd parse for the error to show.
fn init_logging(debug: bool, file: Option<&Path>, format: LogFormat) {
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level).parse_default_env();
    let opened = file.and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    });
    match opened {
        Some(log_file) => {
            builder.target(env_logger::Target::Pipe(Box::new(log_file)));
            builder.format(move |buf, record| {
                let time = crate::clock::rfc3339_nanos(std::time::SystemTime::now());
                let level = record.level().as_str().to_ascii_lowercase();
                match format {
                    LogFormat::Json => writeln!(
                        buf,
                        "{}",
                        serde_json::json!({"level": level, "msg": record.args().to_string(), "time": time})
                    ),
                    LogFormat::Text => writeln!(buf, "time=\"{time}\" level={level} msg={:?}", record.args().to_string()),
                }
            });
        }
        None => {
            builder.format(|buf, record| {
                let level = record.level().as_str().to_ascii_lowercase();
                writeln!(buf, "{ENGINE}: {level}: {}", record.args())
            });
        }
    }
    let _ = builder.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_runtime_command_line_is_consistent() {
        RuntimeCli::command().debug_assert();
    }

    #[test]
    fn systemd_paths_and_signals_read_as_runc_reads_them() {
        assert_eq!(
            systemd_cgroup_path("machine.slice:libpod:abc").unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            systemd_cgroup_path("user-1000.slice:docker:x").unwrap(),
            "/user.slice/user-1000.slice/docker-x.scope"
        );
        assert_eq!(
            systemd_cgroup_path(":p:n").unwrap(),
            "/system.slice/p-n.scope"
        );
        assert!(systemd_cgroup_path("/ferry/x").is_err());
        use nix::sys::signal::Signal;
        for text in ["9", "KILL", "SIGKILL", "kill"] {
            assert_eq!(parse_signal(text).unwrap(), Signal::SIGKILL, "{text}");
        }
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn ids_cannot_name_a_path_outside_the_root() {
        let root = Path::new("/run/x");
        assert_eq!(
            container_dir(root, "abc-1.2_3").unwrap(),
            root.join("abc-1.2_3")
        );
        for id in ["", ".", "..", "../a", "a/b", "a b", "é"] {
            assert!(container_dir(root, id).is_err(), "{id:?}");
        }
    }
}
