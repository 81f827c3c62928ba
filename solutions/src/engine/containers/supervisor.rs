//! The supervisor: the process that runs one container, as conmon does for podman
//! and containerd-shim for docker — so that no daemon is needed and the container
//! outlives the command that started it.
//!
//! ```text
//! ferry start web ──spawn──► ferry supervise ID   (own session, stdio /dev/null)
//!        ◄── report: started / why not ──┤
//!   (exits)                               │ runtime create/start ──► container PID 1
//!                                         │ ◄── stdout, stderr pipes ──┘
//!                                         │ writes ID-json.log, records the exit,
//!                                         │ applies --restart, removes with --rm
//! ```
//!
//! It is ferry itself (`/proc/self/exe`, the hidden subcommand `supervise`), so
//! there is no second binary to install or to keep in step. It calls the same
//! runtime steps as the attached `run` (`engine::create_process`, start, wait,
//! delete). Every other command only reads and changes the record.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{dup2, pipe2};
use serde::{Deserialize, Serialize};

use super::attach;
use super::logs::{LogWriter, Stream};
use super::record::NetworkSettings;
use super::{read_spec, restart, ContainerError, Containers, ProcessRef, Record, Status};
use crate::clock;
use crate::engine::EngineError;
use crate::runtime::Exit;

/// The hidden subcommand that runs a supervisor.
pub const SUBCOMMAND: &str = "supervise";

/// Why a container could not start, told the way the CLI would have told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub exit_code: i32,
}

/// What the supervisor tells the command that spawned it, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// The container's command runs.
    Started,
    /// It does not, and why.
    Failed(Failure),
}

/// Starts a supervisor for container `id` and waits for its report (the
/// container's command runs, or why not). The supervisor goes on alone.
pub fn spawn(containers: &Containers, id: &str) -> Result<Report, ContainerError> {
    let dir = containers.dir(id);
    let log_path = dir.join("supervisor.log");
    let diagnostics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(super::io_error("open", &log_path))?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg("--root")
        .arg(containers.state_root())
        .arg(SUBCOMMAND)
        .arg(id)
        // Nothing of the caller's environment: the container's comes from its spec.
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(diagnostics);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        command.env("RUST_LOG", filter);
    }
    let mut child = command
        .spawn()
        .map_err(|error| ContainerError::Supervisor {
            id: id.to_string(),
            why: format!("spawning {}: {error}", SUBCOMMAND),
        })?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    match serde_json::from_str::<Report>(&line) {
        Ok(report) => Ok(report),
        Err(_) => {
            // It ended without a word: its diagnostics say why.
            let _ = child.wait();
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = said.lines().last().unwrap_or("nothing").to_string();
            Err(ContainerError::Supervisor {
                id: id.to_string(),
                why: format!(
                    "it ended before reporting; its last words ({}): {last}",
                    log_path.display()
                ),
            })
        }
    }
}

/// Leaves the caller's session, so that the terminal closing (SIGHUP to its
/// session) does not reach the supervisor, and its working directory, so that
/// it keeps no directory of the caller's busy.
pub fn detach() -> nix::Result<()> {
    // BEGIN SOLUTION ch08 "leave the caller's session and terminal behind: a new session, / as the working directory"
    nix::unistd::setsid()?;
    nix::unistd::chdir("/")
    // END SOLUTION
}

/// The supervisor's life: `ferry supervise ID`. Its stdout is the pipe of the
/// command that spawned it (the report goes there), its stderr the container's
/// `supervisor.log`. `describe` tells an engine error as the CLI would.
pub fn main(state_root: &Path, id: &str, describe: &dyn Fn(&EngineError) -> Failure) -> i32 {
    // Nothing the caller left open (without close-on-exec) stays open here: a pipe
    // of its shell would otherwise never see end-of-file while the container runs.
    let _ = crate::sys::close_fds_except(&[]);
    let containers = Containers::new(state_root);
    // The report pipe moves off fd 1, which becomes /dev/null.
    let mut report = copy_of(std::io::stdout().as_fd()).ok();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = dup2(null.as_raw_fd(), 1);
    }
    let failed = |report: &mut Option<File>, failure: Failure| {
        send(report, &Report::Failed(failure.clone()));
        log::error!("{}", failure.message);
        1
    };
    if let Err(error) = detach() {
        return failed(
            &mut report,
            failure(format!(
                "the supervisor could not detach (setsid(2)): {error}"
            )),
        );
    }
    let me = ProcessRef::me();
    let claimed = containers.update(id, |record| {
        record.supervision.supervisor = Some(me);
        record.supervision.stopped_by_user = false;
        record.supervision.logged = true;
    });
    let mut record = match claimed {
        Ok(record) => record,
        Err(error) => return failed(&mut report, failure(crate::errors::chain(&error))),
    };
    loop {
        match run_once(&containers, &record, Capture::Log, &mut report) {
            Ok(exit) => {
                // The end and the decision are recorded together, so no reader
                // sees `exited` between the run and its restart.
                let again = restart::should_restart(
                    &record.host_config.restart_policy,
                    exit.code,
                    record.restart_count,
                    containers
                        .load(id)
                        .map_or(true, |r| r.supervision.stopped_by_user),
                );
                record = match record_exit(&containers, id, exit, again) {
                    Ok(record) => record,
                    Err(error) => {
                        let _ = containers.release(id);
                        return failed(&mut report, failure(crate::errors::chain(&error)));
                    }
                };
                if !again || !wait_to_restart(&containers, &record) {
                    break;
                }
            }
            Err(error) => {
                let failure = describe(&error);
                let _ = record_failure(
                    &containers,
                    id,
                    &failure,
                    record.state.started_at != super::ZERO_TIME,
                );
                send(&mut report, &Report::Failed(failure));
                break;
            }
        }
    }
    let _ = containers.release(id);
    if record.host_config.auto_remove {
        if let Ok(current) = containers.load(id) {
            let _ = containers.remove(&current, true);
        }
    }
    0
}

