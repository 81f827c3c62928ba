//! The command line: clap derive, one args struct per subcommand, a thin adapter
//! per command. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ContainerConfig;
use crate::errors::{self, EXIT_ENGINE_FAILED};
use crate::runtime::{self, RunError};
use crate::ENGINE;

/// A container engine you build yourself, chapter by chapter.
#[derive(Debug, Parser)]
#[command(name = ENGINE, version, disable_help_subcommand = true)]
pub struct Cli {
    /// Directory where the engine keeps its state [default: /var/lib/<engine>]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Narrate every step on stderr (same as RUST_LOG=debug)
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(RunArgs),
}

/// `run --rootfs DIR [OPTIONS] COMMAND [ARG...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory holding the container's files (its root filesystem)
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,

    /// Set an environment variable (KEY=VALUE), or pass KEY through from here
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file (KEY=VALUE or KEY per line, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Working directory inside the container (created when missing)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// The container's hostname [default: its short id]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Run a small init as PID 1 that forwards signals and reaps orphans
    #[arg(long)]
    pub init: bool,

    /// Memory limit, e.g. 64m or 1g (units b, k, m, g)
    #[arg(long, short = 'm', value_name = "BYTES")]
    pub memory: Option<String>,

    /// Memory plus swap limit (-1: unlimited swap) [default: no swap beyond --memory]
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,

    /// Maximum number of processes and threads in the container
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<i64>,

    /// Number of CPUs the container may use, e.g. 0.5
    #[arg(long, value_name = "CPUS", allow_hyphen_values = true)]
    pub cpus: Option<f64>,

    /// Relative CPU weight (2 to 262144; default 1024)
    #[arg(long = "cpu-shares", short = 'c', value_name = "SHARES")]
    pub cpu_shares: Option<u64>,

    /// CPUs the container may run on, e.g. 0-1,3
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,

    /// The cgroup under which the container's cgroup is created [default: /<engine>]
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,

    /// Run as this user: name, uid, name:group or uid:gid (from the container's /etc/passwd)
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Add a capability to the default set (CHOWN, CAP_NET_ADMIN, ALL, ...)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability from the default set (or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Give the container every capability, no seccomp filter, unmasked /proc and /sys
    #[arg(long)]
    pub privileged: bool,

    /// Mount the container's root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,

    /// no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opt: Vec<String>,

    /// Enter the root with chroot(2) instead of pivot_root(2) (weaker; see chapter 1)
    #[arg(long)]
    pub no_pivot: bool,

    /// The command to run and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Parses the arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    errors::quiet_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are not errors; a bad flag is ferry's failure (125),
            // as docker's CLI has it.
            let code = if error.use_stderr() {
                EXIT_ENGINE_FAILED
            } else {
                0
            };
            let _ = error.print();
            return code;
        }
    };
    init_logging(cli.debug);
    let outcome = std::panic::catch_unwind(|| dispatch(cli));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("{ENGINE}: error: {}", errors::chain(&error));
            if let Some(hint) = error.hint() {
                eprintln!("{ENGINE}: hint: {hint}");
            }
            error.exit_code()
        }
        Err(panic) => {
            eprintln!(
                "{ENGINE}: error: {}",
                errors::describe_panic(panic.as_ref())
            );
            EXIT_ENGINE_FAILED
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, RunError> {
    let state_root = cli
        .root
        .unwrap_or_else(|| PathBuf::from(format!("/var/lib/{ENGINE}")));
    match cli.command {
        Command::Run(args) => {
            let config = ContainerConfig::from_run_args(&args, &state_root)?;
            runtime::run(&config)
        }
    }
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_target(false)
        .format_timestamp(None)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
