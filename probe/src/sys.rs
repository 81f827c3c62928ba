//! The few system calls std does not wrap, each in one small safe function.
//!
//! This is the only module allowed `unsafe`; every block says why it is sound.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

/// Real and effective user and group ids (see getuid(2), getgid(2), geteuid(2), getegid(2)).
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

/// The process's user and group ids; these calls cannot fail.
pub fn ids() -> Ids {
    // SAFETY: these calls take no arguments, touch no memory of ours and always succeed.
    unsafe {
        Ids {
            uid: libc::getuid(),
            gid: libc::getgid(),
            euid: libc::geteuid(),
            egid: libc::getegid(),
        }
    }
}

/// The supplementary group ids (see getgroups(2)).
pub fn groups() -> io::Result<Vec<u32>> {
    // The kernel caps the list at NGROUPS_MAX (65536); ask for the size first.
    // SAFETY: with a size of 0 the kernel only returns the count and writes nothing.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let count = usize::try_from(count).map_err(|_| io::Error::last_os_error())?;
    let mut groups: Vec<libc::gid_t> = vec![0; count];
    // SAFETY: the buffer holds `count` gids and we pass that length; the kernel writes at most that.
    let written = unsafe { libc::getgroups(count as libc::c_int, groups.as_mut_ptr()) };
    let written = usize::try_from(written).map_err(|_| io::Error::last_os_error())?;
    groups.truncate(written);
    Ok(groups)
}

/// The UTS namespace's host name (see gethostname(2)), as raw bytes.
pub fn hostname() -> io::Result<Vec<u8>> {
    // Host names are at most 64 bytes (HOST_NAME_MAX); one more for the terminating NUL.
    let mut buf = [0u8; 256];
    // SAFETY: we pass the buffer's real length; glibc writes at most that many bytes into it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(buf[..len].to_vec())
}

/// The session id of this process (see getsid(2)).
pub fn session_id() -> io::Result<i32> {
    // SAFETY: getsid only reads its integer argument; 0 means "this process".
    let sid = unsafe { libc::getsid(0) };
    if sid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sid)
}

/// The process group id of this process (see getpgid(2)).
pub fn process_group() -> io::Result<i32> {
    // SAFETY: getpgid only reads its integer argument; 0 means "this process".
    let pgid = unsafe { libc::getpgid(0) };
    if pgid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pgid)
}

/// Whether `fd` is an open file descriptor (see fcntl(2), `F_GETFD`).
pub fn is_fd_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; on a closed fd it fails with EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Creates a block device node `path` for `major:minor`, mode 0600 (see mknod(2)).
pub fn mknod_block(path: &Path, major: u32, minor: u32) -> io::Result<()> {
    let path = c_path(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFBLK | 0o600, dev) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes the empty directory `name` inside the open directory `parent` (see unlinkat(2)).
///
/// Works through a file descriptor so that it still reaches the directory after a chroot.
pub fn rmdir_at(parent: &File, name: &str) -> io::Result<()> {
    let name = c_path(Path::new(name))?;
    // SAFETY: `parent` is an open descriptor for the duration of the call and `name` is a
    // NUL-terminated string that outlives it.
    let rc = unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates or opens the System V message queue of `key` (see msgget(2)); returns its id.
pub fn msgget(key: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: msgget only reads its two integer arguments.
    check(unsafe { libc::msgget(key, flags) })
}

/// Creates or opens the System V shared memory segment of `key` (see shmget(2)); returns its id.
///
/// Only the id: the segment is never attached, so no memory of ours is involved.
pub fn shmget(key: i32, size: usize, flags: i32) -> io::Result<i32> {
    // SAFETY: shmget only reads its three integer arguments.
    check(unsafe { libc::shmget(key, size, flags) })
}

/// Removes the message queue `id` (see msgctl(2), `IPC_RMID`).
pub fn msg_remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is never dereferenced.
    check(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// Marks the shared memory segment `id` for removal (see shmctl(2), `IPC_RMID`).
pub fn shm_remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is never dereferenced.
    check(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// The CPU time this process has used so far, user and system (see clock_gettime(2)).
pub fn process_cpu_time() -> io::Result<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec that outlives the call; the kernel only writes into it.
    check(unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) })?;
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// A child process this one forked. Dropping it waits for it, so every child is reaped, on
/// error paths and panics too.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

/// How a child ended (see waitpid(2)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exit {
    /// It called `_exit` with this code.
    Code(i32),
    /// A signal killed it (SIGSYS from a seccomp filter, SIGKILL from the OOM killer...).
    Signal(i32),
}

impl Child {
    /// Waits for the child to end and says how it did.
    pub fn wait(mut self) -> io::Result<Exit> {
        self.reaped = true;
        wait_pid(self.pid)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = wait_pid(self.pid);
        }
    }
}

fn wait_pid(pid: libc::pid_t) -> io::Result<Exit> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int that outlives the call; the kernel only writes into it.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if libc::WIFEXITED(status) {
        Ok(Exit::Code(libc::WEXITSTATUS(status)))
    } else {
        Ok(Exit::Signal(libc::WTERMSIG(status)))
    }
}

