//! `cargo xtask book --check-links`: opens the built book in headless Chromium, as a
//! reader would, and fails on a broken link, a missing image or anchor, or a page that
//! errors.
//!
//! A tiny HTTP server serves the site on 127.0.0.1 and records every request it cannot
//! answer, with the page that asked: that catches what the browser fetches by itself
//! (style sheets, scripts, fonts, images). Chromium dumps each page's DOM after its
//! scripts ran; the DOM gives the links to follow (breadth-first from index.html) and
//! the ids that a link to `page.html#anchor` must find.

mod dom;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::manifest::project_root;
use crate::{book, util};
use dom::{ids, references, resolve, tags, Kind, Tag, Target};
use server::{locate, Server};

/// Chromium as root on a machine with no display, GPU or D-Bus: no sandbox (it refuses
/// root otherwise), and no traffic of its own (updates, sync, QUIC). Virtual time lets
/// a page's scripts run for 3 s without waiting 3 s. `--enable-logging` puts the
/// pages' console, uncaught errors included, on stderr.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=3000",
];
/// A Chromium still running after this has hung.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run() -> Result<()> {
    book::run()?;
    util::ensure_packages(&[util::CHROMIUM])?;
    let started = Instant::now();
    let report = check_site(&site_dir()?)?;
    println!(
        "checked the book in headless Chromium in {:.1} s: {} pages, {} links and images to {} files",
        started.elapsed().as_secs_f64(),
        report.pages,
        report.references,
        report.targets.len(),
    );
    for problem in &report.problems {
        println!("{problem}");
    }
    if !report.problems.is_empty() {
        bail!(
            "the book has {} problems (listed above)",
            report.problems.len()
        );
    }
    Ok(())
}

/// Where mdBook writes the site: book.toml's `build.build-dir`, relative to chapters/.
fn site_dir() -> Result<PathBuf> {
    let chapters = project_root().join("chapters");
    let text = std::fs::read_to_string(chapters.join("book.toml"))
        .context("failed to read chapters/book.toml")?;
    let config: toml::Table =
        toml::from_str(&text).context("failed to parse chapters/book.toml")?;
    let dir = config
        .get("build")
        .and_then(|build| build.get("build-dir"))
        .and_then(|dir| dir.as_str())
        .unwrap_or("book");
    Ok(chapters.join(dir))
}

/// What the crawl saw, and what is wrong, one line per problem.
#[derive(Debug, Default)]
struct Report {
    pages: usize,
    references: usize,
    targets: BTreeSet<String>,
    /// The site paths already reported missing, so the server's log does not repeat them.
    missing: BTreeSet<String>,
    problems: Vec<String>,
}

impl Report {
    fn problem(&mut self, problem: String) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }
}

