//! The engine: what a user asks for (options), turned into a runtime spec and run
//! by the runtime. It knows images (from chapter 6), names, volumes, networks and
//! the store; the runtime knows one container. The CLI (and later an API) sits
//! above it; it never prints — it returns what happened.
//!
//! `run` is what `docker run` does with a daemon and runc: create the container's
//! directory, write the spec into it (`config.json`), then the runtime's create,
//! start, wait and delete.

pub mod build;
pub mod bundle;
pub mod containers;
pub mod defaults;
pub mod diff;
pub mod etc_files;
pub mod options;
pub mod source;
pub mod spec_builder;
pub mod sweep;
pub mod volumes;

use std::path::{Path, PathBuf};

use crate::id::ContainerId;
use crate::privileges::{capabilities, user, PrivilegeError};
use crate::rootfs::options as mount_options;
use crate::runtime::spec;
use crate::runtime::{self, CreateOptions, Exit, RuntimeError};
use crate::safe_path::Kind;
use bundle::{Bundle, BundleError};
use options::{ConfigError, DeviceRequest, MountRequest, RunOptions};
use spec_builder::Layer;
use volumes::{VolumeError, VolumeStore};

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("rootfs {path} cannot be used")]
    RootfsMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootfs {path} is not a directory")]
    RootfsNotDirectory { path: PathBuf },
    #[error("failed to generate a container id")]
    Id(#[source] std::io::Error),
    #[error(transparent)]
    User(PrivilegeError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    EtcFiles(#[from] etc_files::EtcError),
    #[error("the host path {path} of a mount cannot be used")]
    MountSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a device node: --device takes a character or block device of the host")]
    NotADevice { path: PathBuf },
    #[error(transparent)]
    Unsafe(#[from] crate::safe_path::SafePathError),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// The container store (chapter 8) failed: what and why, in words.
    #[error("{0}")]
    Store(String),
}

/// How a `run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub exit: Exit,
    /// The memory limit it ran with, for the caller's OOM message.
    pub memory_limit: Option<u64>,
}

/// Runs a container to its end: bundle, spec, create, start, wait, delete. The
/// container's directory and cgroup are removed on every path. This is the
/// chapters 0–7 `run`; from chapter 8 a container is kept as an object instead
/// (`containers`).
pub fn run(options: &RunOptions, state_root: &Path) -> Result<RunOutcome, EngineError> {
    let prepared = prepare(options, state_root)?;
    let result = execute(prepared.bundle.dir(), &prepared.spec, prepared.no_pivot);
    let memory_limit = prepared.memory_limit;
    let removed = prepared.remove(state_root);
    let exit = result?;
    removed?;
    Ok(RunOutcome { exit, memory_limit })
}

/// A container made but not run: its directory (the bundle, with `config.json`,
/// the hostname file and the overlay's directories), its spec and what was made
/// for it.
#[derive(Debug)]
pub struct Prepared {
    pub bundle: Bundle,
    pub id: ContainerId,
    pub spec: spec::Spec,
    /// The options, with the image's config filled in.
    pub options: RunOptions,
    /// The image it was made from, if any.
    pub image: Option<crate::images::Image>,
    /// The overlay's lower directories, topmost first.
    pub lowers: Vec<PathBuf>,
    /// Anonymous volumes made for it: they go with the container.
    pub anonymous_volumes: Vec<String>,
    /// The mounts the user asked for (volumes, binds, tmpfs, devices), as spec entries.
    pub user_mounts: Vec<spec::Mount>,
    pub no_pivot: bool,
    pub memory_limit: Option<u64>,
}

impl Prepared {
    /// Removes the container's directory and its anonymous volumes (docker
    /// removes them with `--rm` and `rm -v`).
    pub fn remove(self, state_root: &Path) -> Result<(), EngineError> {
        let removed = self.bundle.remove();
        remove_volumes(state_root, &self.anonymous_volumes)?;
        Ok(removed?)
    }
}

/// Removes the anonymous volumes `names`; every one is tried.
pub fn remove_volumes(state_root: &Path, names: &[String]) -> Result<(), EngineError> {
    let store = VolumeStore::new(state_root);
    let mut result = Ok(());
    for name in names {
        if let Err(error) = store.remove(name, true) {
            result = Err(error.into());
        }
    }
    result
}

/// Makes a container: options checked, the image's config applied, an id, the
/// user resolved in the image, volumes found or made, and its directory with the
/// spec (`config.json`) written. Nothing runs yet; on failure nothing is left.
pub fn prepare(options: &RunOptions, state_root: &Path) -> Result<Prepared, EngineError> {
    options.check()?;
    // What a ferry killed with SIGKILL left behind goes first.
    sweep::sweep(state_root);
    let source = source::Source::of(options, state_root)?;
    // An image's config fills in what the user did not say (chapter 6).
    let options = match &source.image {
        Some(image) => source::with_image_config(options, image.config.config.as_ref())?,
        None => options.clone(),
    };
    let mut options = options;
    if options.publish_all {
        options.publish.extend(exposed_ports(&source)?);
        options.publish_all = false;
    }
    options.check()?;
    let id = ContainerId::generate().map_err(EngineError::Id)?;
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| id.short().to_string());
    let user = match &options.user {
        // Names mean what the image's /etc/passwd and /etc/group say (read safely).
        Some(spec) => {
            Some(user::resolve(spec, &source.passwd_layer()?).map_err(EngineError::User)?)
        }
        None => None,
    };
    if source
        .lowers
        .iter()
        .any(|lower| state_root.starts_with(lower))
    {
        return Err(ConfigError {
            field: options::Field::Rootfs,
            value: state_root.display().to_string(),
            why: "the state root is inside the container's files: every container would see the others' secrets; use another --root".into(),
        }
        .into());
    }
    let mut anonymous = Vec::new();
    let store = VolumeStore::new(state_root);
    let made = user_mounts(&store, &options, &source, &mut anonymous).and_then(|mounts| {
        let bundle = Bundle::create(state_root, id.as_str())?;
        let context = Context {
            bundle: &bundle,
            id: &id,
            source: &source,
            hostname: &hostname,
            user: user.as_ref(),
            mounts: &mounts,
        };
        let spec = write_spec(&context, &options)?;
        Ok((bundle, spec, mounts))
    });
    let (bundle, spec, mounts) = match made {
        Ok(made) => made,
        Err(error) => {
            let _ = remove_volumes(state_root, &anonymous);
            return Err(error);
        }
    };
    Ok(Prepared {
        bundle,
        id,
        spec,
        no_pivot: options.no_pivot,
        memory_limit: options.memory,
        options,
        image: source.image,
        lowers: source.lowers,
        anonymous_volumes: anonymous,
        user_mounts: mounts,
    })
}

/// The most ports `-P` publishes: an image could list thousands.
const MAX_EXPOSED: usize = 100;

/// The ports the image exposes (`ExposedPorts`: "80/tcp"), each on a free host
/// port, for `-P`.
fn exposed_ports(source: &source::Source) -> Result<Vec<crate::network::PortRequest>, ConfigError> {
    let exposed = source
        .image
        .as_ref()
        .and_then(|image| image.config.config.as_ref())
        .and_then(|config| config.exposed_ports.clone())
        .unwrap_or_default();
    if exposed.len() > MAX_EXPOSED {
        return Err(ConfigError {
            field: options::Field::Network,
            value: format!("{} ports", exposed.len()),
            why: format!("the image exposes more than {MAX_EXPOSED} ports: publish the ones you need with -p instead of -P"),
        });
    }
    exposed
        .keys()
        .map(|port| {
            let request: crate::network::PortRequest = port.parse().map_err(|why| ConfigError {
                field: options::Field::Network,
                value: port.clone(),
                why: format!("the image's ExposedPorts has {port:?}: {why}"),
            })?;
            Ok(crate::network::PortRequest {
                host_port: None,
                host_ip: None,
                ..request
            })
        })
        .collect()
}

/// What `write_spec` works with.
struct Context<'a> {
    bundle: &'a Bundle,
    id: &'a ContainerId,
    source: &'a source::Source,
    hostname: &'a str,
    user: Option<&'a user::User>,
    mounts: &'a [spec::Mount],
}

