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
