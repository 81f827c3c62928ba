//! `ferry-probe`: the test harness's eyes inside a container.
//!
//! The harness copies this binary into a test's rootfs as `/probe` and runs it as the container's
//! command. It reports, as one JSON object on stdout, what the container sees (ids, hostname,
//! mounts, namespaces, capabilities, open descriptors...) and tries the escapes the chapters must
//! stop (a chroot breakout, reading or writing host files, making device nodes), so a test can
//! assert on facts rather than on what the engine claims.
//!
//! A busybox rootfs has no libc, so the probe is linked statically:
//! `cargo rustc -p ferry-probe --release -- -C target-feature=+crt-static`. That is also why it
//! has no serde (proc-macros cannot be built with `+crt-static`) and writes its JSON by hand.
//!
//! Every subcommand prints exactly one JSON object and a newline, and exits 0 whatever it found;
//! only a wrong usage exits 2, with a message on stderr.

#![deny(unsafe_code)]

mod escape;
mod files;
mod json;
mod procfs;
mod report;
#[allow(unsafe_code)]
mod sys;

use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use json::Json;

const USAGE: &str = "usage: probe report
       probe escape-chroot PATH
       probe read PATH
       probe write PATH CONTENT
       probe mknod-read PATH MAJOR MINOR
       probe sleep SECONDS TOKEN";

const SUBCOMMANDS: &[&str] = &[
    "report",
    "escape-chroot",
    "read",
    "write",
    "mknod-read",
    "sleep",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(json) => {
            // A closed stdout (the test stopped reading) is not the probe's failure.
            let _ = writeln!(std::io::stdout().lock(), "{json}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("probe: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Runs the subcommand named by `args[0]`; `Err` is a usage error.
fn run(args: &[&str]) -> Result<Json, String> {
    match args {
        ["report"] => Ok(report::report()),
        ["escape-chroot", path] => Ok(escape::escape_chroot(path)),
        ["read", path] => Ok(files::read(path)),
        ["write", path, content] => Ok(files::write(path, content)),
        ["mknod-read", path, major, minor] => {
            Ok(escape::mknod_read(path, number(major)?, number(minor)?))
        }
        ["sleep", seconds, _token] => Ok(sleep(number(seconds)?)),
        [] => Err("missing subcommand".to_owned()),
        [command, ..] if SUBCOMMANDS.contains(command) => {
            Err(format!("wrong arguments for `{command}`"))
        }
        [command, ..] => Err(format!("unknown subcommand `{command}`")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn sleep_zero_reports_what_it_slept() {
        assert_eq!(
            run(&["sleep", "0", "tok"]).unwrap().to_string(),
            r#"{"slept":0}"#
        );
    }
}
