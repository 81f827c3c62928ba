//! Authentication as the distribution spec and Docker Hub have it.
//!
//! Chapter 7. A registry that wants credentials answers `401 Unauthorized` with a
//! `WWW-Authenticate` header, a *challenge*. `Basic realm="..."` asks for the
//! username and password on every request. `Bearer realm="URL",service="S"` sends
//! the client to a token service: `GET URL?service=S&scope=repository:NAME:pull`
//! (with the username and password when there are any, anonymously otherwise)
//! gives a short-lived token, sent as `Authorization: Bearer TOKEN` from then on.
//! The scope says which repository and which actions (`pull`, `push`) the token is
//! good for, so a token is kept per scope.
//!
//! Credentials live where docker keeps them: `auths` in `~/.docker/config.json`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use base64::Engine as _;

use super::RegistryError;

/// A `WWW-Authenticate` challenge: the scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic`, lower-cased.
    pub scheme: String,
    /// `realm`, `service`, `scope`, `error`..., keys lower-cased.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value such as
    /// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
    /// Values may be quoted (and then hold commas and `\"`) or bare.
    pub fn parse(header: &str) -> Option<Challenge> {
        // BEGIN SOLUTION ch07 "parse a WWW-Authenticate challenge: a scheme, then key=value pairs, values quoted or bare"
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = BTreeMap::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if rest.is_empty() {
                break;
            }
            let (key, after) = rest.split_once('=')?;
            let mut value = String::new();
            if let Some(quoted) = after.strip_prefix('"') {
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((at, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = Some(at + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                rest = &quoted[end?..];
            } else {
                let end = after.find(',').unwrap_or(after.len());
                value.push_str(after[..end].trim());
                rest = &after[end..];
            }
            params.insert(key.trim().to_ascii_lowercase(), value);
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
        // END SOLUTION
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// The query of a token request: the service, and one `scope` per scope, as
/// `(key, value)` pairs (the HTTP client encodes them).
pub fn token_query(challenge: &Challenge, scopes: &[String]) -> Vec<(String, String)> {
    // BEGIN SOLUTION ch07 "the token request's query: service=SERVICE and one scope=SCOPE per scope"
    let mut query = Vec::new();
    if let Some(service) = challenge.param("service") {
        query.push(("service".to_string(), service.to_string()));
    }
    for scope in scopes {
        query.push(("scope".to_string(), scope.clone()));
    }
    query
    // END SOLUTION
}

/// The scope of `actions` (`pull`, `pull,push`) on `repository`.
pub fn scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// The token in a token service's answer (`token`, or OAuth2's `access_token`).
pub fn token_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
}

/// A username and a password (or a personal access token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// `Authorization: Basic base64(user:password)`'s value.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// Docker's credentials file (`config.json`): `{"auths": {"HOST": {"auth":
/// base64(user:password)}}}`. Other keys of the file are kept as they are.
#[derive(Debug, Clone)]
pub struct CredentialFile {
    pub path: PathBuf,
    /// The user and group the file is read and written as (the user who ran sudo:
    /// root must not reach through their directory, and what it writes stays
    /// theirs, for their docker and podman).
    pub owner: Option<(u32, u32)>,
}

/// The most a config.json may be.
const CONFIG_CAP: u64 = 1 << 20;

impl CredentialFile {
    /// Runs `io` with the filesystem identity of the file's owner (the user who ran
    /// sudo): setfsuid(2), setfsgid(2) and that user's group only, restored after.
    /// The kernel then checks every open, mkdir and rename as for that user, so a
    /// `~/.docker` that is a symlink into /root, or a config.json linked to a file of
    /// root's, gets no further than the user could go alone — and what is created is
    /// the user's without a chown. Call it from the main thread before any other
    /// exists (setgroups applies to the whole process).
    fn as_owner<T>(
        &self,
        io: impl FnOnce() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        use nix::unistd::{getgroups, setfsgid, setfsuid, setgroups, Gid, Uid};
        let Some((uid, gid)) = self.owner else {
            return io();
        };
        let failed = |detail: String| RegistryError::Config {
            action: "switch to the sudo user for",
            path: self.path.clone(),
            detail,
        };
        let groups = getgroups().map_err(|e| failed(e.to_string()))?;
        setgroups(&[Gid::from_raw(gid)]).map_err(|e| failed(e.to_string()))?;
        let old_gid = setfsgid(Gid::from_raw(gid));
        let old_uid = setfsuid(Uid::from_raw(uid));
        let result = io();
        setfsuid(old_uid);
        setfsgid(old_gid);
        setgroups(&groups).map_err(|e| failed(e.to_string()))?;
        result
    }

    fn read(&self) -> Result<serde_json::Value, RegistryError> {
        let error = |detail: String| RegistryError::Config {
            action: "read",
            path: self.path.clone(),
            detail,
        };
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::json!({})),
            Err(e) => return Err(error(e.to_string())),
        };
        let mut bytes = Vec::new();
        file.take(CONFIG_CAP)
            .read_to_end(&mut bytes)
            .map_err(|e| error(e.to_string()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::json!({}));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        if !value.is_object() {
            return Err(error("it is not a JSON object".into()));
        }
        Ok(value)
    }

    /// The credentials saved for `key` (a registry host, or Docker Hub's key).
    pub fn get(&self, key: &str) -> Result<Option<Credentials>, RegistryError> {
        let value = self.as_owner(|| self.read())?;
        let Some(entry) = value.get("auths").and_then(|a| a.get(key)) else {
            return Ok(None);
        };
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if let Some((username, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                return Ok(Some(Credentials {
                    username: username.to_string(),
                    password: password.to_string(),
                }));
            }
        }
        let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(String::from);
        Ok(field("username")
            .zip(field("password"))
            .map(|(username, password)| Credentials { username, password }))
    }

    /// Saves `credentials` for `key`: the whole file written to a temporary file of
    /// mode 0600 beside it, then renamed over it (a symlinked config.json is
    /// replaced by a file, not written through).
    pub fn save(&self, key: &str, credentials: &Credentials) -> Result<(), RegistryError> {
        self.as_owner(|| self.save_as_owner(key, credentials))
    }

    fn save_as_owner(&self, key: &str, credentials: &Credentials) -> Result<(), RegistryError> {
        let mut value = self.read()?;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.username, credentials.password));
        let object = value.as_object_mut().expect("read gives an object");
        let auths = object
            .entry("auths")
            .or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        auths[key] = serde_json::json!({ "auth": auth });
        self.write(&value)
    }

    /// The credential helper the file names (`credsStore`, `credHelpers`), which
    /// ferry does not run: root would run a program of the user's choosing.
    pub fn helper(&self) -> Option<String> {
        let value = self.as_owner(|| self.read()).ok()?;
        let store = value.get("credsStore").and_then(|v| v.as_str());
        let store = store.filter(|s| !s.is_empty()).map(String::from);
        let helpers = value
            .get("credHelpers")
            .and_then(|v| v.as_object())
            .filter(|o| !o.is_empty())
            .map(|_| "credHelpers".to_string());
        store.or(helpers)
    }

    /// Forgets the credentials of `key`; whether there were any.
    pub fn remove(&self, key: &str) -> Result<bool, RegistryError> {
        self.as_owner(|| self.remove_as_owner(key))
    }

    fn remove_as_owner(&self, key: &str) -> Result<bool, RegistryError> {
        let mut value = self.read()?;
        let removed = value
            .get_mut("auths")
            .and_then(|a| a.as_object_mut())
            .is_some_and(|auths| auths.remove(key).is_some());
        if removed {
            self.write(&value)?;
        }
        Ok(removed)
    }

    fn write(&self, value: &serde_json::Value) -> Result<(), RegistryError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let error = |detail: String| RegistryError::Config {
            action: "write",
            path: self.path.clone(),
            detail,
        };
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| error(e.to_string()))?;
        }
        let temp = dir.join(format!(".config.json.{}", std::process::id()));
        let mut bytes = serde_json::to_vec_pretty(value).expect("JSON serializes");
        bytes.push(b'\n');
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result.map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hubs_challenge_parses() {
        let challenge = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(challenge.scheme, "bearer");
        assert_eq!(
            challenge.param("realm"),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(challenge.param("service"), Some("registry.docker.io"));
        assert_eq!(
            challenge.param("scope"),
            Some("repository:library/busybox:pull,push")
        );
    }

    #[test]
    fn bare_values_escapes_and_basic() {
        let challenge = Challenge::parse(
            r#"Bearer realm=http://x/token, error="insufficient_scope", x="a\"b""#,
        )
        .unwrap();
        assert_eq!(challenge.param("realm"), Some("http://x/token"));
        assert_eq!(challenge.param("error"), Some("insufficient_scope"));
        assert_eq!(challenge.param("x"), Some("a\"b"));
        let basic = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(basic.scheme, "basic");
        assert!(Challenge::parse("").is_none());
    }

    #[test]
    fn token_query_has_the_service_and_every_scope() {
        let challenge = Challenge::parse(r#"Bearer realm="r",service="s""#).unwrap();
        let query = token_query(&challenge, &[scope("a/b", "pull"), scope("c", "pull")]);
        assert_eq!(
            query,
            [
                ("service".into(), "s".into()),
                ("scope".into(), "repository:a/b:pull".into()),
                ("scope".into(), "repository:c:pull".into())
            ]
        );
    }

    #[test]
    fn credentials_round_trip_in_dockers_format_keeping_other_keys() {
        let dir = std::env::temp_dir().join(format!("ferry-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"credsStore": "", "auths": {"other": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        let file = CredentialFile {
            path: path.clone(),
            owner: None,
        };
        let credentials = Credentials {
            username: "ann".into(),
            password: "p:w".into(),
        };
        file.save("localhost:5000", &credentials).unwrap();
        assert_eq!(file.get("localhost:5000").unwrap(), Some(credentials));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("credsStore") && text.contains("\"other\""));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(file.remove("localhost:5000").unwrap());
        assert_eq!(file.get("localhost:5000").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
