//! /proc/self/mountinfo, read into mount points and filesystem types (see proc(5)).
//!
//! Each line: `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE
//! SOURCE SUPER-OPTIONS`. Paths have spaces, tabs, newlines and backslashes written
//! as octal escapes (`\040`).

use std::path::PathBuf;

/// One mount of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: PathBuf,
    pub fstype: String,
}

/// Parses mountinfo text; lines that do not have the format are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|f| *f == "-")?;
            Some(MountInfo {
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                fstype: fields.get(separator + 1)?.to_string(),
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_types_are_read_with_escapes() {
        let text = "22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw\n\
                    30 22 0:30 / /mnt/with\\040space rw - tmpfs none rw\n\
                    garbage\n";
        let mounts = parse(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].fstype, "proc");
        assert_eq!(mounts[1].mount_point, PathBuf::from("/mnt/with space"));
    }
}
