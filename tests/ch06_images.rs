//! Chapter 6 — images in a local store: references, layers and whiteouts, secure
//! unpacking, load/save/import/tag/rmi/history/inspect, `run IMAGE`.
//! See chapters/06-images.md.
//!
//! Every image is made here, offline (tests/support/images.rs). Hostile layers aim
//! only at canaries inside the test's temp dir.

mod support;

use std::path::Path;

use support::images::{self, Entry};
use support::{token, TestHost};

/// The fixture rootfs as one layer.
fn base_layer(host: &TestHost) -> Vec<u8> {
    images::tar_of_dir(&host.rootfs)
}

fn file(name: &str, body: &str) -> Entry {
    Entry::File(name.to_string(), body.as_bytes().to_vec(), 0o755)
}

/// Loads an OCI archive of `layers` with `run` as its config; the image's name.
fn load_image(host: &TestHost, layers: &[Vec<u8>], run: serde_json::Value) -> String {
    let name = format!("test/app-{}:v1", token());
    let archive = host.dir.join(format!("image-{}.tar", token()));
    images::oci_archive(
        &archive,
        layers,
        &images::config(layers, run),
        Some(&format!("docker.io/{name}")),
    );
    let out = host
        .engine(&["load", "-i", archive.to_str().unwrap()])
        .output();
    out.assert_success()
        .assert_stdout_contains("Loaded image: test/app-");
    name
}

/// Loads `archive`, which must name its image `name`, and runs it with its own
/// command, which must say `said`.
fn load_and_run(host: &TestHost, archive: &Path, name: &str, said: &str) {
    host.engine(&["load", "-i", archive.to_str().unwrap()])
        .output()
        .assert_success()
        .assert_stdout_contains(&format!("Loaded image: {name}"));
    run_image(host, name, &[])
        .output()
        .assert_success()
        .assert_stdout_contains(said);
}

/// `ENGINE run --cgroup-parent P IMAGE ARGS...`
fn run_image<'h>(host: &'h TestHost, image: &str, args: &[&str]) -> support::Invocation<'h> {
    let mut all = vec!["run", "--rm", "--cgroup-parent", &host.cgroup_parent, image];
    all.extend_from_slice(args);
    host.engine(&all)
}

#[test]
fn an_imported_rootfs_runs_as_an_image() {
    let host = TestHost::new();
    let tarball = host.dir.join("rootfs.tar");
    std::fs::write(&tarball, base_layer(&host)).unwrap();
    let name = format!("imported-{}:1", token());
    let out = host
        .engine(&["import", tarball.to_str().unwrap(), &name])
        .output();
    out.assert_success().assert_stdout_contains("sha256:");
    let said = token();
    let out = run_image(&host, &name, &["sh", "-c", &format!("echo {said}")]).output();
    out.assert_success().assert_stdout_contains(&said);
    let listing = host.engine(&["images"]).output();
    listing
        .assert_success()
        .assert_stdout_contains(name.split(':').next().unwrap());
}

#[test]
fn layers_stack_with_whiteouts_and_the_config_applies() {
    let host = TestHost::new();
    let top = images::layer(&[
        Entry::Dir("app/"),
        file(
            "app/hello",
            "#!/bin/sh\necho \"hello $GREETING from $(pwd)\"\n",
        ),
        file("bin/.wh.vi", ""),
    ]);
    let run = serde_json::json!({
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=image"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["/app/hello; ls /bin/vi 2>&1; true"],
        "WorkingDir": "/app",
    });
    let name = load_image(&host, &[base_layer(&host), top], run);
    let out = run_image(&host, &name, &[]).output();
    out.assert_success()
        .assert_stdout_contains("hello image from /app")
        .assert_stdout_contains("No such file");
    // The user's arguments replace CMD; -e wins over the image's Env.
    let cgroup = host.cgroup_parent.as_str();
    let out = host
        .engine(&[
            "run",
            "--rm",
            "--cgroup-parent",
            cgroup,
            "-e",
            "GREETING=user",
            &name,
            "/app/hello",
        ])
        .output();
    out.assert_success()
        .assert_stdout_contains("hello user from /app");
    // --entrypoint replaces ENTRYPOINT and drops CMD.
    let out = host
        .engine(&[
            "run",
            "--rm",
            "--cgroup-parent",
            cgroup,
            "--entrypoint",
            "/bin/echo",
            &name,
            "plain",
        ])
        .output();
    out.assert_success().assert_stdout_contains("plain");
}

