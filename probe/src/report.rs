//! `probe report`: what the process sees from inside the container.
//!
//! Every field is something a chapter changes: ids (user namespaces, `--user`), hostname (UTS),
//! root entries and mounts (the filesystem chapter), session and process group (the tty), the
//! capability and seccomp lines (hardening), leaked descriptors, and the namespace ids themselves.
//! Anything unreadable (say, no /proc) becomes `null` or `[]` rather than an error.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::json::Json;
use crate::procfs::{parse_mountinfo, parse_status, STATUS_KEYS};
use crate::sys;

/// The namespaces listed under /proc/self/ns, in the order the report shows them.
const NAMESPACES: &[&str] = &["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"];

/// Builds the whole report.
pub fn report() -> Json {
    let ids = sys::ids();
    Json::object([
        ("pid", Json::from(std::process::id())),
        ("ppid", Json::from(std::os::unix::process::parent_id())),
        ("uid", ids.uid.into()),
        ("gid", ids.gid.into()),
        ("euid", ids.euid.into()),
        ("egid", ids.egid.into()),
        ("groups", sys::groups().map_or(Json::Null, Json::array)),
        (
            "hostname",
            sys::hostname()
                .ok()
                .as_deref()
                .map_or(Json::Null, Json::bytes),
        ),
        ("cwd", cwd()),
        ("root_entries", root_entries()),
        ("mounts", mounts()),
        ("env", env()),
        ("session_id", sys::session_id().ok().into()),
        ("pgid", sys::process_group().ok().into()),
        ("status", status()),
        ("fds", open_fds()),
        ("ns", namespaces()),
    ])
}

fn cwd() -> Json {
    std::env::current_dir().map_or(Json::Null, |p| Json::bytes(p.as_os_str().as_bytes()))
}

/// The names in `/`, sorted.
fn root_entries() -> Json {
    let Ok(dir) = fs::read_dir("/") else {
        return Json::Array(Vec::new());
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .map(|e| String::from_utf8_lossy(e.file_name().as_bytes()).into_owned())
        .collect();
    names.sort();
    Json::array(names)
}

fn mounts() -> Json {
    let text = fs::read("/proc/self/mountinfo").unwrap_or_default();
    Json::array(parse_mountinfo(&text).into_iter().map(|m| {
        Json::object([
            ("target", Json::bytes(&m.target)),
            ("fstype", Json::bytes(&m.fstype)),
            ("options", Json::bytes(&m.options)),
            ("super_options", Json::bytes(&m.super_options)),
            ("source", Json::bytes(&m.source)),
            ("root", Json::bytes(&m.root)),
        ])
    }))
}

/// The environment, sorted by name.
fn env() -> Json {
    let vars: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            let k = String::from_utf8_lossy(k.as_bytes()).into_owned();
            (k, String::from_utf8_lossy(v.as_bytes()).into_owned())
        })
        .collect();
    Json::object(vars.into_iter().map(|(k, v)| (k, Json::Str(v))))
}

fn status() -> Json {
    let text = fs::read("/proc/self/status").unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    Json::object(
        parse_status(&text, STATUS_KEYS)
            .into_iter()
            .map(|(k, v)| (k, v.into())),
    )
}

fn open_fds() -> Json {
    Json::array(list_fds())
}

/// `probe fds`: `{"fds": [{"fd", "target"}]}`, each open descriptor with what it points to (the
/// readlink of /proc/self/fd/N: a path, `pipe:[123]`, `/dev/pts/0`...; null if unreadable).
pub fn fds() -> Json {
    let fds = list_fds().into_iter().map(|fd| {
        let target = fs::read_link(format!("/proc/self/fd/{fd}"));
        Json::object([
            ("fd", Json::from(fd)),
            (
                "target",
                target
                    .ok()
                    .map_or(Json::Null, |t| Json::bytes(t.as_os_str().as_bytes())),
            ),
        ])
    });
    Json::object([("fds", Json::array(fds))])
}

/// The open descriptors, from /proc/self/fd, sorted.
///
/// Listing the directory opens one more descriptor; once the listing is closed that one is no
/// longer open, which is how it is told apart from the descriptors the container inherited.
fn list_fds() -> Vec<i32> {
    let listed: Vec<i32> = match fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut fds: Vec<i32> = listed
        .into_iter()
        .filter(|&fd| sys::is_fd_open(fd))
        .collect();
    fds.sort_unstable();
    fds
}

/// Each namespace's identity, such as `"mnt:[4026531841]"`: equal strings, same namespace.
fn namespaces() -> Json {
    Json::object(NAMESPACES.iter().map(|&ns| {
        let link = fs::read_link(format!("/proc/self/ns/{ns}"));
        (
            ns,
            link.ok()
                .map_or(Json::Null, |l| Json::bytes(l.as_os_str().as_bytes())),
        )
    }))
}
