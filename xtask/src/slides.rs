//! `cargo xtask slides`: renders the decks (slides/NN-topic.md, Marp markdown) to HTML in
//! target/slides with a pinned marp-cli, installed into target/tools/marp on first use
//! (marp-cli is an npm package, not packaged by Debian). `--pdf` adds a PDF of each deck,
//! printed by Debian's chromium; `--check` fails when a deck does not render or a slide
//! overflows, measured by loading each rendered deck in headless Chromium.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::manifest::project_root;
use crate::util;

/// The marp-cli the decks are written for (4.x needs Node.js 18 or later).
const MARP_VERSION: &str = "4.5.1";
/// How a deck links a figure; the HTML in target/slides links its own copy instead.
const FIGURES_LINK: &str = "../chapters/figures/";
/// Longer than any deck takes; a browser that hangs fails the deck instead of the command.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The first words of a heading are enough for an author to find the slide.
const HEADING_WORDS: usize = 6;

/// Measures each slide once the deck has loaded (fonts too), in the slide's own pixels
/// (1280×720 in the default theme; the inline SVG scales slides to the window), and leaves
/// the numbers as JSON in `<pre id="overflow">` for `--dump-dom` to carry out. `<`, `>`
/// and `&` are escaped inside the JSON so the DOM serializer leaves the text as it is.
const MEASURE_JS: &str = r#"
addEventListener('load', () => document.fonts.ready.then(() => {
  const slides = [...document.querySelectorAll('section')]
    .filter(section => (section.dataset.marpitAdvancedBackground ?? 'content') === 'content')
    .map(section => {
      const box = section.getBoundingClientRect();
      const scale = box.height / section.offsetHeight;
      const y = viewport => (viewport - box.top) / scale;
      const footer = section.querySelector(':scope > footer');
      const content = section.querySelectorAll(
        ':scope > :not(header, footer), :scope > :not(header, footer) *');
      const bottoms = [...content].map(element => y(element.getBoundingClientRect().bottom));
      const heading = section.querySelector('h1, h2, h3, h4, h5, h6') ?? section;
      return {
        height: section.offsetHeight,
        bottom: Math.max(0, ...bottoms),
        footer: footer && footer.textContent.trim() ? y(footer.getBoundingClientRect().top) : null,
        heading: heading.textContent,
        broken: [...section.querySelectorAll('img')]
          .filter(img => !img.complete || img.naturalWidth === 0)
          .map(img => img.getAttribute('src')),
      };
    });
  const pre = document.createElement('pre');
  pre.id = 'overflow';
  pre.textContent = JSON.stringify(slides)
    .replace(/[<>&]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  document.body.append(pre);
}));
"#;

/// Renders every deck in slides/ into target/slides (or, for trying the checker, every
/// deck in `decks` into `decks`/html).
pub fn run(pdf: bool, check: bool, decks: Option<&Path>) -> Result<()> {
    let root = project_root();
    let (dir, out) = match decks {
        Some(dir) => (dir.to_path_buf(), dir.join("html")),
        None => (root.join("slides"), root.join("target/slides")),
    };
    let decks = decks_in(&dir)?;
    let marp = ensure_marp()?;
    if pdf || check {
        util::ensure_packages(&[util::CHROMIUM])?;
    }
    util::copy_tree(&root.join("chapters/figures"), &out.join("figures"))?;
    let scratch = if check { Some(Scratch::new()?) } else { None };
    let mut failed = Vec::new();
    for deck in &decks {
        let name = deck.file_stem().expect("a .md file").to_string_lossy();
        let measure_in = scratch.as_ref().map(|s| s.dir.join(&*name));
        match deck_report(&marp, deck, &out, pdf, measure_in.as_deref()) {
            Ok((summary, problems)) => {
                println!("{name}: {summary}");
                for problem in &problems {
                    println!("  {problem}");
                }
                if !problems.is_empty() {
                    failed.push(name.into_owned());
                }
            }
            Err(error) => {
                println!("{name}: {error:#}");
                failed.push(name.into_owned());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} decks need work: {}",
            failed.len(),
            decks.len(),
            failed.join(", ")
        );
    }
    println!("the decks are in {}", out.display());
    Ok(())
}

/// Renders one deck into `out` and, when given a scratch directory to measure it in,
/// checks it: a one-line summary and the problems an author must fix.
fn deck_report(
    marp: &Path,
    deck: &Path,
    out: &Path,
    pdf: bool,
    measure_in: Option<&Path>,
) -> Result<(String, Vec<String>)> {
    let name = deck.file_stem().expect("a .md file").to_string_lossy();
    let html = out.join(format!("{name}.html"));
    let mut made = vec![format!("{name}.html")];
    render_html(marp, deck, &html).context("does not render")?;
    if pdf {
        made.push(format!("{name}.pdf"));
        render_pdf(marp, deck, &out.join(format!("{name}.pdf")))
            .context("does not print to PDF")?;
    }
    let Some(scratch) = measure_in else {
        return Ok((format!("rendered ({})", made.join(", ")), Vec::new()));
    };
    let slides = measure(&html, scratch).context("could not be measured")?;
    let problems = problems(&slides);
    let summary = format!(
        "rendered, {} slide{}, {}",
        slides.len(),
        if slides.len() == 1 { "" } else { "s" },
        match problems.len() {
            0 => "all fit".to_string(),
            n => format!("{n} with problems:"),
        }
    );
    Ok((summary, problems))
}

/// The decks in a directory: its markdown files, in name (chapter) order.
fn decks_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut decks: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("failed to read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    decks.retain(|path| path.is_file() && path.extension().is_some_and(|e| e == "md"));
    decks.sort();
    if decks.is_empty() {
        bail!("no decks (*.md) in {}", dir.display());
    }
    Ok(decks)
}

/// target/tools/marp/node_modules/.bin/marp at the pinned version, installed with npm
/// when missing.
fn ensure_marp() -> Result<PathBuf> {
    let prefix = project_root().join("target/tools/marp");
    let marp = prefix.join("node_modules/.bin/marp");
    let installed = Command::new(&marp)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains(&format!("v{MARP_VERSION} ")))
        .unwrap_or(false);
    if !installed {
        if Command::new("npm").arg("--version").output().is_err() {
            bail!(
                "marp-cli needs Node.js 18 or later and npm (Debian: apt-get install nodejs npm)"
            );
        }
        println!(
            "installing marp-cli {MARP_VERSION} into target/tools/marp (once, about 15 seconds)"
        );
        util::run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .arg("--prefix")
                .arg(&prefix)
                .arg(format!("@marp-team/marp-cli@{MARP_VERSION}")),
        )
        .context("failed to install marp-cli")?;
    }
    Ok(marp)
}

