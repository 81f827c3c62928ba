//! A page's scratch directory: what a reader has at hand when they follow the page,
//! and nothing of the machine's own state.
//!
//! ```text
//! DIR/bin/ferry, myferry       the reference engine, with this page's --root and
//!                              --cgroup-parent unless the command names its own (PATH)
//! DIR/work/                    the commands' working directory:
//!   target/debug/ferry, myferry     the same, for `./target/debug/ferry ...`
//!   target/demo/rootfs              the rootfs `cargo xtask demo` leaves there
//! DIR/home/                    HOME, with setup's ~/ferry-rootfs; docker's config.json goes here
//! DIR/state/                   the engine's state root
//! DIR/tmp/                     mounted on /tmp for the page
//! ```

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Result;

use crate::manifest::project_root;
use crate::util;

pub struct Scratch {
    pub dir: PathBuf,
    /// The cgroup parent the engine's containers get, `/ferry-snippets-PID-N`.
    pub cgroup_parent: String,
}

impl Scratch {
    /// A fresh scratch directory for the `n`th page of this run.
    pub fn create(page: &Path, n: usize, engine: &Path, probe: &Path) -> Result<Scratch> {
        let stem = page.file_stem().unwrap_or_default().to_string_lossy();
        let scratch = Scratch {
            dir: base().join(format!("{n:02}-{stem}")),
            cgroup_parent: format!("/ferry-snippets-{}-{n}", std::process::id()),
        };
        scratch.remove();
        for dir in [
            "bin",
            "work/target/debug",
            "work/target/demo",
            "home",
            "state",
            "tmp",
        ] {
            std::fs::create_dir_all(scratch.dir.join(dir))?;
        }
        std::fs::set_permissions(
            scratch.dir.join("tmp"),
            std::fs::Permissions::from_mode(0o1777),
        )?;
        let wrapper = scratch.dir.join("bin/ferry");
        std::fs::write(&wrapper, scratch.wrapper(engine))?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
        symlink("ferry", scratch.dir.join("bin/myferry"))?;
        for name in ["ferry", "myferry"] {
            symlink(&wrapper, scratch.dir.join("work/target/debug").join(name))?;
        }
        crate::fixture::busybox_rootfs(&scratch.dir.join("work/target/demo/rootfs"), Some(probe))?;
        crate::fixture::busybox_rootfs(&scratch.dir.join("home/ferry-rootfs"), None)?;
        Ok(scratch)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The engine as the page's commands call it (see the module's doc).
    fn wrapper(&self, engine: &Path) -> String {
        format!(
            r#"#!/bin/bash
# cargo xtask snippets: the reference engine with the page's state root, and its cgroup
# parent for `run` and `create`, unless the command names its own.
args=("$@")
named() {{ local a; for a in "${{args[@]}}"; do [[ $a == "$1" || $a == "$1="* ]] && return 0; done; return 1; }}
globals=()
named --root || globals=(--root {state})
i=0
while (( i < ${{#args[@]}} )); do
  case ${{args[i]}} in
    --root) (( i += 2 )) ;;
    --root=*|--debug) (( i += 1 )) ;;
    *) break ;;
  esac
done
if [[ ${{args[i]-}} == run || ${{args[i]-}} == create ]] && ! named --cgroup-parent; then
  args=("${{args[@]:0:i+1}}" --cgroup-parent {cgroup} "${{args[@]:i+1}}")
fi
exec {engine} "${{globals[@]}}" "${{args[@]}}"
"#,
            state = quote(&self.path("state").to_string_lossy()),
            cgroup = quote(&self.cgroup_parent),
            engine = quote(&engine.to_string_lossy()),
        )
    }

    /// Removes what the page left: its containers' cgroups (killing what is still in
    /// them), then the directory. The namespaces the session made are gone already.
    pub fn remove(&self) {
        remove_cgroups(&self.cgroup_parent);
        if self.dir.exists() {
            let _ = util::as_root("rm")
                .args(["-rf", "--one-file-system"])
                .arg(&self.dir)
                .status();
        }
    }
}

/// Where scratch directories go: target/snippets, unless the checkout is under /tmp
/// (which the pages get a private one of).
fn base() -> PathBuf {
    let target = project_root().join("target/snippets");
    if target.starts_with("/tmp") {
        PathBuf::from(format!("/var/tmp/ferry-snippets-{}", std::process::id()))
    } else {
        target
    }
}

/// A word as the shell needs it typed (single quotes when needed).
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Removes `parent` from every cgroup hierarchy, deepest first, after killing what is
/// still in it (cgroup.kill on v2, every pid of cgroup.procs on v1).
fn remove_cgroups(parent: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for mount in crate::mountinfo::parse(&mounts)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
    {
        let top = Path::new(&mount.mount_point).join(parent.trim_start_matches('/'));
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        for _ in 0..50 {
            for dir in dirs.iter().rev() {
                if dir.join("cgroup.kill").exists() {
                    let _ = util::as_root("sh")
                        .arg("-c")
                        .arg(format!(
                            "echo 1 > {}",
                            quote(&dir.join("cgroup.kill").to_string_lossy())
                        ))
                        .stderr(Stdio::null())
                        .status();
                }
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<&str> = procs.split_whitespace().collect();
                if !pids.is_empty() {
                    let _ = util::as_root("kill")
                        .arg("-KILL")
                        .args(&pids)
                        .stderr(Stdio::null())
                        .status();
                }
                let _ = util::as_root("rmdir")
                    .arg(dir)
                    .stderr(Stdio::null())
                    .status();
            }
            if !top.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&entry.path(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper's arguments to the engine, with `echo` as the engine.
    fn wrapped(args: &[&str]) -> String {
        let dir = std::env::temp_dir().join(format!("snippets-wrapper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scratch = Scratch {
            dir: dir.clone(),
            cgroup_parent: "/cg".into(),
        };
        let script = dir.join("ferry");
        std::fs::write(&script, scratch.wrapper(Path::new("/bin/echo"))).unwrap();
        let out = std::process::Command::new("bash")
            .arg(&script)
            .args(args)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .replace(&dir.display().to_string(), "DIR")
    }

    #[test]
    fn the_wrapper_adds_the_state_root_and_cgroup_parent_unless_given() {
        assert_eq!(wrapped(&["images"]), "--root DIR/state images");
        assert_eq!(
            wrapped(&["--debug", "run", "--rootfs", "r", "sh", "-c", "a b"]),
            "--root DIR/state --debug run --cgroup-parent /cg --rootfs r sh -c a b"
        );
        assert_eq!(
            wrapped(&["--root", "/tmp/f7", "run", "--cgroup-parent", "/x", "img"]),
            "--root /tmp/f7 run --cgroup-parent /x img"
        );
        assert_eq!(
            wrapped(&["--root=/tmp/f7", "pull", "a"]),
            "--root=/tmp/f7 pull a"
        );
    }
}
