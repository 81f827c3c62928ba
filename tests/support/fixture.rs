//! The fixture rootfs: the host's static busybox, its applets as symlinks, a
//! passwd and group file, and the probe. Built per test, deterministically.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
ferry:x:1000:1000:ferry test user:/home/ferry:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\n\
daemon:x:1:\n\
tty:x:5:\n\
ferry:x:1000:\n\
audio:x:29:ferry\n\
nogroup:x:65534:\n";

/// The host's static busybox: where busybox-static installs it.
fn busybox() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        let candidates = ["/bin/busybox", "/usr/bin/busybox"];
        let found = candidates.iter().map(PathBuf::from).find(|p| p.exists());
        let path = found.unwrap_or_else(|| {
            panic!(
                "the fixture rootfs needs a static busybox and none is installed.\n\
                 install it with: sudo apt-get install busybox-static\n\
                 (`cargo xtask check N` and the README's commands install it for you)"
            )
        });
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !has_interpreter(&bytes),
            "{} is dynamically linked, so it cannot run in a rootfs without a libc.\n\
             install the static one with: sudo apt-get install busybox-static",
            path.display()
        );
        path
    })
}

/// The applets busybox provides (`busybox --list`).
fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let output = std::process::Command::new(busybox())
            .arg("--list")
            .output()
            .unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|name| *name != "busybox" && !name.is_empty())
            .map(String::from)
            .collect()
    })
}

/// Makes a rootfs at `root`: /bin (busybox and its applets), /etc, /tmp, /root, /probe.
pub fn build_rootfs(root: &Path) {
    for dir in [
        "bin",
        "etc",
        "root",
        "tmp",
        "home/ferry",
        "proc",
        "dev",
        "sys",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for applet in applets() {
        // Relative links: they resolve inside the rootfs whether or not the process
        // has entered it (chapter 0 runs the rootfs's programs from the host's view).
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(root.join("etc/group"), GROUP).unwrap();
    std::fs::write(root.join("etc/hostname"), "fixture\n").unwrap();
    let probe = root.join("probe");
    std::fs::copy(super::probe::binary(), &probe).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether an ELF64 file asks for a dynamic loader (has a PT_INTERP program header).
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read = |at: usize, len: usize| -> u64 {
        let mut value = 0u64;
        for (i, byte) in elf.get(at..at + len).unwrap_or(&[]).iter().enumerate() {
            value |= u64::from(*byte) << (8 * i);
        }
        value
    };
    let (offset, size, count) = (
        read(0x20, 8) as usize,
        read(0x36, 2) as usize,
        read(0x38, 2) as usize,
    );
    (0..count).any(|i| read(offset + i * size, 4) as u32 == PT_INTERP)
}

/// Everything observable about a directory tree, one line per entry, sorted: path,
/// type, mode, size, mtime, and the contents' hash (files) or target (symlinks).
/// Equal before and after a run means the run wrote nothing into it.
pub fn tree_listing(root: &Path) -> Vec<String> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut lines = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let detail = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_file() {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
            format!("#{:016x}", hasher.finish())
        } else {
            String::new()
        };
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        lines.push(format!(
            "/{relative} mode={:o} size={} mtime={}.{} {detail}",
            meta.mode(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    lines.sort();
    lines
}
