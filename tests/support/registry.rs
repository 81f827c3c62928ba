//! A real registry for chapter 7's tests: CNCF distribution (`docker-registry`)
//! started per test on a free loopback port, with its storage, log and certificates
//! in a temp dir (`/tmp/ferry-registry-TOKEN`) that goes away on drop, as does the
//! registry's process. ferry never appears here: the harness fills and inspects the
//! registry with skopeo and with plain HTTP calls, so a test can check ferry's
//! `pull` and `push` against a registry it did not make.
//!
//! The modes, combinable ([`RegistryOptions`]):
//! - [`Auth::None`]: anyone may pull and push.
//! - [`Auth::Basic`]: htpasswd users ([`Registry::PULLER`], [`Registry::PUSHER`]).
//!   distribution has no per-user rights there: the puller may push too.
//! - [`Auth::Token`]: the registry sends clients to a token server the harness runs in
//!   a thread (the "docker token" flow Docker Hub uses): anonymous clients and the
//!   puller get `pull`, the pusher `pull,push`, a wrong password a 401.
//! - `tls: true`: HTTPS with a certificate (IP 127.0.0.1, DNS localhost) signed by a
//!   CA of the test's own ([`Registry::ca_pem`]). The token server stays plain HTTP.
//!
//! What a test can look at afterwards: the manifest as served ([`Registry::raw_manifest`]),
//! a blob's file in storage ([`Registry::blob_file`], to tamper with it), every request
//! the registry answered ([`Registry::requests`]) and every token asked for
//! ([`Registry::token_requests`]). Both lists include the harness's own calls: take
//! their length before the step you assert on.
//!
//! Images get in with skopeo ([`Registry::push_with_skopeo`]): one image from an
//! archive, or a multi-platform one from [`multi_platform_layout`] with `--all`, kept
//! an OCI index or turned into a Docker manifest list by `--all --format v2s2`.
//! Shapes skopeo will not make (an index with attestation entries, a broken
//! manifest) go in raw, through [`Registry::put_blob`] and [`Registry::put_manifest`].
//! distribution 2.8 refuses to store a schema1 manifest (`MANIFEST_INVALID`): a test
//! of that shape needs a server of its own.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::images::{self, digest};
use super::token;

/// The `service` the registry names in its challenge and expects as the tokens' audience.
const SERVICE: &str = "ferry-test-registry";
/// The issuer the registry expects in the tokens' `iss` claim.
const ISSUER: &str = "ferry-test-issuer";
/// How long the registry may take to answer `GET /v2/` after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may use the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// Anyone may pull and push.
    #[default]
    None,
    /// HTTP Basic against an htpasswd file: every known user may pull and push.
    Basic,
    /// Bearer tokens from the harness's token server: rights per user.
    Token,
}

/// How to start a [`Registry`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryOptions {
    pub auth: Auth,
    /// Serve HTTPS with a certificate signed by the test's own CA.
    pub tls: bool,
}

/// A running registry; stopped and removed on drop. It also dies with the thread that
/// started it, so start one per test, never one shared by several tests.
pub struct Registry {
    /// `127.0.0.1:PORT`, as an image reference names the registry.
    pub host: String,
    /// The temp dir holding everything: config, storage, log, certificates.
    pub dir: PathBuf,
    options: RegistryOptions,
    process: Child,
    /// The CA's certificate (TLS mode).
    ca_pem: Option<String>,
    tokens: Option<TokenServer>,
    /// An HTTP client that trusts the CA in TLS mode.
    agent: ureq::Agent,
}

impl Registry {
    /// The user who may only pull (in Token mode; in Basic mode it may push too).
    pub const PULLER: (&'static str, &'static str) = ("puller", "puller-secret");
    /// The user who may pull and push.
    pub const PUSHER: (&'static str, &'static str) = ("pusher", "pusher-secret");

