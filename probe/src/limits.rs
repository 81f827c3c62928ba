//! The cgroup chapter's loads: memory, processes and CPU. Each one is bounded, so that without a
//! limit it simply ends on its own.
//!
//! * `hog MB`: allocates and touches MB mebibytes. Under a memory limit the kernel's OOM killer
//!   ends it (SIGKILL, nothing printed); without one it prints what it allocated.
//! * `forks N SECONDS`: forks up to N sleeping children. Under a pids limit fork fails (EAGAIN)
//!   and the count says how many it got.
//! * `spin SECONDS`: burns CPU for that many wall seconds. Under a CPU quota the CPU time it
//!   reports is a fraction of the wall time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::json::{errno_fields, Json};
use crate::sys;

/// The most `hog` may allocate, in MiB.
pub const MAX_HOG_MB: u32 = 1024;

/// The most children `forks` may make.
pub const MAX_FORKS: u32 = 500;

/// The longest a `forks` child may sleep or `spin` may run, in seconds.
pub const MAX_SECONDS: u32 = 30;

const MIB: usize = 1 << 20;

/// The page size `hog` assumes: one write per 4 KiB touches every page of any larger size too.
const PAGE: usize = 4096;

/// `{"allocated_mb", "error"}`: allocates `mb` MiB in 1 MiB chunks, writing one byte per page so
/// that every page is really backed by memory, and holds it all until the end.
///
/// `error` is null unless an allocation was refused (strict overcommit, say), in which case
/// `allocated_mb` is what it had got by then.
pub fn hog(mb: u32) -> Json {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut error = None;
    for _ in 0..mb {
        let mut chunk = Vec::new();
        if let Err(e) = chunk.try_reserve_exact(MIB) {
            error = Some(e.to_string());
            break;
        }
        for byte in chunk.spare_capacity_mut().iter_mut().step_by(PAGE) {
            byte.write(1);
        }
        // The writes must happen even though nothing reads them back.
        chunks.push(black_box(chunk));
    }
    black_box(&chunks);
    Json::object([
        ("allocated_mb", Json::from(chunks.len())),
        ("error", error.into()),
    ])
}

/// Forks up to `count` children that each sleep `seconds` and exit, stopping at the first
/// failure: `{"forked", "errno", "error"}`.
///
/// The children come back with the JSON: `main` prints the line first, then reaps them (so a test
/// can look at them while they run). They are reaped whenever they are dropped, on every path.
pub fn forks(count: u32, seconds: u32) -> (Json, Vec<sys::Child>) {
    let mut children = Vec::with_capacity(count as usize);
    let mut failure = None;
    for _ in 0..count {
        match sys::fork_sleeper(seconds) {
            Ok(child) => children.push(child),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let (errno, error) = failure
        .as_ref()
        .map_or((Json::Null, Json::Null), errno_fields);
    let json = Json::object([
        ("forked", Json::from(children.len())),
        ("errno", errno),
        ("error", error),
    ]);
    (json, children)
}

/// Busy-loops for `seconds` of wall time: `{"spun_seconds", "cpu_ms"}`.
///
/// `cpu_ms` is the CPU time the process used (user and system), null if it cannot be read.
pub fn spin(seconds: u32) -> Json {
    let until = Duration::from_secs(seconds.into());
    let start = Instant::now();
    let mut turns = 0u64;
    while start.elapsed() < until {
        turns = black_box(turns.wrapping_add(1));
    }
    let cpu_ms = sys::process_cpu_time()
        .ok()
        .map(|cpu| u64::try_from(cpu.as_millis()).unwrap_or(u64::MAX));
    Json::object([
        ("spun_seconds", Json::from(seconds)),
        ("cpu_ms", cpu_ms.into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_hog_allocates_what_it_was_asked() {
        assert_eq!(hog(2).to_string(), r#"{"allocated_mb":2,"error":null}"#);
    }

    #[test]
    fn forking_nothing_reports_zero() {
        let (json, children) = forks(0, 0);
        assert!(children.is_empty());
        assert_eq!(
            json.to_string(),
            r#"{"forked":0,"errno":null,"error":null}"#
        );
    }

    #[test]
    fn spinning_zero_seconds_returns_at_once() {
        let Json::Object(fields) = spin(0) else {
            panic!("not an object");
        };
        assert_eq!(fields[0], ("spun_seconds".to_owned(), Json::Int(0)));
        assert!(matches!(fields[1].1, Json::Int(_)));
    }
}
