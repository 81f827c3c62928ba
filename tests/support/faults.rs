//! A fault-injecting proxy for chapter 7's tests: a small HTTP/1.1 reverse proxy in
//! a thread, on a free loopback port, between the engine under test and a plain
//! HTTP [`Registry`](super::registry::Registry). The engine is given the proxy's
//! host as the registry's name (`127.0.0.1:PROXYPORT/test/app:v1`); the proxy
//! forwards each request to the registry and its answer back, unless a [`Fault`]
//! says otherwise. So a test can make a real registry busy, cut a download in the
//! middle or send blobs to "storage", and check what the engine did about it.
//!
//! It is deliberately simple: one request per connection (every answer says
//! `Connection: close`), bodies only with `Content-Length`, and a TLS handshake
//! (the engine tries HTTPS first) answered with a plain HTTP 400, as a plain HTTP
//! server does, so that the engine falls back to HTTP on loopback.
//!
//! Every request is recorded ([`Proxy::seen`]): method, path, whether it carried
//! `Authorization`, its `Range`. Faults are added with [`Proxy::inject`]: a
//! predicate on the request, the fault and how many times it fires; the first
//! rule that matches and has firings left is used.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to a request its rule matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status (503, 429...) with a distribution-style error body,
    /// without forwarding; a 429 says `Retry-After: 0`.
    Fail(u16),
    /// Forward, then send the answer's headers (with its full `Content-Length`)
    /// and only the first N bytes of its body, and close the connection: a
    /// download broken in the middle.
    CutAfter(usize),
    /// Answer a GET with `307 Temporary Redirect` to this prefix plus the original
    /// path, on the proxy ([`Proxy::STORAGE`]): the blob's "storage", as S3 is for
    /// Docker Hub. Requests there are forwarded to the original path with the
    /// `Authorization` of the request that was redirected (the way a presigned URL
    /// carries its signature), never with one the client sends; no fault applies
    /// to them.
    RedirectTo(String),
}

/// A request the proxy received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target: path and query (`/v2/test/app/manifests/v1`).
    pub path: String,
    /// Whether it carried an `Authorization` header.
    pub authorization: bool,
    /// Its `Range` header (`bytes=N-`), if any.
    pub range: Option<String>,
}

impl Seen {
    /// Whether it is `method` on a path that ends with `suffix`.
    pub fn is(&self, method: &str, suffix: &str) -> bool {
        self.method == method && self.path.ends_with(suffix)
    }
}

type Matcher = Box<dyn Fn(&Seen) -> bool + Send>;

struct Rule {
    matches: Matcher,
    fault: Fault,
    left: usize,
}

/// What the proxy's threads share.
struct State {
    /// `127.0.0.1:PORT` of the registry.
    upstream: String,
    /// `127.0.0.1:PORT` of the proxy itself, for redirects.
    me: String,
    agent: ureq::Agent,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    /// The storage paths handed out by redirects: the path they stand for and
    /// the `Authorization` of the request that was redirected.
    storage: Mutex<HashMap<String, (String, Option<String>)>>,
}

/// A running proxy; it stops on drop.
pub struct Proxy {
    /// `127.0.0.1:PORT`: the registry's name for the engine under test.
    pub host: String,
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// The prefix of the redirects' storage paths.
    pub const STORAGE: &'static str = "/__storage";
    /// A fault that fires every time.
    pub const ALWAYS: usize = usize::MAX;