    /// Starts a registry and waits until it answers; panics with its log if it never does.
    pub fn start(options: RegistryOptions) -> Registry {
        let dir = PathBuf::from(format!("/tmp/ferry-registry-{}", token()));
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        write_skopeo_config(&dir);
        let ca_pem = options.tls.then(|| write_tls_certificates(&dir));
        let agent = http_agent(ca_pem.as_deref());
        let tokens = match options.auth {
            Auth::None => None,
            Auth::Basic => {
                write_htpasswd(&dir.join("htpasswd"));
                None
            }
            Auth::Token => Some(TokenServer::start(&dir.join("token.crt"))),
        };
        // A free port is found by binding port 0 and letting it go: another process
        // may take it before the registry binds it, so a registry that exits at once
        // is given another port, three times at most.
        let scheme = if options.tls { "https" } else { "http" };
        for _attempt in 0..3 {
            let port = free_port();
            let config = registry_config(&dir, port, &options, tokens.as_ref());
            std::fs::write(dir.join("config.yml"), config).unwrap();
            let host = format!("127.0.0.1:{port}");
            let mut process = spawn_registry(&dir);
            let url = format!("{scheme}://{host}");
            if wait_until_ready(&mut process, &agent, &url, &host, &dir) {
                return Registry {
                    host,
                    dir,
                    options,
                    process,
                    ca_pem,
                    tokens,
                    agent,
                };
            }
            let _ = process.wait();
        }
        let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        panic!("the registry exited three times right after starting; its last log:\n{log}");
    }

    /// A registry without authentication or TLS.
    pub fn plain() -> Registry {
        Registry::start(RegistryOptions::default())
    }

    /// `https://HOST` or `http://HOST`.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// TLS mode: the PEM of the CA that signed the registry's certificate.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The directory skopeo reads the CA from (`ca.crt`), also handy for other clients.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// Everything the registry wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Copies `source` (a skopeo transport string: `oci-archive:/p.tar`,
    /// `docker-archive:/p.tar`, `oci:/dir:tag`) to `dest` (`repo/name:tag`) in this
    /// registry, as the pusher; `extra` goes to `skopeo copy` (`--format v2s2`, `--all`).
    pub fn push_with_skopeo(&self, source: &str, dest: &str, extra: &[&str]) {
        let mut args: Vec<String> = vec!["copy".into()];
        args.extend(self.skopeo_flags("dest-"));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([source.to_string(), format!("docker://{}/{dest}", self.host)]);
        self.skopeo(&args);
    }

    /// Copies `reference` (`repo:tag` or `repo@digest`) out of this registry to `dest`
    /// (`oci:/dir:tag`), as the pusher: "skopeo pulls what ferry pushed".
    pub fn pull_with_skopeo(&self, reference: &str, dest: &str) {
        let mut args: Vec<String> = vec!["copy".into()];
        args.extend(self.skopeo_flags("src-"));
        args.extend([format!("docker://{}/{reference}", self.host), dest.into()]);
        self.skopeo(&args);
    }

    /// The manifest of `reference` (`repo:tag` or `repo@digest`) exactly as served.
    pub fn raw_manifest(&self, reference: &str) -> Vec<u8> {
        let mut args: Vec<String> = vec!["inspect".into(), "--raw".into()];
        args.extend(self.skopeo_flags(""));
        args.push(format!("docker://{}/{reference}", self.host));
        self.skopeo(&args)
    }

    /// skopeo's options to reach this registry, for its `--src-`, `--dest-` or plain
    /// (`""`) side: the pusher's credentials, and the CA or plain HTTP.
    fn skopeo_flags(&self, side: &str) -> Vec<String> {
        let mut flags = Vec::new();
        if self.options.auth != Auth::None {
            let (user, password) = Registry::PUSHER;
            flags.push(format!("--{side}creds={user}:{password}"));
        }
        if self.options.tls {
            flags.push(format!("--{side}cert-dir={}", self.cert_dir().display()));
        } else {
            flags.push(format!("--{side}tls-verify=false"));
        }
        flags
    }

