//! Mount options as words (`nosuid`, `mode=755`), the way mount(8) and the OCI
//! runtime spec write them, and as mount(2)'s flags plus its data string.

use nix::mount::MsFlags;

/// The words that are flags of mount(2) rather than data for the filesystem.
const FLAGS: &[(&str, MsFlags)] = &[
    ("ro", MsFlags::MS_RDONLY),
    ("nosuid", MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC),
    ("strictatime", MsFlags::MS_STRICTATIME),
    ("relatime", MsFlags::MS_RELATIME),
    ("noatime", MsFlags::MS_NOATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME),
    ("bind", MsFlags::MS_BIND),
    ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC)),
];

/// Words that only say "the default" and set nothing.
const DEFAULTS: &[&str] = &["rw", "suid", "dev", "exec"];

/// `(flags, data)` → words: the flags first, in the table's order, then the data.
pub fn to_words(flags: MsFlags, data: Option<&str>) -> Vec<String> {
    let mut words: Vec<String> = FLAGS
        .iter()
        .filter(|(word, flag)| flags.contains(*flag) && *word != "bind")
        .map(|(word, _)| word.to_string())
        .collect();
    if flags.contains(MsFlags::MS_BIND) && !flags.contains(MsFlags::MS_REC) {
        words.insert(0, "bind".to_string());
    }
    words.extend(
        data.into_iter()
            .flat_map(|d| d.split(','))
            .map(String::from),
    );
    words
}

/// Words → `(flags, data)`: the words mount(2) has a flag for, and the rest joined
/// with commas for the filesystem (`None` when there are none).
pub fn from_words(words: &[String]) -> (MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for word in words {
        match FLAGS.iter().find(|(name, _)| name == word) {
            Some((_, flag)) => flags |= *flag,
            None if DEFAULTS.contains(&word.as_str()) => {}
            None => data.push(word.as_str()),
        }
    }
    let data = (!data.is_empty()).then(|| data.join(","));
    (flags, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_flags_round_trip() {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
        let words = to_words(flags, Some("mode=755,size=65536k"));
        assert_eq!(words, ["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(
            from_words(&words),
            (flags, Some("mode=755,size=65536k".to_string()))
        );
        let rbind = to_words(
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY,
            None,
        );
        assert_eq!(rbind, ["ro", "rbind"]);
        assert_eq!(to_words(MsFlags::MS_BIND, None), ["bind"]);
        assert_eq!(from_words(&["rw".into()]), (MsFlags::empty(), None));
    }
}
