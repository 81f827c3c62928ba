//! From what a user asked for to the runtime spec the runtime runs: the engine's
//! half of the seam (what dockerd or podman do before they call runc).
//!
//! [`build`] is a pure function: every input that needs the host (the id, the
//! capabilities ferry holds, the user found in the image's /etc/passwd, the
//! namespaces the chapters provide) is handed in, so a unit test can build a spec
//! without touching the machine.

use std::collections::BTreeMap;
use std::path::Path;

use caps::CapsHashSet;
use nix::sched::CloneFlags;

use super::defaults;
use super::options::{ConfigError, Field, RunOptions, SeccompChoice};
use crate::env;
use crate::privileges::{capabilities, PrivilegeError, User};
use crate::runtime::spec::{self, Spec, ANNOTATION_INIT, OCI_VERSION};
use crate::seccomp;

/// What the spec is built from, besides the options.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub options: &'a RunOptions,
    /// The container's id (its cgroup's name).
    pub id: &'a str,
    /// The container's files, topmost first: the rootfs (one directory) or an
    /// image's layers.
    pub lowers: &'a [std::path::PathBuf],
    /// The image, when the files are one (its id goes into the annotations).
    pub image: Option<&'a crate::images::Image>,
    pub hostname: &'a str,
    /// The namespaces the container gets.
    pub namespaces: CloneFlags,
    /// `--user` as found in the image; `None` stays root.
    pub user: Option<&'a User>,
    /// The capabilities ferry may hand on (for `ALL` and `--privileged`).
    pub held_capabilities: &'a CapsHashSet,
    /// The engine's /etc/hostname, /etc/hosts and /etc/resolv.conf for the
    /// container, in its state directory.
    pub etc_files: Option<&'a super::etc_files::EtcFiles>,
    /// The container's own layer, for the overlay over the rootfs (chapter 5).
    pub layer: Option<&'a Layer>,
    /// The user's mounts (volumes resolved to host directories), after the defaults.
    pub mounts: &'a [spec::Mount],
}

/// A container's own layer: the directories of its overlay, in its state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Where every write of the container lands.
    pub upper: std::path::PathBuf,
    /// overlayfs's scratch directory (same filesystem as `upper`).
    pub work: std::path::PathBuf,
    /// The empty directory the merged view is mounted on: the container's root.
    pub merged: std::path::PathBuf,
}

/// The overlay's entry in `mounts`: destination `/`, the image's directories as
/// lower (topmost first), the container's layer as upper.
pub fn overlay_mount(lowers: &[std::path::PathBuf], layer: &Layer) -> spec::Mount {
    let lowers: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    spec::Mount {
        destination: "/".to_string(),
        kind: Some("overlay".to_string()),
        source: Some("overlay".to_string()),
        options: vec![
            format!("lowerdir={}", lowers.join(":")),
            format!("upperdir={}", layer.upper.display()),
            format!("workdir={}", layer.work.display()),
        ],
    }
}

