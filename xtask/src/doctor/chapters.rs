//! The chapters: what each chapter's tests need from the machine, and the report's rows
//! saying which chapters of chapters.toml can run here.

use super::facts::{Host, Overlay, Sudo};
use super::report::mark;
use super::Status;
use crate::manifest::Chapter;

/// What a chapter's tests need from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Root,
    Busybox,
    Cgroups(&'static [&'static str]),
    Seccomp,
    Overlay,
    Registry,
    Firewall,
    Iproute,
    /// Programs the chapter's tests drive, by path (podman, conmon, containerd).
    Programs(&'static [&'static str]),
}

/// What each chapter's tests add. A chapter also needs what the chapters before it
/// need: a student who has done chapter N passes the tests of 0..=N (the ladder).
const CHAPTER_NEEDS: &[(u32, &[Need])] = &[
    (0, &[Need::Root, Need::Busybox]),
    (1, &[Need::Root]),
    (2, &[Need::Root]),
    (3, &[Need::Root, Need::Cgroups(&["memory", "pids", "cpu"])]),
    (4, &[Need::Root, Need::Seccomp]),
    (5, &[Need::Overlay]),
    (6, &[Need::Root]),
    (7, &[Need::Registry]),
    (8, &[Need::Root]),
    (9, &[Need::Root]),
    (10, &[Need::Firewall, Need::Iproute]),
    (11, &[Need::Overlay]),
    (
        12,
        &[Need::Programs(&[
            "/usr/bin/podman",
            "/usr/bin/conmon",
            "/usr/bin/containerd",
            "/usr/bin/ctr",
        ])],
    ),
];

impl Need {
    fn label(self) -> String {
        match self {
            Need::Root => "root".into(),
            Need::Busybox => "static busybox".into(),
            Need::Cgroups(controllers) => format!("cgroups ({})", controllers.join(", ")),
            Need::Seccomp => "seccomp".into(),
            Need::Overlay => "overlayfs".into(),
            Need::Registry => "docker-registry".into(),
            Need::Firewall => "nft (nftables)".into(),
            Need::Iproute => "ip".into(),
            Need::Programs(paths) => paths
                .iter()
                .map(|p| p.rsplit('/').next().unwrap_or(p))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn met(self, host: &Host) -> bool {
        match self {
            Need::Root => host.sudo != Sudo::Missing,
            Need::Busybox => host.busybox.is_ok(),
            Need::Cgroups(wanted) => host.cgroups.as_ref().is_some_and(|cgroups| {
                wanted
                    .iter()
                    .all(|c| cgroups.controller_version(c).is_some())
            }),
            Need::Seccomp => host.seccomp,
            Need::Overlay => host.overlay != Overlay::Missing,
            Need::Registry => host.registry,
            Need::Firewall => host.nft.is_some(),
            Need::Iproute => host.ip.is_some(),
            Need::Programs(paths) => paths.iter().all(|p| std::path::Path::new(p).exists()),
        }
    }
}

/// The needs of chapters 0..=`chapter` that `met` says are missing, with their chapter.
fn missing_needs(chapter: u32, met: impl Fn(Need) -> bool) -> Vec<(u32, Need)> {
    let mut missing: Vec<(u32, Need)> = Vec::new();
    for &(number, needs) in CHAPTER_NEEDS
        .iter()
        .filter(|(number, _)| *number <= chapter)
    {
        for &need in needs {
            // Each need once, at the first chapter that has it.
            if !met(need) && !missing.iter().any(|&(_, seen)| seen == need) {
                missing.push((number, need));
            }
        }
    }
    missing
}

/// One chapter's row: ok when this machine has everything it (and those before it) needs.
pub(super) fn print_chapter(chapter: &Chapter, host: &Host, width: usize, colour: bool) {
    let number = chapter.number;
    let Some((_, needs)) = CHAPTER_NEEDS.iter().find(|(n, _)| *n == number) else {
        let mark = mark(Status::Skip, colour);
        println!(
            "  {mark}{number:02}  {:<width$}  needs unknown: add it to CHAPTER_NEEDS",
            chapter.title
        );
        return;
    };
    let missing = missing_needs(number, |need| need.met(host));
    let status = if missing.is_empty() {
        Status::Ok
    } else {
        Status::Fail
    };
    let mut text = needs
        .iter()
        .map(|n| n.label())
        .collect::<Vec<_>>()
        .join(", ");
    if !missing.is_empty() {
        let labels: Vec<String> = missing
            .iter()
            .map(|&(n, need)| match n == number {
                true => need.label(),
                false => format!("{} (chapter {n})", need.label()),
            })
            .collect();
        text = format!("{text} — missing: {}", labels.join(", "));
    }
    println!(
        "  {}{number:02}  {:<width$}  {text}",
        mark(status, colour),
        chapter.title
    );
}

/// The last chapter the capstone labs build on, and what they add: lab 3 copies
/// the host's redis-server into its image, and every lab curls its server.
const CAPSTONE_AFTER: u32 = 11;
const CAPSTONE_NEEDS: &[Need] = &[Need::Programs(&["/usr/bin/curl", "/usr/bin/redis-server"])];

/// The capstone labs' row (tests/capstone.rs, chapters/capstone.md): ok when this
/// machine has what chapters 0..=11 need, curl and redis-server.
pub(super) fn print_capstone(host: &Host, width: usize, colour: bool) {
    let mut missing: Vec<String> = missing_needs(CAPSTONE_AFTER, |need| need.met(host))
        .into_iter()
        .map(|(n, need)| format!("{} (chapter {n})", need.label()))
        .collect();
    missing.extend(
        CAPSTONE_NEEDS
            .iter()
            .filter(|need| !need.met(host))
            .map(|need| need.label()),
    );
    let mut text = format!(
        "chapters 0-{CAPSTONE_AFTER}, {}",
        CAPSTONE_NEEDS
            .iter()
            .map(|n| n.label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let status = if missing.is_empty() {
        Status::Ok
    } else {
        text = format!("{text} — missing: {}", missing.join(", "));
        Status::Fail
    };
    println!(
        "  {}    {:<width$}  {text}",
        mark(status, colour),
        "Capstone labs"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn a_chapter_needs_what_the_chapters_before_it_need() {
        let no_overlay = |need: Need| need != Need::Overlay;
        assert_eq!(missing_needs(4, no_overlay), []);
        assert_eq!(missing_needs(6, no_overlay), [(5, Need::Overlay)]);
        // Reported once, at the first chapter that needs it.
        assert_eq!(missing_needs(11, no_overlay), [(5, Need::Overlay)]);
        let no_root = |need: Need| need != Need::Root;
        assert_eq!(missing_needs(2, no_root), [(0, Need::Root)]);
    }

    #[test]
    fn every_chapter_in_the_manifest_has_its_needs() {
        for chapter in Manifest::load().unwrap().chapters {
            let known = CHAPTER_NEEDS
                .iter()
                .any(|(number, _)| *number == chapter.number);
            assert!(
                known,
                "chapter {} is missing from CHAPTER_NEEDS",
                chapter.number
            );
        }
    }
}
