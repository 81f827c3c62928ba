//! The chapter manifest, `chapters.toml`: the one list of chapters that xtask, the
//! book and the tests agree on.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Manifest {
    #[serde(rename = "chapter")]
    pub chapters: Vec<Chapter>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Chapter {
    pub number: u32,
    pub slug: String,
    pub title: String,
    pub topic: String,
    pub test: String,
    pub minutes: u32,
    #[serde(default, rename = "hint")]
    pub hints: Vec<Hint>,
    /// What `ladder --steps` runs after each step of the page (`{rootfs}`: a busybox
    /// rootfs): the commands that, together, reach every stub of the chapter.
    #[serde(default)]
    pub probes: Vec<Vec<String>>,
    /// Stubs (by title) the page has students write before the engine reaches
    /// them, and says why: `ladder --steps` expects the step after them instead.
    #[serde(default)]
    pub written_early: Vec<String>,
    /// A chapter taught over two evenings: its parts, checked on their own
    /// (`cargo xtask check 4a`).
    #[serde(default, rename = "part")]
    pub parts: Vec<Part>,
}

/// One evening of a chapter that takes two.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// `a`, `b`: `cargo xtask check 4a`.
    pub name: String,
    pub title: String,
    pub minutes: u32,
    /// The part's own page in chapters/ (without `.md`), when it has one.
    #[serde(default)]
    pub page: Option<String>,
    /// Substrings of the names of this part's tests; empty: every test no other
    /// part claims.
    #[serde(default)]
    pub tests: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hint {
    pub symptom: String,
    pub hint: String,
}

/// The workspace root (the parent of xtask/).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

impl Manifest {
    pub fn load() -> Result<Manifest> {
        Manifest::read(&project_root())
    }

    /// The manifest of the workspace at `root` (a scratch copy, for instance).
    pub fn read(root: &Path) -> Result<Manifest> {
        let path = root.join("chapters.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("failed to parse {}", path.display()))
    }

    pub fn chapter(&self, number: u32) -> Result<&Chapter> {
        self.chapters
            .iter()
            .find(|chapter| chapter.number == number)
            .with_context(|| {
                format!(
                    "there is no chapter {number} in chapters.toml (chapters: {})",
                    self.numbers()
                )
            })
    }

    /// `4` → chapter 4; `4a` → chapter 4 and its part `a`.
    pub fn chapter_or_part(&self, which: &str) -> Result<(&Chapter, Option<&Part>)> {
        let digits = which.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let number: u32 = digits.parse().map_err(|_| {
            anyhow::anyhow!("`{which}` is not a chapter: give its number (4) or a part of it (4a)")
        })?;
        let chapter = self.chapter(number)?;
        let letter = &which[digits.len()..];
        if letter.is_empty() {
            return Ok((chapter, None));
        }
        match chapter.parts.iter().find(|p| p.name == letter) {
            Some(part) => Ok((chapter, Some(part))),
            None if chapter.parts.is_empty() => {
                bail!("chapter {number} has no parts: check it whole with `cargo xtask check {number}`")
            }
            None => bail!(
                "chapter {number} has no part {letter}: its parts are {}",
                chapter
                    .parts
                    .iter()
                    .map(|p| format!("{number}{}", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn numbers(&self) -> String {
        let numbers: Vec<String> = self.chapters.iter().map(|c| c.number.to_string()).collect();
        numbers.join(", ")
    }

    /// Slug of chapter `number` (`01-filesystem`), for stub messages.
    pub fn slug(&self, number: u32) -> Option<&str> {
        self.find(number).map(|chapter| chapter.slug.as_str())
    }

    fn find(&self, number: u32) -> Option<&Chapter> {
        self.chapters
            .iter()
            .find(|chapter| chapter.number == number)
    }

    /// Slug and topic of chapter `number`, for stub messages.
    pub fn stub_names(&self, number: u32) -> Option<(&str, &str)> {
        self.find(number)
            .map(|c| (c.slug.as_str(), c.topic.as_str()))
    }
}

impl Chapter {
    /// The libtest arguments that select `part`'s tests: its own filters, or a
    /// `--skip` for each filter of the other parts.
    pub fn part_filter(&self, part: &Part) -> Vec<String> {
        if !part.tests.is_empty() {
            return part.tests.clone();
        }
        self.parts
            .iter()
            .filter(|other| other.name != part.name)
            .flat_map(|other| other.tests.iter())
            .flat_map(|test| ["--skip".to_string(), test.clone()])
            .collect()
    }

    /// The page a part is taught on: its own, or else the chapter's.
    pub fn page_of<'a>(&'a self, part: &'a Part) -> &'a str {
        part.page.as_deref().unwrap_or(&self.slug)
    }

    /// The chapter's pages, in order: its own, then its parts' own pages.
    pub fn pages(&self) -> Vec<String> {
        std::iter::once(self.slug.clone())
            .chain(self.parts.iter().filter_map(|p| p.page.clone()))
            .collect()
    }

    /// Whether the chapter's test file exists yet.
    pub fn has_tests(&self) -> bool {
        self.test_file(&project_root()).exists()
    }

    /// The chapter's test file in the workspace at `root`.
    pub fn test_file(&self, root: &Path) -> PathBuf {
        root.join("tests").join(format!("{}.rs", self.test))
    }
}
