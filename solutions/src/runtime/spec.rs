//! The runtime spec: what an engine hands a runtime, in the OCI runtime spec's
//! names and JSON shape (`config.json` of an OCI bundle).
//!
//! The seam between engine and runtime (ARCHITECTURE.md, "Layers"). docker and
//! podman write such a file and call runc or crun with it; ferry's engine writes one
//! into each container's state directory and hands it to ferry's runtime, so
//! `cat /var/lib/ferry/containers/ID/config.json` shows exactly what ran. Only the
//! parts ferry implements are here; the runtime refuses a field it would ignore.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::seccomp::Profile;

/// The version of the runtime spec these types follow.
pub const OCI_VERSION: &str = "1.0.2";

/// A container's whole description (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub linux: Linux,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Programs the runtime runs at points of the lifecycle (chapter 12).
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
}

/// The lifecycle's hooks, each list run in order (runtime spec, "POSIX-platform
/// Hooks"). ferry runs the ones the runtime itself runs, in its own namespaces:
/// `prestart` and `createRuntime` once the container's namespaces and cgroup exist,
/// before its root is set up; `poststart` after `start`; `poststop` at `delete`.
/// `createContainer` and `startContainer` run inside the container: refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        *self == Hooks::default()
    }

    /// Every hook, of every stage.
    pub fn all(&self) -> impl Iterator<Item = &Hook> {
        self.prestart
            .iter()
            .chain(&self.create_runtime)
            .chain(&self.create_container)
            .chain(&self.start_container)
            .chain(&self.poststart)
            .chain(&self.poststop)
    }
}

/// One hook: a program on the host, run with the container's state on its stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute path of the program.
    pub path: String,
    /// Its whole argv, `args[0]` included (as execv(3) takes it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Its whole environment (nothing of the runtime's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds before it is killed and counted as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// The container's first program and how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// Written to /proc/PID/oom_score_adj before the program runs (see proc(5)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// The AppArmor profile: ferry applies none, so it runs only where AppArmor
    /// is off (the plan refuses it otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    /// The terminal's size (rows and columns) with `terminal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

/// Numeric ids: the engine resolves names in the image's /etc/passwd and group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
    /// The umask the program starts with (see umask(2)); 0022 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
}

/// The five capability sets, as names such as `CAP_CHOWN`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

/// A resource limit (setrlimit(2)), such as `RLIMIT_NOFILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Absolute, or relative to the bundle directory.
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

/// One mount, in the order they are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// Everything Linux-specific.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Profile>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Kernel parameters of the container's own namespaces, such as
    /// `net.ipv4.ip_forward`, written under /proc/sys (see sysctl(8)).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
}

/// A namespace to create — or, with a `path`, to join (setns(2)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// `mount`, `uts`, `ipc`, `pid`, `network`, `cgroup` (and `user`, `time`).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Cgroup limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// The device cgroup's rules, in order. ferry seals devices instead (chapter
    /// 4): only the default devices work, which is what the rules may ask for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
}

/// One rule of the device cgroup: allow or deny `access` (`rwm`) to devices of a
/// `type` (`c`, `b`, or `a` for all), `major` and `minor` (absent: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Memory plus swap, in bytes; -1 for unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    /// Microseconds of CPU time per `period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// CPUs to run on, such as `0-1,3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
}

