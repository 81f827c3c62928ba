//! Chapter 7 — registries: pull and push over the distribution API, against a real
//! registry (CNCF distribution, Debian's `docker-registry`) the harness starts on
//! loopback per test, with no auth, htpasswd, a token server or TLS.
//! See chapters/07-registry.md.
//!
//! Everything is offline: images are made here (tests/support/images.rs) and put in
//! the registry by skopeo, never by the engine under test.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::faults::{Fault, Proxy, Seen};
use support::images::{self, Entry};
use support::registry::{self, Auth, Registry, RegistryOptions};
use support::{token, TestHost};

/// A layer holding `files` (path, contents).
fn files_layer(files: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(name, body)| Entry::File(name.to_string(), body.as_bytes().to_vec(), 0o644))
        .collect();
    images::layer(&entries)
}

/// An OCI archive of the fixture rootfs plus a layer of `files`, with `run` as its
/// config; skopeo's source string for it.
fn image(host: &TestHost, files: &[(&str, &str)], run: serde_json::Value) -> String {
    let layers = vec![images::tar_of_dir(&host.rootfs), files_layer(files)];
    let path = host.dir.join(format!("image-{}.tar", token()));
    images::oci_archive(&path, &layers, &images::config(&layers, run), None);
    format!("oci-archive:{}", path.display())
}

/// `ENGINE run --cgroup-parent P IMAGE ARGS...`
fn run_image<'h>(host: &'h TestHost, image: &str, args: &[&str]) -> support::Invocation<'h> {
    // On the machine's network (to reach the registry): no bridge of ferry's there.
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroup-parent",
        &host.cgroup_parent,
        image,
    ];
    all.extend_from_slice(args);
    host.engine(&all)
}

/// `ENGINE run --pull never ... IMAGE ARGS...`: the image must be in the store.
fn run_stored<'h>(host: &'h TestHost, image: &str, args: &[&str]) -> support::Invocation<'h> {
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "--cgroup-parent",
        &host.cgroup_parent,
        image,
    ];
    all.extend_from_slice(args);
    host.engine(&all)
}

/// The digest on a `Digest: sha256:...` line of a pull's output.
fn digest_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest: line in\n{stdout}"))
        .to_string()
}

/// The store's blob files and temporary files, to show that a failed pull left none.
fn store_files(host: &TestHost, sub: &str) -> Vec<String> {
    let dir = host.state.join("images").join(sub);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The requests the registry got since `before` of them, as "METHOD URI".
fn requests_since(registry: &Registry, before: usize) -> Vec<String> {
    registry.requests().into_iter().skip(before).collect()
}

/// Docker's config.json for the engine under test: a directory of the test's own.
fn docker_config(host: &TestHost) -> PathBuf {
    let dir = host.dir.join("docker-config");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn login(host: &TestHost, registry: &Registry, (user, password): (&str, &str)) -> support::Output {
    host.engine(&["login", "-u", user, "--password-stdin", &registry.host])
        .env("DOCKER_CONFIG", docker_config(host).to_str().unwrap())
        .stdin(format!("{password}\n").as_bytes())
        .output()
}

#[test]
fn an_image_pulled_by_tag_runs_with_its_config() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let said = token();
    let source = image(
        &host,
        &[("etc/said", &said)],
        json!({"Env": ["GREETING=ahoy"], "Cmd": ["sh", "-c", "cat /etc/said; echo $GREETING"]}),
    );
    registry.push_with_skopeo(&source, "test/app:v1", &[]);
    let name = format!("{}/test/app:v1", registry.host);

    let out = host.engine(&["pull", &name]).output();
    out.assert_success();
    snapshot!(
        host,
        &[&registry.host],
        "ch07_pull_first",
        out.stdout.clone()
    );
    let out = run_image(&host, &name, &[]).output();
    out.assert_success()
        .assert_stdout_contains(&said)
        .assert_stdout_contains("ahoy");
    host.engine(&["images"])
        .output()
        .assert_success()
        .assert_stdout_contains(&format!("{}/test/app", registry.host));
}

#[test]
fn a_second_pull_fetches_no_blob_and_pull_by_digest_pins_the_bytes() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    registry.push_with_skopeo(
        &image(&host, &[("etc/x", "x")], json!({})),
        "test/app:v1",
        &[],
    );
    let name = format!("{}/test/app:v1", registry.host);
    let first = host.engine(&["pull", &name]).output();
    first.assert_success();
    let digest = digest_line(&first.stdout);

    let before = registry.requests().len();
    let again = host.engine(&["pull", &name]).output();
    again
        .assert_success()
        .assert_stdout_contains("Already exists")
        .assert_stdout_contains(&format!("Status: Image is up to date for {name}"));
    let blobs: Vec<String> = requests_since(&registry, before)
        .into_iter()
        .filter(|r| r.contains("/blobs/"))
        .collect();
    assert!(blobs.is_empty(), "a second pull fetched blobs: {blobs:?}");
    snapshot!(
        host,
        &[&registry.host],
        "ch07_pull_again",
        again.stdout.clone()
    );

    // By digest, into a fresh store: the same image, and runnable by that name.
    let pinned = format!("{}/test/app@{digest}", registry.host);
    let other = TestHost::on_machine_network();
    let out = other.engine(&["pull", &pinned]).output();
    out.assert_success()
        .assert_stdout_contains(&format!("Digest: {digest}"));
    run_stored(&other, &pinned, &["cat", "/etc/x"])
        .output()
        .assert_success();
    // A digest nothing has: refused by the registry, not guessed.
    let wrong = format!("{}/test/app@sha256:{}", registry.host, "0".repeat(64));
    other
        .engine(&["pull", &wrong])
        .output()
        .assert_code(1)
        .assert_stderr_contains("not found");
}

