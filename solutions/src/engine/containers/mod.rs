//! Containers as objects (chapter 8): a container is made once, started, stopped,
//! started again and removed; between those it is a record in the store, not a
//! process.
//!
//! ```text
//! ROOT/containers.lock          flock(2): one writer of any record at a time
//! ROOT/containers/ID/           the container's directory (the OCI bundle)
//!     container.json            the record: docker's inspect shape (`Record`, record.rs)
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
pub mod network;
mod record;
pub mod restart;
pub mod stop;
pub mod supervisor;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};

use super::bundle::CONFIG_FILE;
use super::options::RunOptions;
use super::EngineError;
use crate::clock;
use crate::runtime::spec::Spec;
use crate::runtime::state::{self as runtime_state, write_atomically};
use record::record_of;
pub use record::{
    Config, GraphDriver, HostConfig, MountPoint, ProcessRef, Record, State, Status, Supervision,
    ZERO_TIME,
};
pub use restart::RestartPolicy;

/// The record's file name in a container's directory.
pub const RECORD_FILE: &str = "container.json";

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

/// A step of a build that still runs is the build's to stop and remove (it reads
/// the step's upper directory after the step's process ended): refused to anyone
/// else's `rm`, `rm -f` and `prune`.
pub fn refuse_a_running_builds_step(record: &Record) -> Result<(), ContainerError> {
    match record.supervision.build {
        Some(build) if build != ProcessRef::me() && is_alive(&build) => {
            Err(ContainerError::WrongState {
                name: record.short_name().to_string(),
                status: record.state.status,
                why: "it is a step of a build that still runs; it goes when the build ends",
            })
        }
        _ => Ok(()),
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
    /// `--stop-signal` (else the image's STOPSIGNAL, else SIGTERM).
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: `stop`'s grace period in seconds (else 10).
    pub stop_timeout: Option<u64>,
    /// A build's RUN step: the build's process.
    pub build: Option<ProcessRef>,
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
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            // `.removing-*`: a directory on its way out (see `remove_dir`).
            .filter(|name| !name.starts_with('.'))
            .filter_map(|name| self.load(&name).ok())
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
        record.network_settings = Default::default();
        if record.host_config.auto_remove {
            self.remove_files(&record)?;
            return Err(ContainerError::NotFound { name: record.id });
        }
        self.save(&record)?;
        Ok(record)
    }

    /// Ends the supervision of `id`: its supervisor (this process) is done.
    pub fn release(&self, id: &str) -> Result<(), ContainerError> {
        let me = ProcessRef::me();
        let released = self.update(id, |record| {
            // Only our own claim: a `start` may have claimed it since our run ended.
            if record.supervision.supervisor == Some(me) {
                record.supervision.supervisor = None;
            }
        });
        match released {
            // Removed already: our final record gave up the claim, and an `rm`
            // came before this.
            Ok(_) | Err(ContainerError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Kills what is left of a container whose supervisor is gone and removes its
    /// cgroup and runtime state. The container's first process dies with its
    /// supervisor (PR_SET_PDEATHSIG) and the rest with its PID namespace; this is
    /// for when they did not.
    fn clean_leftovers(&self, record: &Record) {
        if let Some(process) = &record.supervision.process {
            if let Ok(Some(pidfd)) = stop::open_checked(process) {
                use std::os::fd::AsFd;
                let _ =
                    crate::sys::pidfd_send_signal(pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL);
                let _ = stop::wait_for_exit(pidfd.as_fd(), std::time::Duration::from_secs(5));
            }
        }
        let dir = self.dir(&record.id);
        if let Some(spec) = read_spec(&dir) {
            super::sweep::remove_cgroups(&spec);
        }
        let _ = std::fs::remove_file(dir.join(runtime_state::STATE_FILE));
        // Its veth, namespace file, lease and rules (chapter 10): left only by a
        // run that did not detach, whose namespace file is still there.
        let netns = crate::network::Networks::netns_path(&self.root, &record.id);
        if !netns.exists() {
            return;
        }
        crate::network::netns::remove(&netns);
        if let Ok(mut host) = crate::network::netlink::Netlink::open() {
            let _ = crate::network::plumbing::disconnect(
                &mut host,
                &crate::network::attach::host_end(&record.id),
            );
        }
        if let Err(error) = crate::network::Networks::new(&self.root).reconcile() {
            log::warn!("failed to clean the network of {}: {error}", record.id);
        }
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
        // A live supervisor may be making, running or restarting it: whatever the
        // status says, it is not stopped.
        if current
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
        refuse_a_running_builds_step(&current)?;
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

    /// Removes the container's directory: renamed out of the way first (atomic),
    /// so a command racing this one (a `start` opening its supervisor's log
    /// there) finds no directory rather than writing into one being emptied.
    fn remove_dir(&self, record: &Record) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        let doomed = self.root.join("containers").join(format!(
            ".removing-{}-{}",
            record.id,
            std::process::id()
        ));
        std::fs::rename(&dir, &doomed).map_err(io_error("remove", &dir))?;
        std::fs::remove_dir_all(&doomed).map_err(io_error("remove", &doomed))
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
        // Its new name in the other containers' /etc/hosts (chapter 10).
        if let Err(error) = crate::network::Networks::new(&self.root).rename(&record.id, new_name) {
            log::warn!("failed to rename {} on its network: {error}", record.id);
        }
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
