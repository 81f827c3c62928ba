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