/// Runs container `record` attached: in this process, its stdio this process's
/// (the terminal), as chapters 0–7 did — now recorded in the store as it goes.
pub fn run_attached(containers: &Containers, record: &Record) -> Result<Exit, EngineError> {
    let me = ProcessRef::me();
    let claimed = containers.update(&record.id, |record| {
        record.supervision.supervisor = Some(me);
        record.supervision.stopped_by_user = false;
        record.supervision.logged = false;
    });
    let record = claimed.map_err(store_error)?;
    let ran = run_once(containers, &record, Capture::Inherit, &mut None);
    let ended = match &ran {
        Ok(exit) => record_exit(containers, &record.id, *exit, false).map(drop),
        Err(error) => {
            let failure = failure(crate::errors::chain(error));
            record_failure(containers, &record.id, &failure, false)
        }
    };
    let released = containers.release(&record.id);
    if record.host_config.auto_remove {
        if let Ok(current) = containers.load(&record.id) {
            containers.remove(&current, true).map_err(store_error)?;
        }
    }
    let exit = ran?;
    released.map_err(store_error)?;
    ended.map_err(store_error)?;
    Ok(exit)
}

/// Runs container `record` in this process with its output handed to `output`
/// as it comes and /dev/null as its stdin: a build's RUN step. The record stays
/// (the caller reads its upper directory, then removes it).
pub fn run_captured(
    containers: &Containers,
    record: &Record,
    output: OutputSink,
) -> Result<Exit, EngineError> {
    let me = ProcessRef::me();
    let claimed = containers.update(&record.id, |record| {
        record.supervision.supervisor = Some(me);
        record.supervision.logged = false;
    });
    let record = claimed.map_err(store_error)?;
    let ran = run_once(containers, &record, Capture::Output(output), &mut None);
    let ended = match &ran {
        Ok(exit) => record_exit(containers, &record.id, *exit, false).map(drop),
        Err(error) => {
            let failure = failure(crate::errors::chain(error));
            record_failure(containers, &record.id, &failure, false)
        }
    };
    let released = containers.release(&record.id);
    let exit = ran?;
    released.map_err(store_error)?;
    ended.map_err(store_error)?;
    Ok(exit)
}

/// A store error on the engine's path, as an engine error.
fn store_error(error: ContainerError) -> EngineError {
    match error {
        ContainerError::Engine(error) => *error,
        other => EngineError::Store(other.to_string()),
    }
}

fn failure(message: String) -> Failure {
    Failure {
        message,
        hint: None,
        exit_code: crate::errors::EXIT_ENGINE_FAILED,
    }
}

/// Where the container's stdout and stderr go.
enum Capture {
    /// Pipes read into the log (a supervisor).
    Log,
    /// This process's own (an attached run).
    Inherit,
    /// Pipes read into a callback (a build's RUN step); stdin is /dev/null.
    Output(OutputSink),
}

/// Where a build step's output goes, chunk by chunk, as it comes.
pub type OutputSink = Box<dyn FnMut(Stream, &[u8]) + Send>;

/// What the copier thread writes the container's output into.
enum Sink {
    Log(LogWriter),
    Callback(OutputSink),
}

impl Sink {
    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        match self {
            Sink::Log(log) => {
                if let Err(error) = log.write(stream, bytes, SystemTime::now()) {
                    log::warn!("failed to write the container's log: {error}");
                }
            }
            Sink::Callback(callback) => callback(stream, bytes),
        }
    }

    fn finish(self) {
        if let Sink::Log(mut log) = self {
            let _ = log.flush(SystemTime::now());
        }
    }
}

