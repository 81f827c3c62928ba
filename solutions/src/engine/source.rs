//! Where a container's files come from: a directory (`--rootfs`) or an image of
//! the store (chapter 6), as the overlay's lower directories, topmost first; and
//! how an image's config fills in what the user did not say.

use std::path::{Path, PathBuf};

use super::options::{ConfigError, Field, RunOptions};
use super::EngineError;
use crate::env::EnvEntry;
use crate::images::oci::RunConfig;
use crate::images::{Image, Store};
use crate::safe_path::{Kind, Resolved, Root};

/// A container's files.
#[derive(Debug, Clone)]
pub struct Source {
    /// The lower directories, topmost first.
    pub lowers: Vec<PathBuf>,
    /// The image, when the files are one.
    pub image: Option<Image>,
}

impl Source {
    /// The source `options` name: `--rootfs DIR`, checked, or an image resolved in
    /// the store under `state_root`.
    pub fn of(options: &RunOptions, state_root: &Path) -> Result<Source, EngineError> {
        if let Some(dir) = &options.rootfs {
            return Ok(Source {
                lowers: vec![check_rootfs(dir)?],
                image: None,
            });
        }
        let name = options.image.as_deref().unwrap_or_default();
        let store = Store::new(state_root);
        let image = store.resolve(name)?;
        if image.manifest.layers.is_empty() {
            return Err(crate::images::ImageError::Archive {
                why: format!("the image {name} has no layers: there is nothing to run"),
            }
            .into());
        }
        Ok(Source {
            lowers: store.lowers(&image)?,
            image: Some(image),
        })
    }

    /// The topmost lower that has `path` (a directory or a file, resolved inside
    /// that layer without leaving it), as a root and the resolved path. A deletion
    /// in an upper layer (a whiteout) is not seen: good enough for reading the
    /// image's /etc/passwd and seeding volumes.
    pub fn find(&self, path: &Path, kind: Kind) -> Result<Option<(Root, Resolved)>, EngineError> {
        for lower in &self.lowers {
            let root = Root::open(lower)?;
            if let Some(found) = root.resolve_in_root(path, kind)? {
                return Ok(Some((root, found)));
            }
        }
        Ok(None)
    }

    /// The lower directory whose /etc/passwd is the image's: the topmost that has
    /// one (or has something wrong there, which reading it will report).
    pub fn passwd_layer(&self) -> Result<PathBuf, EngineError> {
        for lower in &self.lowers {
            match Root::open(lower)?.resolve_in_root(Path::new("/etc/passwd"), Kind::RegularFile) {
                Ok(None) => continue,
                _ => return Ok(lower.clone()),
            }
        }
        Ok(self.lowers.first().cloned().unwrap_or_default())
    }
}

/// `options` with what the image's config says filled in, as docker does: the
/// image's Env before the user's `-e`; the command is ENTRYPOINT + CMD, where the
/// user's arguments replace CMD and `--entrypoint` replaces ENTRYPOINT (and drops
/// CMD); WorkingDir and User unless given.
pub fn with_image_config(
    options: &RunOptions,
    config: Option<&RunConfig>,
) -> Result<RunOptions, ConfigError> {
    // BEGIN SOLUTION ch06 "fill in what the user did not say from the image's config: Env, ENTRYPOINT + CMD, WorkingDir, User"
    let empty = RunConfig::default();
    let config = config.unwrap_or(&empty);
    let mut options = options.clone();
    let mut env: Vec<EnvEntry> = config
        .env
        .iter()
        .flatten()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| EnvEntry::Set(k.to_string(), v.to_string()))
        .collect();
    env.append(&mut options.env);
    options.env = env;
    let (entrypoint, cmd) = match &options.entrypoint {
        Some(entrypoint) => (entrypoint.clone(), Vec::new()),
        None => (
            config.entrypoint.clone().unwrap_or_default(),
            config.cmd.clone().unwrap_or_default(),
        ),
    };
    let arguments = if options.command.is_empty() {
        cmd
    } else {
        options.command.clone()
    };
    options.command = entrypoint.into_iter().chain(arguments).collect();
    if options.command.is_empty() {
        return Err(ConfigError {
            field: Field::Command,
            value: options.image.clone().unwrap_or_default(),
            why: "the image has no ENTRYPOINT or CMD: give the command to run".into(),
        });
    }
    if options.workdir.is_none() {
        options.workdir = config
            .working_dir
            .as_ref()
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
    }
    if options.user.is_none() {
        options.user = config.user.clone().filter(|u| !u.is_empty());
    }
    Ok(options)
    // END SOLUTION
}

/// The rootfs must exist and be a directory; it is made absolute and canonical so
/// that later steps never depend on the current directory or on symlinks.
fn check_rootfs(path: &Path) -> Result<PathBuf, EngineError> {
    let canonical = path
        .canonicalize()
        .map_err(|source| EngineError::RootfsMissing {
            path: path.to_path_buf(),
            source,
        })?;
    if !canonical.is_dir() {
        return Err(EngineError::RootfsNotDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: &[&str], cmd: &[&str]) -> RunConfig {
        let owned = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        RunConfig {
            entrypoint: owned(entrypoint),
            cmd: owned(cmd),
            env: Some(vec!["PATH=/opt/bin".into(), "A=image".into()]),
            working_dir: Some("/srv".into()),
            ..RunConfig::default()
        }
    }

    fn command(
        image: &RunConfig,
        args: &[&str],
        entrypoint: Option<&str>,
    ) -> Result<Vec<String>, ConfigError> {
        let options = RunOptions {
            image: Some("img".into()),
            command: args.iter().map(|s| s.to_string()).collect(),
            entrypoint: entrypoint.map(|e| {
                if e.is_empty() {
                    vec![]
                } else {
                    vec![e.to_string()]
                }
            }),
            ..RunOptions::default()
        };
        with_image_config(&options, Some(image)).map(|o| o.command)
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_dockers_table_says() {
        let both = config(&["/entry", "-x"], &["default"]);
        assert_eq!(
            command(&both, &[], None).unwrap(),
            ["/entry", "-x", "default"]
        );
        assert_eq!(
            command(&both, &["mine"], None).unwrap(),
            ["/entry", "-x", "mine"]
        );
        assert_eq!(command(&both, &[], Some("/other")).unwrap(), ["/other"]);
        assert_eq!(command(&both, &["a"], Some("")).unwrap(), ["a"]);
        let cmd_only = config(&[], &["sh", "-c", "true"]);
        assert_eq!(command(&cmd_only, &[], None).unwrap(), ["sh", "-c", "true"]);
        assert_eq!(command(&cmd_only, &["ls"], None).unwrap(), ["ls"]);
        assert!(command(&config(&[], &[]), &[], None).is_err());
        let options = with_image_config(
            &RunOptions {
                image: Some("img".into()),
                env: vec![EnvEntry::Set("A".into(), "mine".into())],
                ..RunOptions::default()
            },
            Some(&both),
        )
        .unwrap();
        assert_eq!(
            options.env.last(),
            Some(&EnvEntry::Set("A".into(), "mine".into()))
        );
        assert_eq!(options.workdir, Some(PathBuf::from("/srv")));
    }
}
