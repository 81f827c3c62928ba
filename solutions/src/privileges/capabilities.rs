//! Capabilities: root's powers, split into ~40 pieces that can be kept or dropped.
//!
//! A process has five capability sets (see capabilities(7)): *bounding* (the most
//! it can ever get), *permitted* (what it may switch on), *effective* (what the
//! kernel checks now), *inheritable* and *ambient* (what survives execve for a
//! non-root program). A container keeps Docker's default set as bounding,
//! permitted and effective, and empty inheritable and ambient sets.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use super::PrivilegeError;

/// Docker's default capabilities for a container.
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Parses a capability name as docker accepts it: `chown`, `CHOWN`, `CAP_CHOWN`.
pub fn parse(name: &str) -> Result<Capability, PrivilegeError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    Capability::from_str(&full).map_err(|_| PrivilegeError::UnknownCapability {
        name: name.to_string(),
    })
}

/// The container's capabilities: the defaults (all with `--privileged`), minus
/// `--cap-drop`, plus `--cap-add`; `ALL` in either means every capability ferry
/// itself may hand on (its own bounding set). Drops apply first, so
/// `--cap-drop ALL --cap-add CHOWN` keeps CHOWN.
pub fn resolve(
    add: &[String],
    drop: &[String],
    privileged: bool,
    held: &CapsHashSet,
) -> Result<CapsHashSet, PrivilegeError> {
    let everything = || held.clone();
    let mut set: CapsHashSet = if privileged {
        everything()
    } else {
        DEFAULT_CAPABILITIES.iter().copied().collect()
    };
    for name in drop {
        if name.eq_ignore_ascii_case("ALL") {
            set.clear();
        } else {
            set.remove(&parse(name)?);
        }
    }
    for name in add {
        if name.eq_ignore_ascii_case("ALL") {
            set.extend(everything());
        } else {
            set.insert(parse(name)?);
        }
    }
    Ok(set)
}

/// Capability names (`CAP_CHOWN`, ...) of a set, for seccomp's capability rules.
/// The capabilities this process may still hand out (its bounding set): what
/// `ALL` and `--privileged` mean.
pub fn held() -> CapsHashSet {
    caps::read(None, CapSet::Bounding).unwrap_or_else(|_| caps::runtime::thread_all_supported())
}

pub fn names(set: &CapsHashSet) -> HashSet<String> {
    set.iter().map(|cap| cap.to_string()).collect()
}

/// Drops from the bounding set every capability not in `keep` (prctl(2)
/// `PR_CAPBSET_DROP`, here through `caps::drop`), and clears the ambient set. Done
/// while still root with CAP_SETPCAP, before the user switch.
pub fn limit_bounding_set(keep: &CapsHashSet) -> Result<(), PrivilegeError> {
    // BEGIN SOLUTION ch04 "drop every capability not kept from the bounding set; clear ambient"
    let bounding = caps::read(None, CapSet::Bounding).map_err(PrivilegeError::Capabilities)?;
    for cap in bounding.difference(keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(PrivilegeError::Capabilities)?;
    }
    caps::clear(None, CapSet::Ambient).map_err(PrivilegeError::Capabilities)
    // END SOLUTION
}

/// Sets the effective, permitted and inheritable sets (capset(2)): `keep` as
/// effective and permitted for root, nothing for another user (as docker: a
/// non-root user gets no capabilities), and an empty inheritable set. Effective
/// must shrink before permitted can (the kernel refuses effective ⊄ permitted).
pub fn set_capabilities(keep: &CapsHashSet, root: bool) -> Result<(), PrivilegeError> {
    // BEGIN SOLUTION ch04 "set the effective, permitted and inheritable capability sets (capset(2))"
    let granted = if root {
        keep.clone()
    } else {
        CapsHashSet::new()
    };
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())
        .map_err(PrivilegeError::Capabilities)?;
    caps::set(None, CapSet::Effective, &granted).map_err(PrivilegeError::Capabilities)?;
    caps::set(None, CapSet::Permitted, &granted).map_err(PrivilegeError::Capabilities)
    // END SOLUTION
}
