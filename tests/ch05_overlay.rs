//! Chapter 5 — copy-on-write layers and volumes: the container's root is an overlay
//! of the rootfs and a layer of its own; volumes, tmpfs mounts and devices.
//! See chapters/05-overlay.md.
//!
//! Harmless when the chapter is missing: a container writes only inside the test's
//! own rootfs and temp dir, and hostile images aim at canaries in that temp dir.

mod support;

use std::path::Path;

use support::fixture::tree_listing;
use support::{token, TestHost};

/// The changes between two tree listings, for a readable failure.
fn differences(before: &[String], after: &[String]) -> String {
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    format!("new or changed: {new:#?}\ngone: {gone:#?}")
}

#[test]
fn writes_deletes_and_renames_never_touch_the_rootfs() {
    let host = TestHost::new();
    let (file, dir) = (format!("file-{}", token()), format!("dir-{}", token()));
    std::fs::write(host.rootfs.join(&file), "lower\n").unwrap();
    std::fs::create_dir(host.rootfs.join(&dir)).unwrap();
    std::fs::write(host.rootfs.join(&dir).join("inside"), "lower").unwrap();
    let before = tree_listing(&host.rootfs);
    let new = format!("new-{}", token());
    let script = format!(
        "echo changed >> /{file} && rm /etc/group && mv /{dir} /{dir}-moved && echo x > /{new} \
         && mkdir -p /deep/er && cat /{file}"
    );
    let out = host.run(&["sh", "-c", &script]).output();
    out.assert_success()
        .assert_stdout_contains("lower\nchanged");
    let after = tree_listing(&host.rootfs);
    assert_eq!(
        before,
        after,
        "the container changed its rootfs directory\n{}\n{out}",
        differences(&before, &after)
    );
}

#[test]
fn the_upper_layer_holds_the_difference_with_whiteouts() {
    let host = TestHost::new();
    let marker = token();
    std::fs::create_dir(host.rootfs.join("opaque")).unwrap();
    std::fs::write(host.rootfs.join("opaque/old"), "").unwrap();
    // Read one file, change another, delete a third, replace a directory.
    let script = format!(
        "cat /etc/passwd > /dev/null; echo x >> /etc/group; rm /bin/vi; rm -r /opaque; mkdir /opaque; \
         touch /opaque/new; : > /ready-{marker}; read x; true"
    );
    let mut running = host.run(&["sh", "-c", &script]).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let upper = loop {
        let found = std::fs::read_dir(host.state.join("containers"))
            .ok()
            .and_then(|mut dirs| dirs.next())
            .map(|dir| dir.unwrap().path().join("upper"));
        if let Some(upper) = found.filter(|u| u.join(format!("ready-{marker}")).exists()) {
            break upper;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the container's upper layer did not show its write within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let whiteout = std::fs::symlink_metadata(upper.join("bin/vi")).unwrap();
    let copied = upper.join("etc/group").exists();
    let read_only = upper.join("etc/passwd").exists();
    let opaque = xattr(&upper.join("opaque"), "trusted.overlay.opaque");
    running.close_stdin();
    running.wait().assert_success();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "a deleted lower file is a 0:0 character device (a whiteout) in the upper"
    );
    assert!(copied, "a changed file is copied up");
    assert!(!read_only, "a file that is only read stays in the lower");
    assert_eq!(
        opaque.as_deref(),
        Some(&b"y"[..]),
        "a replaced directory is opaque"
    );
}

/// An extended attribute of `path` (lgetxattr(2)).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = std::ffi::CString::new(name).ok()?;
    let mut value = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and live across the call; the kernel
    // writes at most value.len() bytes into the buffer we own.
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (len >= 0).then(|| value[..len as usize].to_vec())
}

#[test]
fn a_host_directory_is_bound_and_ro_is_read_only_all_the_way_down() {
    let mut host = TestHost::new();
    let shared = host.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    let secret = token();
    let out = host
        .run(&[
            "-v",
            &format!("{}:/shared", shared.display()),
            "sh",
            "-c",
            &format!("echo {secret} > /shared/note"),
        ])
        .output();
    out.assert_success();
    assert_eq!(
        std::fs::read_to_string(shared.join("note")).unwrap().trim(),
        secret
    );
    // A mount inside the volume's directory (on the host) must be read-only too.
    let sub = shared.join("sub");
    host.mount(&["-t", "tmpfs", "inner", sub.to_str().unwrap()]);
    let script = "touch /ro/x 2>&1; touch /ro/sub/y 2>&1; true";
    let out = host
        .run(&[
            "-v",
            &format!("{}:/ro:ro", shared.display()),
            "sh",
            "-c",
            script,
        ])
        .output();
    out.assert_success();
    assert_eq!(
        out.stdout.matches("Read-only file system").count(),
        2,
        "both the volume and what is below it must be read-only\n{out}"
    );
    assert!(!shared.join("x").exists());
}

