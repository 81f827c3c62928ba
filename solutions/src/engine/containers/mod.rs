//! Containers as objects (chapter 8): a container is made once, started, stopped,
//! started again and removed; between those it is a record in the store, not a
//! process.
//!
//! ```text
//! ROOT/containers.lock          flock(2): one writer of any record at a time
//! ROOT/containers/ID/           the container's directory (the OCI bundle)
//!     container.json            the record: docker's inspect shape (`Record`)
//!     config.json               the runtime spec (chapter 0's seam)
//!     state.json                the runtime's state, while a process exists
//!     upper/ work/ rootfs/      the overlay (chapter 5)
//!     hostname                  bind-mounted over /etc/hostname
//!     ID-json.log               the log: docker's json-file format (`logs`)
//! ```
//!
//! A record is written whole (a temporary file renamed over it) under the lock,
//! so readers never see half a record and two commands never lose each other's
//! change. Whether a container runs is not taken on the record's word: the
//! process that supervises it (`supervisor`) is named by pid *and* start time,
//! and a record whose supervisor is gone is reported dead and cleaned
//! (`Containers::settle`).

pub mod attach;
pub mod exec;
pub mod logs;
pub mod names;
pub mod restart;
pub mod stop;
pub mod supervisor;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::bundle::CONFIG_FILE;
use super::options::RunOptions;
use super::{EngineError, Prepared};
use crate::clock;
use crate::runtime::spec::Spec;
use crate::runtime::state::{self as runtime_state, write_atomically};
pub use restart::RestartPolicy;

/// The record's file name in a container's directory.
pub const RECORD_FILE: &str = "container.json";

/// docker's "no time yet".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What the container commands can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {name}")]
    NotFound { name: String },
    #[error("the id prefix {prefix} names more than one container: {ids}")]
    Ambiguous { prefix: String, ids: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    #[error("Conflicting options: --restart and --rm")]
    RestartWithRm,
    #[error("You cannot remove a {status} container {id}. Stop the container before attempting removal or force remove")]
    NotStopped { id: String, status: Status },
    #[error("container {name} is not running")]
    NotRunning { name: String },
    #[error("container {name} is {status}: {why}")]
    WrongState {
        name: String,
        status: Status,
        why: &'static str,
    },
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the record {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to start the supervisor of container {id}: {why}")]
    Supervisor { id: String, why: String },
    #[error(transparent)]
    Stop(#[from] stop::StopError),
    #[error(transparent)]
    Engine(#[from] Box<EngineError>),
}

impl From<EngineError> for ContainerError {
    fn from(error: EngineError) -> ContainerError {
        ContainerError::Engine(Box::new(error))
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io {
        action,
        path,
        source,
    }
}

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

/// A process named so that a reused pid is not taken for it: pid and start time
/// (field 22 of /proc/PID/stat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessRef {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessRef {
    /// The calling process.
    pub fn me() -> ProcessRef {
        let pid = std::process::id() as i32;
        ProcessRef {
            pid,
            start_time: runtime_state::process_start_time(pid).unwrap_or(0),
        }
    }

    /// Process `pid`, if it exists now.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        Some(ProcessRef {
            pid,
            start_time: runtime_state::process_start_time(pid)?,
        })
    }
}

/// Whether `process` still runs: a process with its pid exists, started when it
/// did, and has not ended (a zombie has ended; only its parent has not reaped
/// it yet). A pid alone is not enough — the kernel hands out a dead process's
/// pid again.
pub fn is_alive(process: &ProcessRef) -> bool {
    // BEGIN SOLUTION ch08 "is this the process we recorded? its pid exists and it started when it did"
    runtime_state::process_start_time(process.pid) == Some(process.start_time)
        && !crate::process::is_zombie(process.pid)
    // END SOLUTION
}

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

/// What `create` is asked for: the run options and what makes it an object.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub options: RunOptions,
    pub name: Option<String>,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    /// Output goes to the log (detached) rather than the caller's terminal.
    pub logged: bool,
}

/// The containers of a state root.
#[derive(Debug, Clone)]
pub struct Containers {
    root: PathBuf,
}

impl Containers {
    pub fn new(state_root: &Path) -> Containers {
        Containers {
            root: state_root.to_path_buf(),
        }
    }

    /// The state root.
    pub fn state_root(&self) -> &Path {
        &self.root
    }