/// Serves the site, crawls it from index.html in Chromium and reports its problems.
fn check_site(site: &Path) -> Result<Report> {
    let server = Server::start(site)?;
    // Profiles, DOMs and Chromium's temporary files (TMPDIR) stay under target/.
    let scratch = project_root().join("target/links");
    let _ = std::fs::remove_dir_all(&scratch);
    let count = AtomicUsize::new(0);
    let report = crawl(site, &server.origin, &|page| {
        let dir = scratch.join(count.fetch_add(1, Ordering::Relaxed).to_string());
        render(&server.origin, page, &dir)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let mut report = report?;
    for (path, referrer) in server.not_found.lock().expect("not poisoned").iter() {
        // Chromium asks for /favicon.ico by itself when a page names no icon.
        if path != "favicon.ico" && !report.missing.contains(path) {
            report.problem(format!("404 {path} (requested by {referrer})"));
        }
    }
    Ok(report)
}

/// Visits every page reachable from index.html (print.html, which repeats them all,
/// last), then checks every internal link, image and anchor the pages name.
fn crawl(
    site: &Path,
    origin: &str,
    render: &(dyn Fn(&str) -> Result<Rendered> + Sync),
) -> Result<Report> {
    let mut report = Report::default();
    let mut pages: BTreeMap<String, Vec<Tag>> = BTreeMap::new();
    let mut wave = vec!["index.html".to_string()];
    let mut queued: BTreeSet<String> = wave.iter().cloned().collect();
    while !wave.is_empty() {
        wave.sort_by_key(|page| page == "print.html");
        let noun = if wave.len() == 1 { "page" } else { "pages" };
        println!(
            "opening {} {noun} in headless Chromium ({} at a time)",
            wave.len(),
            parallel().min(wave.len())
        );
        let mut next = Vec::new();
        for (page, rendered) in wave.iter().zip(render_all(&wave, render)) {
            let rendered = rendered?;
            for failure in rendered.failures {
                report.problem(format!("{page}: page error: {failure}"));
            }
            let tags = tags(&rendered.dom);
            for (_, reference) in references(&tags) {
                if let Target::Inside { path, .. } = resolve(page, &reference, origin) {
                    match locate(site, &path) {
                        Some(file) if file.ends_with(".html") && queued.insert(file.clone()) => {
                            next.push(file)
                        }
                        _ => {}
                    }
                }
            }
            pages.insert(page.clone(), tags);
        }
        wave = next;
    }
    report.pages = pages.len();
    for (page, tags) in &pages {
        for (kind, reference) in references(tags) {
            check(&mut report, site, origin, &pages, page, kind, &reference);
        }
    }
    Ok(report)
}

/// Checks one reference of a page: its file exists and, for a page, has the anchor.
fn check(
    report: &mut Report,
    site: &Path,
    origin: &str,
    pages: &BTreeMap<String, Vec<Tag>>,
    page: &str,
    kind: Kind,
    reference: &str,
) {
    let target = resolve(page, reference, origin);
    if target != Target::Elsewhere {
        report.references += 1;
    }
    let (path, fragment) = match target {
        Target::Elsewhere => return,
        Target::Outside => {
            report.problem(format!(
                "{page}: {} {reference} (outside the site)",
                missing(kind)
            ));
            return;
        }
        Target::Inside { path, fragment } => (path, fragment),
    };
    report.targets.insert(path.clone());
    let Some(file) = locate(site, &path) else {
        report.problem(format!("{page}: {} {reference}", missing(kind)));
        report.missing.insert(path);
        return;
    };
    let anchored = |tags: &Vec<Tag>, fragment: &str| ids(tags).any(|id| id == fragment);
    match (fragment, pages.get(&file)) {
        (Some(fragment), Some(tags)) if !anchored(tags, &fragment) => {
            report.problem(format!("{page}: missing anchor #{fragment} in {reference}"));
        }
        _ => {}
    }
}

fn missing(kind: Kind) -> &'static str {
    match kind {
        Kind::Link => "broken link",
        Kind::Image => "missing image",
        Kind::Asset => "missing asset",
    }
}

/// What Chromium made of a page: its DOM, and what went wrong.
struct Rendered {
    dom: String,
    failures: Vec<String>,
}

/// Chromiums at once, one per CPU up to 3: a Chromium takes one to two seconds per page,
/// mostly to start, and on two CPUs three at once are no faster than two.
fn parallel() -> usize {
    std::thread::available_parallelism().map_or(2, |cpus| cpus.get().min(3))
}

/// Renders the pages, [`parallel()`] at a time; the results are in the pages' order.
fn render_all(
    pages: &[String],
    render: &(dyn Fn(&str) -> Result<Rendered> + Sync),
) -> Vec<Result<Rendered>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Rendered>>>> =
        pages.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..parallel().min(pages.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(page) = pages.get(index) else { break };
                *results[index].lock().expect("not poisoned") = Some(render(page));
            });
        }
    });
    results
        .into_iter()
        .map(|result| {
            result
                .into_inner()
                .expect("not poisoned")
                .expect("rendered")
        })
        .collect()
}

/// Opens a page of the site at `origin` in a fresh headless Chromium (profile in `dir`)
/// and returns the DOM it dumps once the page's scripts ran. The page errors when
/// Chromium fails or hangs, when the DOM has an empty body, or on an uncaught
/// JavaScript error.
fn render(origin: &str, page: &str, dir: &Path) -> Result<Rendered> {
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile)
        .with_context(|| format!("failed to create {}", profile.display()))?;
    let (dom, log) = (dir.join("dom.html"), dir.join("chromium.log"));
    let mut child = Command::new(util::CHROMIUM.0)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("{origin}/{page}"))
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(File::create(&dom)?)
        .stderr(File::create(&log)?)
        .spawn()
        .context("failed to start chromium")?;
    let deadline = Instant::now() + PAGE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let dom = std::fs::read_to_string(&dom).unwrap_or_default();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let mut failures = Vec::new();
    match status {
        None => failures.push(format!(
            "chromium did not finish within {} s",
            PAGE_TIMEOUT.as_secs()
        )),
        Some(status) if !status.success() => failures.push(format!("chromium failed ({status})")),
        Some(_) => {}
    }
    let body = dom
        .split_once("<body")
        .and_then(|(_, body)| body.split_once('>'))
        .map(|(_, body)| body);
    if body.is_none_or(|body| body.trim_start().starts_with("</body>")) {
        failures.push("the page is empty".to_string());
    }
    failures.extend(js_errors(&log, origin));
    Ok(Rendered { dom, failures })
}

