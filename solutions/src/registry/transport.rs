//! HTTP to a registry: one [`Session`] per repository and access, which finds the
//! registry's endpoint, speaks TLS the way docker does, puts the right
//! `Authorization` on every request, retries what may be retried and follows
//! redirects to blob storage without handing it the registry's credentials.
//!
//! Chapter 7. The client is ureq (blocking, small) over rustls with the system's
//! certificate authorities plus the registry's own from certs.d.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::auth::{self, Challenge, CredentialFile, Credentials};
use super::hosts::{self, Endpoint, Settings};
use super::RegistryError;

/// How often a request is tried when the registry is busy (429, 5xx) or the
/// connection breaks.
const ATTEMPTS: u32 = 4;
/// The first pause between attempts; it doubles each time.
const BACKOFF: Duration = Duration::from_millis(250);
/// The most a registry's error body or a token answer may be.
const SMALL_BODY_CAP: u64 = 1 << 20;

/// What a session may do in its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "push",
        }
    }
}

/// The client every session of one command shares: settings, credentials, HTTP
/// agents per host and the tokens already obtained (per scope).
pub struct Client {
    settings: Settings,
    credentials: Option<CredentialFile>,
    /// Credentials given on the command line (`login`), used before the file's.
    pub given: Option<Credentials>,
    agents: Mutex<HashMap<String, ureq::Agent>>,
    roots: OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>>,
    tokens: Mutex<HashMap<String, String>>,
}

/// A request body that can be sent again if the first try fails.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8], &'a str),
}

/// One repository on one registry, authorized for `access`.
pub struct Session<'a> {
    client: &'a Client,
    /// The registry's name, as the image reference has it (`docker.io`).
    pub registry: String,
    /// The endpoint that answered.
    pub endpoint: Endpoint,
    /// `https://HOST` or `http://HOST` (the protocol that worked).
    pub base: String,
    pub repository: String,
    access: Access,
    /// The scopes the token is asked for (this repository's, plus the sources of
    /// cross-repository mounts).
    scopes: Vec<String>,
    challenge: Option<Challenge>,
    credentials: Option<Credentials>,
}

/// How a failed connection failed.
enum Broken {
    /// The server does not speak TLS (a plain HTTP registry).
    NotTls,
    /// TLS was spoken but the certificate (or the handshake) is not acceptable.
    Tls(String),
    /// Anything else: refused, reset, timed out, unknown host.
    Other,
}

fn broken(error: &ureq::Transport) -> Broken {
    use std::error::Error;
    let mut source: Option<&(dyn Error + 'static)> = error.source();
    while let Some(cause) = source {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return match tls {
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                    Broken::NotTls
                }
                other => Broken::Tls(other.to_string()),
            };
        }
        source = cause.source();
    }
    Broken::Other
}

/// A broken connection in a few words: what failed and the innermost cause.
fn describe(error: &ureq::Transport) -> String {
    use std::error::Error;
    let mut innermost = error.source();
    while let Some(next) = innermost.and_then(|e| e.source()) {
        innermost = Some(next);
    }
    let cause = innermost.map_or_else(|| error.kind().to_string(), |e| e.to_string());
    match error.kind() {
        ureq::ErrorKind::Dns => format!("its name does not resolve ({cause})"),
        ureq::ErrorKind::ConnectionFailed => format!("the connection failed ({cause})"),
        ureq::ErrorKind::Io => format!("the connection broke ({cause})"),
        _ => error.to_string(),
    }
}

/// The `{"errors": [{"code", "message"}]}` body of a distribution error.
fn error_detail(response: ureq::Response) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let mut body = Vec::new();
    let _ = response
        .into_reader()
        .take(SMALL_BODY_CAP)
        .read_to_end(&mut body);
    match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) if !errors.errors.is_empty() => {
            let first = &errors.errors[0];
            (
                first.code.clone().unwrap_or_default(),
                first.message.clone().unwrap_or_default(),
            )
        }
        _ => (
            String::new(),
            String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        ),
    }
}