#[test]
fn a_docker_save_archive_loads_and_runs() {
    let host = TestHost::new();
    let layers = vec![base_layer(&host)];
    let config = images::config(
        &layers,
        serde_json::json!({"Cmd": ["echo", "from-docker-archive"]}),
    );
    let archive = host.dir.join("docker.tar");
    let tag = format!("legacy-{}:latest", token());
    images::docker_archive(&archive, &layers, &config, &tag);
    load_and_run(&host, &archive, &tag, "from-docker-archive");
}

#[test]
fn save_then_load_gives_the_same_image_back() {
    let host = TestHost::new();
    let name = load_image(
        &host,
        &[base_layer(&host)],
        serde_json::json!({"Cmd": ["true"]}),
    );
    let id = host
        .engine(&["images", "-q"])
        .output()
        .stdout
        .trim()
        .to_string();
    let saved = host.dir.join("saved.tar");
    host.engine(&["save", "-o", saved.to_str().unwrap(), &name])
        .output()
        .assert_success();
    host.engine(&["rmi", &name]).output().assert_success();
    assert_eq!(host.engine(&["images", "-q"]).output().stdout.trim(), "");
    let out = host
        .engine(&["load", "-i", saved.to_str().unwrap()])
        .output();
    out.assert_success();
    assert_eq!(host.engine(&["images", "-q"]).output().stdout.trim(), id);
    run_image(&host, &name, &["true"]).output().assert_success();
    // By id prefix, and by another name.
    host.engine(&["tag", &id[..8], "other/name:2"])
        .output()
        .assert_success();
    run_image(&host, "other/name:2", &["true"])
        .output()
        .assert_success();
    let history = host.engine(&["history", &name]).output();
    history
        .assert_success()
        .assert_stdout_contains("CREATED BY");
    let inspect = host.engine(&["image", "inspect", &name]).output();
    inspect.assert_success();
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert!(
        json[0]["Id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sha256:{id}")),
        "{inspect}"
    );
}

#[test]
fn sixty_layers_still_mount() {
    let host = TestHost::new();
    let mut layers = vec![base_layer(&host)];
    for i in 1..60 {
        layers.push(images::layer(&[file(
            &format!("layer-{i}"),
            &format!("{i}\n"),
        )]));
    }
    let name = load_image(
        &host,
        &layers,
        serde_json::json!({"Cmd": ["sh", "-c", "cat /layer-1 /layer-59"]}),
    );
    run_image(&host, &name, &[])
        .output()
        .assert_success()
        .assert_stdout_contains("1\n59");
}

#[test]
fn hostile_layers_are_refused_and_the_host_is_untouched() {
    let host = TestHost::new();
    let canary = host.canary("canary", "untouched");
    let depth = "../".repeat(host.dir.components().count() + 4);
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "dot-dot",
            vec![file(&format!("{depth}{}", canary.display()), "pwned")],
        ),
        (
            "symlink then write",
            vec![
                Entry::Symlink("escape".into(), host.dir.display().to_string()),
                file("escape/canary", "pwned"),
            ],
        ),
        (
            "hard link out",
            vec![Entry::HardLink("link".into(), canary.display().to_string())],
        ),
    ];
    for (what, entries) in cases {
        let layers = vec![images::layer(&entries)];
        let archive = host.dir.join(format!("hostile-{}.tar", token()));
        images::oci_archive(
            &archive,
            &layers,
            &images::config(&layers, serde_json::json!({})),
            Some("docker.io/library/hostile:1"),
        );
        let out = host
            .engine(&["load", "-i", archive.to_str().unwrap()])
            .output();
        assert_ne!(
            out.code, 0,
            "a hostile layer ({what}) must be refused\n{out}"
        );
        assert_eq!(
            std::fs::read_to_string(&canary).unwrap(),
            "untouched",
            "{what}\n{out}"
        );
    }
    // Nothing half-loaded is left to run.
    assert_eq!(host.engine(&["images", "-q"]).output().stdout.trim(), "");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let host = TestHost::new();
    let layers = vec![base_layer(&host)];
    let archive = host.dir.join("tampered.tar");
    images::oci_archive(
        &archive,
        &layers,
        &images::config(&layers, serde_json::json!({})),
        Some("docker.io/library/t:1"),
    );
    // Flip one byte deep inside the archive (a layer's content).
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let out = host
        .engine(&["load", "-i", archive.to_str().unwrap()])
        .output();
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("digest") || out.stderr.contains("archive"),
        "{out}"
    );
}

