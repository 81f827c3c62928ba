//! `cargo xtask screenshots`: PNGs of a few book pages and slides in docs/screenshots
//! (checked in), so a person can see the book and the decks without building them.
//! It builds the book (`cargo xtask book`) and renders the decks (`cargo xtask slides`),
//! then takes each picture in [`SHOTS`] with Debian's headless chromium.
//!
//! Two things shape the table. `chromium --screenshot` shoots a page from its top: a
//! page scrolled by a `#fragment` or by a script comes out blank, so a book shot is made
//! tall enough to reach the figure it should show. A rendered deck opens on slide N with
//! `DECK.html#N` (marp's bespoke template), and `?view=next` (the view its presenter
//! window uses) leaves out the on-screen page controls.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::manifest::project_root;
use crate::{book, slides, util};

/// Where the pictures go, relative to the project root.
const OUT: &str = "docs/screenshots";
/// The size of a slide in marp's default theme, in pixels.
const SLIDE: (u32, u32) = (1280, 720);

/// Which pictures to take. The file names come from the sources: `book-PAGE.png` and
/// `slides-DECK-NN.png`.
const SHOTS: &[Shot] = &[
    Shot {
        source: Source::Page("introduction"),
        size: (1280, 1200),
        figure: None,
    },
    // Tall enough to reach the end of Figure 7.1, the pull sequence (about y = 3000).
    Shot {
        source: Source::Page("07-registry"),
        size: (1280, 3050),
        figure: Some("07-pull-sequence.svg"),
    },
    Shot {
        source: Source::Slide("05-overlay", 1),
        size: SLIDE,
        figure: None,
    },
    Shot {
        source: Source::Slide("05-overlay", 3),
        size: SLIDE,
        figure: Some("05-projector.svg"),
    },
    Shot {
        source: Source::Slide("06-images", 1),
        size: SLIDE,
        figure: None,
    },
    Shot {
        source: Source::Slide("06-images", 4),
        size: SLIDE,
        figure: Some("06-image-graph.svg"),
    },
    Shot {
        source: Source::Slide("07-registry", 1),
        size: SLIDE,
        figure: None,
    },
    Shot {
        source: Source::Slide("07-registry", 4),
        size: SLIDE,
        figure: Some("07-pull-sequence.svg"),
    },
];

/// All the PNGs together stay small enough to keep in git.
const BUDGET_BYTES: u64 = 2_000_000;
/// A blank page compresses to a few kilobytes; anything with text on it is far larger.
const BLANK_BYTES: u64 = 16_000;
/// A chromium still running after this has hung.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Chromium as root on a machine with no display, GPU or D-Bus, with no traffic of its
/// own; virtual time lets the page's scripts and fonts settle before the picture.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=3000",
];

/// One picture: what to open, at which window size, and the figure it is there to show
/// (a test checks that the page or slide links it).
struct Shot {
    source: Source,
    size: (u32, u32),
    figure: Option<&'static str>,
}

