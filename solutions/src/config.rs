//! What a container is made of, checked and resolved before anything is created.
//!
//! Everything the user can get wrong (a missing rootfs, a malformed `-e`) fails
//! here, while the host is still untouched.

use std::path::{Path, PathBuf};

use crate::cgroups::{CgroupConfig, Limits, MIN_MEMORY};
use crate::cli::RunArgs;
use crate::env::{self, EnvEntry};
use crate::id::ContainerId;
use crate::privileges::{capabilities, Security};
use crate::runtime::RunError;
use crate::seccomp;

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
    /// The container's hostname (default: the short id).
    pub hostname: String,
    /// Put ferry's init in front of the command as PID 1.
    pub init: bool,
    /// The cgroup and its limits.
    pub cgroup: CgroupConfig,
    /// Capabilities, seccomp, user and the other hardening of chapter 4.
    pub security: Security,
    /// Whether the user set HOME (otherwise `--user` sets it from /etc/passwd).
    pub home_given: bool,
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
        let cgroup = CgroupConfig {
            parent: check_cgroup_parent(args.cgroup_parent.as_deref())?,
            limits: limits(args)?,
        };
        let security = security(args)?;
        let home_given = entries.iter().any(|entry| match entry {
            EnvEntry::Set(key, _) | EnvEntry::Inherit(key) => key == "HOME",
        });
        let id = ContainerId::generate().map_err(|source| RunError::Id { source })?;
        let host_var = |key: &str| std::env::var(key).ok();
        let hostname = match &args.hostname {
            Some(name) => check_hostname(name)?,
            None => id.short().to_string(),
        };
        let env = env::container_environment(&hostname, &entries, &host_var);
        Ok(ContainerConfig {
            id,
            rootfs,
            argv: args.command.clone(),
            env,
            workdir,
            no_pivot: args.no_pivot,
            hostname,
            init: args.init,
            cgroup,
            security,
            home_given,
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

/// A hostname is 1 to 64 letters, digits, dots and dashes (see hostname(7)).
fn check_hostname(name: &str) -> Result<String, RunError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.starts_with(['-', '.']);
    if valid {
        Ok(name.to_string())
    } else {
        Err(RunError::InvalidHostname {
            name: name.to_string(),
        })
    }
}

/// The cgroup limits of `run`'s flags, checked before anything is created.
fn limits(args: &RunArgs) -> Result<Limits, RunError> {
    let invalid = |flag: &'static str, value: String, why: &'static str| RunError::InvalidLimit {
        flag,
        value,
        why,
    };
    let memory = args
        .memory
        .as_deref()
        .map(|text| {
            parse_bytes(text)
                .ok_or_else(|| invalid("--memory", text.into(), "use a size such as 64m or 1g"))
        })
        .transpose()?;
    if let (Some(bytes), Some(text)) = (memory, &args.memory) {
        if bytes < MIN_MEMORY {
            return Err(invalid("--memory", text.clone(), "the minimum is 6m"));
        }
    }
    let memory_swap = match args.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(text) => {
            let swap = parse_bytes(text).ok_or_else(|| {
                invalid(
                    "--memory-swap",
                    text.into(),
                    "use a size such as 128m, or -1",
                )
            })?;
            match memory {
                None => {
                    return Err(invalid(
                        "--memory-swap",
                        text.into(),
                        "it needs --memory too",
                    ))
                }
                Some(memory) if swap < memory => {
                    return Err(invalid(
                        "--memory-swap",
                        text.into(),
                        "it is memory plus swap: at least --memory",
                    ))
                }
                Some(_) => Some(swap as i64),
            }
        }
    };
    let pids = match args.pids_limit {
        None | Some(-1) => None,
        Some(n) if n > 0 => Some(n as u64),
        Some(n) => {
            return Err(invalid(
                "--pids-limit",
                n.to_string(),
                "use a positive number, or -1 for no limit",
            ))
        }
    };
    if let Some(cpus) = args.cpus {
        let available = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        if !(cpus > 0.0
            && cpus <= available
            && cpus * crate::cgroups::CPU_PERIOD_US as f64 >= 1000.0)
        {
            return Err(invalid(
                "--cpus",
                cpus.to_string(),
                "use a number above 0.01, at most the machine's CPU count",
            ));
        }
    }
    if let Some(shares) = args.cpu_shares {
        if !(2..=262_144).contains(&shares) {
            return Err(invalid(
                "--cpu-shares",
                shares.to_string(),
                "use 2 to 262144",
            ));
        }
    }
    if let Some(list) = &args.cpuset_cpus {
        if list.is_empty()
            || !list
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
        {
            return Err(invalid(
                "--cpuset-cpus",
                list.clone(),
                "use a list such as 0-1,3",
            ));
        }
    }
    Ok(Limits {
        memory,
        memory_swap,
        pids,
        cpus: args.cpus,
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus.clone(),
    })
}

/// `64m` → 67108864. Units b, k, m, g (powers of 1024), case-insensitive.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// `--cgroup-parent`: an absolute-looking path of plain names [default: /ENGINE].
fn check_cgroup_parent(parent: Option<&str>) -> Result<String, RunError> {
    let parent = parent
        .map(String::from)
        .unwrap_or_else(|| format!("/{}", crate::ENGINE));
    let valid = parent
        .trim_start_matches('/')
        .split('/')
        .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\0'));
    if valid {
        Ok(parent)
    } else {
        Err(RunError::InvalidLimit {
            flag: "--cgroup-parent",
            value: parent,
            why: "use a path of plain names such as /ferry or /lab/team1",
        })
    }
}

/// Chapter 4's settings from `run`'s flags, checked before anything is created.
fn security(args: &RunArgs) -> Result<Security, RunError> {
    let capabilities = capabilities::resolve(&args.cap_add, &args.cap_drop, args.privileged)?;
    let mut no_new_privileges = true;
    let mut seccomp = (!args.privileged).then(seccomp::default_profile);
    for option in &args.security_opt {
        let (key, value) = option.split_once(['=', ':']).unwrap_or((option, "true"));
        match (key, value) {
            ("no-new-privileges", "true") => no_new_privileges = true,
            ("no-new-privileges", "false") => no_new_privileges = false,
            ("seccomp", "unconfined") => seccomp = None,
            ("seccomp", path) => seccomp = Some(seccomp::read_profile(std::path::Path::new(path))?),
            _ => {
                return Err(RunError::SecurityOption {
                    option: option.clone(),
                })
            }
        }
    }
    if let Some(spec) = &args.user {
        if spec.is_empty() || spec.contains(['/', '\0']) {
            return Err(RunError::SecurityOption {
                option: format!("--user {spec}"),
            });
        }
    }
    Ok(Security {
        capabilities,
        no_new_privileges,
        seccomp,
        privileged: args.privileged,
        read_only: args.read_only,
        user: args.user.clone(),
    })
}
