//! The engine: what a user asks for (options), turned into a runtime spec and run
//! by the runtime. It knows images (from chapter 6), names, volumes, networks and
//! the store; the runtime knows one container. The CLI (and later an API) sits
//! above it; it never prints — it returns what happened.
//!
//! `run` is what `docker run` does with a daemon and runc: create the container's
//! directory, write the spec into it (`config.json`), then the runtime's create,
//! start, wait and delete.

pub mod bundle;
pub mod defaults;
pub mod options;
pub mod spec_builder;

use std::path::{Path, PathBuf};

use crate::id::ContainerId;
use crate::privileges::{capabilities, user, PrivilegeError};
use crate::runtime::{self, CreateOptions, Exit, RuntimeError};
use bundle::{Bundle, BundleError};
use options::{ConfigError, RunOptions};

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("rootfs {path} cannot be used")]
    RootfsMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootfs {path} is not a directory")]
    RootfsNotDirectory { path: PathBuf },
    #[error("failed to generate a container id")]
    Id(#[source] std::io::Error),
    #[error(transparent)]
    User(PrivilegeError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// How a `run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub exit: Exit,
    /// The memory limit it ran with, for the caller's OOM message.
    pub memory_limit: Option<u64>,
}

/// Runs a container to its end: bundle, spec, create, start, wait, delete. The
/// container's directory and cgroup are removed on every path.
pub fn run(options: &RunOptions, state_root: &Path) -> Result<RunOutcome, EngineError> {
    options.check()?;
    let rootfs = check_rootfs(&options.rootfs)?;
    let id = ContainerId::generate().map_err(EngineError::Id)?;
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| id.short().to_string());
    let user = match &options.user {
        // Names mean what the image's /etc/passwd and /etc/group say (read safely).
        Some(spec) => Some(user::resolve(spec, &rootfs).map_err(EngineError::User)?),
        None => None,
    };
    let namespaces = defaults::namespace_flags();
    let bundle = Bundle::create(state_root, id.as_str())?;
    let result = run_in(
        &bundle,
        options,
        &id,
        &rootfs,
        &hostname,
        user.as_ref(),
        namespaces,
    );
    let removed = bundle.remove();
    let exit = result?;
    removed?;
    Ok(RunOutcome {
        exit,
        memory_limit: options.memory,
    })
}

/// The part of `run` that has a container directory to clean up after.
fn run_in(
    bundle: &Bundle,
    options: &RunOptions,
    id: &ContainerId,
    rootfs: &Path,
    hostname: &str,
    user: Option<&user::User>,
    namespaces: nix::sched::CloneFlags,
) -> Result<Exit, EngineError> {
    let hostname_file = bundle.write_file("hostname", &format!("{hostname}\n"))?;
    let held = capabilities::held();
    let spec = spec_builder::build(&spec_builder::Inputs {
        options,
        id: id.as_str(),
        rootfs,
        hostname,
        namespaces,
        user,
        held_capabilities: &held,
        hostname_file: Some(&hostname_file),
    })?;
    bundle.write_config(&spec)?;
    let create = CreateOptions {
        no_pivot: options.no_pivot,
    };
    let mut container = runtime::create(id.as_str(), bundle.dir(), &spec, &create)?;
    let ran = container.start().and_then(|()| container.wait());
    let deleted = container.delete();
    let exit = ran?;
    deleted?;
    Ok(exit)
}

/// The rootfs must exist and be a directory; it is made absolute and canonical so
/// that later steps never depend on the current directory or on symlinks.
fn check_rootfs(path: &Path) -> Result<PathBuf, EngineError> {
    let canonical = path
        .canonicalize()
        .map_err(|source| EngineError::RootfsMissing {
            path: path.to_path_buf(),
            source,
        })?;
    if !canonical.is_dir() {
        return Err(EngineError::RootfsNotDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(canonical)
}