/// Renders a deck to one HTML file that links its figures from figures/ beside it, so
/// target/slides can be opened (or copied) as it is.
fn render_html(marp: &Path, deck: &Path, html: &Path) -> Result<()> {
    marp_run(Command::new(marp).arg(deck).arg("-o").arg(html))?;
    let text = fs::read_to_string(html)?;
    fs::write(html, text.replace(FIGURES_LINK, "figures/"))?;
    Ok(())
}

/// Prints a deck to PDF through chromium. `--allow-local-files` lets the page load the
/// figures from disk. marp-cli drops Chromium's sandbox by itself when run as root; in a
/// container without user namespaces the sandbox cannot start either, and the page is
/// our own, so `CHROME_NO_SANDBOX` (read by marp-cli's launcher) drops it always.
fn render_pdf(marp: &Path, deck: &Path, pdf: &Path) -> Result<()> {
    marp_run(
        Command::new(marp)
            .args(["--pdf", "--allow-local-files", "--browser-path"])
            .arg(util::CHROMIUM.0)
            .env("CHROME_NO_SANDBOX", "1")
            .arg(deck)
            .arg("-o")
            .arg(pdf),
    )
}

fn marp_run(command: &mut Command) -> Result<()> {
    let output = util::output_within(command, TIMEOUT)?;
    if !output.status.success() {
        // marp-cli follows its message with its whole --help: keep the message.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr.split("\nUsage:").next().unwrap_or_default();
        bail!(
            "`{}` failed ({}):\n{}",
            util::describe(command),
            output.status,
            tail(message.trim_end(), 20)
        );
    }
    Ok(())
}

/// One slide as the browser laid it out, in slide pixels from the slide's top edge.
#[derive(Debug, Deserialize)]
struct Measured {
    /// The slide's height (720 in the default theme).
    height: f64,
    /// Where its lowest content (anything but the header and footer) ends.
    bottom: f64,
    /// Where its footer starts, when it has one.
    footer: Option<f64>,
    heading: String,
    /// Images that did not load.
    broken: Vec<String>,
}

/// Loads a rendered deck in headless Chromium with the measuring script added, and
/// reads the measurements back out of the DOM Chromium dumps. The page is a copy in
/// `scratch` whose `<base>` points at the deck's directory, so its figures load.
fn measure(html: &Path, scratch: &Path) -> Result<Vec<Measured>> {
    let text = fs::read_to_string(html)?;
    let base = format!(
        r#"<base href="{}/">"#,
        file_url(html.parent().expect("in a directory"))
    );
    let page = with_checker(&text, &base, MEASURE_JS)
        .context("marp's HTML has no <head> or </body>: did its template change?")?;
    fs::create_dir_all(scratch)?;
    let checker = scratch.join("check.html");
    fs::write(&checker, page)?;
    let output = util::output_within(
        Command::new(util::CHROMIUM.0)
            .args([
                "--headless",
                // Only our own page is loaded, and containers often cannot start the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,720",
                // Lets the load handler run before the DOM is dumped.
                "--virtual-time-budget=5000",
                "--dump-dom",
            ])
            .arg(format!(
                "--user-data-dir={}",
                scratch.join("profile").display()
            ))
            .arg(file_url(&checker)),
        TIMEOUT,
    )?;
    let dom = String::from_utf8_lossy(&output.stdout);
    measurements(&dom).with_context(|| {
        format!(
            "chromium ({}) left no measurements; its last words:\n{}",
            output.status,
            tail(&String::from_utf8_lossy(&output.stderr), 5)
        )
    })
}

