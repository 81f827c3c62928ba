//! `exec` (chapter 9): a new process in a running container's namespaces and
//! cgroup, with the container's own process settings changed where the flags
//! say so (`engine::containers::exec`); with `-t` this terminal is relayed to a
//! pty of the container's own until the command ends.

use std::os::fd::AsFd;
use std::path::Path;

use clap::Args;

use super::run::CliError;
use crate::engine::containers::{ContainerError, Containers};

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
