//! The static probe (probe/): built once per test binary, as the invoking user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::TestHost;

/// The workspace root (the tests are compiled from solutions/ or workshop/).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds `ferry-probe` statically into target/probe and returns its path.
///
/// Built with the cargo that builds the tests, as the user who ran them (SUDO_UID),
/// so target/ stays theirs; a crt-static build runs in a rootfs without a libc.
pub fn binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = workspace().join("target/probe");
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(workspace())
            .args(["rustc", "--quiet", "--offline", "-p", "ferry-probe", "--release", "--target-dir"])
            .arg(&target)
            .args(["--", "-C", "target-feature=+crt-static"])
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS");
        let ids = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
        if let (Some(uid), Some(gid)) = (ids("SUDO_UID"), ids("SUDO_GID")) {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
        }
        let output = command.output().expect("failed to run cargo to build the probe");
        assert!(
            output.status.success(),
            "failed to build the probe (cargo rustc -p ferry-probe --release -- -C target-feature=+crt-static):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("release/ferry-probe")
    })
}

/// Runs `/probe ARGS...` in a container with `options` before it, returns its JSON.
pub fn probe_report(host: &TestHost, options: &[&str], args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = options.to_vec();
    all.push("/probe");
    all.extend_from_slice(args);
    host.run(&all).output().json()
}