/// Forks (see fork(2)); the child runs `child` and `_exit`s with the code it returns, never coming
/// back here: no destructors, atexit handlers or stdout flush run twice.
fn fork_with(child: impl FnOnce() -> i32) -> io::Result<Child> {
    // SAFETY: the probe never starts a thread, so the child's copy of the process is consistent
    // (no lock is held by a thread that does not exist in the child). The child leaves only
    // through `_exit`, even when `child` panics.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => {
            let code = panic::catch_unwind(AssertUnwindSafe(child)).unwrap_or(127);
            // SAFETY: `_exit` ends the child at once; it touches no memory of ours.
            unsafe { libc::_exit(code) }
        }
        pid if pid < 0 => Err(io::Error::last_os_error()),
        pid => Ok(Child { pid, reaped: false }),
    }
}

/// Forks a child that sleeps `seconds`, then exits 0.
pub fn fork_sleeper(seconds: u32) -> io::Result<Child> {
    fork_with(|| {
        std::thread::sleep(Duration::from_secs(seconds.into()));
        0
    })
}

/// Calls unshare(CLONE_NEWUSER) in a forked child, so this process keeps its namespaces.
///
/// The child exits 0 when unshare worked and with the errno when it failed; a seccomp filter
/// may kill it instead, which shows as [`Exit::Signal`].
pub fn unshare_user_in_child() -> io::Result<Exit> {
    let child = fork_with(|| {
        // SAFETY: unshare only reads its integer argument, and only changes the child.
        match check(unsafe { libc::unshare(libc::CLONE_NEWUSER) }) {
            Ok(_) => 0,
            Err(e) => e.raw_os_error().unwrap_or(255),
        }
    })?;
    child.wait()
}

/// Issues the 32-bit (i386) `getpid` system call through `int 0x80`; returns what the kernel
/// answered: the pid, or a negative errno.
///
/// A 64-bit process may still enter the kernel's 32-bit syscall table this way, which is why a
/// seccomp filter must check the architecture. If it does, the kernel may kill the process with
/// SIGSYS; if the kernel has no 32-bit emulation, the interrupt raises SIGSEGV.
#[cfg(target_arch = "x86_64")]
pub fn int80_getpid() -> i64 {
    /// `__NR_getpid` in the i386 table (it is 39 in the x86_64 one).
    const I386_GETPID: u64 = 20;
    let mut ax = I386_GETPID;
    // SAFETY: i386 getpid takes no arguments and touches no memory. The kernel enters on its own
    // stack (so ours is untouched: `nostack`), returns the result in eax and preserves the other
    // registers except r8-r11, which some kernels clear on this path: they are declared clobbered.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inout("rax") ax,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    // The answer is a 32-bit int: the low half of rax, sign-extended.
    i64::from(ax as u32 as i32)
}

/// Joins a new anonymous session keyring: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL), through the
/// raw system call (see keyctl(2)). Returns the keyring's serial number.
pub fn join_session_keyring() -> io::Result<libc::c_long> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: with a null name the kernel reads no memory of ours; the new keyring only becomes
    // this process's session keyring.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Sets this process's execution domain (see personality(2)) through the raw system call, so
/// that all 64 bits of `persona` reach the kernel (and a seccomp filter); returns the previous
/// persona. `0xffffffff` sets nothing and only asks.
pub fn personality(persona: u64) -> io::Result<i64> {
    // SAFETY: personality only reads its integer argument and changes only this process.
    let rc = unsafe { libc::syscall(libc::SYS_personality, persona) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Opens a socket of `family` and `kind` (see socket(2)) and closes it at once. The family goes
/// through the raw system call as a full 64-bit register, high bits and all.
pub fn open_socket(family: u64, kind: i32) -> io::Result<()> {
    // SAFETY: socket only reads its three integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_socket, family, kind | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    close(fd as i32);
    Ok(())
}

/// Which step of [`own_fd_through_pidfd`] failed.
#[derive(Debug, Clone, Copy)]
pub enum PidfdStep {
    Open,
    GetFd,
}

/// Takes a copy of this process's own stdout through a pidfd: pidfd_open(2) on our own pid,
/// then pidfd_getfd(2) on fd 1. Both descriptors are closed again. Another process's
/// descriptors are never touched.
pub fn own_fd_through_pidfd() -> Result<(), (PidfdStep, io::Error)> {
    // SAFETY: getpid takes no arguments; pidfd_open only reads its two integers.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if pidfd < 0 {
        return Err((PidfdStep::Open, io::Error::last_os_error()));
    }
    // SAFETY: pidfd_getfd only reads its three integers; `pidfd` is ours and open.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, 1, 0) };
    let result = if copy < 0 {
        Err((PidfdStep::GetFd, io::Error::last_os_error()))
    } else {
        close(copy as i32);
        Ok(())
    };
    close(pidfd as i32);
    result
}

/// Closes a descriptor this module opened (see close(2)); a failure changes nothing for us.
fn close(fd: i32) {
    // SAFETY: `fd` was returned to us by the kernel a moment ago and nothing else owns it.
    unsafe { libc::close(fd) };
}

/// Pushes `byte` into the input queue of the terminal open on `fd`, as if typed (see
/// ioctl_tty(2), `TIOCSTI`).
pub fn inject_input(fd: i32, byte: u8) -> io::Result<()> {
    // SAFETY: TIOCSTI reads one byte through the pointer, which points at `byte` for the whole
    // call; on a descriptor that is not a terminal the kernel fails with ENOTTY.
    check(unsafe { libc::ioctl(fd, libc::TIOCSTI, &byte as *const u8) }).map(drop)
}

/// Sets the UTS namespace's host name (see sethostname(2)).
pub fn set_hostname(name: &[u8]) -> io::Result<()> {
    // SAFETY: we pass the slice's pointer and real length; the kernel reads at most that much.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// `rc`, or the errno when it is negative (the libc convention for failure).
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}