enum Source {
    /// A page of the built book (chapters/PAGE.md, target/book/PAGE.html), from its top.
    Page(&'static str),
    /// Slide N, counted from 1, of a rendered deck (slides/DECK.md).
    Slide(&'static str, usize),
}

impl Shot {
    fn file_name(&self) -> String {
        match self.source {
            Source::Page(page) => format!("book-{page}.png"),
            Source::Slide(deck, n) => format!("slides-{deck}-{n:02}.png"),
        }
    }

    /// The URL chromium opens, in the built book or the rendered decks.
    fn url(&self, root: &Path) -> String {
        match self.source {
            Source::Page(page) => {
                super::slides::file_url(&root.join(format!("target/book/{page}.html")))
            }
            Source::Slide(deck, n) => format!(
                "{}?view=next#{n}",
                super::slides::file_url(&root.join(format!("target/slides/{deck}.html")))
            ),
        }
    }
}

pub fn run() -> Result<()> {
    let started = Instant::now();
    book::run()?;
    slides::run(false, false, None)?;
    util::ensure_packages(&[util::CHROMIUM])?;
    let built = started.elapsed();
    let root = project_root();
    let out = root.join(OUT);
    fs::create_dir_all(&out).with_context(|| format!("failed to create {}", out.display()))?;
    remove_stale(&out)?;
    let mut total = 0;
    for shot in SHOTS {
        let file = out.join(shot.file_name());
        let shot_started = Instant::now();
        screenshot(&shot.url(&root), shot.size, &file)?;
        let bytes = fs::metadata(&file)?.len();
        println!(
            "{OUT}/{}: {}×{}, {} kB, {:.1} s{}",
            shot.file_name(),
            shot.size.0,
            shot.size.1,
            bytes / 1000,
            shot_started.elapsed().as_secs_f64(),
            shot.figure
                .map_or(String::new(), |f| format!(" (shows {f})"))
        );
        if bytes < BLANK_BYTES {
            bail!(
                "{} is {bytes} bytes: the page came out blank",
                file.display()
            );
        }
        total += bytes;
    }
    println!(
        "{} screenshots, {} kB in all, in {:.1} s (building the book and the decks: {:.1} s)",
        SHOTS.len(),
        total / 1000,
        (started.elapsed() - built).as_secs_f64(),
        built.as_secs_f64()
    );
    if total > BUDGET_BYTES {
        bail!(
            "the screenshots take {} kB, over the {} kB kept in git: take fewer or smaller ones",
            total / 1000,
            BUDGET_BYTES / 1000
        );
    }
    Ok(())
}

/// Removes the PNGs of pictures no longer in [`SHOTS`].
fn remove_stale(out: &Path) -> Result<()> {
    let wanted: Vec<String> = SHOTS.iter().map(Shot::file_name).collect();
    for entry in fs::read_dir(out)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.extension().is_some_and(|e| e == "png") && !wanted.contains(&name.into_owned()) {
            fs::remove_file(&path)
                .with_context(|| format!("failed to remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Opens a URL in headless chromium, with a fresh profile, and saves the window as PNG.
fn screenshot(url: &str, (width, height): (u32, u32), png: &Path) -> Result<()> {
    let profile = Profile::new()?;
    // A failed run must not leave the last run's picture looking current.
    let _ = fs::remove_file(png);
    let output = util::output_within(
        Command::new(util::CHROMIUM.0)
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(url),
        TIMEOUT,
    )?;
    if !output.status.success() || !png.is_file() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "chromium ({}) made no screenshot of {url}; its last words:\n{}",
            output.status,
            last.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// A fresh chromium profile in a temporary directory, removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Result<Profile> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ferry-screenshots-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(Profile(dir))
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The markdown of a shot's page or slide. A deck opens with front matter between
    /// `---` lines, and `---` separates its slides, so slide N is the Nth piece after it.
    fn markdown(source: &Source) -> String {
        let root = project_root();
        match *source {
            Source::Page(page) => fs::read_to_string(root.join(format!("chapters/{page}.md")))
                .unwrap_or_else(|_| panic!("no chapters/{page}.md")),
            Source::Slide(deck, n) => {
                let text = fs::read_to_string(root.join(format!("slides/{deck}.md")))
                    .unwrap_or_else(|_| panic!("no slides/{deck}.md"));
                assert!(
                    text.starts_with("---\n"),
                    "slides/{deck}.md has no front matter"
                );
                let slides: Vec<&str> = text.split("\n---\n").collect();
                assert!(
                    n >= 1 && n < slides.len(),
                    "slides/{deck}.md has no slide {n}"
                );
                slides[n].to_string()
            }
        }
    }

    /// A tidy check: every shot's page or slide exists and links the figure it is there
    /// to show (a deck that gains a slide moves its figures), and no two shots share a file.
    #[test]
    fn every_shot_shows_what_it_says() {
        let mut names = Vec::new();
        for shot in SHOTS {
            let text = markdown(&shot.source);
            if let Some(figure) = shot.figure {
                assert!(
                    text.contains(&format!("figures/{figure})")),
                    "{} should show {figure}, which its source does not link",
                    shot.file_name()
                );
            }
            assert!(
                !names.contains(&shot.file_name()),
                "{} twice",
                shot.file_name()
            );
            names.push(shot.file_name());
        }
    }

    #[test]
    fn shots_are_named_after_their_sources() {
        let root = Path::new("/work/my ferry");
        let slide = Shot {
            source: Source::Slide("07-registry", 4),
            size: SLIDE,
            figure: None,
        };
        assert_eq!(slide.file_name(), "slides-07-registry-04.png");
        assert_eq!(
            slide.url(root),
            "file:///work/my%20ferry/target/slides/07-registry.html?view=next#4"
        );
        let page = Shot {
            source: Source::Page("introduction"),
            size: (1280, 1200),
            figure: None,
        };
        assert_eq!(page.file_name(), "book-introduction.png");
        assert_eq!(
            page.url(root),
            "file:///work/my%20ferry/target/book/introduction.html"
        );
    }
}