/// One run of the container: the runtime's create, start, wait and delete, the
/// record kept up to date; with `Capture::Log` its output copied into the log
/// by a thread. `report` hears that it started.
fn run_once(
    containers: &Containers,
    record: &Record,
    capture: Capture,
    report: &mut Option<File>,
) -> Result<Exit, EngineError> {
    let dir = containers.dir(&record.id);
    let spec = read_spec(&dir).ok_or_else(|| {
        EngineError::Store(format!(
            "the container's spec {}/config.json cannot be read",
            dir.display()
        ))
    })?;
    let no_pivot = record.supervision.no_pivot;
    // Its network first (chapter 10): the runtime joins the namespace made here.
    let attachment = super::network::attach(containers, record)?;
    let settings = NetworkSettings::of(&attachment, &record.supervision.network.aliases);
    let (mut container, copier) = match capture {
        Capture::Inherit => (crate::engine::create_process(&dir, &spec, no_pivot)?, None),
        Capture::Log | Capture::Output(_) if spec.process.terminal => {
            // The container's terminal: its master here, served to `attach`.
            let store_error = |what: &str, error: std::io::Error| {
                EngineError::Store(format!("failed to {what}: {error}"))
            };
            let listener =
                attach::listen(&dir).map_err(|e| store_error("make the attach socket", e))?;
            let mut container = crate::engine::create_process(&dir, &spec, no_pivot)?;
            let master = container.take_console().ok_or_else(|| {
                EngineError::Store("the runtime handed over no terminal".to_string())
            })?;
            let log =
                LogWriter::open(&record.log_path).map_err(|e| store_error("open the log", e))?;
            let copier = std::thread::spawn(move || attach::serve(master, listener, log));
            (container, Some(copier))
        }
        Capture::Log | Capture::Output(_) => {
            let pipe_error = |source| {
                EngineError::Store(format!(
                    "failed to make the container's output pipes: {source}"
                ))
            };
            let (out_read, out_write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(pipe_error)?;
            let (err_read, err_write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(pipe_error)?;
            // The runtime's child inherits fds 0, 1 and 2: the pipes (and, for a
            // build step, /dev/null as stdin, not the build's own), for the clone only.
            let saved = copy_of(std::io::stderr().as_fd()).map_err(|error| {
                EngineError::Store(format!("failed to save the supervisor's stderr: {error}"))
            })?;
            let building = matches!(capture, Capture::Output(_));
            let saved_stdin = if building {
                Some(copy_of(std::io::stdin().as_fd()).map_err(|error| {
                    EngineError::Store(format!("failed to save the build's stdin: {error}"))
                })?)
            } else {
                None
            };
            let null = File::options().read(true).write(true).open("/dev/null");
            if let (true, Ok(null)) = (building, &null) {
                let _ = dup2(null.as_raw_fd(), 0);
            }
            let saved_stdout = if building {
                Some(copy_of(std::io::stdout().as_fd()).map_err(|error| {
                    EngineError::Store(format!("failed to save the build's stdout: {error}"))
                })?)
            } else {
                None
            };
            let _ = dup2(out_write.as_raw_fd(), 1);
            let _ = dup2(err_write.as_raw_fd(), 2);
            let created = crate::engine::create_process(&dir, &spec, no_pivot);
            match (&saved_stdout, &null) {
                (Some(stdout), _) => {
                    let _ = dup2(stdout.as_raw_fd(), 1);
                }
                (None, Ok(null)) => {
                    let _ = dup2(null.as_raw_fd(), 1);
                }
                (None, Err(_)) => {}
            }
            let _ = dup2(saved.as_raw_fd(), 2);
            if let Some(stdin) = &saved_stdin {
                let _ = dup2(stdin.as_raw_fd(), 0);
            }
            drop((out_write, err_write)); // the child's copies are the only writers now
            let container = created?;
            let sink = match capture {
                Capture::Output(callback) => Sink::Callback(callback),
                _ => Sink::Log(LogWriter::open(&record.log_path).map_err(|source| {
                    EngineError::Store(format!(
                        "failed to open the log {}: {source}",
                        record.log_path.display()
                    ))
                })?),
            };
            let copier = std::thread::spawn(move || copy_output(out_read, err_read, sink));
            (container, Some(copier))
        }
    };
    let started = container.start();
    if started.is_ok() {
        let process = ProcessRef::of(container.pid().as_raw());
        let now = clock::rfc3339_nanos(SystemTime::now());
        let updated = containers.update(&record.id, |record| {
            record.state.set(Status::Running);
            record.state.pid = container.pid().as_raw();
            record.state.started_at = now;
            record.state.error.clear();
            record.supervision.process = process;
            record.network_settings = settings;
        });
        // A `stop` or `rm -f` that came while the container was being made (it saw
        // no process to signal) is honoured now; a container whose record is gone
        // must not run unseen.
        let unwanted = match &updated {
            Ok(record) => record.supervision.stopped_by_user,
            Err(error) => {
                log::warn!(
                    "failed to record that container {} runs: {error}",
                    record.id
                );
                true
            }
        };
        if unwanted {
            let _ = container.kill(nix::sys::signal::Signal::SIGKILL);
        }
        send(report, &Report::Started);
    }
    let waited = started.and_then(|()| container.wait());
    let deleted = container.delete();
    if let Some(copier) = copier {
        let _ = copier.join();
    }
    let left = attachment.detach();
    let exit = waited?;
    deleted?;
    left.map_err(|error| EngineError::Store(crate::errors::chain(&error)))?;
    Ok(exit)
}

/// Copies the container's stdout and stderr into `sink` until both end.
fn copy_output(stdout: OwnedFd, stderr: OwnedFd, mut sink: Sink) {
    let mut open = [Some(stdout), Some(stderr)];
    let mut buffer = vec![0u8; 64 * 1024];
    while open.iter().any(Option::is_some) {
        let streams: Vec<(usize, &OwnedFd)> = open
            .iter()
            .enumerate()
            .filter_map(|(i, fd)| fd.as_ref().map(|fd| (i, fd)))
            .collect();
        let mut fds: Vec<PollFd> = streams
            .iter()
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&streams)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, (i, _))| *i)
            .collect();
        for i in ready {
            let Some(fd) = &open[i] else { continue };
            let stream = if i == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            match nix::unistd::read(fd.as_raw_fd(), &mut buffer) {
                Ok(0) | Err(nix::errno::Errno::EBADF) => open[i] = None,
                Ok(n) => sink.write(stream, &buffer[..n]),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => open[i] = None,
            }
        }
    }
    sink.finish();
}

