//! Servers a page starts or needs: a command that ends in `&` leaves one running,
//! and the runner waits for it as a reader would; `needs=registry` starts a
//! docker-registry where the page expects one. The scripts run in the page's shell,
//! inside its network namespace.

use super::scratch::{self, Scratch};

/// How long a server started in the background (`… &`) gets to listen, in tenths of a second.
const SERVER_WAIT_TENTHS: u32 = 100;

/// A command that leaves a server running: its last line ends in a single `&`.
pub fn starts_server(command: &str) -> bool {
    let last = command.trim_end();
    last.ends_with('&') && !last.ends_with("&&")
}

/// The loopback ports a command names (`127.0.0.1:5000`, `localhost:5001`).
pub fn ports(command: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for host in ["127.0.0.1:", "localhost:"] {
        for (at, _) in command.match_indices(host) {
            let digits: String = command[at + host.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(port) = digits.parse::<u16>() {
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

/// Waits until each port accepts a connection (as a reader waits for a server they
/// just started), up to ten seconds each.
pub fn wait_script(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|port| {
            format!(
                "i=0; until (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null || [ $i -ge {SERVER_WAIT_TENTHS} ]; do sleep 0.1; i=$((i+1)); done"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `needs=registry`: a docker-registry on 127.0.0.1:5000 unless one answers there.
pub fn registry_script(scratch: &Scratch) -> String {
    let dir = scratch.path("registry");
    let dir = scratch::quote(&dir.to_string_lossy());
    format!(
        r#"if ! (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
  mkdir -p {dir}/data
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:5000\n' {dir}/data > {dir}/config.yml
  docker-registry serve {dir}/config.yml > {dir}/log 2>&1 &
  echo started
fi
{}"#,
        wait_script(&[5000])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_started_in_the_background_is_waited_for() {
        assert!(starts_server("docker-registry serve c.yml >log 2>&1 &"));
        assert!(!starts_server("make && make install"));
        assert_eq!(
            ports("ferry tag 127.0.0.1:5000/a:1 127.0.0.1:5001/b:1 && curl localhost:5001/v2/"),
            [5000, 5001]
        );
    }
}
