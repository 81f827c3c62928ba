//! What the demo, the runnable snippets and the step-order check run containers
//! from: the static probe and a busybox rootfs, made as the tests make theirs.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::manifest::project_root;
use crate::util;

/// The static probe (see probe/), built as the tests build it: crt-static on the
/// probe alone, since a global crt-static RUSTFLAGS breaks proc-macros.
pub fn build_probe() -> Result<PathBuf> {
    let target = project_root().join("target/probe");
    util::run(
        util::cargo()
            .args(["rustc", "--quiet", "-p", "ferry-probe", "--release"])
            .arg("--target-dir")
            .arg(&target)
            .args(["--", "-C", "target-feature=+crt-static"]),
    )?;
    Ok(target.join("release/ferry-probe"))
}

/// A static busybox rootfs, made afresh: setup's `~/ferry-rootfs` (without `probe`)
/// or the demo's (with the probe at /probe, and `nobody` in /etc/passwd).
pub fn busybox_rootfs(rootfs: &Path, probe: Option<&Path>) -> Result<()> {
    if rootfs.exists() {
        std::fs::remove_dir_all(rootfs)
            .with_context(|| format!("failed to clear {}", rootfs.display()))?;
    }
    for dir in ["bin", "etc", "root", "tmp", "proc", "dev", "sys"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(util::BUSYBOX.0, rootfs.join("bin/busybox"))
        .with_context(|| format!("failed to copy {}", util::BUSYBOX.0))?;
    let list = Command::new(util::BUSYBOX.0).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
    {
        symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    if let Some(probe) = probe {
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
        std::fs::copy(probe, rootfs.join("probe"))?;
    } else {
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
        std::fs::write(rootfs.join("etc/hostname"), "ferry-rootfs\n")?;
    }
    Ok(())
}
