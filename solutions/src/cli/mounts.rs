//! docker's mount flags, parsed: `-v`, `--mount`, `--tmpfs`, `--device`. What they
//! mean is the engine's business (`engine::options`); here is only their syntax,
//! and an error that quotes the flag.

use std::path::PathBuf;

use super::run::{parse_bytes, CliError};
use crate::engine::options::{DeviceRequest, MountRequest};

fn bad(flag: &'static str, value: &str, why: impl Into<String>) -> CliError {
    CliError::Flag {
        flag,
        value: value.to_string(),
        why: why.into(),
    }
}

/// `-v [SOURCE:]TARGET[:ro|rw]`: a host path (absolute) is a bind mount, a name a
/// named volume, no source an anonymous volume.
pub fn volume(text: &str) -> Result<MountRequest, CliError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] if target.starts_with('/') => (Some(*source), *target, None),
        [target, options] if ["ro", "rw", "readonly"].contains(options) => {
            (None, *target, Some(*options))
        }
        [source, target, options] => (Some(*source), *target, Some(*options)),
        _ => return Err(bad("--volume", text, "use [SOURCE:]TARGET[:ro]")),
    };
    if !target.starts_with('/') {
        return Err(bad(
            "--volume",
            text,
            "use [SOURCE:]TARGET[:ro]: the target is an absolute path in the container",
        ));
    }
    let mut read_only = false;
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        match option {
            "ro" | "readonly" => read_only = true,
            "rw" => read_only = false,
            other => {
                return Err(bad(
                    "--volume",
                    text,
                    format!("unknown option {other:?}: ferry knows ro and rw"),
                ))
            }
        }
    }
    let target = PathBuf::from(target);
    Ok(match source {
        Some(source) if source.starts_with(['/', '.', '~']) => MountRequest::Bind {
            source: PathBuf::from(source),
            target,
            read_only,
        },
        Some(name) => MountRequest::Volume {
            source: Some(name.to_string()),
            target,
            read_only,
        },
        None => MountRequest::Volume {
            source: None,
            target,
            read_only,
        },
    })
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]`
pub fn mount(text: &str) -> Result<MountRequest, CliError> {
    let (mut kind, mut source, mut target) = (None, None, None);
    let (mut read_only, mut size, mut mode) = (false, None, None);
    for field in text.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "type" => kind = Some(value.to_string()),
            "source" | "src" => source = Some(value.to_string()),
            "target" | "destination" | "dst" => target = Some(PathBuf::from(value)),
            "readonly" | "ro" => {
                read_only = match value {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("--mount", text, "readonly is true or false")),
                }
            }
            "tmpfs-size" => size = Some(tmpfs_size("--mount", text, value)?),
            "tmpfs-mode" => mode = Some(tmpfs_mode("--mount", text, value)?),
            other => {
                return Err(bad(
                    "--mount",
                    text,
                    format!("unknown key {other:?}: ferry knows type, source, target, readonly, tmpfs-size, tmpfs-mode"),
                ))
            }
        }
    }
    let target = target.ok_or_else(|| bad("--mount", text, "give target=PATH"))?;
    match (kind.as_deref().unwrap_or("volume"), source) {
        ("bind", Some(source)) => Ok(MountRequest::Bind {
            source: PathBuf::from(source),
            target,
            read_only,
        }),
        ("bind", None) => Err(bad("--mount", text, "a bind mount needs source=HOST-PATH")),
        ("volume", source) => Ok(MountRequest::Volume {
            source: source.filter(|s| !s.is_empty()),
            target,
            read_only,
        }),
        ("tmpfs", None) => Ok(MountRequest::Tmpfs { target, size, mode }),
        ("tmpfs", Some(_)) => Err(bad("--mount", text, "a tmpfs has no source")),
        (other, _) => Err(bad(
            "--mount",
            text,
            format!("unknown type {other:?}: use bind, volume or tmpfs"),
        )),
    }
}

/// `--tmpfs TARGET[:size=64m,mode=1777]`
pub fn tmpfs(text: &str) -> Result<MountRequest, CliError> {
    let (target, options) = text.split_once(':').unwrap_or((text, ""));
    let (mut size, mut mode) = (None, None);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", value)) => size = Some(tmpfs_size("--tmpfs", text, value)?),
            Some(("mode", value)) => mode = Some(tmpfs_mode("--tmpfs", text, value)?),
            _ => {
                return Err(bad(
                    "--tmpfs",
                    text,
                    format!("unknown option {option:?}: ferry knows size=SIZE and mode=OCTAL"),
                ))
            }
        }
    }
    Ok(MountRequest::Tmpfs {
        target: PathBuf::from(target),
        size,
        mode,
    })
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`
pub fn device(text: &str) -> Result<DeviceRequest, CliError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, permissions) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, second] if second.starts_with('/') => (*host, *second, "rwm"),
        [host, permissions] => (*host, *host, *permissions),
        [host, container, permissions] => (*host, *container, *permissions),
        _ => return Err(bad("--device", text, "use HOST[:CONTAINER][:rwm]")),
    };
    if !host.starts_with('/') {
        return Err(bad(
            "--device",
            text,
            "the host device is an absolute path such as /dev/fuse",
        ));
    }
    Ok(DeviceRequest {
        host: PathBuf::from(host),
        container: PathBuf::from(container),
        permissions: permissions.to_string(),
    })
}

fn tmpfs_size(flag: &'static str, text: &str, value: &str) -> Result<u64, CliError> {
    parse_bytes(value).ok_or_else(|| bad(flag, text, "size is a size such as 64m"))
}

fn tmpfs_mode(flag: &'static str, text: &str, value: &str) -> Result<u32, CliError> {
    u32::from_str_radix(value, 8).map_err(|_| bad(flag, text, "mode is octal, such as 1777"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_read_as_docker_reads_them() {
        assert_eq!(
            volume("/srv/data:/data:ro").unwrap(),
            MountRequest::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true
            }
        );
        assert_eq!(
            volume("db:/var/lib/db").unwrap(),
            MountRequest::Volume {
                source: Some("db".into()),
                target: "/var/lib/db".into(),
                read_only: false
            }
        );
        assert!(matches!(
            volume("/cache").unwrap(),
            MountRequest::Volume { source: None, .. }
        ));
        assert!(volume("/a:/b:z").is_err());
        assert_eq!(
            mount("type=tmpfs,target=/run,tmpfs-size=1m,tmpfs-mode=1777").unwrap(),
            MountRequest::Tmpfs {
                target: "/run".into(),
                size: Some(1 << 20),
                mode: Some(0o1777)
            }
        );
        assert!(mount("type=bind,target=/x").is_err());
        assert!(mount("type=nfs,target=/x").is_err());
        assert!(tmpfs("/t:size=1m,exec").is_err());
        let dev = device("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(
            (dev.container.to_str(), dev.permissions.as_str()),
            (Some("/dev/mynull"), "rw")
        );
    }
}
