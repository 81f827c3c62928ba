//! `--user`: who the command runs as, resolved in the container's own /etc/passwd
//! and /etc/group (the host's users mean nothing inside).

use std::path::Path;

use nix::unistd::{Gid, Uid};

use super::PrivilegeError;
use crate::safe_path::Root;

/// The user and groups the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups of /etc/group that list the user.
    pub groups: Vec<u32>,
    /// The home directory from /etc/passwd, when the user is listed there.
    pub home: Option<String>,
}

/// Resolves `--user` (`name`, `uid`, `name:group`, `uid:gid`) inside the
/// container's root `root`. A numeric uid need not exist in /etc/passwd (docker
/// allows it: gid 0 then); a name must.
pub fn resolve(spec: &str, root: &Path) -> Result<User, PrivilegeError> {
    let passwd = read_database(root, "/etc/passwd")?;
    let group = read_database(root, "/etc/group")?;
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| {
            f.len() >= 7
                && (f[0] == user_part || (user_part.parse::<u32>().is_ok() && f[2] == user_part))
        });
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        // An entry whose ids do not read as numbers is the image's mistake (or
        // its trick): refused, never taken as root.
        (Some(f), _) => match (f[2].parse(), f[3].parse()) {
            (Ok(uid), Ok(gid)) => (uid, gid, Some(f[0]), Some(f[5].to_string())),
            _ => {
                return Err(PrivilegeError::UnknownUser {
                    spec: spec.to_string(),
                })
            }
        },
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => {
            return Err(PrivilegeError::UnknownUser {
                spec: spec.to_string(),
            })
        }
    };
    if let Some(group_part) = group_part {
        gid = match group_part.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == group_part)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| PrivilegeError::UnknownUser {
                    spec: spec.to_string(),
                })?,
        };
    }
    let mut groups: Vec<u32> = match name {
        Some(name) => group
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|member| member == name))
            .filter_map(|f| f[2].parse().ok())
            .collect(),
        None => Vec::new(),
    };
    groups.retain(|g| *g != gid);
    groups.insert(0, gid);
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

/// The most ferry reads of /etc/passwd or /etc/group.
const DATABASE_CAP: u64 = 1 << 20;

/// Reads /etc/passwd or /etc/group of the container safely (see `safe_path`): a
/// FIFO or `/dev/zero` there is refused instead of hanging ferry or filling its
/// memory. A missing file reads as empty.
fn read_database(root: &Path, path: &str) -> Result<String, PrivilegeError> {
    let bytes = Root::open(root)?.read_file(Path::new(path), DATABASE_CAP)?;
    Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
}

/// Becomes `user`: supplementary groups first (setgroups(2)), then the group
/// (setgid(2)), then the user (setuid(2)) — in that order, because each step needs
/// privileges the next one gives up. A setuid to non-root also clears the
/// permitted and effective capabilities.
pub fn switch_user(user: &User) -> Result<(), PrivilegeError> {
    // BEGIN SOLUTION ch04 "become the container's user: setgroups, setgid, setuid — in that order"
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|source| PrivilegeError::SwitchUser {
        step: "setgroups",
        source,
    })?;
    nix::unistd::setgid(Gid::from_raw(user.gid)).map_err(|source| PrivilegeError::SwitchUser {
        step: "setgid",
        source,
    })?;
    nix::unistd::setuid(Uid::from_raw(user.uid)).map_err(|source| PrivilegeError::SwitchUser {
        step: "setuid",
        source,
    })
    // END SOLUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_files() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ferry-user-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\nodd:x:-1:zero::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\nann:x:1000:\naudio:x:29:ann\nvideo:x:44:bob,ann\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn users_resolve_by_name_and_number_with_groups() {
        let root = root_with_files();
        let ann = resolve("ann", &root).unwrap();
        assert_eq!(
            (ann.uid, ann.gid, ann.groups.clone()),
            (1000, 1000, vec![1000, 29, 44])
        );
        assert_eq!(ann.home.as_deref(), Some("/home/ann"));
        assert_eq!(resolve("1000:audio", &root).unwrap().gid, 29);
        let stranger = resolve("4242", &root).unwrap();
        assert_eq!(
            (stranger.uid, stranger.gid, stranger.groups),
            (4242, 0, vec![0])
        );
        assert!(resolve("nobody-here", &root).is_err());
        assert!(resolve("ann:nogroup", &root).is_err());
        assert!(
            resolve("odd", &root).is_err(),
            "ids that do not read as numbers are refused, not taken as root"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