/// Records how a run ended; with `again`, that it restarts (one more restart
/// counted). A final exit also gives up the supervisor's claim in the same
/// write: a reader that sees `exited` must be free to `rm` it at once, not find
/// a supervisor still alive for the few moments it takes to leave.
fn record_exit(
    containers: &Containers,
    id: &str,
    exit: Exit,
    again: bool,
) -> Result<Record, ContainerError> {
    let now = clock::rfc3339_nanos(SystemTime::now());
    containers.update(id, |record| {
        record.state.set(if again {
            Status::Restarting
        } else {
            Status::Exited
        });
        record.state.exit_code = exit.code;
        record.state.oom_killed = exit.oom_kills > 0;
        record.state.finished_at = now;
        record.supervision.process = None;
        record.network_settings = Default::default();
        if again {
            record.restart_count += 1;
        } else {
            record.supervision.supervisor = None;
        }
    })
}

/// Records that a run could not start: the error and its exit code (docker
/// leaves a container whose first start failed `created`), and gives up the
/// supervisor's claim, as a final exit does.
fn record_failure(
    containers: &Containers,
    id: &str,
    failure: &Failure,
    ran_before: bool,
) -> Result<(), ContainerError> {
    let now = clock::rfc3339_nanos(SystemTime::now());
    containers
        .update(id, |record| {
            record.state.set(if ran_before {
                Status::Exited
            } else {
                Status::Created
            });
            record.state.exit_code = failure.exit_code;
            record.state.error = failure.message.clone();
            record.state.finished_at = now;
            record.supervision.process = None;
            record.supervision.supervisor = None;
            record.network_settings = Default::default();
        })
        .map(drop)
}

/// The back-off before a restart: true when the container is to run again,
/// false when the user stopped it meanwhile (then it is recorded exited).
fn wait_to_restart(containers: &Containers, record: &Record) -> bool {
    let delay = restart::delay(record.restart_count.saturating_sub(1));
    log::info!("restarting container {} in {delay:?}", record.id);
    // `stop` during the back-off sets stopped_by_user: look every 50 ms.
    let deadline = std::time::Instant::now() + delay;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50).min(delay));
        if containers
            .load(&record.id)
            .is_ok_and(|r| r.supervision.stopped_by_user)
        {
            let _ = containers.update(&record.id, |record| {
                record.state.set(Status::Exited);
                record.supervision.supervisor = None;
            });
            return false;
        }
    }
    true
}

/// Writes the report once; later reports go nowhere.
fn send(report: &mut Option<File>, message: &Report) {
    if let Some(mut file) = report.take() {
        let mut line = serde_json::to_vec(message).expect("a report serializes");
        line.push(b'\n');
        let _ = file.write_all(&line);
    }
}

/// A copy of this process's descriptor `fd` (close-on-exec), as a file.
fn copy_of(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<File> {
    Ok(File::from(fd.try_clone_to_owned()?))
}