/// The uncaught errors in Chromium's console log: lines such as
/// `[..:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined", source: URL (1)`.
fn js_errors(log: &str, origin: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(":CONSOLE") && line.contains("] \"Uncaught"))
        .filter_map(|line| line.split_once("] \""))
        .map(|(_, message)| format!("JS error \"{}", message.replace(&format!("{origin}/"), "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:1";

    /// A scratch site under target/tmp with the given files.
    fn site(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let site = project_root().join("target/tmp").join(name);
        let _ = std::fs::remove_dir_all(&site);
        for (path, text) in files {
            std::fs::create_dir_all(site.join(path).parent().unwrap()).unwrap();
            std::fs::write(site.join(path), text).unwrap();
        }
        site
    }

    /// A site with one of each problem (and links that are fine), and the problems
    /// the check must list for it.
    fn broken_site(name: &str) -> (PathBuf, Vec<&'static str>) {
        let index = r##"<html><head><link rel="stylesheet" href="css/book.css"></head><body>
            <a href="chapter.html">fine</a> <a href="chapter.html#there">fine</a>
            <a href="./chapter.html#nowhere">no anchor</a> <a href="gone.html">broken</a>
            <a href="#top">fine</a> <a href="#self">fine</a> <a href="#elsewhere">no anchor</a>
            <a href="https://example.org/">external</a> <a href="mailto:a@example.org">mail</a>
            <a href="../outside.html">outside</a> <img src="figures/shown.svg">
            <img src="figures/lost.svg"> <p id="self">text</p>
            <script>var fake = '<a href="not-a-link.html">';</script></body></html>"##;
        let chapter = r#"<html><body><h1 id="there">Chapter</h1><a href="index.html">back</a>
            <a href="sub/">a folder</a></body></html>"#;
        let css = "@font-face { font-family: lost; src: url(../fonts/lost.woff2); }\n\
                   body { font-family: lost; }";
        let files = [
            ("index.html", index),
            ("chapter.html", chapter),
            ("sub/index.html", "<html><body><p>sub</p></body></html>"),
            (
                "figures/shown.svg",
                "<svg xmlns='http://www.w3.org/2000/svg'/>",
            ),
            ("css/book.css", css),
        ];
        let problems = vec![
            "index.html: missing anchor #nowhere in ./chapter.html#nowhere",
            "index.html: broken link gone.html",
            "index.html: missing anchor #elsewhere in #elsewhere",
            "index.html: broken link ../outside.html (outside the site)",
            "index.html: missing image figures/lost.svg",
        ];
        (site(name, &files), problems)
    }

    #[test]
    fn broken_links_missing_anchors_and_images_are_reported() {
        let (site, expected) = broken_site("links-static");
        // The pages as written stand in for Chromium's DOMs.
        let render = |page: &str| {
            let dom = std::fs::read_to_string(site.join(page)).unwrap();
            Ok(Rendered {
                dom,
                failures: Vec::new(),
            })
        };
        let report = crawl(&site, ORIGIN, &render).unwrap();
        assert_eq!(report.problems, expected);
        assert_eq!(report.pages, 3, "index.html, chapter.html, sub/index.html");
        assert_eq!(report.references, 13);
    }

    /// The whole check on a broken site, in a real headless Chromium (which `cargo xtask
    /// test` does not install): `cargo test -p xtask -- --ignored`.
    #[test]
    #[ignore = "needs /usr/bin/chromium"]
    fn chromium_finds_broken_links_and_assets_the_browser_fetches() {
        let (site, mut expected) = broken_site("links-chromium");
        std::fs::write(
            site.join("error.html"),
            "<html><body><p>x</p><script>missing();</script></body></html>",
        )
        .unwrap();
        let index = std::fs::read_to_string(site.join("index.html")).unwrap();
        std::fs::write(
            site.join("index.html"),
            index.replace("</body>", r#"<a href="error.html">js</a></body>"#),
        )
        .unwrap();
        let report = check_site(&site).unwrap();
        // Page errors are found while crawling, before the links are checked.
        let js_error = "error.html: page error: JS error \"Uncaught ReferenceError: missing is \
                        not defined\", source: error.html (1)";
        expected.insert(0, js_error);
        expected.push("404 fonts/lost.woff2 (requested by css/book.css)");
        for problem in &report.problems {
            println!("{problem}");
        }
        assert_eq!(report.problems, expected);
    }

    #[test]
    fn uncaught_errors_are_read_from_the_console_log() {
        let log = "[1:1:1202/002119.100002:INFO:CONSOLE:1] \"hello\", source: http://127.0.0.1:1/x.html (1)\n\
                   [1:1:1202/002119.101954:INFO:CONSOLE:1] \"Uncaught TypeError: x is null\", source: http://127.0.0.1:1/book.js (7)\n";
        assert_eq!(
            js_errors(log, ORIGIN),
            ["JS error \"Uncaught TypeError: x is null\", source: book.js (7)"]
        );
    }
}
