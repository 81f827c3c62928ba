//! `probe read PATH` and `probe write PATH CONTENT`: can the container read or change a file?
//!
//! Tests use them on masked paths (`/proc/kcore`), read-only mounts, volumes and `/sys`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::json::{errno_fields, Json};

/// The most of a file the probe reads and reports.
pub const MAX_CONTENT: u64 = 64 * 1024;

/// Reads up to [`MAX_CONTENT`] bytes of `path`.
pub fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    File::open(path)?
        .take(MAX_CONTENT)
        .read_to_end(&mut content)?;
    Ok(content)
}

/// `{"path", "ok", "content", "errno", "error"}`.
pub fn read(path: &str) -> Json {
    let (ok, content, (errno, error)) = match read_capped(Path::new(path)) {
        Ok(content) => (true, Json::bytes(&content), (Json::Null, Json::Null)),
        Err(e) => (false, Json::Null, errno_fields(&e)),
    };
    Json::object([
        ("path", Json::from(path)),
        ("ok", ok.into()),
        ("content", content),
        ("errno", errno),
        ("error", error),
    ])
}

/// Creates or truncates `path` and writes `content`: `{"path", "ok", "errno", "error"}`.
pub fn write(path: &str, content: &str) -> Json {
    let (ok, (errno, error)) = match std::fs::write(path, content) {
        Ok(()) => (true, (Json::Null, Json::Null)),
        Err(e) => (false, errno_fields(&e)),
    };
    Json::object([
        ("path", Json::from(path)),
        ("ok", ok.into()),
        ("errno", errno),
        ("error", error),
    ])
}