impl Spec {
    /// The spec as `config.json` holds it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a spec serializes")
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// Reads JSON someone else wrote (a bundle's `config.json` of podman's, a
/// `process.json` for exec, `linux.resources` for update) as `T`, refusing every
/// field ferry does not know: serde would drop it without a word, and a runtime
/// that ignores `linux.uidMappings` or a device rule runs something other than
/// what was asked. Empty values (`[]`, `{}`, `null`, `false`, `""`) ask for
/// nothing and pass. `what` names the document (`config.json`, `process`).
pub fn from_json_strict<T>(text: &str, what: &str) -> Result<T, super::plan::SpecError>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let invalid = |why: String| super::plan::SpecError {
        field: what.into(),
        why,
    };
    let given: serde_json::Value =
        serde_json::from_str(text).map_err(|error| invalid(format!("is not JSON: {error}")))?;
    let parsed: T = serde_json::from_value(given.clone())
        .map_err(|error| invalid(format!("does not have the runtime spec's shape: {error}")))?;
    let understood = serde_json::to_value(&parsed).expect("a spec serializes");
    let prefix = if what == "config.json" { "" } else { what };
    if let Some(field) = first_unknown(&given, &understood, prefix) {
        return Err(super::plan::SpecError {
            field,
            why: format!(
                "is not implemented by {}: refused rather than ignored (chapters/12-runtime.md lists what is)",
                crate::ENGINE
            ),
        });
    }
    Ok(parsed)
}

/// The path (`linux.uidMappings`) of the first field of `given` that is not in
/// `understood` and asks for something.
fn first_unknown(
    given: &serde_json::Value,
    understood: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value;
    let asks_for_nothing = |value: &Value| match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    };
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (given, understood) {
        (Value::Object(given), Value::Object(understood)) => {
            given
                .iter()
                .find_map(|(key, value)| match understood.get(key) {
                    Some(known) => first_unknown(value, known, &join(key)),
                    None if asks_for_nothing(value) => None,
                    None => Some(join(key)),
                })
        }
        (Value::Object(given), _) => given
            .iter()
            .find(|(_, value)| !asks_for_nothing(value))
            .map(|(key, _)| join(key)),
        (Value::Array(given), Value::Array(understood)) => given
            .iter()
            .zip(understood)
            .enumerate()
            .find_map(|(i, (g, u))| first_unknown(g, u, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// ferry's annotation for its own init as PID 1 (`--init`): the runtime forks and
/// stays as PID 1 in front of `process.args` (docker instead puts `docker-init`
/// first in `args`; there is no init binary to put in a libc-less rootfs).
pub const ANNOTATION_INIT: &str = "org.ferry.init";

/// ferry's annotation for the id of the image a container runs (its config digest).
pub const ANNOTATION_IMAGE: &str = "org.ferry.image";
/// ferry's annotation for the image's name as the user gave it.
pub const ANNOTATION_IMAGE_NAME: &str = "org.ferry.image.name";

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: serde_json::Value) -> String {
        let mut json = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"},
            "root": {"path": "rootfs"},
        });
        merge(&mut json, extra);
        json.to_string()
    }

    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(into), serde_json::Value::Object(from)) => {
                for (key, value) in from {
                    merge(into.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (into, from) => *into = from,
        }
    }

    #[test]
    fn unknown_fields_are_refused_by_their_path_and_empty_ones_pass() {
        let refused = |extra: serde_json::Value| {
            from_json_strict::<Spec>(&minimal(extra), "config.json")
                .err()
                .map(|error| error.field)
        };
        assert_eq!(refused(serde_json::json!({})), None);
        assert_eq!(
            refused(serde_json::json!({"linux": {"uidMappings": [{"containerID": 0}]}})),
            Some("linux.uidMappings".to_string())
        );
        assert_eq!(
            refused(serde_json::json!({"process": {"user": {"umask": 18, "username": "x"}}})),
            Some("process.user.username".to_string())
        );
        assert_eq!(
            refused(serde_json::json!({"mounts": [{"destination": "/x", "uidMappings": [1]}]})),
            Some("mounts[0].uidMappings".to_string())
        );
        assert_eq!(
            refused(serde_json::json!({"linux": {"devices": [], "rootfsPropagation": ""}})),
            None
        );
        let spec: Spec = from_json_strict(&minimal(serde_json::json!({
            "process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}], "oomScoreAdj": 5},
            "linux": {"sysctl": {"net.ipv4.ip_forward": "1"}},
            "hooks": {"poststop": [{"path": "/bin/true"}]},
        })), "config.json")
        .unwrap();
        assert_eq!(spec.process.oom_score_adj, Some(5));
        assert_eq!(spec.hooks.poststop.len(), 1);
    }
}
