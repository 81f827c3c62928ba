//! The chapter tests' harness: a throwaway "test host" per test, the fixture rootfs,
//! the binary under test and readable failures. See ARCHITECTURE.md, "The test harness".
//!
//! Every test gets its own temp dir (rootfs, state root, canaries) and runs the engine
//! inside its own mount namespace whose `/` is shared, as on a systemd laptop; on drop
//! it checks that no mount leaked into that namespace and no state was left behind.
#![allow(dead_code, unused_imports)]

pub mod cgroups;
pub mod faults;
pub mod fixture;
mod host;
pub mod images;
mod invocation;
#[path = "../../solutions/src/mountinfo.rs"]
mod mountinfo;
pub mod network;
mod output;
mod probe;
mod processes;
pub mod registry;
mod snapshots;

use std::fs::File;
use std::time::Duration;

pub use host::TestHost;
pub use invocation::{Invocation, OnTerminal, Running};
pub use output::Output;
pub use probe::{binary as probe_binary, probe_report};
pub use processes::{find_process, sigkill_from_host, wait_for_container_file, wait_for_file};
pub use snapshots::snapshot_settings;

/// The engine under test: `ferry` (the reference) or `myferry` (the student's).
pub fn engine_binary() -> &'static str {
    option_env!("CARGO_BIN_EXE_ferry")
        .or(option_env!("CARGO_BIN_EXE_myferry"))
        .expect("the tests are targets of the ferry or myferry package")
}

/// A random token (12 hex digits) for assertions a hard-coded answer could pass.
pub fn token() -> String {
    let mut bytes = [0u8; 6];
    std::io::Read::read_exact(&mut File::open("/dev/urandom").unwrap(), &mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long a command may take before the harness kills it.
pub const TIMEOUT: Duration = Duration::from_secs(30);