/// Two platform images of the same name whose `/etc/arch` says which they are (both
/// run here: their layers are the fixture's).
fn platform_images(host: &TestHost, marker: &str) -> PathBuf {
    let dir = host.dir.join(format!("layout-{}", token()));
    let make = |arch: &'static str, variant: Option<&'static str>| {
        let layers = vec![
            images::tar_of_dir(&host.rootfs),
            files_layer(&[("etc/arch", &format!("{arch}-{marker}"))]),
        ];
        let mut config: serde_json::Value =
            serde_json::from_slice(&images::config(&layers, json!({}))).unwrap();
        config["architecture"] = json!(arch);
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        (arch, variant, serde_json::to_vec(&config).unwrap(), layers)
    };
    registry::multi_platform_layout(&dir, &[make("arm64", Some("v8")), make("amd64", None)]);
    dir
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

#[test]
fn an_oci_index_gives_this_machines_image_or_the_platform_asked_for() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let marker = token();
    let layout = platform_images(&host, &marker);
    registry.push_with_skopeo(
        &format!("oci:{}", layout.display()),
        "test/multi:v1",
        &["--all"],
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&registry.raw_manifest("test/multi:v1")).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let name = format!("{}/test/multi:v1", registry.host);

    run_image(&host, &name, &["cat", "/etc/arch"])
        .output()
        .assert_success()
        .assert_stdout_contains(&format!("{}-{marker}", host_arch()));
    let other = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    host.engine(&["pull", "--platform", &format!("linux/{other}"), &name])
        .output()
        .assert_success();
    run_stored(&host, &name, &["cat", "/etc/arch"])
        .output()
        .assert_success()
        .assert_stdout_contains(&format!("{other}-{marker}"));
    let out = host
        .engine(&["pull", "--platform", "linux/s390x", &name])
        .output();
    out.assert_code(1)
        .assert_stderr_contains("has no image for linux/s390x")
        .assert_stderr_contains("linux/arm64/v8, linux/amd64")
        .assert_stderr_contains("--platform");
}

