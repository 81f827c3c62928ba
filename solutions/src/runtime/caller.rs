//! Nothing of the caller reaches the container.
//!
//! The container's first process is a copy of ferry until it execs, and with
//! `--init` it stays one for the container's whole life, as PID 1. Whatever that
//! copy holds, a process in the container can look for: `/proc/1/environ` is the
//! environment ferry was started with (tokens, passwords), `/proc/1/cmdline` its
//! command line (host paths), `/proc/1/mem` its memory, `/proc/1/exe` ferry's binary
//! on the host. So, first thing in the child:
//!
//! * it becomes non-dumpable (prctl(2) `PR_SET_DUMPABLE` 0): its /proc files then
//!   belong to the host's root, and /proc/1/mem, environ and exe need
//!   `CAP_SYS_PTRACE` — which a container does not get. execve(2) of the command makes
//!   the command dumpable again, as any program;
//! * it overwrites its own argument and environment strings, which stay readable
//!   through /proc/1/cmdline and /proc/1/environ for processes that have that
//!   capability (`--privileged`, `--cap-add SYS_PTRACE`);
//! * it dies with ferry (`PR_SET_PDEATHSIG`), so a killed ferry leaves no container
//!   behind in its namespaces.

use std::os::unix::fs::FileExt;

/// What the first process's command line reads as once it is overwritten.
pub fn process_title() -> String {
    format!("{}-init", crate::ENGINE)
}

/// Dies with the parent (prctl(2) `PR_SET_PDEATHSIG`), then hides the caller's
/// environment and command line (see the module's doc). A process that must
/// outlive the runtime (`ferry runtime create`, whose caller — podman's conmon —
/// becomes its parent) passes `outlives_the_runtime`.
pub fn forget_the_caller(outlives_the_runtime: bool) -> nix::Result<()> {
    if !outlives_the_runtime {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    }
    // Best effort: a kernel without /proc/self/mem access still gets non-dumpable.
    if let Err(error) = overwrite_arguments_and_environment() {
        log::debug!("could not overwrite the command line and environment: {error}");
    }
    // The name `ps` shows (/proc/self/comm), which execve sets anew.
    let title = std::ffi::CString::new(process_title()).expect("no NUL in the title");
    nix::sys::prctl::set_name(&title)?;
    nix::sys::prctl::set_dumpable(false)
}

/// Overwrites the strings behind /proc/self/cmdline and /proc/self/environ — the
/// `arg_start..arg_end` and `env_start..env_end` areas that proc(5) lists in
/// /proc/self/stat — through /proc/self/mem: the environment with zeros, the
/// arguments with the process title.
fn overwrite_arguments_and_environment() -> std::io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let areas = memory_areas(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "unexpected /proc/self/stat",
        )
    })?;
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")?;
    let [arg_start, arg_end, env_start, env_end] = areas;
    let env_len = env_end.saturating_sub(env_start) as usize;
    mem.write_all_at(&vec![0u8; env_len], env_start)?;
    let arg_len = arg_end.saturating_sub(arg_start) as usize;
    let mut title = process_title().into_bytes();
    title.resize(arg_len, 0);
    title.truncate(arg_len);
    if let Some(last) = title.last_mut() {
        *last = 0;
    }
    mem.write_all_at(&title, arg_start)
}

/// `[arg_start, arg_end, env_start, env_end]` from /proc/self/stat: fields 48 to 51
/// (see proc(5)), counted after the command name in parentheses, which may itself
/// hold spaces and parentheses.
fn memory_areas(stat: &str) -> Option<[u64; 4]> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some([field(48)?, field(49)?, field(50)?, field(51)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_areas_are_read_after_a_tricky_command_name() {
        let mut stat = String::from("42 (a) b (c) S");
        for n in 4..=52 {
            stat.push_str(&format!(" {n}"));
        }
        assert_eq!(memory_areas(&stat), Some([48, 49, 50, 51]));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let [arg_start, arg_end, env_start, env_end] = memory_areas(&own).unwrap();
        assert!(arg_start < arg_end && env_start <= env_end);
    }
}