    /// A container's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Takes the lock every change of a record holds (flock(2), exclusive).
    pub fn lock(&self) -> Result<Flock<File>, ContainerError> {
        std::fs::create_dir_all(&self.root).map_err(io_error("create", &self.root))?;
        let path = self.root.join("containers.lock");
        let file = File::create(&path).map_err(io_error("open", &path))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| ContainerError::Io {
            action: "lock",
            path,
            source: errno.into(),
        })
    }

    /// Every container's record, newest first, as stored (see `settle`).
    pub fn list(&self) -> Vec<Record> {
        let Ok(entries) = std::fs::read_dir(self.root.join("containers")) else {
            return Vec::new();
        };
        let mut records: Vec<Record> = entries
            .flatten()
            .filter_map(|entry| self.load(&entry.file_name().to_string_lossy()).ok())
            .collect();
        records.sort_by(|a, b| {
            clock::parse_rfc3339_nanos(&b.created).cmp(&clock::parse_rfc3339_nanos(&a.created))
        });
        records
    }

    /// The record of container `id` (a full id).
    pub fn load(&self, id: &str) -> Result<Record, ContainerError> {
        let path = self.dir(id).join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ContainerError::NotFound {
                    name: id.to_string(),
                }
            } else {
                ContainerError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        serde_json::from_str(&text).map_err(|source| ContainerError::Parse { path, source })
    }

    /// Writes `record` whole (write + rename). Callers hold the lock.
    pub fn save(&self, record: &Record) -> Result<(), ContainerError> {
        let path = self.dir(&record.id).join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(record).expect("a record serializes");
        write_atomically(&path, &json).map_err(io_error("write", &path))
    }

    /// Changes the record of `id` under the lock: load, `change`, save.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut Record),
    ) -> Result<Record, ContainerError> {
        let _lock = self.lock()?;
        let mut record = self.load(id)?;
        change(&mut record);
        self.save(&record)?;
        Ok(record)
    }

    /// The container `wanted` names, as docker finds it: a full id, a name, or
    /// a unique prefix of an id.
    pub fn find(&self, wanted: &str) -> Result<Record, ContainerError> {
        let not_found = || ContainerError::NotFound {
            name: wanted.to_string(),
        };
        let wanted_name = wanted.trim_start_matches('/');
        if wanted_name.is_empty() {
            return Err(not_found());
        }
        let records = self.list();
        if let Some(record) = records.iter().find(|r| r.id == wanted) {
            return Ok(record.clone());
        }
        if let Some(record) = records.iter().find(|r| r.short_name() == wanted_name) {
            return Ok(record.clone());
        }
        let matches: Vec<&Record> = records
            .iter()
            .filter(|r| r.id.starts_with(wanted))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(not_found()),
            many => Err(ContainerError::Ambiguous {
                prefix: wanted.to_string(),
                ids: many
                    .iter()
                    .map(|r| r.short_id())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// `find`, then `settle`: the record as it really is now.
    pub fn get(&self, wanted: &str) -> Result<Record, ContainerError> {
        let record = self.find(wanted)?;
        self.settle(record)
    }

    /// Every record, settled.
    pub fn all(&self) -> Vec<Record> {
        self.list()
            .into_iter()
            .filter_map(|record| self.settle(record).ok())
            .collect()
    }

    /// Checks a record against the processes: one that says running (or
    /// restarting) whose supervisor is gone is dead. Its leftovers — the
    /// container's processes, its cgroup, the runtime's state — are cleaned, and it
    /// is recorded as dead (or removed, if it was to be removed when it ended).
    pub fn settle(&self, record: Record) -> Result<Record, ContainerError> {
        if !lost_its_supervisor(&record) {
            return Ok(record);
        }
        let _lock = self.lock()?;
        // Another command may have settled it while we waited for the lock.
        let mut record = match self.load(&record.id) {
            Ok(record) => record,
            Err(ContainerError::NotFound { .. }) => {
                return Err(ContainerError::NotFound { name: record.id })
            }
            Err(error) => return Err(error),
        };
        if !lost_its_supervisor(&record) {
            return Ok(record);
        }
        log::debug!("container {} lost its supervisor: cleaning up", record.id);
        self.clean_leftovers(&record);
        let supervisor = record.supervision.supervisor.map_or(0, |s| s.pid);
        record.state.set(Status::Dead);
        record.state.exit_code = -1;
        record.state.error = format!(
            "its supervisor (pid {supervisor}) ended without recording how the container ended: it was killed"
        );
        record.state.finished_at = clock::rfc3339_nanos(SystemTime::now());
        record.supervision.process = None;
        record.supervision.supervisor = None;
        if record.host_config.auto_remove {
            self.remove_files(&record)?;
            return Err(ContainerError::NotFound { name: record.id });
        }
        self.save(&record)?;
        Ok(record)
    }

    /// Ends the supervision of `id`: its supervisor (this process) is done.
    pub fn release(&self, id: &str) -> Result<(), ContainerError> {
        self.update(id, |record| record.supervision.supervisor = None)
            .map(drop)
    }

    /// Kills what is left of a container whose supervisor is gone and removes its
    /// cgroup and runtime state. The container's first process dies with its
    /// supervisor (PR_SET_PDEATHSIG) and the rest with its PID namespace; this is
    /// for when they did not.
    fn clean_leftovers(&self, record: &Record) {
        if let Some(process) = record.supervision.process.filter(is_alive) {
            if let Ok(pidfd) = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(process.pid)) {
                // The pidfd names the process itself: checked again after opening it.
                if is_alive(&process) {
                    use std::os::fd::AsFd;
                    let _ = crate::sys::pidfd_send_signal(
                        pidfd.as_fd(),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = stop::wait_for_exit(pidfd.as_fd(), std::time::Duration::from_secs(5));
                }
            }
        }
        let dir = self.dir(&record.id);
        if let Some(spec) = read_spec(&dir) {
            super::sweep::remove_cgroups(&spec);
        }
        let _ = std::fs::remove_file(dir.join(runtime_state::STATE_FILE));
    }

    /// Makes a container from `request`: its directory and spec (the engine's
    /// `prepare`), then its record with a unique name, under the lock.
    pub fn create(&self, request: &CreateRequest) -> Result<Record, ContainerError> {
        if let Some(name) = &request.name {
            names::check(name)?;
        }
        if request.auto_remove && request.restart != RestartPolicy::default() {
            return Err(ContainerError::RestartWithRm);
        }
        // Containers whose supervisor died are settled first: a dead `--rm`
        // container goes, and its name with it.
        let _ = self.all();
        let prepared = super::prepare(&request.options, &self.root)?;
        let made = {
            let _lock = self.lock()?;
            let taken: Vec<String> = self
                .list()
                .iter()
                .map(|r| r.short_name().to_string())
                .collect();
            match &request.name {
                Some(name) => match self.list().iter().find(|r| r.short_name() == name) {
                    Some(other) => Err(ContainerError::NameInUse {
                        name: name.clone(),
                        id: other.id.clone(),
                    }),
                    None => Ok(name.clone()),
                },
                None => Ok(names::generate(&|name| taken.iter().any(|t| t == name))),
            }
            .and_then(|name| {
                let record = record_of(&prepared, request, &name);
                self.save(&record)?;
                Ok(record)
            })
        };
        match made {
            Ok(record) => {
                prepared.bundle.keep();
                Ok(record)
            }
            Err(error) => {
                let _ = prepared.remove(&self.root);
                Err(error)
            }
        }
    }

    /// Removes a stopped container: its directory, and with `volumes` its
    /// anonymous volumes. Holds the lock.
    pub fn remove(&self, record: &Record, volumes: bool) -> Result<(), ContainerError> {
        let _lock = self.lock()?;
        let current = self.load(&record.id)?;
        if matches!(current.state.status, Status::Running | Status::Restarting)
            && current
                .supervision
                .supervisor
                .as_ref()
                .is_some_and(is_alive)
        {
            return Err(ContainerError::NotStopped {
                id: current.id.clone(),
                status: current.state.status,
            });
        }
        self.clean_leftovers(&current);
        if volumes {
            self.remove_files(&current)
        } else {
            self.remove_dir(&current)
        }
    }

    /// The container's directory and its anonymous volumes (`--rm`, `rm -v`).
    fn remove_files(&self, record: &Record) -> Result<(), ContainerError> {
        self.remove_dir(record)?;
        super::remove_volumes(&self.root, &record.supervision.anonymous_volumes)?;
        Ok(())
    }

    fn remove_dir(&self, record: &Record) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        std::fs::remove_dir_all(&dir).map_err(io_error("remove", &dir))
    }

    /// Renames a container; the new name must be free.
    pub fn rename(&self, wanted: &str, new_name: &str) -> Result<Record, ContainerError> {
        names::check(new_name)?;
        let _lock = self.lock()?;
        let mut record = self.find(wanted)?;
        if let Some(other) = self
            .list()
            .into_iter()
            .find(|r| r.short_name() == new_name && r.id != record.id)
        {
            return Err(ContainerError::NameInUse {
                name: new_name.to_string(),
                id: other.id,
            });
        }
        record.name = format!("/{new_name}");
        self.save(&record)?;
        Ok(record)
    }
}

/// Whether `record` names a supervisor that is gone: one that ended without
/// releasing the container (killed), so nothing recorded how the container ended.
fn lost_its_supervisor(record: &Record) -> bool {
    record
        .supervision
        .supervisor
        .as_ref()
        .is_some_and(|supervisor| !is_alive(supervisor))
}

/// The spec in a container's directory.
pub fn read_spec(dir: &Path) -> Option<Spec> {
    let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A new container's record.
fn record_of(prepared: &Prepared, request: &CreateRequest, name: &str) -> Record {
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
            stop_signal: image_config
                .as_ref()
                .and_then(|c| c.stop_signal.clone())
                .unwrap_or_default(),
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
        },
        mounts: mount_points(prepared),
        graph_driver: GraphDriver {
            name: "overlay".to_string(),
            data: graph,
        },
        supervision: Supervision {
            anonymous_volumes: prepared.anonymous_volumes.clone(),
            logged: request.logged,
            no_pivot: prepared.no_pivot,
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