/// Writes the container's files into its directory and its spec as `config.json`.
fn write_spec(context: &Context, options: &RunOptions) -> Result<spec::Spec, EngineError> {
    let (bundle, id) = (context.bundle, context.id);
    // The network (chapter 10): the host's namespace, or one of its own — made
    // by the runtime (none) or by the engine and joined by path (a bridge network,
    // another container's).
    let mode = options.network_mode();
    let mut namespaces = defaults::namespace_flags();
    if mode == crate::network::Mode::Host {
        namespaces.remove(nix::sched::CloneFlags::CLONE_NEWNET);
    }
    let own_network = namespaces.contains(nix::sched::CloneFlags::CLONE_NEWNET);
    let etc_files = etc_files::write(
        bundle,
        &etc_files::EtcRequest {
            hostname: context.hostname,
            address: None,
            own_network,
            dns: &options.dns,
            extra_hosts: &options.extra_hosts,
        },
    )?;
    let layer = Layer {
        upper: bundle.make_dir("upper")?,
        work: bundle.make_dir("work")?,
        merged: bundle.make_dir("rootfs")?,
    };
    let held = capabilities::held();
    let spec = spec_builder::build(&spec_builder::Inputs {
        options,
        id: id.as_str(),
        lowers: &context.source.lowers,
        image: context.source.image.as_ref(),
        hostname: context.hostname,
        namespaces,
        user: context.user,
        held_capabilities: &held,
        etc_files: Some(&etc_files),
        layer: Some(&layer),
        mounts: context.mounts,
    })?;
    let mut spec = spec;
    if own_network && mode.namespace_by_path() {
        let state_root = bundle
            .dir()
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"));
        let path = crate::network::Networks::netns_path(state_root, id.as_str());
        for namespace in spec
            .linux
            .namespaces
            .iter_mut()
            .filter(|n| n.kind == "network")
        {
            namespace.path = Some(path.display().to_string());
        }
    }
    bundle.write_config(&spec)?;
    Ok(spec)
}