    /// Runs skopeo with the test's own policy, registries and auth files (never the
    /// host's); its stdout, or a panic with its stderr.
    fn skopeo(&self, args: &[String]) -> Vec<u8> {
        let output = Command::new("skopeo")
            .arg(format!(
                "--policy={}",
                self.dir.join("policy.json").display()
            ))
            .args(args)
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .stdin(Stdio::null())
            .output()
            .expect("failed to run skopeo (install it: apt-get install skopeo)");
        assert!(
            output.status.success(),
            "skopeo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// The file in the registry's storage that holds blob `digest` (`sha256:HEX`).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Uploads `bytes` as a blob of `repo` in one piece (`POST` an upload, `PUT` it
    /// with its digest), as the pusher; the blob's digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = digest(bytes);
        let started = self.authorized(
            self.agent
                .post(&format!("{}/v2/{repo}/blobs/uploads/", self.url())),
            repo,
        );
        let started = http_result("start a blob upload", started.call());
        // distribution answers with an absolute URL; the spec allows a path too.
        let location = started.header("Location").expect("Location of the upload");
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location.to_string()
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .authorized(
                self.agent
                    .put(&format!("{location}{separator}digest={digest}")),
                repo,
            )
            .set("Content-Type", "application/octet-stream");
        http_result("finish a blob upload", put.send_bytes(bytes));
        digest
    }

    /// Uploads `bytes` as the manifest `reference` (a tag or a digest) of `repo` with
    /// Content-Type `media_type`, as the pusher; the manifest's digest. The registry
    /// checks that the blobs (or manifests) it points at are already there.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.url());
        let put = self
            .authorized(self.agent.put(&url), repo)
            .set("Content-Type", media_type);
        let response = http_result("put a manifest", put.send_bytes(bytes));
        let digest = digest(bytes);
        assert_eq!(
            response.header("Docker-Content-Digest"),
            Some(digest.as_str())
        );
        digest
    }

    /// Adds the pusher's credentials to `request`: Basic, or a token for `repo` that
    /// the harness signs itself (so it shows in no [`Registry::token_requests`]).
    fn authorized(&self, request: ureq::Request, repo: &str) -> ureq::Request {
        let (user, password) = Registry::PUSHER;
        match (&self.options.auth, &self.tokens) {
            (Auth::Basic, _) => request.set("Authorization", &basic_authorization(user, password)),
            (Auth::Token, Some(tokens)) => {
                let access = vec![(repo.to_string(), vec!["pull".into(), "push".into()])];
                let jwt = tokens.signer.sign(user, &access);
                request.set("Authorization", &format!("Bearer {jwt}"))
            }
            _ => request,
        }
    }

