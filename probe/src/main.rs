//! `ferry-probe`: the test harness's eyes inside a container.
//!
//! The harness copies this binary into a test's rootfs as `/probe` and runs it as the container's
//! command. It reports, as one JSON object on stdout, what the container sees (ids, hostname,
//! mounts, namespaces, capabilities, open descriptors...) and tries the escapes the chapters must
//! stop (a chroot breakout, reading or writing host files, making device nodes), so a test can
//! assert on facts rather than on what the engine claims.
//!
//! The later chapters' tests use it too: System V IPC objects and the loopback for namespaces
//! (`ipc-create`, `ipc-find`, `ipc-remove`, `loopback`), bounded loads for cgroups (`hog`,
//! `forks`, `spin`), and the calls hardening must refuse (`int80`, `keyctl`, `unshare-user`,
//! `tiocsti`, `setuid-check`, `chown`, `sethostname`, `personality`, `socket`, `pidfd-getfd`,
//! `fds`). Every one of them is harmless when
//! the protection under test is missing, since the tests also run them on the developer's machine:
//! loads are capped (`hog` at 1024 MiB, `forks` at 500 children, 30 seconds), forked children are
//! always reaped, and nothing changes the host except `ipc-create` (which the test undoes with
//! `ipc-remove`) and what `chown` and `sethostname` are pointed at.
//!
//! A busybox rootfs has no libc, so the probe is linked statically:
//! `cargo rustc -p ferry-probe --release -- -C target-feature=+crt-static`. That is also why it
//! has no serde (proc-macros cannot be built with `+crt-static`) and writes its JSON by hand.
//!
//! Every subcommand prints exactly one JSON object and a newline, and exits 0 whatever it found;
//! only a wrong usage (including a number above its cap) exits 2, with a message on stderr. A
//! few may be killed instead, which is what their tests look for: `hog` by the OOM killer, `int80`
//! by a seccomp filter (SIGSYS).

#![deny(unsafe_code)]

mod escape;
mod files;
mod hardening;
mod ipc;
mod json;
mod limits;
mod net;
mod procfs;
mod report;
#[allow(unsafe_code)]
mod sys;

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use json::Json;
use limits::{MAX_FORKS, MAX_HOG_MB, MAX_SECONDS};

const USAGE: &str = "usage: probe report
       probe escape-chroot PATH
       probe read PATH
       probe write PATH CONTENT
       probe mknod-read PATH MAJOR MINOR
       probe sleep SECONDS TOKEN
       probe ipc-create KEY
       probe ipc-find KEY
       probe ipc-remove MSG_ID SHM_ID
       probe loopback
       probe udp-echo PORT COUNT
       probe tcp-sink PORT
       probe tcp-send ADDRESS PORT MB
       probe hog MB                (MB <= 1024)
       probe forks N SECONDS       (N <= 500, SECONDS <= 30)
       probe spin SECONDS          (SECONDS <= 30)
       probe int80
       probe keyctl
       probe unshare-user
       probe tiocsti
       probe setuid-check
       probe chown PATH UID GID
       probe sethostname NAME
       probe personality PERSONA
       probe socket FAMILY TYPE
       probe pidfd-getfd
       probe fds
KEY is a nonzero System V IPC key, in decimal or as 0x-prefixed hex.
PERSONA and FAMILY are 64-bit numbers, in decimal or as 0x-prefixed hex.";