#[test]
fn a_docker_manifest_list_and_schema2_images_pull() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let marker = token();
    let layout = platform_images(&host, &marker);
    registry.push_with_skopeo(
        &format!("oci:{}", layout.display()),
        "test/list:v1",
        &["--all", "--format", "v2s2"],
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&registry.raw_manifest("test/list:v1")).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    run_image(
        &host,
        &format!("{}/test/list:v1", registry.host),
        &["cat", "/etc/arch"],
    )
    .output()
    .assert_success()
    .assert_stdout_contains(&format!("{}-{marker}", host_arch()));

    let said = token();
    let source = image(&host, &[("etc/said", &said)], json!({}));
    registry.push_with_skopeo(&source, "test/s2:v1", &["--format", "v2s2"]);
    let raw: serde_json::Value =
        serde_json::from_slice(&registry.raw_manifest("test/s2:v1")).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    run_image(
        &host,
        &format!("{}/test/s2:v1", registry.host),
        &["cat", "/etc/said"],
    )
    .output()
    .assert_success()
    .assert_stdout_contains(&said);
}

#[test]
fn an_index_with_attestations_skips_them() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let said = token();
    let layers = vec![
        images::tar_of_dir(&host.rootfs),
        files_layer(&[("etc/said", &said)]),
    ];
    let config = images::config(&layers, json!({}));
    // The image's pieces, raw: layers gzipped, config, manifest.
    let mut descriptors = Vec::new();
    for layer in &layers {
        let blob = images::gzip(layer);
        let digest = registry.put_blob("test/att", &blob);
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": blob.len()}));
    }
    let config_digest = registry.put_blob("test/att", &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let image_digest = registry.put_manifest("test/att", "image", manifest_type, &manifest);
    // An attestation as buildkit writes one: a manifest for unknown/unknown.
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
    let statement_digest = registry.put_blob("test/att", statement);
    let empty = b"{}";
    let empty_digest = registry.put_blob("test/att", empty);
    let attestation = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement_digest, "size": statement.len()}],
    }))
    .unwrap();
    let attestation_digest = registry.put_manifest("test/att", "att", manifest_type, &attestation);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": manifest_type, "digest": attestation_digest, "size": attestation.len(),
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": image_digest}},
            {"mediaType": manifest_type, "digest": image_digest, "size": manifest.len(),
             "platform": {"os": "linux", "architecture": host_arch()}},
        ],
    }))
    .unwrap();
    registry.put_manifest(
        "test/att",
        "v1",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    run_image(
        &host,
        &format!("{}/test/att:v1", registry.host),
        &["cat", "/etc/said"],
    )
    .output()
    .assert_success()
    .assert_stdout_contains(&said);
}

/// Pushes an image, tampers with one of its files in the registry's storage, and
/// checks the pull fails naming the digest and leaves nothing in the store.
fn tampered_pull_fails(tamper: impl Fn(&Registry, &serde_json::Value, &str)) {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    registry.push_with_skopeo(
        &image(&host, &[("etc/x", "x")], json!({})),
        "test/app:v1",
        &[],
    );
    let raw = registry.raw_manifest("test/app:v1");
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    tamper(&registry, &manifest, &images::digest(&raw));

    let name = format!("{}/test/app:v1", registry.host);
    let out = host.engine(&["pull", &name]).output();
    out.assert_code(1)
        .assert_stderr_contains("does not match its digest")
        .assert_stderr_contains("nothing was stored");
    assert_eq!(store_files(&host, "blobs/sha256"), Vec::<String>::new());
    assert_eq!(store_files(&host, "layers"), Vec::<String>::new());
    assert_eq!(store_files(&host, "tmp"), Vec::<String>::new());
    run_stored(&host, &name, &["true"])
        .output()
        .assert_stderr_contains("no such image");
}

