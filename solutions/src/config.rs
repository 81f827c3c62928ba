//! What a container is made of, checked and resolved before anything is created.
//!
//! Everything the user can get wrong (a missing rootfs, a malformed `-e`) fails
//! here, while the host is still untouched.

use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::env::{self, EnvEntry};
use crate::id::ContainerId;
use crate::runtime::RunError;

/// A container ready to run: every path absolute, every value checked.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub id: ContainerId,
    /// The container's root filesystem on the host (canonical, a directory).
    pub rootfs: PathBuf,
    /// The command and its arguments (`argv`), at least one element.
    pub argv: Vec<String>,
    /// The complete environment, `KEY=VALUE`, as the command will see it.
    pub env: Vec<String>,
    /// The working directory inside the container.
    pub workdir: PathBuf,
    /// Use chroot(2) instead of pivot_root(2).
    pub no_pivot: bool,
    /// The engine's state root (`--root`).
    pub state_root: PathBuf,
}

impl ContainerConfig {
    /// Checks `run`'s arguments and resolves them into a config.
    pub fn from_run_args(args: &RunArgs, state_root: &Path) -> Result<ContainerConfig, RunError> {
        let rootfs = check_rootfs(&args.rootfs)?;
        let mut entries: Vec<EnvEntry> = Vec::new();
        for path in &args.env_file {
            entries.extend(env::read_env_file(path)?);
        }
        for text in &args.env {
            entries.push(env::parse_entry(text)?);
        }
        let workdir = match &args.workdir {
            Some(dir) if dir.is_absolute() => dir.clone(),
            Some(dir) => return Err(RunError::RelativeWorkdir { dir: dir.clone() }),
            None => PathBuf::from("/"),
        };
        let id = ContainerId::generate().map_err(|source| RunError::Id { source })?;
        let host_var = |key: &str| std::env::var(key).ok();
        let env = env::container_environment(id.short(), &entries, &host_var);
        Ok(ContainerConfig {
            id,
            rootfs,
            argv: args.command.clone(),
            env,
            workdir,
            no_pivot: args.no_pivot,
            state_root: state_root.to_path_buf(),
        })
    }
}

/// The rootfs must exist and be a directory; it is made absolute and canonical so
/// that later steps never depend on the current directory or on symlinks.
fn check_rootfs(path: &Path) -> Result<PathBuf, RunError> {
    let canonical = path
        .canonicalize()
        .map_err(|source| RunError::RootfsMissing {
            path: path.to_path_buf(),
            source,
        })?;
    if !canonical.is_dir() {
        return Err(RunError::RootfsNotDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(canonical)
}