/// Runs the container whose directory is `dir` once, with the runtime's four
/// steps: create, start, wait, delete (its cgroup and state.json go; the
/// directory stays).
pub fn execute(dir: &Path, spec: &spec::Spec, no_pivot: bool) -> Result<Exit, EngineError> {
    let mut container = create_process(dir, spec, no_pivot)?;
    let ran = container.start().and_then(|()| container.wait());
    let deleted = container.delete();
    let exit = ran?;
    deleted?;
    Ok(exit)
}

/// The runtime's `create` for the container whose directory is `dir`.
pub fn create_process(
    dir: &Path,
    spec: &spec::Spec,
    no_pivot: bool,
) -> Result<runtime::Container, EngineError> {
    let id = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(runtime::create(
        &id,
        dir,
        spec,
        &CreateOptions {
            no_pivot,
            ..CreateOptions::default()
        },
    )?)
}

/// The user's mounts and devices as spec entries: host paths checked, named
/// volumes found or created (and seeded from the image on first use), anonymous
/// ones created (their names pushed to `anonymous`, for the caller to remove).
fn user_mounts(
    store: &VolumeStore,
    options: &RunOptions,
    files: &source::Source,
    anonymous: &mut Vec<String>,
) -> Result<Vec<spec::Mount>, EngineError> {
    let mut mounts = Vec::new();
    let bind = |source: &Path, target: &Path, read_only: bool| spec::Mount {
        destination: target.display().to_string(),
        kind: Some("bind".to_string()),
        source: Some(source.display().to_string()),
        options: if read_only {
            vec!["rbind".into(), "ro".into()]
        } else {
            vec!["rbind".into()]
        },
    };
    for request in &options.mounts {
        match request {
            MountRequest::Bind {
                source,
                target,
                read_only,
            } => {
                let source = source
                    .canonicalize()
                    .map_err(|error| EngineError::MountSource {
                        path: source.clone(),
                        source: error,
                    })?;
                mounts.push(bind(&source, target, *read_only));
            }
            MountRequest::Volume {
                source,
                target,
                read_only,
            } => {
                let mut volume = match source {
                    Some(name) => store.get_or_create(name)?,
                    None => {
                        let volume = store.create(None, true)?;
                        anonymous.push(volume.name.clone());
                        volume
                    }
                };
                // What the image has there, resolved inside it, seeds a new volume.
                if let Some((_root, content)) = files.find(target, Kind::Directory)? {
                    store.seed(&mut volume, &content.fd_path())?;
                }
                mounts.push(bind(&volume.mountpoint, target, *read_only));
            }
            MountRequest::Tmpfs { target, size, mode } => {
                let flags = nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV
                    | nix::mount::MsFlags::MS_NOEXEC;
                let mut data = Vec::new();
                if let Some(size) = size {
                    data.push(format!("size={size}"));
                }
                if let Some(mode) = mode {
                    data.push(format!("mode={mode:o}"));
                }
                let data = (!data.is_empty()).then(|| data.join(","));
                mounts.push(spec::Mount {
                    destination: target.display().to_string(),
                    kind: Some("tmpfs".to_string()),
                    source: Some("tmpfs".to_string()),
                    options: mount_options::to_words(flags, data.as_deref()),
                });
            }
        }
    }
    for DeviceRequest {
        host, container, ..
    } in &options.devices
    {
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(host).map_err(|error| EngineError::MountSource {
            path: host.clone(),
            source: error,
        })?;
        if !(meta.file_type().is_char_device() || meta.file_type().is_block_device()) {
            return Err(EngineError::NotADevice { path: host.clone() });
        }
        mounts.push(bind(host, container, false));
    }
    Ok(mounts)
}