/// Flips one byte of `file` in place (same size, so that only a digest can tell).
fn flip_byte(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_tampered_layer_is_refused_and_nothing_half_written_stays() {
    tampered_pull_fails(|registry, manifest, _| {
        // The top layer (the small one): the middle of its gzip stream.
        let digest = manifest["layers"][1]["digest"].as_str().unwrap();
        let file = registry.blob_file(digest);
        let size = std::fs::metadata(&file).unwrap().len() as usize;
        flip_byte(&file, size / 2);
    });
}

#[test]
fn a_tampered_manifest_is_refused() {
    tampered_pull_fails(|registry, _, manifest_digest| {
        // A hex digit of a digest inside it: still valid JSON, same size.
        let file = registry.blob_file(manifest_digest);
        let text = std::fs::read_to_string(&file).unwrap();
        let at = text.find("sha256:").unwrap() + "sha256:".len() + 3;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        std::fs::write(&file, bytes).unwrap();
    });
}

#[test]
fn unknown_names_and_unreachable_registries_are_clear_errors() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    registry.push_with_skopeo(
        &image(&host, &[("etc/x", "x")], json!({})),
        "test/app:v1",
        &[],
    );
    let tag = host
        .engine(&["pull", &format!("{}/test/app:nope", registry.host)])
        .output();
    tag.assert_code(1);
    snapshot!(
        host,
        &[&registry.host],
        "ch07_pull_unknown_tag",
        tag.stderr.clone()
    );
    host.engine(&["pull", &format!("{}/nobody/here:v1", registry.host)])
        .output()
        .assert_code(1)
        .assert_stderr_contains("not found");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    host.engine(&["pull", &format!("127.0.0.1:{port}/test/app:v1")])
        .output()
        .assert_code(1)
        .assert_stderr_contains("cannot reach the registry")
        .assert_stderr_contains("is the registry running");
    run_image(
        &host,
        &format!("{}/test/app:nope", registry.host),
        &["true"],
    )
    .output()
    .assert_code(125);
}

#[test]
fn push_then_pull_back_gives_the_same_digests_and_skopeo_reads_it() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let said = token();
    let tarball = host.dir.join("rootfs.tar");
    let mut layer = images::tar_of_dir(&host.rootfs);
    // The image ferry pushes is the fixture rootfs imported, plus a marker file.
    let marker = files_layer(&[("etc/said", &said)]);
    layer.truncate(layer.len() - 1024); // drop the end-of-archive blocks
    layer.extend_from_slice(&marker);
    std::fs::write(&tarball, &layer).unwrap();
    let name = format!("{}/team/pushed:v1", registry.host);
    host.engine(&["import", tarball.to_str().unwrap(), &name])
        .output()
        .assert_success();

    let out = host.engine(&["push", &name]).output();
    out.assert_success()
        .assert_stdout_contains(&format!(
            "The push refers to repository [{}/team/pushed]",
            registry.host
        ))
        .assert_stdout_contains("Pushed");
    let pushed = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("v1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a 'v1: digest: ... size: ...' line")
        .to_string();
    assert_eq!(
        images::digest(&registry.raw_manifest("team/pushed:v1")),
        pushed
    );

    let other = TestHost::on_machine_network();
    let out = other.engine(&["pull", &name]).output();
    out.assert_success();
    assert_eq!(digest_line(&out.stdout), pushed);
    run_image(&other, &name, &["cat", "/etc/said"])
        .output()
        .assert_success()
        .assert_stdout_contains(&said);
    let copy = host.dir.join("skopeo-copy");
    registry.pull_with_skopeo("team/pushed:v1", &format!("oci:{}:v1", copy.display()));
    assert!(copy.join("index.json").exists());

    // Pushed again: the registry has every blob. Elsewhere on it: mounted.
    let before = registry.requests().len();
    let again = host.engine(&["push", &name]).output();
    again
        .assert_success()
        .assert_stdout_contains("Layer already exists");
    let uploads: Vec<String> = requests_since(&registry, before)
        .into_iter()
        .filter(|r| r.starts_with("PUT") && r.contains("/blobs/"))
        .collect();
    assert!(uploads.is_empty(), "blobs uploaded again: {uploads:?}");
    let elsewhere = format!("{}/team/copy:v1", registry.host);
    host.engine(&["tag", &name, &elsewhere])
        .output()
        .assert_success();
    host.engine(&["push", &elsewhere])
        .output()
        .assert_success()
        .assert_stdout_contains("Mounted from team/pushed");
}

