//! Signals: dispositions reset for the container's command (chapter 0).

/// The kernel's `struct sigaction` (the same layout on x86_64 and aarch64), for
/// rt_sigaction(2) called directly.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Puts every signal back to its default disposition (see rt_sigaction(2)). An
/// ignored signal stays ignored across execve(2) — Rust ignores SIGPIPE at start-up,
/// nohup ignores SIGHUP — so the container's command would inherit that. The
/// system call is made directly: glibc refuses to touch signals 32 and 33, which it
/// keeps for itself, yet a caller may have left them ignored too.
pub fn reset_signal_dispositions() -> nix::Result<()> {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a valid kernel sigaction that lives across the call;
        // SIG_DFL runs no handler code, so no code of ours can run at an unsafe
        // point; the old action is not asked for (null).
        let result = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
        nix::errno::Errno::result(result)?;
    }
    Ok(())
}