/// The host (`HOST[:PORT]`) of an absolute URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// `location` (absolute, or relative to `url`) as an absolute URL, as a browser
/// resolves it (RFC 3986).
pub fn absolute(url: &str, location: &str) -> String {
    url::Url::parse(url)
        .and_then(|base| base.join(location))
        .map_or_else(|_| location.to_string(), String::from)
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> String {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    format!("{scheme}://{}", host_of(url))
}

impl Client {
    pub fn new(settings: Settings, credentials: Option<CredentialFile>) -> Client {
        Client {
            settings,
            credentials,
            given: None,
            agents: Mutex::new(HashMap::new()),
            roots: OnceLock::new(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The system's certificate authorities (Debian's ca-certificates), read once.
    fn system_roots(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        self.roots.get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                log::debug!("a system certificate was skipped: {error}");
            }
            found.certs
        })
    }

    /// The HTTP agent for `host`: its TLS trusts the system's authorities and the
    /// host's own from certs.d, or nothing at all for an insecure registry.
    fn agent(&self, host: &str) -> Result<ureq::Agent, RegistryError> {
        if let Some(agent) = self.agents.lock().expect("agents lock").get(host) {
            return Ok(agent.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions");
        let insecure = self.settings.insecure_registries.iter().any(|h| h == host);
        let tls = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(self.system_roots().iter().cloned());
            for file in self.settings.ca_files(host) {
                let pem = std::fs::read(&file).map_err(|e| RegistryError::Config {
                    action: "read",
                    path: file.clone(),
                    detail: e.to_string(),
                })?;
                let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
                    .collect::<Result<_, _>>()
                    .map_err(|e| RegistryError::Config {
                        action: "read",
                        path: file.clone(),
                        detail: format!("not PEM certificates: {e}"),
                    })?;
                log::debug!("trusting {} for {host}", file.display());
                roots.add_parsable_certificates(certs);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls))
            .redirects(0)
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(60))
            .user_agent(&format!("{}/{}", crate::ENGINE, env!("CARGO_PKG_VERSION")))
            .build();
        self.agents
            .lock()
            .expect("agents lock")
            .insert(host.to_string(), agent.clone());
        Ok(agent)
    }

    /// The credentials for `registry`: given ones, else the saved ones.
    fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(given) = &self.given {
            return Ok(Some(given.clone()));
        }
        match &self.credentials {
            Some(file) => file.get(&hosts::auth_key(registry)),
            None => Ok(None),
        }
    }

    /// A session with `repository` on `registry`, for `access`; `mount_from` are
    /// other repositories of the registry the token should also let it pull from.
    pub fn session(
        &self,
        registry: &str,
        repository: &str,
        access: Access,
        mount_from: &[String],
    ) -> Result<Session<'_>, RegistryError> {
        self.session_with(registry, repository, access, mount_from, |_| Ok(()))
            .map(|(session, ())| session)
    }

    /// A session whose `first` step worked: a mirror that cannot be reached, or
    /// that fails the first step (it lacks the image), gives way to the next
    /// endpoint, as docker falls back from its mirrors to Docker Hub.
    pub fn session_with<T>(
        &self,
        registry: &str,
        repository: &str,
        access: Access,
        mount_from: &[String],
        mut first: impl FnMut(&Session<'_>) -> Result<T, RegistryError>,
    ) -> Result<(Session<'_>, T), RegistryError> {
        let endpoints = self.settings.endpoints(registry, access == Access::Pull);
        let mut last_error = None;
        for endpoint in endpoints {
            let attempt = self
                .open(registry, &endpoint, repository, access, mount_from)
                .and_then(|session| first(&session).map(|value| (session, value)));
            match attempt {
                Ok(found) => return Ok(found),
                Err(error) if endpoint.mirror => {
                    log::warn!("mirror {} failed, trying the next: {error}", endpoint.base);
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.expect("there is always a last endpoint"))
    }

    fn open(
        &self,
        registry: &str,
        endpoint: &Endpoint,
        repository: &str,
        access: Access,
        mount_from: &[String],
    ) -> Result<Session<'_>, RegistryError> {
        let (base, challenge) = self.ping(endpoint)?;
        let mut scopes = vec![auth::scope(repository, access.actions())];
        scopes.extend(mount_from.iter().map(|r| auth::scope(r, "pull")));
        let credentials = if endpoint.mirror {
            None // a mirror is anonymous: the class's credentials stay home
        } else {
            self.credentials_for(registry)?
        };
        let session = Session {
            client: self,
            registry: registry.to_string(),
            endpoint: endpoint.clone(),
            base,
            repository: repository.to_string(),
            access,
            scopes,
            challenge,
            credentials,
        };
        // A token before the first real request: the parallel layer downloads then
        // share it instead of each asking for one.
        if session
            .challenge
            .as_ref()
            .is_some_and(|c| c.scheme == "bearer")
        {
            session.token(false)?;
        }
        Ok(session)
    }

    /// `GET /v2/`: is it a registry, in which protocol, and does it want
    /// credentials? HTTPS first; plain HTTP when HTTPS is not spoken there and the
    /// endpoint allows it.
    fn ping(&self, endpoint: &Endpoint) -> Result<(String, Option<Challenge>), RegistryError> {
        let agent = self.agent(&endpoint.host)?;
        let mut base = endpoint.base.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let url = format!("{base}/v2/");
            log::debug!("GET {url}");
            let result = agent.get(&url).call();
            let response = match result {
                Ok(response) => response,
                Err(ureq::Error::Status(_, response)) => response,
                Err(ureq::Error::Transport(transport)) => match broken(&transport) {
                    Broken::NotTls if endpoint.plain_http_allowed && base.starts_with("https:") => {
                        log::debug!("{} does not speak TLS: plain HTTP", endpoint.host);
                        base = format!("http://{}", &base["https://".len()..]);
                        continue;
                    }
                    Broken::NotTls => {
                        return Err(RegistryError::Tls {
                            host: endpoint.host.clone(),
                            detail: "the server does not speak TLS".into(),
                        })
                    }
                    Broken::Tls(detail) => {
                        return Err(RegistryError::Tls {
                            host: endpoint.host.clone(),
                            detail,
                        })
                    }
                    Broken::Other => {
                        return Err(RegistryError::Unreachable {
                            host: endpoint.host.clone(),
                            detail: describe(&transport),
                        })
                    }
                },
            };
            return match response.status() {
                200..=299 => Ok((base, None)),
                401 => {
                    let challenge = response
                        .header("www-authenticate")
                        .and_then(Challenge::parse);
                    Ok((base, challenge))
                }
                // Busy: the same patience as every other request.
                status @ (429 | 500..=599) if attempt < ATTEMPTS => {
                    let pause = BACKOFF * 2u32.pow(attempt - 1);
                    log::warn!("GET {url} answered {status}; retrying in {pause:?}");
                    std::thread::sleep(pause);
                    continue;
                }
                status @ (429 | 500..=599) => Err(RegistryError::Http {
                    host: endpoint.host.clone(),
                    method: "GET",
                    path: "/v2/".into(),
                    status,
                    detail: format!("the registry is failing or busy, after {ATTEMPTS} attempts"),
                }),
                status => Err(RegistryError::Http {
                    host: endpoint.host.clone(),
                    method: "GET",
                    path: "/v2/".into(),
                    status,
                    detail: "this is not a registry of the distribution API (v2)".into(),
                }),
            };
        }
    }

    /// Checks `credentials` against `registry` as `docker login` does: the
    /// registry's /v2/ with Basic, or the token service with them.
    pub fn login(&self, registry: &str, credentials: &Credentials) -> Result<(), RegistryError> {
        let endpoint = self
            .settings
            .endpoints(registry, false)
            .pop()
            .expect("a registry has an endpoint");
        let (base, challenge) = self.ping(&endpoint)?;
        let wrong = || RegistryError::WrongCredentials {
            host: registry.to_string(),
        };
        match challenge {
            None => Ok(()),
            Some(challenge) if challenge.scheme == "bearer" => self
                .fetch_token(
                    &challenge,
                    &[],
                    Some(credentials),
                    base.starts_with("http://") || endpoint.skip_verify,
                )
                .map_err(|error| match error {
                    RegistryError::Token { .. } => wrong(),
                    other => other,
                })
                .map(drop),
            Some(_) => {
                let agent = self.agent(&endpoint.host)?;
                match agent
                    .get(&format!("{base}/v2/"))
                    .set("Authorization", &credentials.basic())
                    .call()
                {
                    Ok(_) => Ok(()),
                    Err(ureq::Error::Status(401, _)) => Err(wrong()),
                    Err(ureq::Error::Status(status, response)) => Err(RegistryError::Http {
                        host: registry.to_string(),
                        method: "GET",
                        path: "/v2/".into(),
                        status,
                        detail: error_detail(response).1,
                    }),
                    Err(ureq::Error::Transport(t)) => Err(RegistryError::Unreachable {
                        host: registry.to_string(),
                        detail: describe(&t),
                    }),
                }
            }
        }
    }

    /// Asks the token service of `challenge` for a token good for `scopes`.
    fn fetch_token(
        &self,
        challenge: &Challenge,
        scopes: &[String],
        credentials: Option<&Credentials>,
        plain_allowed: bool,
    ) -> Result<String, RegistryError> {
        let realm = challenge.param("realm").unwrap_or_default().to_string();
        let failed = |detail: String| RegistryError::Token {
            realm: realm.clone(),
            detail,
        };
        if !realm.starts_with("https://") && !realm.starts_with("http://") {
            return Err(failed("the challenge names no http(s) realm".into()));
        }
        // Credentials travel to a plain-HTTP token service only for a registry that
        // is itself plain HTTP or named insecure, or on this machine.
        if realm.starts_with("http://") && !plain_allowed && !hosts::is_loopback(host_of(&realm)) {
            return Err(failed(
                "the registry speaks HTTPS but sends credentials to a plain-HTTP token service: refused".into(),
            ));
        }
        let agent = self.agent(host_of(&realm))?;
        let mut request = agent.get(&realm);
        for (key, value) in auth::token_query(challenge, scopes) {
            request = request.query(&key, &value);
        }
        if let Some(credentials) = credentials {
            request = request.set("Authorization", &credentials.basic());
        }
        log::debug!("token for {scopes:?} from {realm}");
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status @ (401 | 403), response)) => {
                let (_, message) = error_detail(response);
                return Err(failed(format!("{status} {message}")));
            }
            Err(ureq::Error::Status(status, response)) => {
                let (_, message) = error_detail(response);
                return Err(RegistryError::Http {
                    host: host_of(&realm).to_string(),
                    method: "GET",
                    path: realm.clone(),
                    status,
                    detail: format!("the token service failed: {message}"),
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(RegistryError::Unreachable {
                    host: host_of(&realm).to_string(),
                    detail: describe(&t),
                })
            }
        };
        let mut body = Vec::new();
        response
            .into_reader()
            .take(SMALL_BODY_CAP)
            .read_to_end(&mut body)
            .map_err(|e| failed(e.to_string()))?;
        auth::token_of(&body).ok_or_else(|| failed("the answer holds no token".into()))
    }
}

