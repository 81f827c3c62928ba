//! Processes: clone(2) and fork(2) for the container's first process, and the
//! descriptors it must not pass on.

use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// The child's stack. It only runs ferry's setup code before execve(2) replaces it.
const CHILD_STACK_SIZE: usize = 8 * 1024 * 1024;

/// Creates the container's first process, in the new namespaces `flags` asks for
/// (see [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html)). The child
/// runs `child` and exits with its return value unless it execs first.
pub fn clone_child(flags: CloneFlags, child: &mut dyn FnMut() -> isize) -> nix::Result<Pid> {
    let mut stack = vec![0u8; CHILD_STACK_SIZE];
    let callback: nix::sched::CloneCb = Box::new(child);
    // SAFETY: ferry is single-threaded when it clones, so no other thread holds a lock
    // (allocator, stdio) that the child could wait on forever. Without CLONE_VM the
    // child gets its own copy of memory, so it cannot corrupt the parent's; `stack` is
    // that copy's stack and outlives nothing the parent needs. SIGCHLD as the exit
    // signal makes it an ordinary child that waitpid(2) reaps.
    unsafe { nix::sched::clone(callback, &mut stack, flags, Some(libc::SIGCHLD)) }
}

/// Checks that the calling process has one thread (the `Threads:` line of
/// /proc/self/status, see proc(5)): clone(2) and fork(2) copy only the calling
/// thread, so a lock another thread holds would stay locked in the child forever.
/// The SAFETY comments of `clone_child` and `fork` rest on this.
pub fn ensure_single_threaded() -> nix::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let threads = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse::<u32>().ok());
    match threads {
        Some(1) => Ok(()),
        _ => Err(nix::errno::Errno::EDEADLK),
    }
}

/// Forks the calling process (see fork(2)).
pub fn fork() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: called only in the container's first process, which is single-threaded
    // (it was created by clone without CLONE_THREAD and starts no threads), so the
    // child cannot inherit a lock held by another thread.
    unsafe { nix::unistd::fork() }
}

/// Marks every file descriptor from `first` up close-on-exec (see close_range(2)
/// with `CLOSE_RANGE_CLOEXEC`), so none of ferry's reaches the container's command.
pub fn close_range_cloexec(first: u32) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors;
    // it takes no pointers and cannot invalidate memory.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    nix::errno::Errno::result(result).map(drop)
}

/// Closes every file descriptor above stderr except those in `keep` (see
/// close_range(2)). The container's first process does this before anything else:
/// a descriptor it inherited could lead back to the host (`-w /proc/self/fd/N`).
pub fn close_fds_except(keep: &[std::os::fd::RawFd]) -> nix::Result<()> {
    let mut kept: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd > 2)
        .map(|fd| *fd as u32)
        .collect();
    kept.sort_unstable();
    let mut first = 3u32;
    for fd in kept.into_iter().chain([u32::MAX]) {
        if first < fd {
            // SAFETY: close_range only closes descriptors in [first, fd - 1]; none of
            // them is owned by a Rust object this process still uses (the kept
            // ones are skipped), and it takes no pointers.
            let result = unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
            nix::errno::Errno::result(result)?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// A descriptor that refers to process `pid` itself (see pidfd_open(2)): it stays
/// that process even if the pid is reused, polls readable when the process ends, and
/// [`pidfd_send_signal`] signals exactly it.
pub fn pidfd_open(pid: Pid) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags, no pointers; on success the returned
    // descriptor is new and owned by nobody else, so OwnedFd may own it.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = nix::errno::Errno::result(fd)?;
    // SAFETY: `fd` was just returned by the kernel and is not owned elsewhere.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as std::os::fd::RawFd) })
}

/// Sends `signal` to the process `pidfd` refers to (see pidfd_send_signal(2)).
pub fn pidfd_send_signal(
    pidfd: std::os::fd::BorrowedFd<'_>,
    signal: nix::sys::signal::Signal,
) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a null siginfo asks the kernel to fill it in as kill(2) would; the
    // descriptor is borrowed, so it stays open for the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    nix::errno::Errno::result(result).map(drop)
}