#[test]
fn a_large_layer_goes_up_in_chunks() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    // More than one 8 MiB chunk.
    let tarball = host.dir.join("noise.tar");
    std::fs::write(&tarball, noise_layer()).unwrap();
    let name = format!("{}/test/big:v1", registry.host);
    host.engine(&["import", tarball.to_str().unwrap(), &name])
        .output()
        .assert_success();
    let before = registry.requests().len();
    host.engine(&["push", &name]).output().assert_success();
    let patches = requests_since(&registry, before)
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .count();
    assert!(patches >= 1, "no chunked upload: {:?}", registry.requests());
    let copy = host.dir.join("skopeo-copy");
    registry.pull_with_skopeo("test/big:v1", &format!("oci:{}:v1", copy.display()));
}

/// 9 MiB that gzip cannot shrink.
fn noise_layer() -> Vec<u8> {
    let mut noise = Vec::with_capacity(9 << 20);
    let mut block = images::digest(token().as_bytes()).into_bytes();
    while noise.len() < 9 << 20 {
        block = images::digest(&block).into_bytes();
        noise.extend_from_slice(&block[7..]);
    }
    images::layer(&[Entry::File("noise".into(), noise, 0o644)])
}

#[test]
fn a_pull_the_disk_cannot_hold_is_refused_before_it_downloads() {
    let mut host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let layers = vec![noise_layer()];
    let path = host.dir.join("big.tar");
    images::oci_archive(&path, &layers, &images::config(&layers, json!({})), None);
    registry.push_with_skopeo(
        &format!("oci-archive:{}", path.display()),
        "test/big:v1",
        &[],
    );
    // A state root of 4 MiB (a tmpfs in the test host only).
    std::fs::create_dir_all(&host.state).unwrap();
    let state = host.state.to_str().unwrap().to_string();
    host.mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs", &state]);
    let config = digest_of_config(&registry);
    let before = registry.requests().len();
    let out = host
        .engine(&["pull", &format!("{}/test/big:v1", registry.host)])
        .output();
    out.assert_code(1)
        .assert_stderr_contains("free")
        .assert_stderr_contains("image prune");
    let blobs: Vec<String> = requests_since(&registry, before)
        .into_iter()
        .filter(|r| r.contains("/blobs/") && !r.contains(&config))
        .collect();
    assert!(blobs.is_empty(), "layers were fetched: {blobs:?}");
    assert_eq!(store_files(&host, "tmp"), Vec::<String>::new());
}

/// The config digest of test/big:v1 (fetched before the space check).
fn digest_of_config(registry: &Registry) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&registry.raw_manifest("test/big:v1")).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_string()
}

#[test]
fn two_concurrent_pulls_of_one_image_both_succeed() {
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    let said = token();
    registry.push_with_skopeo(
        &image(&host, &[("etc/said", &said)], json!({})),
        "test/app:v1",
        &[],
    );
    let name = format!("{}/test/app:v1", registry.host);
    let first = host.engine(&["pull", &name]).spawn();
    let second = host.engine(&["pull", &name]).spawn();
    first.wait().assert_success();
    second.wait().assert_success();
    run_stored(&host, &name, &["cat", "/etc/said"])
        .output()
        .assert_success()
        .assert_stdout_contains(&said);
    assert_eq!(store_files(&host, "tmp"), Vec::<String>::new());
}

#[test]
fn token_auth_pulls_anonymously_and_a_pull_only_login_cannot_push() {
    let host = TestHost::on_machine_network();
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Token,
        tls: false,
    });
    registry.push_with_skopeo(
        &image(&host, &[("etc/x", "x")], json!({})),
        "test/app:v1",
        &[],
    );
    let name = format!("{}/test/app:v1", registry.host);
    let config = docker_config(&host);

    // Anonymous pull: one token, for this repository's pull scope, shared by the
    // parallel layer downloads.
    let before = registry.token_requests().len();
    host.engine(&["pull", &name])
        .env("DOCKER_CONFIG", config.to_str().unwrap())
        .output()
        .assert_success();
    let tokens: Vec<String> = registry.token_requests().into_iter().skip(before).collect();
    assert_eq!(tokens, ["anonymous repository:test/app:pull"], "{tokens:?}");

    login(&host, &registry, ("puller", "wrong"))
        .assert_code(1)
        .assert_stderr_contains("username and password");
    login(&host, &registry, Registry::PULLER)
        .assert_success()
        .assert_stdout_contains("Login Succeeded");
    let mine = format!("{}/test/mine:v1", registry.host);
    host.engine(&["tag", &name, &mine])
        .output()
        .assert_success();
    let out = host
        .engine(&["push", &mine])
        .env("DOCKER_CONFIG", config.to_str().unwrap())
        .output();
    out.assert_code(1)
        .assert_stderr_contains("denies push access");

    login(&host, &registry, Registry::PUSHER).assert_success();
    host.engine(&["push", &mine])
        .env("DOCKER_CONFIG", config.to_str().unwrap())
        .output()
        .assert_success()
        .assert_stdout_contains("v1: digest:");
    host.engine(&["logout", &registry.host])
        .env("DOCKER_CONFIG", config.to_str().unwrap())
        .output()
        .assert_success()
        .assert_stdout_contains("Removing login credentials");
}

