//! Which server a registry name goes to, and how to talk to it: docker.io is Docker
//! Hub's `registry-1.docker.io` (or a classroom mirror), loopback and insecure
//! registries may speak plain HTTP, and a registry's own certificate authority is
//! found where docker looks for it.
//!
//! Chapter 7. The settings come from a small TOML file an instructor can hand out
//! (`/etc/ferry/registries.toml`, or `registries.toml` in the state root):
//!
//! ```toml
//! registry-mirrors = ["http://192.168.1.10:5000"]
//! insecure-registries = ["192.168.1.10:5000"]
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RegistryError;
use crate::images::reference::DOCKER_HUB;

/// Docker Hub's registry host: `docker.io` is only a name.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The key docker's config.json keeps Docker Hub's credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// How ferry reaches registries: the file's settings plus the command line's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// Base URLs tried, in order, before Docker Hub for `docker.io` images.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// `HOST[:PORT]` of registries that may be reached over plain HTTP, or over
    /// HTTPS without checking their certificate (docker's insecure registries).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Directories holding `HOST[:PORT]/ca.crt` (docker's certs.d convention).
    #[serde(skip)]
    pub certs_dirs: Vec<PathBuf>,
}

/// One server to try for a registry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `HOST[:PORT]` as URLs and certs.d name it.
    pub host: String,
    /// `https://HOST` or `http://HOST`, a mirror's own base otherwise.
    pub base: String,
    /// Plain HTTP may be tried when HTTPS is not spoken (loopback, insecure).
    pub plain_http_allowed: bool,
    /// Certificates are not checked (an insecure registry, as docker has it).
    pub skip_verify: bool,
    /// A mirror: on failure, the next endpoint is tried.
    pub mirror: bool,
}

impl Settings {
    /// The settings of `state_root`'s `registries.toml`, else of
    /// `/etc/ENGINE/registries.toml`, else none; certs.d directories of docker,
    /// of the engine and of the state root.
    pub fn load(state_root: &Path) -> Result<Settings, RegistryError> {
        let system = PathBuf::from(format!("/etc/{}", crate::ENGINE));
        let mut settings = Settings::default();
        for dir in [state_root, system.as_path()] {
            let path = dir.join("registries.toml");
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    settings = toml::from_str(&text).map_err(|e| RegistryError::Config {
                        action: "read",
                        path: path.clone(),
                        detail: e.message().to_string(),
                    })?;
                    log::debug!("registry settings from {}", path.display());
                    break;
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(RegistryError::Config {
                        action: "read",
                        path,
                        detail: error.to_string(),
                    })
                }
            }
        }
        settings.certs_dirs = vec![
            PathBuf::from("/etc/docker/certs.d"),
            system.join("certs.d"),
            state_root.join("certs.d"),
        ];
        Ok(settings)
    }

    /// The servers to try for `registry` (`docker.io`, `localhost:5000`), in
    /// order; mirrors only when pulling.
    pub fn endpoints(&self, registry: &str, pulling: bool) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        if registry == DOCKER_HUB && pulling {
            for mirror in &self.registry_mirrors {
                let base = mirror.trim_end_matches('/').to_string();
                let host = base
                    .split_once("://")
                    .map_or(base.as_str(), |(_, rest)| rest)
                    .to_string();
                endpoints.push(Endpoint {
                    plain_http_allowed: base.starts_with("http://"),
                    skip_verify: self.is_insecure(&host),
                    host,
                    base,
                    mirror: true,
                });
            }
        }
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_HOST.to_string()
        } else {
            registry.to_string()
        };
        let insecure = self.is_insecure(&host);
        endpoints.push(Endpoint {
            base: format!("https://{host}"),
            plain_http_allowed: insecure || is_loopback(&host),
            skip_verify: insecure,
            host,
            mirror: false,
        });
        endpoints
    }

    fn is_insecure(&self, host: &str) -> bool {
        self.insecure_registries.iter().any(|h| h == host)
    }

    /// The PEM files of the certificate authorities trusted for `host`: every
    /// `*.crt` of `CERTS_DIR/HOST/`, as docker reads them.
    pub fn ca_files(&self, host: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        // A host is a name and a port: it must not climb out of certs.d.
        if host.contains('/') || host.starts_with('.') {
            return files;
        }
        for dir in &self.certs_dirs {
            let Ok(entries) = std::fs::read_dir(dir.join(host)) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                .collect();
            found.sort();
            files.extend(found);
        }
        files
    }
}

/// The key credentials for `registry` are kept under in docker's config.json.
pub fn auth_key(registry: &str) -> String {
    if registry == DOCKER_HUB || registry == DOCKER_HUB_HOST || registry == "index.docker.io" {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Whether `host` (`HOST[:PORT]`) is this machine: `localhost`, 127.0.0.0/8, ::1.
/// Docker lets those speak plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_goes_to_its_registry_host_after_the_mirrors() {
        let settings = Settings {
            registry_mirrors: vec!["http://10.0.0.5:5000/".into()],
            ..Settings::default()
        };
        let endpoints = settings.endpoints("docker.io", true);
        assert_eq!(endpoints[0].base, "http://10.0.0.5:5000");
        assert!(endpoints[0].mirror);
        assert_eq!(endpoints[1].base, "https://registry-1.docker.io");
        assert!(!endpoints[1].plain_http_allowed);
        // Mirrors are for pulls only.
        assert_eq!(settings.endpoints("docker.io", false).len(), 1);
    }

    #[test]
    fn only_loopback_and_insecure_registries_may_speak_plain_http() {
        let settings = Settings {
            insecure_registries: vec!["class.lan:5000".into()],
            ..Settings::default()
        };
        assert!(settings.endpoints("localhost:5000", true)[0].plain_http_allowed);
        assert!(settings.endpoints("127.0.0.1:5000", true)[0].plain_http_allowed);
        assert!(!settings.endpoints("127.0.0.1:5000", true)[0].skip_verify);
        assert!(settings.endpoints("class.lan:5000", true)[0].skip_verify);
        assert!(!settings.endpoints("ghcr.io", true)[0].plain_http_allowed);
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.1.1.1:5000"));
    }

    #[test]
    fn docker_hub_credentials_use_dockers_key() {
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key("localhost:5000"), "localhost:5000");
    }
}