#[test]
fn named_volumes_outlive_containers_and_are_seeded_from_the_image() {
    let host = TestHost::new();
    let name = format!("vol-{}", token());
    std::fs::create_dir(host.rootfs.join("seeded")).unwrap();
    std::fs::write(host.rootfs.join("seeded/from-image"), "seed").unwrap();
    let data = token();
    host.run(&[
        "-v",
        &format!("{name}:/seeded"),
        "sh",
        "-c",
        &format!("echo {data} > /seeded/mine"),
    ])
    .output()
    .assert_success();
    let out = host
        .run(&[
            "-v",
            &format!("{name}:/seeded"),
            "cat",
            "/seeded/from-image",
            "/seeded/mine",
        ])
        .output();
    out.assert_success()
        .assert_stdout_contains("seed")
        .assert_stdout_contains(&data);
    let listing = host.engine(&["volume", "ls", "-q"]).output();
    listing.assert_success().assert_stdout_contains(&name);
    let inspect = host.engine(&["volume", "inspect", &name]).output();
    inspect.assert_success();
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let mountpoint = json[0]["Mountpoint"].as_str().unwrap().to_string();
    assert!(Path::new(&mountpoint).join("mine").exists(), "{inspect}");
    host.engine(&["volume", "rm", &name])
        .output()
        .assert_success();
    host.engine(&["volume", "inspect", &name])
        .output()
        .assert_code(1);
    assert!(!Path::new(&mountpoint).exists());
}

#[test]
fn anonymous_volumes_go_with_their_container() {
    let host = TestHost::new();
    host.run(&["-v", "/cache", "sh", "-c", "echo x > /cache/file"])
        .output()
        .assert_success();
    let listing = host.engine(&["volume", "ls", "-q"]).output();
    listing.assert_success();
    assert_eq!(listing.stdout.trim(), "", "{listing}");
}

#[test]
fn tmpfs_mounts_have_their_size_and_mode() {
    let host = TestHost::new();
    let script = "stat -c %a /scratch; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1; true";
    let out = host
        .run(&["--tmpfs", "/scratch:size=1m,mode=1770", "sh", "-c", script])
        .output();
    out.assert_success()
        .assert_stdout_contains("1770")
        .assert_stdout_contains("No space left on device");
    let out = host
        .run(&[
            "--mount",
            "type=tmpfs,target=/run/t,tmpfs-size=64k",
            "sh",
            "-c",
            "grep /run/t /proc/mounts",
        ])
        .output();
    out.assert_success().assert_stdout_contains("size=64k");
}

#[test]
fn a_device_is_usable_by_its_name_only() {
    let host = TestHost::new();
    let script =
        "echo gone > /dev/sink && echo wrote; mknod /dev/other c 1 3 && echo x > /dev/other; true";
    let out = host
        .run(&[
            "--device",
            "/dev/null:/dev/sink",
            "--cap-add",
            "MKNOD",
            "sh",
            "-c",
            script,
        ])
        .output();
    out.assert_success().assert_stdout_contains("wrote");
    assert!(
        out.stderr.contains("Permission denied") || out.stdout.contains("Permission denied"),
        "a node made with mknod stays unusable (chapter 4's nodev)\n{out}"
    );
    let out = host
        .run(&["--device", "/dev/null:/dev/sink:r", "true"])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("readable and writable");
}

#[test]
fn a_symlinked_volume_target_never_mounts_onto_the_host() {
    let host = TestHost::new();
    let outside = host.dir.join(format!("outside-{}", token()));
    std::fs::create_dir(&outside).unwrap();
    let canary = outside.join("canary");
    std::fs::write(&canary, "untouched").unwrap();
    std::fs::create_dir_all(host.rootfs.join("mnt")).unwrap();
    std::os::unix::fs::symlink(&outside, host.rootfs.join("mnt/evil")).unwrap();
    std::os::unix::fs::symlink("../../..", host.rootfs.join("mnt/up")).unwrap();
    let source = host.dir.join("source");
    std::fs::create_dir(&source).unwrap();
    for target in ["/mnt/evil", "/mnt/evil/x", "/mnt/up/tmp"] {
        let out = host
            .run(&[
                "-v",
                &format!("{}:{target}", source.display()),
                "sh",
                "-c",
                "echo pwned > /mnt/evil/canary",
            ])
            .output();
        out.assert_code(125).assert_stderr_contains("is a symlink");
    }
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
}