#[test]
fn basic_auth_needs_a_login_saved_in_dockers_format() {
    let host = TestHost::on_machine_network();
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Basic,
        tls: false,
    });
    registry.push_with_skopeo(
        &image(&host, &[("etc/x", "x")], json!({})),
        "test/app:v1",
        &[],
    );
    let name = format!("{}/test/app:v1", registry.host);
    let config = docker_config(&host);
    let pull = || {
        host.engine(&["pull", &name])
            .env("DOCKER_CONFIG", config.to_str().unwrap())
            .output()
    };
    pull()
        .assert_code(1)
        .assert_stderr_contains("asks for a login")
        .assert_stderr_contains("login");
    login(&host, &registry, ("puller", "wrong")).assert_code(1);
    login(&host, &registry, Registry::PULLER).assert_success();
    pull().assert_success();

    let file = config.join("config.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config.json is readable by others");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    use base64::Engine as _;
    let auth = saved["auths"][&registry.host]["auth"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    assert_eq!(decoded, b"puller:puller-secret");
}

#[test]
fn under_sudo_credentials_are_read_and_written_as_the_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let host = TestHost::on_machine_network();
    let registry = Registry::plain();
    // The user who "ran sudo" is nobody; their docker directory is theirs.
    let config = docker_config(&host);
    std::os::unix::fs::chown(&config, Some(65534), Some(65534)).unwrap();
    let as_sudo = |(user, password): (&str, &str)| {
        host.engine(&["login", "-u", user, "--password-stdin", &registry.host])
            .env("DOCKER_CONFIG", config.to_str().unwrap())
            .env("SUDO_UID", "65534")
            .env("SUDO_GID", "65534")
            .stdin(format!("{password}\n").as_bytes())
            .output()
    };
    as_sudo(("ann", "pw")).assert_success();
    let file = config.join("config.json");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (65534, 65534),
        "not the user's file"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A config.json that links to a file of root's: root must not read it for them.
    let secret = host.canary(
        "root-only.json",
        r#"{"auths": {"secret.example": {"auth": "c2VjcmV0"}}}"#,
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    as_sudo(("ann", "pw")).assert_code(1);
    let leaked = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink()
            || !leaked.contains("secret"),
        "root's file was copied into the user's config.json"
    );
    assert!(std::fs::read_to_string(&secret)
        .unwrap()
        .contains("secret.example"));
}

#[test]
fn tls_with_the_registrys_own_ca_from_certs_d() {
    let host = TestHost::on_machine_network();
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Token,
        tls: true,
    });
    registry.push_with_skopeo(
        &image(&host, &[("etc/x", "x")], json!({})),
        "test/app:v1",
        &[],
    );
    let name = format!("{}/test/app:v1", registry.host);
    // Without the CA: refused, and told where it goes.
    let out = host.engine(&["pull", &name]).output();
    out.assert_code(1)
        .assert_stderr_contains("TLS")
        .assert_stderr_contains(&format!("certs.d/{}/ca.crt", registry.host));
    let certs = host.state.join("certs.d").join(&registry.host);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), registry.ca_pem().unwrap()).unwrap();
    host.engine(&["pull", &name]).output().assert_success();
}

