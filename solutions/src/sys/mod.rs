//! The only `unsafe` code in the engine, kept small so it can be audited in one read:
//! one file per kind of system call that nix has no safe wrapper for.

mod fs;
mod net;
mod process;
mod seccomp;
mod signal;
mod terminal;
mod xattr;

pub use fs::{forbid_exec_in_mount_tree, openat2, openat2_with_mode, restrict_mount_tree};
pub use net::{interface_flags, set_interface_flags};
pub use process::{
    clone_child, close_fds_except, close_range_cloexec, ensure_single_threaded, fork, pidfd_open,
    pidfd_send_signal,
};
pub use seccomp::load_seccomp_filter;
pub use signal::reset_signal_dispositions;
pub use terminal::{
    open_peer, receive_fd, set_controlling_terminal, set_window_size, window_size, WindowSize,
};
pub use xattr::{get_xattr, list_xattrs, set_xattr};
