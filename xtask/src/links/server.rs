//! A static file server for the built site on 127.0.0.1: GET only, one request per
//! connection, a 404 for a missing file, and a record of every 404 with the page that
//! asked (its `Referer`), which is how the check sees the fonts, style sheets and
//! images a browser fetches by itself.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use super::dom::percent_decode;

/// Content types by file extension (anything else is application/octet-stream).
const CONTENT_TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("css", "text/css"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("ico", "image/x-icon"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain; charset=utf-8"),
];

/// The file of the site a path names (a directory names its index.html), if it exists:
/// the server answers with it, and the crawl counts a link to it as found.
pub fn locate(site: &Path, path: &str) -> Option<String> {
    if path.split('/').any(|segment| segment == "..") {
        return None;
    }
    let path = path.trim_matches('/');
    let file = site.join(path);
    if file.is_file() {
        Some(path.to_string())
    } else if file.join("index.html").is_file() {
        Some(if path.is_empty() {
            "index.html".into()
        } else {
            format!("{path}/index.html")
        })
    } else {
        None
    }
}

/// A static file server for the site on 127.0.0.1, in a thread of its own (it ends
/// with xtask), that records each path it could not find with the page that asked.
pub struct Server {
    pub origin: String,
    /// (path, referrer): the referrer is a site path, or "the browser" when none was sent.
    pub not_found: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl Server {
    pub fn start(site: &Path) -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").context("failed to listen on 127.0.0.1")?;
        let origin = format!("http://{}", listener.local_addr()?);
        let not_found = Arc::new(Mutex::new(BTreeSet::new()));
        let (site, log, base) = (site.to_path_buf(), Arc::clone(&not_found), origin.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (site, log, base) = (site.clone(), Arc::clone(&log), base.clone());
                // One thread per connection: Chromium opens several at once.
                std::thread::spawn(move || answer(stream, &site, &base, &log));
            }
        });
        Ok(Server { origin, not_found })
    }
}

/// Answers one request (GET only; one per connection) with a file of the site, or a 404
/// that is recorded.
fn answer(
    stream: TcpStream,
    site: &Path,
    origin: &str,
    not_found: &Mutex<BTreeSet<(String, String)>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut referrer = "the browser".to_string();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && !line.trim().is_empty() {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("referer") {
                let value = value.trim();
                referrer = value
                    .strip_prefix(origin)
                    .map_or(value, |path| path.trim_start_matches('/'))
                    .to_string();
            }
        }
        line.clear();
    }
    let mut words = request.split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or("/"),
    );
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or_default());
    let file =
        locate(site, &path).and_then(|file| Some((std::fs::read(site.join(&file)).ok()?, file)));
    let (status, content_type, body) = match file {
        _ if method != "GET" => (
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n".to_vec(),
        ),
        Some((body, file)) => {
            let extension = file.rsplit_once('.').map_or("", |(_, extension)| extension);
            let content_type = CONTENT_TYPES.iter().find(|(e, _)| *e == extension);
            (
                "200 OK",
                content_type.map_or("application/octet-stream", |(_, t)| t),
                body,
            )
        }
        None => {
            let path = path.trim_start_matches('/').to_string();
            not_found
                .lock()
                .expect("not poisoned")
                .insert((path, referrer));
            ("404 Not Found", "text/plain", b"not found\n".to_vec())
        }
    };
    let mut stream = &stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::project_root;

    #[test]
    fn the_server_answers_files_and_records_what_it_lacks() {
        let site = project_root().join("target/tmp/links-server");
        std::fs::create_dir_all(site.join("figures")).unwrap();
        std::fs::write(site.join("figures/a.svg"), "<svg/>").unwrap();
        let server = Server::start(&site).unwrap();
        let get = |path: &str| {
            let mut stream =
                TcpStream::connect(server.origin.trim_start_matches("http://")).unwrap();
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nReferer: {}/page.html\r\n\r\n",
                server.origin
            )
            .unwrap();
            let mut response = String::new();
            std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
            response
        };
        let found = get("/figures/a.svg?v=1");
        assert!(
            found.starts_with("HTTP/1.1 200 OK\r\nContent-Type: image/svg+xml\r\n"),
            "{found}"
        );
        assert!(found.ends_with("\r\n\r\n<svg/>"), "{found}");
        assert!(get("/figures/b%20c.svg").starts_with("HTTP/1.1 404"));
        let not_found = server.not_found.lock().unwrap();
        assert_eq!(
            *not_found,
            BTreeSet::from([("figures/b c.svg".to_string(), "page.html".to_string())])
        );
    }
}