#[test]
fn docker_hub_names_go_through_the_classroom_mirror() {
    let host = TestHost::on_machine_network();
    // The first mirror lacks the image: the pull goes on to the next, as docker's
    // goes on to Docker Hub.
    let empty = Registry::plain();
    let mirror = Registry::plain();
    let said = token();
    let repo = format!("ferrytest{}", &token()[..6]);
    registry_push(&mirror, &host, &said, &format!("library/{repo}:latest"));
    std::fs::create_dir_all(&host.state).unwrap();
    std::fs::write(
        host.state.join("registries.toml"),
        format!(
            "registry-mirrors = [\"http://{}\", \"http://{}\"]\n",
            empty.host, mirror.host
        ),
    )
    .unwrap();
    let out = host.engine(&["pull", &repo]).output();
    out.assert_success()
        .assert_stdout_contains(&format!("latest: Pulling from library/{repo}"))
        .assert_stdout_contains(&format!("docker.io/library/{repo}:latest"));
    assert!(
        mirror
            .requests()
            .iter()
            .any(|r| r.contains(&format!("/v2/library/{repo}/manifests/latest"))),
        "the mirror was not asked"
    );
    run_stored(&host, &repo, &["cat", "/etc/said"])
        .output()
        .assert_success()
        .assert_stdout_contains(&said);
    host.engine(&["pull", "-q", &repo])
        .output()
        .assert_success()
        .assert_stdout_contains(&format!("docker.io/library/{repo}:latest"));
}

fn registry_push(registry: &Registry, host: &TestHost, said: &str, dest: &str) {
    registry.push_with_skopeo(&image(host, &[("etc/said", said)], json!({})), dest, &[]);
}

/// An image (the fixture rootfs and `/etc/said`) in a registry of `options` behind
/// a fault proxy: the registry, the proxy, the image's name through the proxy, its
/// manifest and what `/etc/said` says.
fn behind_a_proxy(
    host: &TestHost,
    options: RegistryOptions,
) -> (Registry, Proxy, String, serde_json::Value, String) {
    let registry = Registry::start(options);
    let said = token();
    registry_push(&registry, host, &said, "test/app:v1");
    let manifest = serde_json::from_slice(&registry.raw_manifest("test/app:v1")).unwrap();
    let proxy = Proxy::start(&registry.host);
    let name = format!("{}/test/app:v1", proxy.host);
    (registry, proxy, name, manifest, said)
}

/// How many of `seen` are `method` on a path ending with `suffix`.
fn count(seen: &[Seen], method: &str, suffix: &str) -> usize {
    seen.iter().filter(|r| r.is(method, suffix)).count()
}

#[test]
fn a_busy_registry_is_retried() {
    let host = TestHost::on_machine_network();
    let (_registry, proxy, name, manifest, _) = behind_a_proxy(&host, RegistryOptions::default());
    let blob = format!(
        "/blobs/{}",
        manifest["layers"][0]["digest"].as_str().unwrap()
    );
    proxy.inject(1, |r| r.is("GET", "/manifests/v1"), Fault::Fail(503));
    let first_layer = blob.clone();
    proxy.inject(1, move |r| r.is("GET", &first_layer), Fault::Fail(429));

    host.engine(&["pull", &name]).output().assert_success();
    let seen = proxy.seen();
    assert_eq!(count(&seen, "GET", "/manifests/v1"), 2, "{seen:#?}");
    assert_eq!(count(&seen, "GET", &blob), 2, "{seen:#?}");
}