impl Session<'_> {
    fn token_key(&self) -> String {
        format!("{} {}", self.endpoint.host, self.scopes.join(" "))
    }

    /// The bearer token for this session's scopes: the one already obtained, or
    /// (with `fresh`, or when there is none) a new one.
    fn token(&self, fresh: bool) -> Result<String, RegistryError> {
        let key = self.token_key();
        if !fresh {
            if let Some(token) = self.client.tokens.lock().expect("tokens lock").get(&key) {
                return Ok(token.clone());
            }
        }
        let challenge = self.challenge.as_ref().expect("a bearer challenge");
        let token = self
            .client
            .fetch_token(
                challenge,
                &self.scopes,
                self.credentials.as_ref(),
                self.base.starts_with("http://") || self.endpoint.skip_verify,
            )
            .map_err(|error| match error {
                RegistryError::Token { .. } if self.credentials.is_some() => {
                    RegistryError::WrongCredentials {
                        host: self.registry.clone(),
                    }
                }
                other => other,
            })?;
        self.client
            .tokens
            .lock()
            .expect("tokens lock")
            .insert(key, token.clone());
        Ok(token)
    }

    /// The `Authorization` header this session's requests carry, if any.
    fn authorization(&self) -> Result<Option<String>, RegistryError> {
        Ok(match &self.challenge {
            Some(c) if c.scheme == "bearer" => Some(format!("Bearer {}", self.token(false)?)),
            Some(c) if c.scheme == "basic" => self.credentials.as_ref().map(Credentials::basic),
            _ => None,
        })
    }

    /// `/v2/REPOSITORY/SUFFIX` as a URL.
    pub fn url(&self, suffix: &str) -> String {
        format!("{}/v2/{}/{suffix}", self.base, self.repository)
    }

    /// Sends a request to the registry and gives its answer (2xx or 3xx), trying
    /// again on 429, 5xx and broken connections, getting a token on 401, and
    /// following GET and HEAD redirects (without `Authorization`: the storage a
    /// registry redirects to must not see the registry's token).
    pub fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<ureq::Response, RegistryError> {
        // The registry's credentials go to the registry only: an upload Location
        // or a URL on another host or scheme gets none (containerd's rule), and
        // nothing goes from HTTPS down to plain HTTP.
        let own = origin(url) == self.base;
        if self.base.starts_with("https://") && url.starts_with("http://") {
            return Err(self.downgrade(method, url));
        }
        let agent = self.client.agent(host_of(url))?;
        let mut reauthorized = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = agent.request(method, url);
            for (name, value) in headers {
                request = request.set(name, value);
            }
            if own {
                if let Some(authorization) = self.authorization()? {
                    request = request.set("Authorization", &authorization);
                }
            }
            log::debug!("{method} {url}");
            let result = match body {
                Body::Empty if method == "GET" || method == "HEAD" => request.call(),
                Body::Empty => request.send_bytes(&[]),
                Body::Bytes(bytes, content_type) => {
                    request.set("Content-Type", content_type).send_bytes(bytes)
                }
            };
            let retry_after = match result {
                Ok(response) if (300..400).contains(&response.status()) => {
                    if method != "GET" && method != "HEAD" {
                        let status = response.status();
                        return Err(self.failure(method, url, status, response));
                    }
                    return self.follow(method, response, headers);
                }
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) => {
                    let challenge = response
                        .header("www-authenticate")
                        .and_then(Challenge::parse);
                    let insufficient = challenge
                        .as_ref()
                        .is_some_and(|c| c.param("error") == Some("insufficient_scope"));
                    let bearer = matches!(&self.challenge, Some(c) if c.scheme == "bearer");
                    if !reauthorized && bearer {
                        // The token may have expired: one fresh token, then give up.
                        reauthorized = true;
                        self.token(true)?;
                        continue;
                    }
                    return Err(if insufficient && self.credentials.is_some() {
                        RegistryError::Denied {
                            host: self.registry.clone(),
                            repository: self.repository.clone(),
                            action: self.access.verb(),
                            detail: "the token does not grant it (insufficient_scope)".into(),
                        }
                    } else if self.credentials.is_some() && !bearer {
                        RegistryError::WrongCredentials {
                            host: self.registry.clone(),
                        }
                    } else {
                        RegistryError::Unauthorized {
                            host: self.registry.clone(),
                            repository: self.repository.clone(),
                            action: self.access.verb(),
                        }
                    });
                }
                Err(ureq::Error::Status(status, response))
                    if status == 429 || (500..600).contains(&status) =>
                {
                    let wait = response
                        .header("retry-after")
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(10)));
                    if attempt >= ATTEMPTS {
                        return Err(self.failure(method, url, status, response));
                    }
                    wait
                }
                Err(ureq::Error::Status(status, response)) => {
                    return Err(self.failure(method, url, status, response))
                }
                Err(ureq::Error::Transport(transport)) => {
                    if attempt >= ATTEMPTS {
                        return Err(RegistryError::Unreachable {
                            host: self.endpoint.host.clone(),
                            detail: describe(&transport),
                        });
                    }
                    None
                }
            };
            let pause = retry_after.unwrap_or(BACKOFF * 2u32.pow(attempt - 1));
            log::warn!(
                "{method} {url} failed (attempt {attempt} of {ATTEMPTS}); retrying in {pause:?}"
            );
            std::thread::sleep(pause);
        }
    }

    /// Follows a redirect of `method` (to blob storage) without `Authorization`.
    fn follow(
        &self,
        method: &'static str,
        mut response: ureq::Response,
        headers: &[(&str, &str)],
    ) -> Result<ureq::Response, RegistryError> {
        for _ in 0..5 {
            if !(300..400).contains(&response.status()) || !(method == "GET" || method == "HEAD") {
                return Ok(response);
            }
            let Some(location) = response.header("location") else {
                return Ok(response);
            };
            let url = absolute(response.get_url(), location);
            if response.get_url().starts_with("https://") && url.starts_with("http://") {
                return Err(self.downgrade(method, &url));
            }
            log::debug!("redirected to {url}");
            let agent = self.client.agent(host_of(&url))?;
            let mut request = agent.request(method, &url);
            for (name, value) in headers {
                if !name.eq_ignore_ascii_case("authorization") {
                    request = request.set(name, value);
                }
            }
            response = match request.call() {
                Ok(response) => response,
                Err(ureq::Error::Status(status, response)) => {
                    return Err(self.failure(method, &url, status, response))
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(RegistryError::Unreachable {
                        host: host_of(&url).to_string(),
                        detail: describe(&t),
                    })
                }
            };
        }
        Err(RegistryError::Http {
            host: self.endpoint.host.clone(),
            method,
            path: response.get_url().to_string(),
            status: response.status(),
            detail: "more than 5 redirects".into(),
        })
    }

    /// The registry sent ferry from HTTPS to plain HTTP: refused.
    fn downgrade(&self, method: &'static str, url: &str) -> RegistryError {
        RegistryError::Http {
            host: self.endpoint.host.clone(),
            method,
            path: url.split('?').next().unwrap_or(url).to_string(),
            status: 0,
            detail: "the registry sent ferry from HTTPS to plain HTTP: refused".into(),
        }
    }

    /// The error of a 4xx/5xx answer, named by what the registry's body says.
    fn failure(
        &self,
        method: &'static str,
        url: &str,
        status: u16,
        response: ureq::Response,
    ) -> RegistryError {
        let (code, message) = error_detail(response);
        let path = url
            .find("/v2/")
            .map_or(url.to_string(), |at| url[at..].to_string());
        let detail = if code.is_empty() {
            message
        } else {
            format!("{code}: {message}")
        };
        match (status, code.as_str()) {
            (404, _) | (_, "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN") => {
                RegistryError::NotFound {
                    host: self.registry.clone(),
                    what: self.what_of(&path),
                    detail,
                }
            }
            (403, _) | (_, "DENIED") => RegistryError::Denied {
                host: self.registry.clone(),
                repository: self.repository.clone(),
                action: self.access.verb(),
                detail,
            },
            _ => RegistryError::Http {
                host: self.endpoint.host.clone(),
                method,
                path,
                status,
                detail,
            },
        }
    }

    /// "manifest REPO:TAG" or "blob DIGEST" from a request path.
    fn what_of(&self, path: &str) -> String {
        let rest = path
            .strip_prefix(&format!("/v2/{}/", self.repository))
            .unwrap_or(path);
        match rest.split_once('/') {
            Some(("manifests", reference)) if reference.starts_with("sha256:") => {
                format!("manifest {}@{reference}", self.repository)
            }
            Some(("manifests", reference)) => format!("manifest {}:{reference}", self.repository),
            Some(("blobs", digest)) => format!("blob {digest} of {}", self.repository),
            _ => path.to_string(),
        }
    }
}

/// Accepts every certificate: only for registries named insecure, as docker's
/// `insecure-registries` do over HTTPS.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_redirects_keep_the_origin() {
        assert_eq!(
            absolute("http://127.0.0.1:5000/v2/a/blobs/x", "/storage/x?sig=1"),
            "http://127.0.0.1:5000/storage/x?sig=1"
        );
        assert_eq!(absolute("https://a/b", "https://s3/x"), "https://s3/x");
        // A relative name without '/' stays on the host: not "a.evil.com".
        assert_eq!(
            absolute("https://a/v2/x", ".evil.com/x"),
            "https://a/v2/.evil.com/x"
        );
        assert_eq!(origin("http://h:1/v2/x?y"), "http://h:1");
        assert_eq!(host_of("https://h:1/v2/?q"), "h:1");
    }
}
