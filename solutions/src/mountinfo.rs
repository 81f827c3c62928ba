//! /proc/self/mountinfo, read into its fields (see proc_pid_mountinfo(5)).
//!
//! Each line: `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE
//! SOURCE SUPER-OPTIONS`. Paths have spaces, tabs, newlines and backslashes written
//! as octal escapes (`\040`).
//!
//! The one mountinfo reader of the project: the engine uses it, and xtask and the
//! test harness include this very file (`#[path]`), so the three cannot drift. It
//! uses nothing but the standard library for that reason, and has no tests of its
//! own (they would run in every chapter's test binary): xtask's doctor tests it.

/// One mount of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: String,
    /// Propagation: `shared:N`, `master:N`, `unbindable`; none means private.
    pub optional: Vec<String>,
    pub fstype: String,
    /// The filesystem's own options; for cgroup v1, its controllers.
    pub super_options: String,
}

/// Parses mountinfo text; lines that do not have the format are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // The optional fields end with a lone "-" (searched after the six fixed fields).
    let dash = 6 + fields.get(6..)?.iter().position(|&f| f == "-")?;
    Some(MountInfo {
        mount_point: unescape(fields.get(4)?),
        optional: fields[6..dash].iter().map(|f| f.to_string()).collect(),
        fstype: fields.get(dash + 1)?.to_string(),
        super_options: fields.get(dash + 3).unwrap_or(&"").to_string(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
