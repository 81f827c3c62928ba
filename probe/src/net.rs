//! `probe loopback`: is the network namespace's loopback up, and what interfaces are there?
//!
//! A new network namespace has only `lo`, and it starts down: until the engine brings it up,
//! connecting to 127.0.0.1 fails (ENETUNREACH).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use crate::json::{describe, Json};
use crate::procfs::parse_net_dev;

/// How long any one step may block: loopback answers in microseconds or not at all.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The byte sent over the connection.
const BYTE: u8 = b'!';

/// `{"ok", "error", "interfaces"}`: `ok` when one byte went over a TCP connection to a listener on
/// 127.0.0.1; `error` names the step that failed; `interfaces` lists `/proc/net/dev`.
pub fn loopback() -> Json {
    let (ok, error) = match round_trip() {
        Ok(()) => (true, Json::Null),
        Err(e) => (false, Json::Str(e)),
    };
    Json::object([
        ("ok", Json::from(ok)),
        ("error", error),
        ("interfaces", interfaces()),
    ])
}

/// Listens on an ephemeral port of 127.0.0.1, connects, sends [`BYTE`] and receives it.
fn round_trip() -> Result<(), String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(step("bind 127.0.0.1:0"))?;
    let addr = listener.local_addr().map_err(step("getsockname"))?;
    let mut client =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(step(&format!("connect {addr}")))?;
    client.write_all(&[BYTE]).map_err(step("send"))?;
    // The connection is established, so it is already waiting in the listener's queue.
    let (mut server, _) = listener.accept().map_err(step("accept"))?;
    server
        .set_read_timeout(Some(TIMEOUT))
        .map_err(step("set read timeout"))?;
    let mut received = [0u8];
    server.read_exact(&mut received).map_err(step("receive"))?;
    if received[0] != BYTE {
        return Err(format!("received {:?} instead of {BYTE:?}", received[0]));
    }
    Ok(())
}

/// Turns an error into "what: Words (errno N)".
fn step(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {}", describe(&e))
}

fn interfaces() -> Json {
    let text = std::fs::read("/proc/net/dev").unwrap_or_default();
    Json::array(parse_net_dev(&String::from_utf8_lossy(&text)))
}

/// The longest `udp-echo` waits for a datagram.
const UDP_WAIT: Duration = Duration::from_secs(30);

/// `probe udp-echo PORT COUNT`: answers up to COUNT datagrams on 0.0.0.0:PORT
/// with `echo:` and what they said, then `{"served": N}` (a UDP server for
/// published-port tests: busybox has none).
pub fn udp_echo(port: u16, count: u64) -> Result<Json, String> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
        .map_err(step(&format!("bind 0.0.0.0:{port}/udp")))?;
    socket
        .set_read_timeout(Some(UDP_WAIT))
        .map_err(step("set read timeout"))?;
    let mut served = 0;
    let mut buffer = [0u8; 512];
    while served < count {
        let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
            break;
        };
        let mut answer = b"echo:".to_vec();
        answer.extend_from_slice(&buffer[..length]);
        socket.send_to(&answer, peer).map_err(step("send"))?;
        served += 1;
    }
    Ok(Json::object([("served", Json::from(served as i64))]))
}

/// The most `tcp-send` sends, in MiB.
pub const MAX_SEND_MB: u64 = 4096;

/// `probe tcp-sink PORT`: accepts one connection on 0.0.0.0:PORT and reads it to
/// its end; `{"bytes": N, "seconds": S}` (for throughput benches: busybox's nc
/// stops after its first read).
pub fn tcp_sink(port: u16) -> Result<Json, String> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .map_err(step(&format!("bind 0.0.0.0:{port}")))?;
    let (mut stream, _) = listener.accept().map_err(step("accept"))?;
    let started = std::time::Instant::now();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total: u64 = 0;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => return Err(step("receive")(e)),
        }
    }
    Ok(Json::object([
        ("bytes", Json::from(total)),
        (
            "seconds",
            Json::Str(format!("{:.3}", started.elapsed().as_secs_f64())),
        ),
    ]))
}

/// `probe tcp-send ADDRESS PORT MB`: connects (retrying for 5 s while the sink
/// starts) and sends MB MiB of zeros; `{"bytes": N, "seconds": S, "mb_per_s": R}`.
pub fn tcp_send(address: &str, port: u16, megabytes: u64) -> Result<Json, String> {
    let target = format!("{address}:{port}");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut stream = loop {
        match TcpStream::connect(&target) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(step(&format!("connect {target}"))(e))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let buffer = vec![0u8; 1 << 20];
    let started = std::time::Instant::now();
    for _ in 0..megabytes {
        stream.write_all(&buffer).map_err(step("send"))?;
    }
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(step("shutdown"))?;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let seconds = started.elapsed().as_secs_f64();
    Ok(Json::object([
        ("bytes", Json::from(megabytes << 20)),
        ("seconds", Json::Str(format!("{seconds:.3}"))),
        (
            "mb_per_s",
            Json::Str(format!("{:.0}", megabytes as f64 / seconds)),
        ),
    ]))
}
