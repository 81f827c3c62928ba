//! The only `unsafe` code in the engine, kept small so it can be audited in one read.

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

/// Forks the calling process (see fork(2)).
pub fn fork() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: called only in the container's first process, which is single-threaded
    // (it was created by clone without CLONE_THREAD and starts no threads), so the
    // child cannot inherit a lock held by another thread.
    unsafe { nix::unistd::fork() }
}

/// An `ifreq` naming `interface`, for the SIOC*IFFLAGS ioctls (see netdevice(7)).
fn interface_request(interface: &str) -> nix::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data (a name array and a union of integers and
    // addresses); all zeros is a valid value for every field.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= request.ifr_name.len() {
        return Err(nix::errno::Errno::EINVAL);
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// The flags of a network interface (`IFF_UP`, ...), via SIOCGIFFLAGS on `socket`.
pub fn interface_flags(socket: std::os::fd::RawFd, interface: &str) -> nix::Result<i16> {
    let mut request = interface_request(interface)?;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the ifreq we own,
    // which lives until the call returns.
    let result = unsafe { libc::ioctl(socket, libc::SIOCGIFFLAGS, &mut request) };
    nix::errno::Errno::result(result)?;
    // SAFETY: after a successful SIOCGIFFLAGS the union holds the flags.
    Ok(unsafe { request.ifr_ifru.ifru_flags })
}

/// Sets the flags of a network interface, via SIOCSIFFLAGS on `socket`.
pub fn set_interface_flags(
    socket: std::os::fd::RawFd,
    interface: &str,
    flags: i16,
) -> nix::Result<()> {
    let mut request = interface_request(interface)?;
    request.ifr_ifru.ifru_flags = flags;
    // SAFETY: SIOCSIFFLAGS only reads the ifreq we own, which lives until the call returns.
    let result = unsafe { libc::ioctl(socket, libc::SIOCSIFFLAGS, &request) };
    nix::errno::Errno::result(result).map(drop)
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

/// Installs a seccomp filter on the calling thread (see seccomp(2),
/// `SECCOMP_SET_MODE_FILTER`). Unlike seccompiler's `apply_filter`, it does not turn
/// on no_new_privs itself: ferry decides that (`--security-opt no-new-privileges`).
pub fn load_seccomp_filter(program: &[seccompiler::sock_filter]) -> nix::Result<()> {
    let program_len = u16::try_from(program.len()).map_err(|_| nix::errno::Errno::E2BIG)?;
    let fprog = libc::sock_fprog {
        len: program_len,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccompiler's sock_filter is #[repr(C)] with the kernel's layout (code,
    // jt, jf, k), the same as libc's; `fprog` points into `program`, which outlives
    // the call; the kernel copies the program before returning.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
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

/// Opens `path` relative to `dirfd` (the current directory when `None`) with
/// openat2(2), which resolves the path as `resolve` says (`RESOLVE_IN_ROOT`,
/// `RESOLVE_NO_SYMLINKS`, ...; see the `safe_path` module).
pub fn openat2(
    dirfd: Option<std::os::fd::BorrowedFd<'_>>,
    path: &std::path::Path,
    flags: nix::fcntl::OFlag,
    resolve: nix::fcntl::ResolveFlag,
) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let how = nix::fcntl::OpenHow::new().flags(flags).resolve(resolve);
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    let fd = nix::fcntl::openat2(dirfd, path, how)?;
    // SAFETY: openat2 succeeded, so `fd` is a new descriptor that nothing else owns;
    // the OwnedFd becomes its only owner and closes it once.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

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