    /// Listens on a free loopback port, forwarding to `upstream` (`127.0.0.1:PORT`
    /// of a plain HTTP registry).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            me: addr.to_string(),
            // No redirects followed: the engine must see the registry's own.
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(30))
                .build(),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            storage: Mutex::new(HashMap::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = state.clone();
                    // A thread per connection: the engine downloads layers in parallel.
                    std::thread::spawn(move || {
                        // A client that hangs up early is its own problem.
                        let _ = serve(stream, &state);
                    });
                }
            })
        };
        Proxy {
            host: addr.to_string(),
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Applies `fault` to the next `times` requests that `matches` (or every one,
    /// with [`Proxy::ALWAYS`]).
    pub fn inject(
        &self,
        times: usize,
        matches: impl Fn(&Seen) -> bool + Send + 'static,
        fault: Fault,
    ) {
        self.state.rules.lock().unwrap().push(Rule {
            matches: Box::new(matches),
            fault,
            left: times,
        });
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread blocked in accept(2) so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An answer to send back.
struct Answer {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The `Content-Length` to announce (a HEAD's is not its empty body's).
    length: usize,
}

impl Answer {
    fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Answer {
        let reason = match status {
            307 => "Temporary Redirect",
            400 => "Bad Request",
            429 => "Too Many Requests",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Injected",
        };
        let length = body.len();
        Answer {
            status,
            reason: reason.into(),
            headers,
            body,
            length,
        }
    }

    /// A distribution-style error: `{"errors": [{"code", "message"}]}`.
    fn error(status: u16, message: &str) -> Answer {
        let code = if status == 429 {
            "TOOMANYREQUESTS"
        } else {
            "UNAVAILABLE"
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        let mut headers = vec![("Content-Type".into(), "application/json".into())];
        if status == 429 {
            headers.push(("Retry-After".into(), "0".into()));
        }
        Answer::new(status, headers, body.to_string().into_bytes())
    }
}

/// Reads one request from `stream`, records it, and answers it.
fn serve(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    if reader.fill_buf()?.first() == Some(&0x16) {
        // A TLS handshake record: answer as a plain HTTP server would.
        return stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    }
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return send(&mut stream, Answer::new(400, vec![], vec![]), None);
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let header = |wanted: &str| {
        let found = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted));
        found.map(|(_, value)| value.clone())
    };
    let length = header("content-length").and_then(|l| l.parse().ok());
    let mut body = vec![0; length.unwrap_or(0)];
    reader.read_exact(&mut body)?;
    let authorization = header("authorization");
    let seen = Seen {
        method: method.clone(),
        path: target.clone(),
        authorization: authorization.is_some(),
        range: header("range"),
    };
    state.seen.lock().unwrap().push(seen.clone());

    let stored = state.storage.lock().unwrap().get(&target).cloned();
    if let Some((original, signature)) = stored {
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        headers.extend(signature.map(|a| ("Authorization".to_string(), a)));
        let answer = forward(state, &method, &original, &headers, &body);
        return send(&mut stream, answer, None);
    }
    let fault = {
        let mut rules = state.rules.lock().unwrap();
        let rule = rules.iter_mut().find(|r| r.left > 0 && (r.matches)(&seen));
        rule.map(|rule| {
            if rule.left != Proxy::ALWAYS {
                rule.left -= 1;
            }
            rule.fault.clone()
        })
    };
    let (answer, cut) = match fault {
        Some(Fault::Fail(status)) => (Answer::error(status, "injected by the fault proxy"), None),
        Some(Fault::CutAfter(bytes)) => (
            forward(state, &method, &target, &headers, &body),
            Some(bytes),
        ),
        Some(Fault::RedirectTo(prefix)) if method == "GET" => {
            let location = format!("{prefix}{target}");
            let url = format!("http://{}{location}", state.me);
            let mut storage = state.storage.lock().unwrap();
            storage.insert(location, (target, authorization));
            (
                Answer::new(307, vec![("Location".into(), url)], vec![]),
                None,
            )
        }
        _ => (forward(state, &method, &target, &headers, &body), None),
    };
    send(&mut stream, answer, cut)
}

/// The headers that are about one connection, not the request: never forwarded.
const HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
];

/// Sends `method target` with `headers` (but Host and hop-by-hop ones) and `body`
/// to the registry; its answer, whatever the status (a 502 if it cannot be reached).
fn forward(
    state: &State,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let mut request = state
        .agent
        .request(method, &format!("http://{}{target}", state.upstream));
    for (name, value) in headers {
        if !HOP.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.set(name, value);
        }
    }
    let result = match method {
        "GET" | "HEAD" | "DELETE" if body.is_empty() => request.call(),
        _ => request.send_bytes(body),
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => return Answer::error(502, &format!("the registry: {error}")),
    };
    let mut headers = Vec::new();
    for name in response.headers_names() {
        if HOP.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        for value in response.all(&name) {
            // An upload's Location names the registry: the client must come back here.
            let value = value.replace(
                &format!("//{}/", state.upstream),
                &format!("//{}/", state.me),
            );
            headers.push((name.clone(), value));
        }
    }
    let announced = response
        .header("content-length")
        .and_then(|l| l.parse().ok());
    let (status, reason) = (response.status(), response.status_text().to_string());
    let mut body = Vec::new();
    if let Err(error) = response.into_reader().read_to_end(&mut body) {
        return Answer::error(502, &format!("the registry's body: {error}"));
    }
    let length = if method == "HEAD" {
        announced.unwrap_or(0)
    } else {
        body.len()
    };
    Answer {
        status,
        reason,
        headers,
        body,
        length,
    }
}

/// Writes `answer`, with only `cut` bytes of its body if given, and closes.
fn send(stream: &mut TcpStream, answer: Answer, cut: Option<usize>) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, answer.reason);
    for (name, value) in &answer.headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.length
    );
    stream.write_all(head.as_bytes())?;
    let body = &answer.body[..cut.unwrap_or(usize::MAX).min(answer.body.len())];
    stream.write_all(body)?;
    stream.flush()?;
    // FIN, not RST: every byte sent reaches the client before the end does.
    stream.shutdown(Shutdown::Write)
}