#[test]
fn bad_mount_flags_are_clear_errors_before_anything_starts() {
    let host = TestHost::new();
    let missing = host.dir.join(format!("missing-{}", token()));
    let cases: &[(&[&str], &str)] = &[
        (
            &["-v", &format!("{}:/data", missing.display())],
            "cannot be used",
        ),
        (&["-v", "/tmp:data"], "use [SOURCE:]TARGET[:ro]"),
        (&["-v", "/tmp:/data:z"], "unknown option \"z\""),
        (&["--mount", "type=nfs,target=/x"], "unknown type \"nfs\""),
        (&["--tmpfs", "/t:exec"], "unknown option \"exec\""),
        (
            &["-v", "/tmp:/a", "-v", "/tmp:/a"],
            "two mounts have this destination",
        ),
        (&["--device", "/etc/passwd"], "not a device node"),
        (
            &["--tmpfs", "/proc"],
            "/proc, /sys and /dev itself are the runtime's",
        ),
        (
            &["-v", "/tmp:/proc/sys/kernel"],
            "/proc, /sys and /dev itself are the runtime's",
        ),
        (
            &["--mount", "type=tmpfs,target=/sys/fs"],
            "/proc, /sys and /dev itself are the runtime's",
        ),
    ];
    for (flags, message) in cases {
        let mut args = flags.to_vec();
        args.push("true");
        let out = host.run(&args).output();
        out.assert_code(125).assert_stderr_contains(message);
    }
    assert!(host.container_dirs().is_empty());
}

#[test]
fn volume_ls_prints_dockers_table() {
    let host = TestHost::new();
    for name in ["alpha", "beta-longer-name"] {
        host.engine(&["volume", "create", name])
            .output()
            .assert_success();
    }
    let out = host.engine(&["volume", "ls"]).output();
    out.assert_success();
    snapshot!(host, &[], "ch05_volume_ls", out.stdout);
    let out = host.engine(&["volume", "rm", "gamma"]).output();
    out.assert_code(1);
    snapshot!(host, &[], "ch05_volume_rm_missing", out.stderr);
}

#[test]
fn device_nodes_made_in_a_volume_stay_unusable() {
    let host = TestHost::new();
    let dir = host.dir.join(format!("vol-{}", token()));
    std::fs::create_dir(&dir).unwrap();
    // 1:3 is /dev/null: harmless even where the defence is missing.
    let script = "mknod /data/null c 1 3 && echo x > /data/null && echo opened; true";
    let out = host
        .run(&[
            "-v",
            &format!("{}:/data", dir.display()),
            "sh",
            "-c",
            script,
        ])
        .output();
    out.assert_success();
    assert!(
        !out.stdout.contains("opened"),
        "a device node made in a volume could be opened: volumes must be nodev\n{out}"
    );
}

#[test]
fn the_engine_keeps_its_state_to_itself() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let host = TestHost::new();
    let owner = format!("owned-{}", token());
    std::fs::create_dir(host.rootfs.join(&owner)).unwrap();
    std::fs::set_permissions(
        host.rootfs.join(&owner),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::chown(host.rootfs.join(&owner), Some(1000), Some(1000)).unwrap();
    let volume = format!("v-{}", token());
    let marker = token();
    let script = format!(": > /ready-{marker}; stat -c '%a %u:%g' /{owner}; read x; true");
    let mut running = host
        .run(&["-v", &format!("{volume}:/{owner}"), "sh", "-c", &script])
        .spawn();
    support::wait_for_container_file(&host, &format!("ready-{marker}"));
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let containers = mode(&host.state.join("containers"));
    let volumes = mode(&host.state.join("volumes"));
    running.close_stdin();
    let out = running.wait();
    out.assert_success();
    assert_eq!(
        (containers, volumes),
        (0o700, 0o700),
        "the containers' layers and the volumes are root's alone"
    );
    assert!(
        out.stdout.contains("750 1000:1000"),
        "a seeded volume keeps its directory's mode and owner\n{out}"
    );
    let data = host.state.join("volumes").join(&volume).join("_data");
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), 1000);
}
