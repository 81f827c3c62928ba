//! seccomp(2): loading a compiled filter (chapter 4).

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