const SUBCOMMANDS: &[&str] = &[
    "report",
    "escape-chroot",
    "read",
    "write",
    "mknod-read",
    "sleep",
    "ipc-create",
    "ipc-find",
    "ipc-remove",
    "loopback",
    "udp-echo",
    "tcp-sink",
    "tcp-send",
    "hog",
    "forks",
    "spin",
    "int80",
    "keyctl",
    "unshare-user",
    "tiocsti",
    "setuid-check",
    "chown",
    "sethostname",
    "personality",
    "socket",
    "pidfd-getfd",
    "fds",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(reply) => {
            // A closed stdout (the test stopped reading) is not the probe's failure.
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", reply.json);
            let _ = stdout.flush();
            // Only now, with the line out, wait for the children (see `limits::forks`).
            drop(reply.children);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("probe: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// What a subcommand hands back: the line to print, and the children to reap once it is printed.
#[derive(Debug)]
struct Reply {
    json: Json,
    /// Reaped when dropped (see [`sys::Child`]).
    children: Vec<sys::Child>,
}

impl From<Json> for Reply {
    fn from(json: Json) -> Reply {
        Reply {
            json,
            children: Vec::new(),
        }
    }
}

/// Runs the subcommand named by `args[0]`; `Err` is a usage error.
fn run(args: &[&str]) -> Result<Reply, String> {
    let json = match args {
        ["report"] => report::report(),
        ["escape-chroot", path] => escape::escape_chroot(path),
        ["read", path] => files::read(path),
        ["write", path, content] => files::write(path, content),
        ["mknod-read", path, major, minor] => {
            escape::mknod_read(path, number(major)?, number(minor)?)
        }
        ["sleep", seconds, _token] => sleep(number(seconds)?),
        ["ipc-create", key] => ipc::create(ipc_key(key)?),
        ["ipc-find", key] => ipc::find(ipc_key(key)?),
        ["ipc-remove", msg_id, shm_id] => ipc::remove(number(msg_id)?, number(shm_id)?),
        ["loopback"] => net::loopback(),
        ["tcp-sink", port] => net::tcp_sink(capped::<u16>(port, u16::MAX)?)?,
        ["tcp-send", address, port, mb] => net::tcp_send(
            address,
            capped::<u16>(port, u16::MAX)?,
            capped::<u64>(mb, net::MAX_SEND_MB)?,
        )?,
        ["udp-echo", port, count] => {
            net::udp_echo(capped::<u16>(port, u16::MAX)?, capped::<u64>(count, 100)?)?
        }
        ["hog", mb] => limits::hog(capped(mb, MAX_HOG_MB)?),
        ["forks", count, seconds] => {
            let count = capped(count, MAX_FORKS)?;
            let (json, children) = limits::forks(count, capped(seconds, MAX_SECONDS)?);
            return Ok(Reply { json, children });
        }
        ["spin", seconds] => limits::spin(capped(seconds, MAX_SECONDS)?),
        ["int80"] => hardening::int80(),
        ["keyctl"] => hardening::keyctl(),
        ["unshare-user"] => hardening::unshare_user(),
        ["tiocsti"] => hardening::tiocsti(),
        ["setuid-check"] => hardening::setuid_check(),
        ["chown", path, uid, gid] => hardening::chown(path, number(uid)?, number(gid)?),
        ["sethostname", name] => hardening::sethostname(name),
        ["personality", persona] => hardening::personality(word(persona)?),
        ["socket", family, kind] => hardening::socket(word(family)?, number(kind)?),
        ["pidfd-getfd"] => hardening::pidfd_getfd(),
        ["fds"] => report::fds(),
        [] => return Err("missing subcommand".to_owned()),
        [command, ..] if SUBCOMMANDS.contains(command) => {
            return Err(format!("wrong arguments for `{command}`"))
        }
        [command, ..] => return Err(format!("unknown subcommand `{command}`")),
    };
    Ok(json.into())
}

/// Sleeps, then says for how long: `{"slept": SECONDS}`.
///
/// The token argument is ignored: it only makes the process easy to find by its command line.
fn sleep(seconds: u32) -> Json {
    std::thread::sleep(Duration::from_secs(seconds.into()));
    Json::object([("slept", Json::from(seconds))])
}

fn number<T: FromStr>(arg: &str) -> Result<T, String> {
    arg.parse().map_err(|_| format!("`{arg}` is not a number"))
}

/// A number no larger than `max`: the caps keep the loads harmless, so going over is a usage
/// error rather than something quietly clamped.
fn capped<T: FromStr + PartialOrd + Display>(arg: &str, max: T) -> Result<T, String> {
    let n = number(arg)?;
    if n > max {
        return Err(format!("`{arg}` is more than {max}"));
    }
    Ok(n)
}

/// A 64-bit register's worth: decimal, or `0x` hex (`0x100000028` sets bits a 32-bit int drops).
fn word(arg: &str) -> Result<u64, String> {
    let value = match arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => arg.parse().ok(),
    };
    value.ok_or_else(|| format!("`{arg}` is not a 64-bit number"))
}

/// A System V IPC key: decimal (a `key_t` is an int, so it may be negative) or `0x` hex up to
/// `0xffffffff`. Zero is `IPC_PRIVATE`, which would create a new object on every lookup, so it is
/// refused.
fn ipc_key(arg: &str) -> Result<i32, String> {
    let key = match arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")) {
        // Hex keys are the bits of the int, as ipcs(1) prints them.
        Some(hex) => u32::from_str_radix(hex, 16).map(|k| k as i32).ok(),
        None => arg.parse().ok(),
    };
    match key {
        Some(0) => Err("key 0 is IPC_PRIVATE; use a nonzero key".to_owned()),
        Some(key) => Ok(key),
        None => Err(format!("`{arg}` is not an IPC key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(args: &[&str]) -> String {
        run(args).unwrap().json.to_string()
    }

    #[test]
    fn wrong_usage_is_an_error() {
        assert!(run(&[]).is_err());
        assert!(run(&["nope"]).unwrap_err().contains("unknown subcommand"));
        assert!(run(&["read"]).unwrap_err().contains("wrong arguments"));
        assert!(run(&["report", "extra"]).is_err());
        assert!(run(&["sleep", "soon", "token"])
            .unwrap_err()
            .contains("not a number"));
        assert!(run(&["mknod-read", "/x", "8", "-1"]).is_err());
        assert!(run(&["ipc-remove", "1"])
            .unwrap_err()
            .contains("wrong arguments"));
        assert!(run(&["chown", "/x", "0", "root"])
            .unwrap_err()
            .contains("not a number"));
        assert!(run(&["loopback", "now"]).is_err());
    }

    #[test]
    fn every_subcommand_is_in_the_usage() {
        for command in SUBCOMMANDS {
            assert!(
                USAGE.contains(&format!("probe {command}")),
                "{command} is missing from the usage"
            );
        }
    }

    #[test]
    fn sleep_zero_reports_what_it_slept() {
        assert_eq!(output(&["sleep", "0", "tok"]), r#"{"slept":0}"#);
    }

    #[test]
    fn numbers_above_their_cap_are_usage_errors() {
        assert_eq!(capped("1024", MAX_HOG_MB), Ok(1024));
        assert_eq!(capped("0", MAX_HOG_MB), Ok(0));
        assert!(capped("1025", MAX_HOG_MB)
            .unwrap_err()
            .contains("more than 1024"));
        assert!(capped::<u32>("-1", 10)
            .unwrap_err()
            .contains("not a number"));
        assert!(run(&["hog", "2048"])
            .unwrap_err()
            .contains("more than 1024"));
        assert!(run(&["forks", "501", "1"])
            .unwrap_err()
            .contains("more than 500"));
        assert!(run(&["forks", "5", "31"])
            .unwrap_err()
            .contains("more than 30"));
        assert!(run(&["spin", "31"]).unwrap_err().contains("more than 30"));
    }

    #[test]
    fn ipc_keys_are_decimal_or_hex_and_never_private() {
        assert_eq!(ipc_key("1234"), Ok(1234));
        assert_eq!(ipc_key("-5"), Ok(-5));
        assert_eq!(ipc_key("0x1f"), Ok(31));
        assert_eq!(ipc_key("0XFFFFFFFF"), Ok(-1));
        assert!(ipc_key("0").unwrap_err().contains("IPC_PRIVATE"));
        assert!(ipc_key("0x0").unwrap_err().contains("IPC_PRIVATE"));
        assert!(ipc_key("0x100000000").is_err());
        assert!(ipc_key("4294967295").is_err());
        assert!(ipc_key("key").unwrap_err().contains("not an IPC key"));
        assert!(run(&["ipc-find", "0"]).is_err());
    }

    #[test]
    fn words_are_decimal_or_hex_up_to_64_bits() {
        assert_eq!(word("40"), Ok(40));
        assert_eq!(word("0x100000028"), Ok(0x1_0000_0028));
        assert_eq!(word("0xffffffffffffffff"), Ok(u64::MAX));
        assert!(word("0x10000000000000000").is_err());
        assert!(word("-1").unwrap_err().contains("not a 64-bit number"));
        assert!(run(&["socket", "40"])
            .unwrap_err()
            .contains("wrong arguments"));
    }

    #[test]
    fn forks_with_zero_children_has_nothing_to_reap() {
        let reply = run(&["forks", "0", "30"]).unwrap();
        assert!(reply.children.is_empty());
        assert_eq!(
            reply.json.to_string(),
            r#"{"forked":0,"errno":null,"error":null}"#
        );
    }

    #[test]
    fn setuid_check_reports_the_four_ids() {
        let ids = sys::ids();
        assert_eq!(
            output(&["setuid-check"]),
            format!(
                r#"{{"uid":{},"euid":{},"gid":{},"egid":{}}}"#,
                ids.uid, ids.euid, ids.gid, ids.egid
            )
        );
    }
}
