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