/// Builds the runtime spec for one container.
pub fn build(inputs: &Inputs) -> Result<Spec, ConfigError> {
    let options = inputs.options;
    options.check()?;
    let capabilities = capabilities::resolve(
        &options.cap_add,
        &options.cap_drop,
        options.privileged,
        inputs.held_capabilities,
    )
    .map_err(|error| match error {
        PrivilegeError::UnknownCapability { name } => ConfigError {
            field: Field::Capabilities,
            value: name,
            why: "names such as CHOWN or CAP_CHOWN, or ALL; see capabilities(7)".to_string(),
        },
        other => ConfigError {
            field: Field::Capabilities,
            value: String::new(),
            why: other.to_string(),
        },
    })?;
    let mut names: Vec<String> = capabilities::names(&capabilities).into_iter().collect();
    names.sort();
    let seccomp = match (&options.seccomp, options.privileged) {
        (SeccompChoice::Unconfined, _) | (SeccompChoice::Default, true) => None,
        (SeccompChoice::Default, false) => Some(seccomp::default_profile()),
        (SeccompChoice::Profile(profile), _) => Some(profile.clone()),
    }
    .map(|profile| profile.resolved_for(&capabilities::names(&capabilities)));
    let (masked_paths, readonly_paths) = defaults::protected_paths(options.privileged);
    let limits = options.limits()?;
    let cpu =
        (limits.cpus.is_some() || limits.cpu_shares.is_some() || limits.cpuset_cpus.is_some())
            .then(|| spec::Cpu {
                shares: limits.cpu_shares,
                quota: limits
                    .cpus
                    .map(|cpus| (cpus * crate::cgroups::CPU_PERIOD_US as f64).round() as i64),
                period: limits.cpus.map(|_| crate::cgroups::CPU_PERIOD_US),
                cpus: limits.cpuset_cpus.clone(),
            });
    let memory = (limits.memory.is_some() || limits.memory_swap.is_some()).then(|| spec::Memory {
        limit: limits.memory.map(|m| m as i64),
        swap: limits.memory_swap,
    });
    let resources = spec::Resources {
        memory,
        pids: limits.pids.map(|limit| spec::Pids {
            limit: limit as i64,
        }),
        cpu,
        devices: Vec::new(),
    };
    let mut annotations = BTreeMap::new();
    if options.init {
        annotations.insert(ANNOTATION_INIT.to_string(), "true".to_string());
    }
    if let Some(image) = inputs.image {
        annotations.insert(spec::ANNOTATION_IMAGE.to_string(), image.id().to_string());
        if let Some(name) = &options.image {
            annotations.insert(spec::ANNOTATION_IMAGE_NAME.to_string(), name.clone());
        }
    }
    Ok(Spec {
        oci_version: OCI_VERSION.to_string(),
        process: spec::Process {
            terminal: options.tty,
            user: inputs.user.map(numeric_user).unwrap_or_default(),
            args: options.command.clone(),
            env: environment(inputs),
            cwd: options
                .workdir
                .as_deref()
                .unwrap_or(Path::new("/"))
                .display()
                .to_string(),
            capabilities: Some(spec::Capabilities {
                bounding: names.clone(),
                effective: names.clone(),
                inheritable: Vec::new(),
                permitted: names,
                ambient: Vec::new(),
            }),
            rlimits: Vec::new(),
            no_new_privileges: options.no_new_privileges,
            oom_score_adj: None,
            apparmor_profile: None,
            console_size: None,
        },
        root: spec::Root {
            path: match (inputs.layer, inputs.lowers.first()) {
                (Some(layer), _) => layer.merged.display().to_string(),
                (None, Some(lower)) => lower.display().to_string(),
                (None, None) => String::new(),
            },
            readonly: options.read_only,
        },
        hostname: Some(inputs.hostname.to_string()),
        mounts: inputs
            .layer
            .map(|layer| overlay_mount(inputs.lowers, layer))
            .into_iter()
            .chain(defaults::mounts(inputs.namespaces, inputs.etc_files))
            .chain(inputs.mounts.iter().cloned())
            .collect(),
        linux: spec::Linux {
            namespaces: defaults::namespaces(inputs.namespaces),
            resources: Some(resources),
            cgroups_path: Some(format!(
                "{}/{}",
                options.cgroup_parent()?.trim_end_matches('/'),
                inputs.id
            )),
            seccomp,
            masked_paths,
            readonly_paths,
            sysctl: BTreeMap::new(),
        },
        annotations,
        hooks: spec::Hooks::default(),
    })
}

/// The container's environment: the defaults and the user's entries (chapter 0),
/// and HOME from the image's /etc/passwd for `--user` unless HOME was given.
fn environment(inputs: &Inputs) -> Vec<String> {
    let options = inputs.options;
    let inherited = |key: &str| options.inherited_env.get(key).cloned();
    let mut vars = env::container_environment(inputs.hostname, &options.env, &inherited);
    let home_given = options.env.iter().any(|entry| match entry {
        env::EnvEntry::Set(key, _) | env::EnvEntry::Inherit(key) => key == "HOME",
    });
    if let (false, Some(home)) = (home_given, inputs.user.and_then(|u| u.home.as_ref())) {
        vars.retain(|pair| !pair.starts_with("HOME="));
        vars.push(format!("HOME={home}"));
    }
    vars
}

