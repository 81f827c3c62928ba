//! Resource limits: what `--memory`, `--pids-limit`, `--cpus` ... mean in cgroup files.
//!
//! The same limit has a different file (and sometimes unit) in v1 and v2; the
//! table below is the map, `limit_writes` turns a container's limits into the
//! writes to make, in an order the kernel accepts.

use super::layout::Version;

/// The period of the CFS bandwidth controller: `--cpus 0.5` is 50 ms per 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The smallest memory limit ferry accepts (docker's): below it the container's
/// own setup does not fit and the kernel kills it before the command starts.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// A container's limits; `None` means "no limit".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Bytes of memory (`--memory`).
    pub memory: Option<u64>,
    /// Memory plus swap in bytes (`--memory-swap`); `Some(-1)` is unlimited swap.
    /// When only `--memory` is set, the container gets no swap beyond it.
    pub memory_swap: Option<i64>,
    /// Processes and threads (`--pids-limit`).
    pub pids: Option<u64>,
    /// CPUs, possibly fractional (`--cpus`).
    pub cpus: Option<f64>,
    /// Relative CPU weight, docker's scale 2..=262144, 1024 the default (`--cpu-shares`).
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on, e.g. `0-1,3` (`--cpuset-cpus`).
    pub cpuset_cpus: Option<String>,
}

impl Limits {
    /// The controllers these limits need.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut needed = Vec::new();
        if self.memory.is_some() || self.memory_swap.is_some() {
            needed.push("memory");
        }
        if self.pids.is_some() {
            needed.push("pids");
        }
        if self.cpus.is_some() || self.cpu_shares.is_some() {
            needed.push("cpu");
        }
        if self.cpuset_cpus.is_some() {
            needed.push("cpuset");
        }
        needed
    }
}

/// One limit's file in each version (see the kernel's cgroup-v1/ and cgroup-v2.rst).
#[derive(Debug, Clone, Copy)]
pub struct LimitFile {
    pub limit: &'static str,
    pub controller: &'static str,
    pub v1: &'static str,
    pub v2: &'static str,
}

#[rustfmt::skip]
pub const LIMIT_FILES: &[LimitFile] = &[
    LimitFile { limit: "memory",      controller: "memory", v1: "memory.limit_in_bytes",       v2: "memory.max" },
    LimitFile { limit: "memory-swap", controller: "memory", v1: "memory.memsw.limit_in_bytes", v2: "memory.swap.max" },
    LimitFile { limit: "pids",        controller: "pids",   v1: "pids.max",                    v2: "pids.max" },
    LimitFile { limit: "cpu-period",  controller: "cpu",    v1: "cpu.cfs_period_us",           v2: "cpu.max" },
    LimitFile { limit: "cpu-quota",   controller: "cpu",    v1: "cpu.cfs_quota_us",            v2: "cpu.max" },
    LimitFile { limit: "cpu-shares",  controller: "cpu",    v1: "cpu.shares",                  v2: "cpu.weight" },
    LimitFile { limit: "cpuset-cpus", controller: "cpuset", v1: "cpuset.cpus",                 v2: "cpuset.cpus" },
];

/// One write into a cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitWrite {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

/// The file named `limit` in [`LIMIT_FILES`] for `version`.
pub fn limit_file(limit: &str, version: Version) -> (&'static str, &'static str) {
    let entry = LIMIT_FILES
        .iter()
        .find(|entry| entry.limit == limit)
        .unwrap_or_else(|| panic!("{limit} is not in LIMIT_FILES"));
    let file = match version {
        Version::V1 => entry.v1,
        Version::V2 => entry.v2,
    };
    (entry.controller, file)
}

/// The writes that apply `limits` in a hierarchy of `version`, in order.
///
/// * memory: bytes in both versions. Swap: v1's memsw is memory *plus* swap and
///   must be written after the memory limit; v2's swap.max is swap *only*
///   (memory_swap - memory). Without `--memory-swap`, swap is zero beyond memory.
///   `-1` is "max" in v2 and `-1` in v1.
/// * pids: the number in both.
/// * cpus: v1 writes the period, then the quota (cpus × period, in µs); v2 writes
///   "QUOTA PERIOD" to cpu.max.
/// * cpu shares → v2 weight: `1 + (shares - 2) × 9999 / 262142` (runc's formula).
/// * cpuset: the list as given.
pub fn limit_writes(limits: &Limits, version: Version) -> Vec<LimitWrite> {
    // BEGIN SOLUTION ch03 "translate the limits into cgroup file writes (v1 and v2)"
    let mut writes = Vec::new();
    let mut write = |limit: &str, value: String| {
        let (controller, file) = limit_file(limit, version);
        writes.push(LimitWrite {
            controller,
            file,
            value,
        });
    };
    if let Some(memory) = limits.memory {
        write("memory", memory.to_string());
        let swap = limits.memory_swap.unwrap_or(memory as i64);
        let value = match (swap, version) {
            (-1, Version::V1) => "-1".to_string(),
            (-1, Version::V2) => "max".to_string(),
            (total, Version::V1) => total.to_string(),
            (total, Version::V2) => (total - memory as i64).max(0).to_string(),
        };
        write("memory-swap", value);
    }
    if let Some(pids) = limits.pids {
        write("pids", pids.to_string());
    }
    if let Some(cpus) = limits.cpus {
        let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
        match version {
            Version::V1 => {
                write("cpu-period", CPU_PERIOD_US.to_string());
                write("cpu-quota", quota.to_string());
            }
            Version::V2 => write("cpu-quota", format!("{quota} {CPU_PERIOD_US}")),
        }
    }
    if let Some(shares) = limits.cpu_shares {
        let value = match version {
            Version::V1 => shares,
            Version::V2 => 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142,
        };
        write("cpu-shares", value.to_string());
    }
    if let Some(cpus) = &limits.cpuset_cpus {
        write("cpuset-cpus", cpus.clone());
    }
    writes
    // END SOLUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Limits {
        Limits {
            memory: Some(64 << 20),
            memory_swap: None,
            pids: Some(20),
            cpus: Some(0.5),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
        }
    }

    fn files(writes: &[LimitWrite]) -> Vec<(&str, &str)> {
        writes.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    #[test]
    fn v1_writes_period_before_quota_and_memsw_after_memory() {
        assert_eq!(
            files(&limit_writes(&all(), Version::V1)),
            [
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("pids.max", "20"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.shares", "512"),
                ("cpuset.cpus", "0"),
            ]
        );
    }

    #[test]
    fn v2_uses_max_files_swap_only_and_weights() {
        let mut limits = all();
        limits.memory_swap = Some(96 << 20);
        assert_eq!(
            files(&limit_writes(&limits, Version::V2)),
            [
                ("memory.max", "67108864"),
                ("memory.swap.max", "33554432"),
                ("pids.max", "20"),
                ("cpu.max", "50000 100000"),
                ("cpu.weight", "20"),
                ("cpuset.cpus", "0"),
            ]
        );
        limits.memory_swap = Some(-1);
        assert_eq!(limit_writes(&limits, Version::V2)[1].value, "max");
    }
}