    /// Every request the registry has answered, as `METHOD URI` (`GET /v2/x/blobs/sha256:...`),
    /// oldest first, the harness's own included.
    pub fn requests(&self) -> Vec<String> {
        // The registry writes a request's access-log line after answering it: a
        // request of our own, marked, waits until the ones before it are written.
        let mark = format!("ferry-harness-mark={}", token());
        let _ = self.agent.get(&format!("{}/v2/?{mark}", self.url())).call();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if let Some(end) = log.find(&mark) {
                return log[..end]
                    .lines()
                    .filter_map(access_log_request)
                    .filter(|r| !r.contains("ferry-harness-mark="))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "the registry never logged {mark}; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Token mode: every token asked for, as `USER SCOPE...` (`pusher repository:app:pull,push`,
    /// `anonymous repository:app:pull`), oldest first; empty in other modes.
    pub fn token_requests(&self) -> Vec<String> {
        match &self.tokens {
            Some(tokens) => tokens.requests.lock().unwrap().clone(),
            None => Vec::new(),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One platform's image: `(architecture, variant, config, uncompressed layers)`.
pub type PlatformImage<'a> = (&'a str, Option<&'a str>, Vec<u8>, Vec<Vec<u8>>);

/// Writes an OCI image layout to `dir` holding one index with an image per platform
/// (os `linux`), layers stored gzipped, configs as given; the index's digest. Push it
/// whole with `push_with_skopeo(&format!("oci:{dir}"), "repo:tag", &["--all"])`, as a
/// Docker manifest list (of schema2 images) with `&["--all", "--format", "v2s2"]`.
pub fn multi_platform_layout(dir: &Path, images: &[PlatformImage]) -> String {
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let write_blob = |bytes: &[u8]| {
        let digest = digest(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        digest
    };
    let mut entries = Vec::new();
    for (architecture, variant, config, layers) in images {
        let layers: Vec<Vec<u8>> = layers.iter().map(|l| images::gzip(l)).collect();
        for blob in layers.iter().chain([config]) {
            write_blob(blob);
        }
        let manifest = oci_manifest(config, &layers);
        let mut platform = serde_json::json!({"architecture": architecture, "os": "linux"});
        if let Some(variant) = variant {
            platform["variant"] = (*variant).into();
        }
        entries.push(serde_json::json!({
            "mediaType": MANIFEST, "digest": write_blob(&manifest), "size": manifest.len(), "platform": platform,
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": entries,
    }))
    .unwrap();
    let index_digest = write_blob(&index);
    // The layout's own index.json points at that index: skopeo copies what the
    // layout's single entry is, and with `--all` an index is copied whole.
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": INDEX, "digest": index_digest, "size": index.len()}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    index_digest
}

/// An OCI image manifest of `config` and the already gzipped `layers`.
fn oci_manifest(config: &[u8], layers: &[Vec<u8>]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(l), "size": l.len()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": layers,
    }))
    .unwrap()
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// distribution's config.yml: filesystem storage in `dir`, the auth and TLS sections
/// of `options`, info-level logs (one access-log line per request).
fn registry_config(
    dir: &Path,
    port: u16,
    options: &RegistryOptions,
    tokens: Option<&TokenServer>,
) -> String {
    let dir = dir.display();
    let secret = token();
    let mut config = format!(
        "\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {dir}/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
"
    );
    if options.tls {
        config += &format!(
            "  tls:
    certificate: {dir}/server.crt
    key: {dir}/server.key
"
        );
    }
    match (options.auth, tokens) {
        (Auth::None, _) => {}
        (Auth::Basic, _) => {
            config += &format!(
                "auth:
  htpasswd:
    realm: ferry-test
    path: {dir}/htpasswd
"
            )
        }
        (Auth::Token, tokens) => {
            let realm = tokens.expect("a token server").addr;
            config += &format!(
                "auth:
  token:
    realm: http://{realm}/token
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {dir}/token.crt
"
            );
        }
    }
    config
}

/// Starts `docker-registry serve` on `dir/config.yml`, stdout and stderr to `dir/registry.log`.
fn spawn_registry(dir: &Path) -> Child {
    let log = File::create(dir.join("registry.log")).unwrap();
    let mut command = Command::new("docker-registry");
    command
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: only prctl(2) between fork and exec, no allocation.
    unsafe {
        command.pre_exec(|| {
            // The registry dies with the test's thread, even if the test is killed.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
        .spawn()
        .expect("failed to run docker-registry (install it: apt-get install docker-registry)")
}

/// True once the registry has bound `host` (its log says so: another server that
/// took the port first must not pass for it) and answers `GET /v2/` (200, or 401
/// with auth); false if it exits first; panics with its log if it does neither
/// within [`STARTUP_TIMEOUT`].
fn wait_until_ready(
    process: &mut Child,
    agent: &ureq::Agent,
    url: &str,
    host: &str,
    dir: &Path,
) -> bool {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let listening = format!("listening on {host}");
    while Instant::now() < deadline {
        if process.try_wait().unwrap().is_some() {
            return false;
        }
        let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
        if log.contains(&listening) {
            match agent.get(&format!("{url}/v2/")).call() {
                Ok(_) | Err(ureq::Error::Status(401, _)) => return true,
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = process.kill();
    let _ = process.wait();
    let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(dir);
    panic!("the registry did not answer GET {url}/v2/ within {STARTUP_TIMEOUT:?}; its log:\n{log}");
}

/// skopeo's policy (accept anything), registries (none) and auth (none) files, so
/// the host's own never change what a test sees.
fn write_skopeo_config(dir: &Path) {
    let policy = r#"{"default": [{"type": "insecureAcceptAnything"}]}"#;
    std::fs::write(dir.join("policy.json"), policy).unwrap();
    std::fs::write(dir.join("registries.conf"), "").unwrap();
    std::fs::write(dir.join("auth.json"), r#"{"auths": {}}"#).unwrap();
}

/// The htpasswd file of the two users, bcrypt-hashed at the lowest cost for speed.
fn write_htpasswd(path: &Path) {
    let lines: String = [Registry::PULLER, Registry::PUSHER]
        .iter()
        .map(|(user, password)| format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap()))
        .collect();
    std::fs::write(path, lines).unwrap();
}

/// Makes a CA and the registry's certificate (IP 127.0.0.1, DNS localhost) signed by
/// it: `certs/ca.crt` (skopeo's `--cert-dir`: it holds nothing else, as skopeo
/// takes a `.key` there for a client certificate's) and `server.{crt,key}`; the CA's PEM.
fn write_tls_certificates(dir: &Path) -> String {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "ferry test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server.signed_by(&server_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("certs/ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    ca.pem()
}

/// An HTTP client with short timeouts that trusts `ca_pem` (and nothing else) when given.
fn http_agent(ca_pem: Option<&str>) -> ureq::Agent {
    let mut builder = ureq::AgentBuilder::new().timeout(Duration::from_secs(10));
    if let Some(pem) = ca_pem {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder = builder.tls_config(Arc::new(config));
    }
    builder.build()
}

/// The response, or a panic naming `what` with the status and the body.
fn http_result(what: &str, result: Result<ureq::Response, ureq::Error>) -> ureq::Response {
    match result {
        Ok(response) => response,
        Err(ureq::Error::Status(status, response)) => {
            panic!(
                "failed to {what}: HTTP {status}: {}",
                response.into_string().unwrap_or_default()
            )
        }
        Err(error) => panic!("failed to {what}: {error}"),
    }
}

fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// `METHOD URI` of an access-log line (`127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 ...`);
/// None for distribution's other lines (`time=... level=info msg=...`).
fn access_log_request(line: &str) -> Option<String> {
    if line.starts_with("time=") {
        return None;
    }
    let (_, rest) = line.split_once("] \"")?;
    let (request, _) = rest.split_once('"')?;
    let (method_and_uri, _protocol) = request.rsplit_once(' ')?;
    Some(method_and_uri.to_string())
}

/// The token server of the docker token flow (distribution's `auth: token`): the
/// registry answers 401 with `Bearer realm=...,service=...,scope=...`, the client asks
/// `GET /token?service=S&scope=repository:NAME:pull,push` (with Basic credentials or
/// none), and shows the registry the signed token it gets. One request per connection.
struct TokenServer {
    addr: SocketAddr,
    signer: Arc<TokenSigner>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Listens on a free loopback port; writes the certificate the registry trusts
    /// tokens from to `cert_path`.
    fn start(cert_path: &Path) -> TokenServer {
        let signer = Arc::new(TokenSigner::new());
        std::fs::write(cert_path, &signer.cert_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (signer, requests, stop) = (signer.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // A client that hangs up early is its own problem.
                        let _ = answer_token_request(stream, &signer, &requests);
                    }
                }
            })
        };
        TokenServer {
            addr,
            signer,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread blocked in accept(2) so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The actions each user may take on any repository; anonymous clients may pull.
fn allowed_actions(user: Option<&str>) -> &'static [&'static str] {
    if user == Some(Registry::PUSHER.0) {
        &["pull", "push"]
    } else {
        &["pull"]
    }
}

/// Reads one HTTP request (its request line and `Authorization` header) and answers it.
fn answer_token_request(
    mut stream: TcpStream,
    signer: &TokenSigner,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let (status, body) = token_endpoint(target, authorization.as_deref(), signer, requests);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

/// The status and JSON body that answer `GET target`: a token, a 401 for wrong
/// credentials, a 404 for any path but `/token`. Records the token asked for.
fn token_endpoint(
    target: &str,
    authorization: Option<&str>,
    signer: &TokenSigner,
    requests: &Mutex<Vec<String>>,
) -> (&'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return (
            "404 Not Found",
            error_body("NOT_FOUND", "only /token is served here"),
        );
    }
    let Ok(user) = check_credentials(authorization) else {
        return (
            "401 Unauthorized",
            error_body("UNAUTHORIZED", "incorrect username or password"),
        );
    };
    let scopes = query_values(query, "scope");
    let asked = format!("{} {}", user.unwrap_or("anonymous"), scopes.join(" "));
    requests.lock().unwrap().push(asked.trim_end().to_string());
    ("200 OK", token_response(signer, user, &scopes))
}

/// A registry-style error body: `{"errors": [{"code": ..., "message": ...}]}`.
fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

/// The user named by Basic credentials (None for none); Err for a wrong password or user.
fn check_credentials(authorization: Option<&str>) -> Result<Option<&'static str>, ()> {
    let Some(authorization) = authorization else {
        return Ok(None);
    };
    let encoded = authorization.strip_prefix("Basic ").ok_or(())?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).map_err(|_| ())?).map_err(|_| ())?;
    [Registry::PULLER, Registry::PUSHER]
        .into_iter()
        .find(|(user, password)| decoded == format!("{user}:{password}"))
        .map(|(user, _)| Some(user))
        .ok_or(())
}

/// The token endpoint's JSON: a token granting, per `repository:NAME:ACTIONS` scope,
/// the actions both asked for and allowed to `user`.
fn token_response(signer: &TokenSigner, user: Option<&str>, scopes: &[String]) -> String {
    let allowed = allowed_actions(user);
    let mut access = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split(' ')) {
        // NAME may hold ':' only in a registry host's port, never here: split at the ends.
        let Some((kind_and_name, actions)) = scope.rsplit_once(':') else {
            continue;
        };
        let Some(("repository", name)) = kind_and_name.split_once(':') else {
            continue;
        };
        let granted: Vec<String> = actions
            .split(',')
            .filter(|a| allowed.contains(a))
            .map(String::from)
            .collect();
        access.push((name.to_string(), granted));
    }
    let jwt = signer.sign(user.unwrap_or(""), &access);
    let issued_at = rfc3339(unix_now());
    serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300, "issued_at": issued_at})
        .to_string()
}

/// The values of `key` in a URL query string, percent-decoded (`+` is a space).
fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = text
            .get(i + 1..i + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Signs tokens as distribution 2.8 checks them: a JWS with ES256 (P-256, the
/// signature as r||s), and the signing certificate in the `x5c` header, which must
/// chain to the registry's `rootcertbundle` (here it is the bundle).
struct TokenSigner {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl TokenSigner {
    fn new() -> TokenSigner {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ISSUER);
        let cert = params.self_signed(&key_pair).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .unwrap();
        TokenSigner {
            key,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
        }
    }

    /// A JWT for `subject` granting `access`: (repository, actions) pairs, valid 5 minutes.
    fn sign(&self, subject: &str, access: &[(String, Vec<String>)]) -> String {
        let now = unix_now();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let access: Vec<serde_json::Value> = access
            .iter()
            .map(|(name, actions)| serde_json::json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": token(),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let signature = self.key.sign(&rng, signing_input.as_bytes()).unwrap();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `unix` seconds as RFC 3339 UTC (`2026-01-01T00:00:00Z`), by the civil-from-days
/// algorithm (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}