fn numeric_user(user: &User) -> spec::User {
    spec::User {
        uid: user.uid,
        gid: user.gid,
        additional_gids: user
            .groups
            .iter()
            .copied()
            .filter(|g| *g != user.gid)
            .collect(),
        umask: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::etc_files::EtcFiles;
    use super::*;

    fn inputs<'a>(
        options: &'a RunOptions,
        held: &'a CapsHashSet,
        lower: &'a std::path::PathBuf,
    ) -> Inputs<'a> {
        static ETC_FILES: std::sync::OnceLock<EtcFiles> = std::sync::OnceLock::new();
        let dir = Path::new("/state/containers/0123456789ab");
        let etc_files = ETC_FILES.get_or_init(|| EtcFiles {
            hostname: dir.join("hostname"),
            hosts: dir.join("hosts"),
            resolv_conf: dir.join("resolv.conf"),
        });
        Inputs {
            options,
            id: "0123456789ab",
            lowers: std::slice::from_ref(lower),
            image: None,
            hostname: "box",
            namespaces: CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWPID,
            user: None,
            held_capabilities: held,
            etc_files: Some(etc_files),
            layer: None,
            mounts: &[],
        }
    }

    #[test]
    fn a_spec_is_built_from_options_without_the_host() {
        let options = RunOptions {
            rootfs: Some("/srv/rootfs".into()),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec![env::EnvEntry::Set("A".into(), "1".into())],
            memory: Some(64 << 20),
            init: true,
            no_new_privileges: true,
            ..RunOptions::default()
        };
        let held = CapsHashSet::new();
        let spec = build(&inputs(
            &options,
            &held,
            &std::path::PathBuf::from("/srv/rootfs"),
        ))
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(&spec.to_json()).unwrap();
        assert_eq!(json["ociVersion"], OCI_VERSION);
        assert_eq!(json["process"]["args"][2], "echo hi");
        assert_eq!(json["root"]["path"], "/srv/rootfs");
        assert_eq!(json["hostname"], "box");
        let kinds: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["mount", "uts", "ipc", "pid"]);
        let destinations: Vec<&str> = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/sys",
                "/dev/mqueue",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf"
            ]
        );
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(
            json["linux"]["cgroupsPath"],
            format!("/{}/0123456789ab", crate::ENGINE)
        );
        assert_eq!(json["annotations"][ANNOTATION_INIT], "true");
        assert!(json["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&"A=1".into()));
        assert!(json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .contains(&"CAP_CHOWN".into()));
        // The profile arrives resolved: no rule is left depending on a capability.
        assert!(!spec.to_json().contains("\"includes\""));
        assert!(!spec.linux.masked_paths.is_empty());
        // And it reads back as the same spec.
        assert_eq!(serde_json::from_str::<Spec>(&spec.to_json()).unwrap(), spec);
    }

    #[test]
    fn privileged_is_data_in_the_spec_not_a_flag() {
        let options = RunOptions {
            rootfs: Some("/srv/rootfs".into()),
            command: vec!["true".into()],
            privileged: true,
            ..RunOptions::default()
        };
        let held: CapsHashSet = [caps::Capability::CAP_SYS_ADMIN].into_iter().collect();
        let spec = build(&inputs(
            &options,
            &held,
            &std::path::PathBuf::from("/srv/rootfs"),
        ))
        .unwrap();
        assert!(spec.linux.masked_paths.is_empty() && spec.linux.readonly_paths.is_empty());
        assert!(spec.linux.seccomp.is_none());
        let caps = spec.process.capabilities.unwrap();
        assert_eq!(caps.bounding, ["CAP_SYS_ADMIN"]);
    }

    #[test]
    fn bad_values_name_their_field() {
        let options = RunOptions {
            rootfs: Some("/srv/rootfs".into()),
            command: vec!["true".into()],
            memory: Some(1 << 20),
            ..RunOptions::default()
        };
        let held = CapsHashSet::new();
        let error = build(&inputs(
            &options,
            &held,
            &std::path::PathBuf::from("/srv/rootfs"),
        ))
        .unwrap_err();
        assert_eq!(error.field, Field::Memory);
    }
}