/// Marp's HTML with a `<base>` first in its head and a script last in its body.
fn with_checker(html: &str, base: &str, script: &str) -> Option<String> {
    let head = html.find("<head")?;
    let head_end = head + html[head..].find('>')? + 1;
    let body_end = html.rfind("</body>")?;
    if body_end < head_end {
        return None;
    }
    Some(format!(
        "{}{base}{}<script>{script}</script>{}",
        &html[..head_end],
        &html[head_end..body_end],
        &html[body_end..]
    ))
}

/// The measurements the script left in the dumped DOM.
fn measurements(dom: &str) -> Result<Vec<Measured>> {
    const OPEN: &str = r#"<pre id="overflow">"#;
    let start = dom
        .find(OPEN)
        .context("no <pre id=\"overflow\"> in the page")?
        + OPEN.len();
    let end = start + dom[start..].find("</pre>").context("unclosed <pre>")?;
    serde_json::from_str(&dom[start..end]).context("failed to parse the measurements")
}

/// What an author must fix in a deck, one line per slide (slides count from 1, as the
/// page numbers do). A slide overflows when its content runs into its footer, or past its
/// bottom edge (cut off) when it has none. Half a pixel is allowed for rounding.
fn problems(slides: &[Measured]) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, slide) in slides.iter().enumerate() {
        let name = format!("slide {} \"{}\"", index + 1, first_words(&slide.heading));
        let past_edge = slide.bottom - slide.height;
        let into_footer = slide.footer.map(|top| slide.bottom - top);
        if past_edge > 0.5 {
            problems.push(format!(
                "{name}: overflows, {past_edge:.0} px cut off at the bottom"
            ));
        } else if let Some(px) = into_footer.filter(|px| *px > 0.5) {
            problems.push(format!("{name}: overflows, {px:.0} px into the footer"));
        }
        for src in &slide.broken {
            problems.push(format!("{name}: image {src} does not load"));
        }
    }
    problems
}

/// The first words of a heading, with "…" when there are more.
fn first_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut shown = words[..words.len().min(HEADING_WORDS)].join(" ");
    if words.len() > HEADING_WORDS {
        shown.push_str(" …");
    }
    shown
}

/// A file:// URL for an absolute path, percent-encoding what a URL cannot hold.
pub(crate) fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' => {
                url.push(byte as char)
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    url
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A fresh temporary directory for the checker pages and Chromium's profiles, removed
/// when the command ends.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("ferry-slides-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dom(json: &str) -> String {
        format!(r#"<html><body><section></section><pre id="overflow">{json}</pre></body></html>"#)
    }

    #[test]
    fn measurements_are_read_from_the_dumped_dom() {
        let slides = measurements(&dom(
            r#"[{"height":720,"bottom":600.5,"footer":672,"heading":"A \u003cb\u003e","broken":[]}]"#,
        ))
        .unwrap();
        assert_eq!(slides.len(), 1);
        assert_eq!(slides[0].heading, "A <b>");
        assert_eq!(slides[0].footer, Some(672.0));
        assert!(measurements("<html><body></body></html>").is_err());
    }

    #[test]
    fn a_slide_that_reaches_its_footer_or_edge_overflows() {
        let slides = measurements(&dom(
            r#"[
            {"height":720,"bottom":641.5,"footer":672,"heading":"fits","broken":[]},
            {"height":720,"bottom":688.4,"footer":672,"heading":"The skeleton (fixed from today)","broken":[]},
            {"height":720,"bottom":803,"footer":672,"heading":"one two three four five six seven","broken":[]},
            {"height":720,"bottom":700,"footer":null,"heading":"no footer","broken":["figures/x.svg"]}
            ]"#,
        ))
        .unwrap();
        assert_eq!(
            problems(&slides),
            [
                r#"slide 2 "The skeleton (fixed from today)": overflows, 16 px into the footer"#,
                r#"slide 3 "one two three four five six …": overflows, 83 px cut off at the bottom"#,
                r#"slide 4 "no footer": image figures/x.svg does not load"#,
            ]
        );
    }

    #[test]
    fn the_checker_goes_into_marps_page() {
        let page = with_checker(
            r#"<!DOCTYPE html><html><head lang="en"><meta></head><body><p>x</p></body></html>"#,
            r#"<base href="file:///d/">"#,
            "go()",
        )
        .unwrap();
        assert_eq!(
            page,
            r#"<!DOCTYPE html><html><head lang="en"><base href="file:///d/"><meta></head><body><p>x</p><script>go()</script></body></html>"#
        );
        assert!(with_checker("<p>no head</p>", "", "").is_none());
    }

    #[test]
    fn file_urls_escape_what_urls_cannot_hold() {
        assert_eq!(
            file_url(Path::new("/work/my decks/a#1")),
            "file:///work/my%20decks/a%231"
        );
    }
}
