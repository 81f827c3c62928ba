//! `cargo xtask catch-up N`: missed a week? Fill chapters 0..=N with the reference.
//! `catch-up 4a` fills the chapters before 4 and the stubs of 4's first evening.
//!
//! Every workshop file that changes is first copied to `backups/catch-up-TIME/`, so
//! nothing a student wrote is lost; regions of later chapters are left alone.

use std::path::Path;

use anyhow::{Context, Result};

use crate::manifest::{project_root, Manifest};
use crate::workshop::{fill_regions, source_files};

pub fn run(manifest: &Manifest, which: &str) -> Result<()> {
    let (chapter, part) = manifest.chapter_or_part(which)?;
    let upto = chapter.number;
    let root = project_root();
    // A part: the chapter's stubs its pages (and earlier parts' pages) teach.
    let part_titles = match part {
        Some(part) => Some(crate::steps::titles_through(&root, chapter, part)?),
        None => None,
    };
    let wanted = |r: &crate::regions::Region| match &part_titles {
        Some(titles) if r.chapter == upto => titles.contains(&r.title),
        _ => r.chapter <= upto,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let backup = root.join("backups").join(format!("catch-up-{stamp}"));
    let mut total = 0;
    for relative in source_files(&root.join("workshop/src"))? {
        let file = Path::new("src").join(&relative);
        let (student_path, solution_path) = (
            root.join("workshop").join(&file),
            root.join("solutions").join(&file),
        );
        if file.extension().and_then(|e| e.to_str()) != Some("rs") || !solution_path.exists() {
            continue;
        }
        let student = std::fs::read_to_string(&student_path)?;
        let solution = std::fs::read_to_string(&solution_path)?;
        let (filled, count) =
            fill_regions(&file.display().to_string(), &student, &solution, wanted)?;
        if filled == student {
            continue;
        }
        let saved = backup.join(&file);
        std::fs::create_dir_all(saved.parent().expect("a file has a parent"))?;
        std::fs::copy(&student_path, &saved)
            .with_context(|| format!("failed to back up {}", student_path.display()))?;
        std::fs::write(&student_path, filled)?;
        println!("filled {count:>2} region(s) in workshop/{}", file.display());
        total += count;
    }
    if total == 0 {
        println!("chapters 0..={which} were already the reference code: nothing changed");
    } else {
        let next =
            match part.and_then(|p| chapter.parts.iter().skip_while(|q| q.name != p.name).nth(1)) {
                Some(next) => format!(
                    "part {} in chapters/{}.md",
                    next.name,
                    chapter.page_of(next)
                ),
                None => format!(
                    "chapters/{}.md",
                    manifest.slug(upto + 1).unwrap_or("introduction")
                ),
            };
        println!(
            "\ncaught up to chapter {which}: your previous files are in {}\nnext: read {next}",
            backup.strip_prefix(&root).unwrap_or(&backup).display(),
        );
    }
    Ok(())
}
