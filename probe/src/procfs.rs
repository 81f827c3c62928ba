//! Parsers for the /proc files the probe reads: `/proc/self/mountinfo`, `/proc/self/status` and
//! `/proc/net/dev` (see proc(5)). Pure functions over text, so they can be unit tested.

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// The directory of the filesystem mounted here (a bind mount's source), field 4.
    pub root: Vec<u8>,
    /// The mount point, as this process sees it, field 5.
    pub target: Vec<u8>,
    /// Per-mount options such as `ro,nosuid,nodev`, field 6.
    pub options: Vec<u8>,
    /// The filesystem type, such as `proc` or `overlay`, first field after `-`.
    pub fstype: Vec<u8>,
    /// The filesystem's source, such as `/dev/sda1` or `tmpfs`.
    pub source: Vec<u8>,
    /// Per-superblock options such as `rw,size=65536k`, last field.
    pub super_options: Vec<u8>,
}

/// Parses mountinfo text; lines that do not have the expected shape are skipped.
///
/// A line reads `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
/// six fixed fields, zero or more optional fields ended by a lone `-`, then three more. Paths
/// escape space, tab, newline and backslash as octal (`\040`), so fields split on spaces.
pub fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n')
        .filter_map(parse_mount_line)
        .collect()
}

fn parse_mount_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let dash = fields.iter().skip(6).position(|f| *f == b"-")? + 6;
    let after = fields.get(dash + 1..dash + 4)?;
    Some(Mount {
        root: unescape(fields[3]),
        target: unescape(fields[4]),
        options: fields[5].to_vec(),
        fstype: unescape(after[0]),
        source: unescape(after[1]),
        super_options: unescape(after[2]),
    })
}

/// Undoes the kernel's octal escapes (`\040` is a space).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The `/proc/self/status` lines the report shows: capabilities, no_new_privs and seccomp mode.
pub const STATUS_KEYS: &[&str] = &[
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
];

/// The value of each of `keys` in status text (`Key:\tvalue`), trimmed; `None` when absent.
pub fn parse_status<'k>(text: &str, keys: &[&'k str]) -> Vec<(&'k str, Option<String>)> {
    keys.iter()
        .map(|&key| {
            let value = text.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name == key).then(|| value.trim().to_owned())
            });
            (key, value)
        })
        .collect()
}

/// The interface names in `/proc/net/dev` text, in the kernel's order.
///
/// After two header lines (which have no `:`), each line reads `    lo: 1234 5 0 ...`: the name,
/// right-aligned, then a colon. Interface names cannot contain a colon.
pub fn parse_net_dev(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_line_with_optional_fields_is_parsed() {
        let text = b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(
            mounts,
            vec![Mount {
                root: b"/mnt1".to_vec(),
                target: b"/mnt2".to_vec(),
                options: b"rw,noatime".to_vec(),
                fstype: b"ext3".to_vec(),
                source: b"/dev/root".to_vec(),
                super_options: b"rw,errors=continue".to_vec(),
            }]
        );
    }

    #[test]
    fn mountinfo_line_without_optional_fields_is_parsed() {
        let text = b"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw";
        let mount = &parse_mountinfo(text)[0];
        assert_eq!(mount.target, b"/proc");
        assert_eq!(mount.fstype, b"proc");
        assert_eq!(mount.options, b"rw,nosuid,nodev,noexec,relatime");
        assert_eq!(mount.super_options, b"rw");
    }

    #[test]
    fn octal_escapes_in_paths_are_decoded() {
        let text = b"40 22 0:50 /a\\134b /my\\040dir\\011x ro - tmpfs tmp\\040fs rw,size=4k\n";
        let mount = &parse_mountinfo(text)[0];
        assert_eq!(mount.root, b"/a\\b");
        assert_eq!(mount.target, b"/my dir\tx");
        assert_eq!(mount.source, b"tmp fs");
    }

    #[test]
    fn a_backslash_without_octal_digits_is_kept() {
        assert_eq!(unescape(b"a\\9b\\"), b"a\\9b\\");
    }

    #[test]
    fn malformed_and_empty_lines_are_skipped() {
        let text = b"\ngarbage\n1 2 3 4 5 6 no-dash here\n1 2 0:1 / / rw - ext4\n\
            25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].source, b"/dev/sda1");
    }

    #[test]
    fn a_dash_in_the_fixed_fields_is_not_the_separator() {
        let text = b"25 1 8:1 - /mnt rw - ext4 /dev/sda1 rw";
        let mount = &parse_mountinfo(text)[0];
        assert_eq!(mount.root, b"-");
        assert_eq!(mount.fstype, b"ext4");
    }

    #[test]
    fn status_values_are_trimmed_and_missing_keys_are_none() {
        let text = "Name:\tprobe\nCapEff:\t000001ffffffffff\nNoNewPrivs:\t1\nSeccomp:\t2\n";
        let values = parse_status(text, &["CapEff", "NoNewPrivs", "Seccomp", "CapAmb"]);
        assert_eq!(
            values,
            vec![
                ("CapEff", Some("000001ffffffffff".to_owned())),
                ("NoNewPrivs", Some("1".to_owned())),
                ("Seccomp", Some("2".to_owned())),
                ("CapAmb", None),
            ]
        );
    }

    #[test]
    fn net_dev_lists_interface_names() {
        let text = "Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets
    lo:    1234       5    0    0    0     0          0         0     1234       5
  eth0:12345678   9999    0    0    0     0          0         0   654321    8888
veth-long-name0:0 0 0 0 0 0 0 0 0 0
";
        assert_eq!(parse_net_dev(text), ["lo", "eth0", "veth-long-name0"]);
        assert!(parse_net_dev("").is_empty());
    }
}