#[test]
fn bad_references_and_missing_images_are_clear_errors() {
    let host = TestHost::new();
    let out = host
        .engine(&["run", "--pull", "never", "no-such-image", "true"])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("no such image: no-such-image");
    let out = host.engine(&["tag", "x", "UPPER"]).output();
    out.assert_code(1);
    let out = host.engine(&["rmi", "nothing-here"]).output();
    out.assert_code(1).assert_stderr_contains("no such image");
    assert!(
        !Path::new(&host.state).join("containers").exists() || host.container_dirs().is_empty()
    );
}

/// A tool of the host, or a failure that says how to get it (the harness never
/// installs packages; `cargo xtask test` and CI do).
fn tool(name: &str) -> &str {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "this test needs {name}: sudo apt-get install {name} (cargo xtask test installs it)"
    );
    name
}

fn sh(command: &str) -> std::process::Output {
    let out = std::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "$ {command}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn skopeo_and_umoci_read_what_ferry_saves() {
    let host = TestHost::new();
    let (skopeo, umoci) = (tool("skopeo"), tool("umoci"));
    let name = load_image(
        &host,
        &[base_layer(&host)],
        serde_json::json!({"Cmd": ["true"]}),
    );
    let saved = host.dir.join("saved.tar");
    host.engine(&["save", "-o", saved.to_str().unwrap(), &name])
        .output()
        .assert_success();
    let out = sh(&format!(
        "{skopeo} inspect --raw oci-archive:{}",
        saved.display()
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("layers"));
    let layout = host.dir.join("layout");
    std::fs::create_dir(&layout).unwrap();
    sh(&format!(
        "tar -xf {} -C {}",
        saved.display(),
        layout.display()
    ));
    let full = format!("docker.io/{name}");
    sh(&format!(
        "{umoci} unpack --image {}:{full} {}",
        layout.display(),
        host.dir.join("bundle").display()
    ));
    assert!(host.dir.join("bundle/rootfs/bin/busybox").exists());
}

#[test]
fn an_image_made_by_umoci_loads_and_runs_with_its_config() {
    let host = TestHost::new();
    let umoci = tool("umoci");
    let layout = host.dir.join("umoci-layout");
    let bundle = host.dir.join("umoci-bundle");
    let said = token();
    sh(&format!(
        "{umoci} init --layout {0} && {umoci} new --image {0}:app",
        layout.display()
    ));
    sh(&format!(
        "{umoci} unpack --image {}:app {}",
        layout.display(),
        bundle.display()
    ));
    sh(&format!(
        "cp -a {}/. {}/rootfs/",
        host.rootfs.display(),
        bundle.display()
    ));
    sh(&format!(
        "{umoci} repack --image {}:app {}",
        layout.display(),
        bundle.display()
    ));
    sh(&format!(
        "{umoci} config --image {}:app --config.cmd sh --config.cmd -c --config.cmd 'echo {said} $UMOCI_VAR' --config.env UMOCI_VAR=set",
        layout.display()
    ));
    let archive = host.dir.join("umoci.tar");
    sh(&format!(
        "tar -cf {} -C {} .",
        archive.display(),
        layout.display()
    ));
    let out = host
        .engine(&["load", "-i", archive.to_str().unwrap()])
        .output();
    out.assert_success();
    // umoci names the image by its tag only ("app"): it loads without a name.
    let id = host
        .engine(&["images", "-q"])
        .output()
        .stdout
        .trim()
        .to_string();
    assert!(!id.is_empty(), "{out}");
    run_image(&host, &id, &[])
        .output()
        .assert_success()
        .assert_stdout_contains(&format!("{said} set"));
}

#[test]
fn podman_and_ferry_read_each_others_archives() {
    let host = TestHost::new();
    let podman = tool("podman");
    // podman with a store of the test's own, so the host's images are untouched.
    let store = host.dir.join("podman");
    let podman = format!(
        "{podman} --root {0}/root --runroot {0}/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none",
        store.display()
    );
    let tarball = host.dir.join("rootfs.tar");
    std::fs::write(&tarball, base_layer(&host)).unwrap();
    let said = token();
    let name = format!("localhost/pm-{}:1", token());
    sh(&format!(
        "{podman} import --change 'CMD [\"sh\",\"-c\",\"echo {said}\"]' {} {name}",
        tarball.display()
    ));
    for format in ["oci-archive", "docker-archive"] {
        let archive = host.dir.join(format!("{format}.tar"));
        sh(&format!(
            "{podman} save --format {format} -o {} {name}",
            archive.display()
        ));
        load_and_run(&host, &archive, &name, &said);
    }
    let saved = host.dir.join("ferry.tar");
    host.engine(&["save", "-o", saved.to_str().unwrap(), &name])
        .output()
        .assert_success();
    sh(&format!(
        "{podman} rmi {name} && {podman} load -i {}",
        saved.display()
    ));
    let listed = sh(&format!(
        "{podman} images --format '{{{{.Repository}}}}:{{{{.Tag}}}}'"
    ));
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&name));
}

