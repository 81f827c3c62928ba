//! `exec` as the engine asks for it: the container's own process settings (its
//! environment, working directory, user, capabilities, no_new_privs — the spec's
//! `process`), changed where the user said so, handed to the runtime's `exec`.

use std::path::Path;

use super::{ContainerError, Containers, Record, Status};
use crate::engine::EngineError;
use crate::privileges::{capabilities, user};
use crate::runtime::exec::{self, ExecRequest};
use crate::runtime::spec::{Capabilities, User};

/// What the user asks `exec` for.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    /// `-e KEY=VALUE`, over the container's environment.
    pub env: Vec<(String, String)>,
    /// `-w DIR`.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`, resolved in the container's /etc/passwd and /etc/group.
    pub user: Option<String>,
    /// Every capability ferry holds, instead of the container's.
    pub privileged: bool,
    pub detach: bool,
    /// `-t`: a pty of the container's for the command.
    pub tty: bool,
}

/// Starts `options` in the running container `record`.
pub fn start(
    containers: &Containers,
    record: &Record,
    options: &ExecOptions,
) -> Result<exec::Exec, ContainerError> {
    let (Status::Running, Some(process)) = (record.state.status, record.supervision.process) else {
        return Err(ContainerError::NotRunning {
            name: record.short_name().to_string(),
        });
    };
    let dir = containers.dir(&record.id);
    let spec = super::read_spec(&dir).ok_or_else(|| {
        ContainerError::from(EngineError::Store(format!(
            "the container's spec {}/config.json cannot be read",
            dir.display()
        )))
    })?;
    let mut wanted = spec.process.clone();
    wanted.args = options.command.clone();
    wanted.terminal = options.tty;
    for (key, value) in &options.env {
        wanted
            .env
            .retain(|pair| pair.split_once('=').map(|(k, _)| k) != Some(key));
        wanted.env.push(format!("{key}={value}"));
    }
    if let Some(dir) = &options.workdir {
        wanted.cwd = dir.clone();
    }
    if let Some(spec_text) = &options.user {
        // The pid must still be the container's before its /proc/PID/root is read.
        if !super::is_alive(&process) {
            return Err(ContainerError::NotRunning {
                name: record.short_name().to_string(),
            });
        }
        // Read in the running container's own root, resolved inside it.
        let root = Path::new("/proc")
            .join(process.pid.to_string())
            .join("root");
        let resolved = user::resolve(spec_text, &root).map_err(EngineError::User)?;
        wanted.user = User {
            uid: resolved.uid,
            gid: resolved.gid,
            additional_gids: resolved.groups.clone(),
            umask: None,
        };
        if let Some(home) = &resolved.home {
            wanted.env.retain(|pair| !pair.starts_with("HOME="));
            wanted.env.push(format!("HOME={home}"));
        }
    }
    if options.privileged {
        let all: Vec<String> = capabilities::names(&capabilities::held())
            .into_iter()
            .collect();
        wanted.capabilities = Some(Capabilities {
            bounding: all.clone(),
            effective: all.clone(),
            permitted: all,
            ..Capabilities::default()
        });
    }
    let request = ExecRequest {
        leave_to_caller: false,
        process: wanted,
        detach: options.detach,
        preserve_fds: 0,
    };
    Ok(exec::start(&dir, &request).map_err(EngineError::from)?)
}
