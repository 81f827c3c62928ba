//! Registries: images pulled from and pushed to a server over the OCI distribution
//! API — plain HTTP requests under `/v2/`.
//!
//! Chapter 7 (chapters/07-registry.md). A pull is a walk down the digest graph of
//! chapter 6, one request per node: the tag gives a manifest (or an index of
//! manifests, one per platform), the manifest names a config and layers, and each
//! is fetched by its digest from `/v2/REPOSITORY/blobs/DIGEST`. Every byte is checked
//! against the digest that named it before the store believes it, so a registry
//! (or anything between) cannot change an image without being caught. Before any
//! of it, the registry may answer 401 and say where to get a token ([`auth`]).
//!
//! ```text
//! hosts      which server a name goes to (docker.io, mirrors, insecure, certs.d)
//! transport  HTTP: TLS, tokens on every request, retries, redirects
//! auth       WWW-Authenticate challenges, tokens, docker's config.json credentials
//! platform   which manifest of an index is this machine's
//! pull, push the two walks
//! ```

pub mod auth;
pub mod hosts;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod transport;

use crate::images::{Digest, ImageError};

pub use hosts::Settings;
pub use platform::Platform;
pub use transport::Client;

/// What a pull or a push can fail with. Each says which it is and what to do;
/// the CLI adds the chapter.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the registry {host}: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("the TLS connection to {host} failed: {detail}")]
    Tls { host: String, detail: String },
    #[error("{host} asks for a login to {action} {repository} (401 Unauthorized)")]
    Unauthorized {
        host: String,
        repository: String,
        action: &'static str,
    },
    #[error("the registry {host} refused the username and password (401)")]
    WrongCredentials { host: String },
    #[error("{host} denies {action} access to {repository}: {detail}")]
    Denied {
        host: String,
        repository: String,
        action: &'static str,
        detail: String,
    },
    #[error("{what} not found on {host}: {detail}")]
    NotFound {
        host: String,
        what: String,
        detail: String,
    },
    #[error("{host} answered {status} to {method} {path}: {detail}")]
    Http {
        host: String,
        method: &'static str,
        path: String,
        status: u16,
        detail: String,
    },
    #[error("{reference} is a schema 1 image (application/vnd.docker.distribution.manifest.v1): deprecated since 2019, no longer pulled by docker 26 and not by ferry")]
    Schema1 { reference: String },
    #[error("{reference} has no image for {wanted}; it has: {available}")]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("invalid platform {text:?}: {why}")]
    BadPlatform { text: String, why: &'static str },
    #[error("{what} from {host} does not match its digest: expected {want}, got {got}")]
    DigestMismatch {
        host: String,
        what: String,
        want: Digest,
        got: Digest,
    },
    #[error("the manifest from {host} is unusable: {why}")]
    BadManifest { host: String, why: String },
    #[error("the image needs at least {needed} bytes in {path}, which has {available} free")]
    NoSpace {
        path: std::path::PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("the token service {realm} failed: {detail}")]
    Token { realm: String, detail: String },
    #[error("failed to {action} {path}: {detail}")]
    Config {
        action: &'static str,
        path: std::path::PathBuf,
        detail: String,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl RegistryError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        use RegistryError::*;
        Some(match self {
            Unreachable { host, .. } if host == hosts::DOCKER_HUB_HOST => "Docker Hub cannot be reached from here (offline? a proxy?); in a classroom, pull through the class's mirror: registry-mirrors in registries.toml (see chapters/07-registry.md)".into(),
            Unreachable { host, .. } if hosts::is_loopback(host) => format!(
                "is the registry running, and is {host} the right host:port? (see chapters/07-registry.md)"
            ),
            Unreachable { host, .. } => format!(
                "is the registry running, and is {host} the right host:port? A registry that speaks plain HTTP must be named with --insecure-registry {host} (see chapters/07-registry.md)"
            ),
            Tls { host, .. } => format!(
                "a registry with its own certificate authority needs that CA at /etc/docker/certs.d/{host}/ca.crt (or under the state root's certs.d/{host}/); a registry you trust without TLS can be named with --insecure-registry {host}"
            ),
            Unauthorized { host, .. } => format!(
                "log in first: `{} login {host}` (credentials go to docker's config.json)",
                crate::ENGINE
            ),
            WrongCredentials { host } => format!(
                "log in again with the right password: `{} login {host}`",
                crate::ENGINE
            ),
            Denied { .. } => "the credentials work but lack this right: pushing needs an account that may write to the repository".into(),
            NotFound { .. } => "check the name and the tag (`skopeo list-tags docker://HOST/REPOSITORY` lists the tags)".into(),
            Schema1 { .. } => "pull a newer tag of the image, or convert it (`skopeo copy --format v2s2`)".into(),
            NoSpace { .. } => "free some space: `image prune -a` removes images no container uses (see chapters/06-images.md)".into(),
            NoPlatform { .. } => "pick one of the listed platforms with --platform os/arch[/variant]".into(),
            DigestMismatch { .. } => "something changed the bytes between the registry and here (or in the registry's storage): nothing was stored; try again, and tell the registry's owner if it persists".into(),
            _ => return None,
        })
    }
}