#[test]
fn hostile_names_that_are_clamped_or_replaced_stay_inside_the_layer() {
    let host = TestHost::new();
    let canary = host.canary("canary", "untouched");
    let canary_path = canary.display().to_string();
    // An absolute name is made relative to the layer; a link then a file of the
    // same name replaces the link instead of writing through it.
    let layers = vec![
        base_layer(&host),
        images::layer(&[
            file(&canary_path, "clamped"),
            Entry::Symlink("x".into(), canary_path.clone()),
            file("x", "replaced"),
            Entry::HardLink("y".into(), "x".into()),
            file("y", "also replaced"),
        ]),
    ];
    let name = load_image(
        &host,
        &layers,
        serde_json::json!({"Cmd": ["sh", "-c", &format!("cat {canary_path}; echo; cat /x; echo; cat /y")]}),
    );
    let out = run_image(&host, &name, &[]).output();
    out.assert_success()
        .assert_stdout_contains("clamped\nreplaced\nalso replaced");
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "untouched",
        "{out}"
    );
}

/// A tar whose first entry carries a GNU long name of `len` bytes.
fn long_name_archive(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(len as u64);
    header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + len.div_ceil(512) * 512, b'a');
    out.extend_from_slice(&images::layer(&[file("after", "x")]));
    out
}

#[test]
fn archive_headers_and_failed_loads_cannot_fill_memory_or_the_store() {
    let host = TestHost::new();
    // 64 MiB of long name, gzipped to a few kB: read into memory whole by a naive
    // tar parser.
    let bomb = host.dir.join("bomb.tar.gz");
    std::fs::write(&bomb, images::gzip(&long_name_archive(64 << 20))).unwrap();
    let out = host
        .engine(&["load", "-i", bomb.to_str().unwrap()])
        .output();
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("over their limit") || out.stderr.contains("extension headers"),
        "{out}"
    );
    // A failed load leaves nothing in the store.
    let junk = host.dir.join("junk.tar");
    let blob = vec![b'z'; 1 << 20];
    let mut builder = tar::Builder::new(std::fs::File::create(&junk).unwrap());
    let mut header = tar::Header::new_ustar();
    header.set_size(blob.len() as u64);
    header.set_cksum();
    builder
        .append_data(&mut header, "l0/layer.tar", &blob[..])
        .unwrap();
    builder.finish().unwrap();
    drop(builder);
    let out = host
        .engine(&["load", "-i", junk.to_str().unwrap()])
        .output();
    out.assert_code(1)
        .assert_stderr_contains("neither index.json nor manifest.json");
    let blobs = host.state.join("images/blobs/sha256");
    let left = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a failed load left {left} blobs in the store");
}

#[test]
fn save_never_writes_through_a_planted_file() {
    let host = TestHost::new();
    let name = load_image(
        &host,
        &[base_layer(&host)],
        serde_json::json!({"Cmd": ["true"]}),
    );
    let victim = host.canary("victim", "untouched");
    for planted in ["out.partial", "out.tar.partial", ".out.tar.partial"] {
        let _ = std::os::unix::fs::symlink(&victim, host.dir.join(planted));
    }
    let out = host.dir.join("out.tar");
    host.engine(&["save", "-o", out.to_str().unwrap(), &name])
        .output()
        .assert_success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(!std::fs::symlink_metadata(&out)
        .unwrap()
        .file_type()
        .is_symlink());
}
