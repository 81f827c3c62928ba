//! Signals sent to ferry are meant for the container: ferry passes them on.
//!
//! Chapter 0 (chapters/00-process.md). ferry blocks the signals it forwards
//! before it creates the child and then waits for them with sigwait(3), together
//! with SIGCHLD: no signal handlers, no races, one loop that reads top to bottom.
//! The child resets every signal to its default and empties its mask before it
//! execs (`reset_for_exec`), since execve(2) keeps both.

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The signals a user or supervisor sends to stop or poke a program.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The signal mask while ferry waits; restores the caller's mask on drop.
#[derive(Debug)]
pub struct BlockedSignals {
    pub waited: SigSet,
    pub previous: SigSet,
}

/// Blocks the forwarded signals and SIGCHLD (see sigprocmask(2)).
pub fn block() -> nix::Result<BlockedSignals> {
    let mut waited = SigSet::empty();
    for &signal in FORWARDED {
        waited.add(signal);
    }
    waited.add(Signal::SIGCHLD);
    let mut previous = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), Some(&mut previous))?;
    Ok(BlockedSignals { waited, previous })
}

impl BlockedSignals {
    /// Puts back the mask ferry was started with (the parent, once the container is gone).
    pub fn restore(&self) -> nix::Result<()> {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None)
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// Gives the command a clean start (in the child, just before execve(2)): an empty
/// signal mask and every signal at its default disposition. Both survive execve,
/// so without this the command would inherit what ferry blocked and ignored (Rust
/// ignores SIGPIPE: `yes | head -1` would print "Broken pipe" errors) and what
/// ferry's caller ignored (nohup ignores SIGHUP).
pub fn reset_for_exec() -> nix::Result<()> {
    crate::sys::reset_signal_dispositions()?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Waits until `child` ends, forwarding every other waited signal to it.
///
/// Loop on `blocked.waited.wait()` (sigwait(3)): on SIGCHLD, reap `child` with
/// `waitpid(child, WNOHANG)` and return its status once it has ended; on any other
/// signal, send it to `child` with kill(2). `ESRCH` from kill means the child has
/// just ended (its SIGCHLD is on the way): carry on. Return any other error.
pub fn wait_forwarding(child: Pid, blocked: &BlockedSignals) -> nix::Result<WaitStatus> {
    // BEGIN SOLUTION ch00 "wait for the child, forwarding SIGINT, SIGTERM and friends to it"
    loop {
        let signal = blocked.waited.wait()?;
        if signal == Signal::SIGCHLD {
            match waitpid(child, Some(WaitPidFlag::WNOHANG))? {
                WaitStatus::StillAlive => continue,
                status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return Ok(status),
                _ => continue,
            }
        }
        log::debug!("forwarding {signal} to the container's process {child}");
        match kill(child, signal) {
            // The child may have just ended; its SIGCHLD is on its way.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => return Err(error),
        }
    }
    // END SOLUTION
}
