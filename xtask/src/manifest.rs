//! The chapter manifest, `chapters.toml`: the one list of chapters that xtask, the
//! book and the tests agree on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
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
    /// Whether the chapter's test file exists yet.
    pub fn has_tests(&self) -> bool {
        self.test_file(&project_root()).exists()
    }

    /// The chapter's test file in the workspace at `root`.
    pub fn test_file(&self, root: &Path) -> PathBuf {
        root.join("tests").join(format!("{}.rs", self.test))
    }
}