#[test]
fn a_broken_blob_download_resumes_with_a_range_request() {
    let host = TestHost::on_machine_network();
    let (_registry, proxy, name, manifest, said) =
        behind_a_proxy(&host, RegistryOptions::default());
    let biggest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap();
    let blob = format!("/blobs/{}", biggest["digest"].as_str().unwrap());
    let cut = biggest["size"].as_u64().unwrap() as usize / 2;
    assert!(cut > 0, "the biggest layer is empty: {manifest}");
    let broken = blob.clone();
    proxy.inject(1, move |r| r.is("GET", &broken), Fault::CutAfter(cut));

    host.engine(&["pull", &name]).output().assert_success();
    let seen = proxy.seen();
    let gets: Vec<&Seen> = seen.iter().filter(|r| r.is("GET", &blob)).collect();
    assert_eq!(gets.len(), 2, "{seen:#?}");
    assert_eq!(gets[0].range, None, "{seen:#?}");
    // The rest, from the first byte that did not arrive.
    assert_eq!(
        gets[1].range.as_deref(),
        Some(format!("bytes={cut}-").as_str()),
        "{seen:#?}"
    );
    run_image(&host, &name, &["cat", "/etc/said"])
        .output()
        .assert_success()
        .assert_stdout_contains(&said);
}

#[test]
fn blob_redirects_do_not_carry_the_registry_token() {
    let host = TestHost::on_machine_network();
    let (_registry, proxy, name, manifest, _) = behind_a_proxy(
        &host,
        RegistryOptions {
            auth: Auth::Token,
            tls: false,
        },
    );
    proxy.inject(
        Proxy::ALWAYS,
        |r| r.method == "GET" && r.path.contains("/blobs/"),
        Fault::RedirectTo(Proxy::STORAGE.into()),
    );

    host.engine(&["pull", &name])
        .env("DOCKER_CONFIG", docker_config(&host).to_str().unwrap())
        .output()
        .assert_success();
    let seen = proxy.seen();
    let storage: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.path.starts_with(Proxy::STORAGE))
        .collect();
    let blobs: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.path.starts_with("/v2/") && r.path.contains("/blobs/"))
        .collect();
    // The config and each layer: asked of the registry, fetched from storage.
    let pieces = manifest["layers"].as_array().unwrap().len() + 1;
    assert_eq!(storage.len(), pieces, "{seen:#?}");
    assert_eq!(blobs.len(), pieces, "{seen:#?}");
    assert!(
        storage.iter().all(|r| !r.authorization),
        "the storage was shown the registry's token: {storage:#?}"
    );
    assert!(
        blobs.iter().all(|r| r.authorization),
        "a blob was asked of the registry without the token: {blobs:#?}"
    );
}

#[test]
fn a_registry_that_keeps_failing_gives_a_clear_error() {
    let host = TestHost::on_machine_network();
    let (_registry, proxy, name, _, _) = behind_a_proxy(&host, RegistryOptions::default());
    proxy.inject(
        Proxy::ALWAYS,
        |r| r.is("GET", "/manifests/v1"),
        Fault::Fail(503),
    );

    host.engine(&["pull", &name])
        .output()
        .assert_code(1)
        .assert_stderr_contains("503")
        .assert_stderr_contains(&proxy.host);
    // The engine's attempts per request (ATTEMPTS in transport.rs), then it gives up.
    let seen = proxy.seen();
    assert_eq!(count(&seen, "GET", "/manifests/v1"), 4, "{seen:#?}");
}

#[test]
fn a_download_that_keeps_breaking_is_not_called_a_digest_mismatch() {
    let host = TestHost::on_machine_network();
    let (_registry, proxy, name, manifest, _) = behind_a_proxy(&host, RegistryOptions::default());
    let biggest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap();
    let blob = format!("/blobs/{}", biggest["digest"].as_str().unwrap());
    let broken = blob.clone();
    proxy.inject(
        Proxy::ALWAYS,
        move |r| r.is("GET", &broken),
        Fault::CutAfter(1000),
    );

    let out = host.engine(&["pull", &name]).output();
    out.assert_code(1)
        .assert_stderr_contains("failed to read the layer blob");
    // The bytes that came were right: only the connection failed.
    assert!(
        !out.stderr.contains("does not match its digest"),
        "a broken download was blamed on the bytes:\n{out}"
    );
    let seen = proxy.seen();
    let resumed = seen
        .iter()
        .filter(|r| r.is("GET", &blob) && r.range.is_some())
        .count();
    assert!(resumed >= 1, "no Range request: {seen:#?}");
    assert_eq!(store_files(&host, "layers"), Vec::<String>::new());
    assert_eq!(store_files(&host, "tmp"), Vec::<String>::new());
}
