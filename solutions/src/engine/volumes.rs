//! Named volumes: directories the engine keeps under the state root
//! (`ROOT/volumes/NAME/_data`, as docker's local driver does), mounted into
//! containers and outliving them.
//!
//! Chapter 5 (chapters/05-overlay.md). A new volume is *seeded* on first use: what
//! the image has at the mount's path is copied in, so a database image's empty
//! `/var/lib/db` layout is there the first time (docker does the same). Anonymous
//! volumes (`-v /path`) get a random name and go with their container.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// What `volume inspect` shows (docker's fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub scope: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    /// ferry's own: made for one container (`-v /path`), removed with it.
    #[serde(default)]
    pub anonymous: bool,
    /// ferry's own: whether the image's content was copied in already.
    #[serde(default)]
    pub seeded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("no such volume: {name}")]
    NotFound { name: String },
    #[error("volume {name} already exists")]
    Exists { name: String },
    #[error("volume {name} is in use by container {container}: remove the container first, or use --force")]
    InUse { name: String, container: String },
    #[error("failed to {action} the volume {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the volume's record {path} is not valid")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The volumes of one state root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
    state_root: PathBuf,
}

/// The record of a volume in its directory.
const RECORD: &str = "volume.json";

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl VolumeStore {
    pub fn new(state_root: &Path) -> VolumeStore {
        VolumeStore {
            dir: state_root.join("volumes"),
            state_root: state_root.to_path_buf(),
        }
    }

    /// Creates the volume `name` (a random one when `None`). `anonymous` marks a
    /// volume made for one container (`-v /path`), which `prune` removes by
    /// default. The volume is made whole in a private directory and renamed into
    /// place, so another ferry never sees a volume without its record.
    pub fn create(&self, name: Option<&str>, anonymous: bool) -> Result<Volume, VolumeError> {
        let name = match name {
            Some(name) => name.to_string(),
            None => random_name().map_err(io_error("name", &self.dir))?,
        };
        check_name(&name)?;
        crate::engine::bundle::private_dir(&self.dir).map_err(io_error("create", &self.dir))?;
        let dir = self.dir.join(&name);
        if dir.exists() {
            return Err(VolumeError::Exists { name });
        }
        let staging = self.dir.join(format!(
            ".new-{}",
            random_name().map_err(io_error("name", &self.dir))?
        ));
        let data = staging.join("_data");
        std::fs::create_dir_all(&data).map_err(io_error("create", &data))?;
        let volume = Volume {
            name: name.clone(),
            driver: "local".to_string(),
            mountpoint: dir.join("_data"),
            created_at: crate::clock::rfc3339(SystemTime::now()),
            scope: "local".to_string(),
            labels: Default::default(),
            options: Default::default(),
            anonymous,
            seeded: false,
        };
        write_record(&staging, &volume)?;
        // rename(2) of a directory onto an existing non-empty one fails: first wins.
        if let Err(error) = std::fs::rename(&staging, &dir) {
            let _ = std::fs::remove_dir_all(&staging);
            return match error.raw_os_error() {
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => Err(VolumeError::Exists { name }),
                _ => Err(io_error("create", &dir)(error)),
            };
        }
        Ok(volume)
    }

    /// The volume `name`, created if it does not exist yet (as `docker run -v`).
    pub fn get_or_create(&self, name: &str) -> Result<Volume, VolumeError> {
        match self.get(name) {
            Err(VolumeError::NotFound { .. }) => match self.create(Some(name), false) {
                // Another ferry made it at the same moment: use theirs.
                Err(VolumeError::Exists { .. }) => self.get(name),
                other => other,
            },
            other => other,
        }
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        check_name(name)?;
        let record = self.dir.join(name).join(RECORD);
        let text = match std::fs::read_to_string(&record) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound {
                    name: name.to_string(),
                })
            }
            Err(error) => return Err(io_error("read", &record)(error)),
        };
        serde_json::from_str(&text).map_err(|source| VolumeError::Record {
            path: record,
            source,
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("list", &self.dir)(error)),
        };
        let mut volumes = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // a volume being made
            }
            match self.get(&name) {
                Ok(volume) => volumes.push(volume),
                // A volume being created or removed right now.
                Err(VolumeError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Removes the volume `name`; one a container uses only with `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let volume = self.get(name)?;
        if let (false, Some(container)) = (force, self.user_of(&volume)) {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                container,
            });
        }
        let dir = self.dir.join(name);
        std::fs::remove_dir_all(&dir).map_err(io_error("remove", &dir))
    }

    /// Removes the volumes no container uses — anonymous ones only, unless `all`
    /// (docker's default since 23.0); their names.
    pub fn prune(&self, all: bool) -> Result<Vec<String>, VolumeError> {
        let mut removed = Vec::new();
        for volume in self.list()? {
            if (all || volume.anonymous) && self.user_of(&volume).is_none() {
                self.remove(&volume.name, false)?;
                removed.push(volume.name);
            }
        }
        Ok(removed)
    }

    /// Copies what the image has at `from` (a directory in the image, resolved
    /// safely by the caller) into a new, empty volume, once. The copy is made in a
    /// private directory next to `_data` — no container mounts it — and its entries
    /// are then renamed into `_data`: a container that has the volume mounted
    /// meanwhile cannot make the copy write through a symlink it planted.
    pub fn seed(&self, volume: &mut Volume, from: &Path) -> Result<(), VolumeError> {
        if volume.seeded {
            return Ok(());
        }
        let empty = std::fs::read_dir(&volume.mountpoint)
            .map_err(io_error("read", &volume.mountpoint))?
            .next()
            .is_none();
        if empty {
            let base = volume.mountpoint.parent().unwrap_or(&self.dir);
            let staging = base.join(format!(
                ".seed-{}",
                random_name().map_err(io_error("name", base))?
            ));
            std::fs::create_dir(&staging).map_err(io_error("create", &staging))?;
            let copied = copy_tree(from, &staging).and_then(|()| {
                let root = std::fs::metadata(from)?;
                std::fs::set_permissions(
                    &volume.mountpoint,
                    std::fs::Permissions::from_mode(root.mode() & 0o7777),
                )?;
                std::os::unix::fs::chown(&volume.mountpoint, Some(root.uid()), Some(root.gid()))?;
                for entry in std::fs::read_dir(&staging)? {
                    let entry = entry?;
                    std::fs::rename(entry.path(), volume.mountpoint.join(entry.file_name()))?;
                }
                Ok(())
            });
            let _ = std::fs::remove_dir_all(&staging);
            copied.map_err(io_error("seed", &volume.mountpoint))?;
        }
        volume.seeded = true;
        self.save(volume)
    }

    fn save(&self, volume: &Volume) -> Result<(), VolumeError> {
        write_record(&self.dir.join(&volume.name), volume)
    }

    /// A container whose spec mounts `volume`, if any.
    fn user_of(&self, volume: &Volume) -> Option<String> {
        let source = volume.mountpoint.display().to_string();
        crate::engine::bundle::container_whose_spec(&self.state_root, |spec| {
            spec.mounts
                .iter()
                .any(|m| m.source.as_deref() == Some(source.as_str()))
        })
    }
}

/// Writes a volume's record into its directory `dir`, atomically.
fn write_record(dir: &Path, volume: &Volume) -> Result<(), VolumeError> {
    let record = dir.join(RECORD);
    let json = serde_json::to_vec_pretty(volume).expect("a volume serializes");
    crate::runtime::state::write_atomically(&record, &json).map_err(io_error("write", &record))
}

/// A volume name must be a plain name: it becomes a directory name.
fn check_name(name: &str) -> Result<(), VolumeError> {
    crate::engine::options::check_volume_name(name).map_err(|_| VolumeError::NotFound {
        name: name.to_string(),
    })
}

/// 64 random hex digits (an anonymous volume's name).
fn random_name() -> io::Result<String> {
    crate::id::ContainerId::generate().map(|id| id.to_string())
}

/// Copies the tree at `from` into the existing, private directory `to`:
/// directories, regular files and symlinks (as links, never followed), with modes
/// (setuid and setgid bits dropped: a volume is mounted nosuid anyway) and owners.
/// Special files (devices, FIFOs, sockets) are left out of a volume.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&source)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            std::fs::set_permissions(
                &target,
                std::fs::Permissions::from_mode(meta.mode() & 0o1777),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_created_listed_seeded_and_removed() {
        let root = std::env::temp_dir().join(format!("ferry-volumes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = VolumeStore::new(&root);
        let mut data = store.create(Some("data"), false).unwrap();
        assert!(matches!(
            store.create(Some("data"), false),
            Err(VolumeError::Exists { .. })
        ));
        let anonymous = store.create(None, true).unwrap();
        assert_eq!(anonymous.name.len(), 64);
        let image = root.join("image");
        std::fs::create_dir_all(image.join("sub")).unwrap();
        std::fs::write(image.join("sub/file"), "seed").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", image.join("link")).unwrap();
        store.seed(&mut data, &image).unwrap();
        assert_eq!(
            std::fs::read_to_string(data.mountpoint.join("sub/file")).unwrap(),
            "seed"
        );
        assert!(std::fs::symlink_metadata(data.mountpoint.join("link"))
            .unwrap()
            .is_symlink());
        assert!(store.get("data").unwrap().seeded);
        let names: Vec<String> = store.list().unwrap().into_iter().map(|v| v.name).collect();
        assert!(names.contains(&"data".to_string()));
        assert_eq!(store.prune(false).unwrap(), vec![anonymous.name]);
        store.remove("data", false).unwrap();
        assert!(matches!(
            store.get("data"),
            Err(VolumeError::NotFound { .. })
        ));
        std::fs::remove_dir_all(root).unwrap();
    }
}
