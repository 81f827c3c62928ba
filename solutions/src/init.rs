//! `--init`: a tiny init in front of the command, as PID 1 of the container.
//!
//! Chapter 2 (chapters/02-namespaces.md). PID 1 is special: the kernel delivers it
//! only the signals it has a handler for (so `sh` as PID 1 ignores SIGTERM), and
//! every orphan of the namespace becomes its child (so a PID 1 that never calls
//! wait(2) collects zombies). ferry's init is ferry itself: the container's first
//! process forks; the child goes on to exec the command, the parent stays as PID 1,
//! forwards signals to the command, reaps every child, and exits with the
//! command's status.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::process;
use crate::signals::BlockedSignals;

/// Waits for `command` (PID 2) as PID 1 would: forwards the waited signals to it,
/// reaps every child that ends (orphans included), and returns the command's exit
/// code as soon as it ends.
///
/// Loop on `blocked.waited.wait()`: on SIGCHLD reap with `waitpid(-1, WNOHANG)`
/// until nothing is left to reap (ECHILD or StillAlive), returning when the reaped
/// pid is `command`; on any other signal, kill(2) `command` with it.
pub fn supervise(command: Pid, blocked: &BlockedSignals) -> i32 {
    // BEGIN SOLUTION ch02 "be PID 1: forward signals to the command and reap every child"
    loop {
        let signal = match blocked.waited.wait() {
            Ok(signal) => signal,
            Err(_) => continue,
        };
        if signal != Signal::SIGCHLD {
            let _ = kill(command, signal);
            continue;
        }
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)))
                    if pid == command =>
                {
                    return process::exit_code(status);
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(_) => continue,
            }
        }
    }
    // END SOLUTION
}
