//! `cargo xtask book`: builds the book (chapters/) with a pinned mdBook, installed
//! into target/tools on first use (mdBook is not packaged by Debian).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::manifest::project_root;
use crate::util;

/// The mdBook the book is written for.
const MDBOOK_VERSION: &str = "0.4.40";

pub fn run() -> Result<()> {
    let mdbook = ensure_mdbook()?;
    util::run(
        Command::new(&mdbook)
            .arg("build")
            .arg(project_root().join("chapters")),
    )?;
    println!("the book is in target/book/index.html");
    Ok(())
}

/// target/tools/bin/mdbook at the pinned version, installed with cargo when missing.
fn ensure_mdbook() -> Result<PathBuf> {
    let tools = project_root().join("target/tools");
    let mdbook = tools.join("bin/mdbook");
    let installed = Command::new(&mdbook)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains(MDBOOK_VERSION))
        .unwrap_or(false);
    if !installed {
        println!("installing mdBook {MDBOOK_VERSION} into target/tools (once, about 2 minutes)");
        util::run(
            util::cargo()
                .args([
                    "install",
                    "mdbook",
                    "--locked",
                    "--quiet",
                    "--no-default-features",
                    "--features",
                    "search",
                ])
                .args(["--version", MDBOOK_VERSION, "--root"])
                .arg(&tools),
        )
        .context("failed to install mdBook")?;
    }
    Ok(mdbook)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure files a text links to, as paths relative to the project root:
    /// `](figures/X.svg)` in a page, `](../chapters/figures/X.svg)` in a deck.
    fn figure_links(text: &str, prefix: &str) -> Vec<String> {
        text.split(&format!("]({prefix}"))
            .skip(1)
            .filter_map(|rest| rest.split_once(')'))
            .map(|(name, _)| format!("chapters/figures/{name}"))
            .collect()
    }

    /// A tidy check: every figure a page or deck shows exists, and every figure
    /// is shown by a page and carries a <title> and a <desc> for screen readers.
    #[test]
    fn figures_exist_are_used_and_are_described() {
        let root = project_root();
        let mut linked = Vec::new();
        for (dir, prefix) in [("chapters", "figures/"), ("slides", "../chapters/figures/")] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for figure in figure_links(&text, prefix) {
                        assert!(
                            root.join(&figure).exists(),
                            "{} shows {figure}, which does not exist",
                            path.display()
                        );
                        if dir == "chapters" {
                            linked.push(figure);
                        }
                    }
                }
            }
        }
        for entry in std::fs::read_dir(root.join("chapters/figures")).unwrap() {
            let path = entry.unwrap().path();
            let name = format!(
                "chapters/figures/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(linked.contains(&name), "no chapter page shows {name}");
            assert!(
                svg.contains("<title") && svg.contains("<desc"),
                "{name} lacks a <title> or a <desc>"
            );
        }
    }
}
