//! The engine's files for a container's /etc: `hostname`, `hosts` and
//! `resolv.conf`, written in the container's directory and bind-mounted over the
//! image's (as dockerd does, and runc mounts them): the image's own files are
//! never written, and a container gets names that fit it rather than whatever the
//! image's author had on their laptop.
//!
//! * `/etc/hosts`: docker's lines for localhost and the IPv6 names, and one for
//!   the container's hostname. Docker maps the hostname to the container's
//!   address; until chapter 10 gives it one, ferry maps it to `127.0.1.1`
//!   (Debian's address for the machine's own name), so `hostname -i` and programs
//!   that look their own name up still find it. Chapter 10 passes the address.
//! * `/etc/resolv.conf`: the host's, as docker's legacy networking makes it. With
//!   a network namespace of its own the container cannot reach the host's
//!   loopback, so `nameserver 127.x.x.x` and `::1` lines are dropped, and when no
//!   nameserver is left it gets docker's defaults (Google's public DNS); `search`
//!   and `options` lines are kept. A host whose /etc/resolv.conf is only
//!   systemd-resolved's stub (`127.0.0.53`) has the real servers in
//!   `/run/systemd/resolve/resolv.conf`, which is read instead (as docker does).
//!   Without a network namespace (before chapter 2) the host's file is used as is.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::bundle::{Bundle, BundleError};

/// Where the host keeps its resolver configuration.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where systemd-resolved keeps the servers its stub at 127.0.0.53 forwards to.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// systemd-resolved's stub listener: reachable only from the host's loopback.
const SYSTEMD_STUB: &str = "127.0.0.53";

/// The most of the host's resolv.conf that is read (it is a few lines).
const RESOLV_CONF_CAP: u64 = 64 << 10;

/// Where the container's hostname points while it has no address of its own.
pub const OWN_NAME_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1));

/// Docker's /etc/hosts lines, before the container's own.
const HOSTS: &[(&str, &str)] = &[
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
];

/// Docker's nameservers when the host leaves none the container can reach.
const DEFAULT_NAMESERVERS: &[&str] = &[
    "8.8.8.8",
    "8.8.4.4",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
];

/// Where the container's hosts file appears (its hostname file:
/// `namespaces::HOSTNAME_FILE`).
pub const HOSTS_FILE: &str = "/etc/hosts";

/// Where the container's resolver configuration appears.
pub const RESOLV_CONF_FILE: &str = "/etc/resolv.conf";

/// The engine's files for one container, in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EtcError {
    #[error("failed to read the host's {path}")]
    ReadHost {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the host's {path} is not a regular file of at most {cap} bytes")]
    HostNotPlain { path: PathBuf, cap: u64 },
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// What the container's /etc/hosts says: docker's lines, then `address` (the
/// container's, from chapter 10; [`OWN_NAME_ADDRESS`] until then) for `hostname`.
pub fn hosts(hostname: &str, address: Option<IpAddr>) -> String {
    let mut text: String = HOSTS
        .iter()
        .map(|(address, names)| format!("{address}\t{names}\n"))
        .collect();
    let address = address.unwrap_or(OWN_NAME_ADDRESS);
    text.push_str(&format!("{address}\t{hostname}\n"));
    text
}

/// The container's own /etc/hosts (chapter 10): [`hosts`] for its address, then
/// the `--add-host` lines. A user-defined network adds the others' names after.
pub fn hosts_with(
    hostname: &str,
    address: Option<Ipv4Addr>,
    extra: &[(String, Ipv4Addr)],
) -> String {
    let mut text = hosts(hostname, address.map(IpAddr::V4));
    for (name, address) in extra {
        text.push_str(&format!("{address}\t{name}\n"));
    }
    text
}

/// /etc/resolv.conf with the nameservers `servers` (`--dns`) instead of the
/// host's; the host's `search` and `options` lines are kept.
pub fn resolv_conf_with(servers: &[IpAddr], host: &str) -> String {
    let mut text = format!("# written by {} for this container: --dns\n", crate::ENGINE);
    for line in host
        .lines()
        .filter(|l| l.starts_with("search") || l.starts_with("options"))
    {
        text.push_str(line);
        text.push('\n');
    }
    for server in servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    text
}

/// What the container's /etc/resolv.conf says, from the host's text `host` (read
/// from `from`, named in the first line). With `own_network` (a network namespace
/// of its own) loopback nameservers are dropped, and docker's defaults added when
/// none is left; every other line is kept as it is.
pub fn resolv_conf(from: &Path, host: &str, own_network: bool) -> String {
    let mut text = format!(
        "# written by {} for this container from the host's {}\n",
        crate::ENGINE,
        from.display()
    );
    let mut dropped = Vec::new();
    let mut kept = 0;
    for line in host.lines() {
        match nameserver(line) {
            Some(address) if own_network && address.is_loopback() => {
                dropped.push(address.to_string());
                continue;
            }
            Some(_) => kept += 1,
            None => {}
        }
        text.push_str(line);
        text.push('\n');
    }
    if !dropped.is_empty() {
        text.push_str(&format!(
            "# left out {}: the host's loopback, which the container's network namespace cannot reach\n",
            dropped.join(", ")
        ));
    }
    if own_network && kept == 0 {
        text.push_str("# no nameserver left: docker's defaults\n");
        for address in DEFAULT_NAMESERVERS {
            text.push_str(&format!("nameserver {address}\n"));
        }
    }
    text
}

/// The address of a `nameserver ADDRESS` line (an IPv6 zone such as `%eth0`
/// ignored), or `None` for any other line.
fn nameserver(line: &str) -> Option<IpAddr> {
    let mut words = line.split_whitespace();
    if words.next() != Some("nameserver") {
        return None;
    }
    let address = words.next()?;
    let address = address.split_once('%').map_or(address, |(ip, _zone)| ip);
    address.parse().ok()
}

/// Whether a resolv.conf names systemd-resolved's stub and nothing else.
fn only_systemd_stub(text: &str) -> bool {
    let servers: Vec<IpAddr> = text.lines().filter_map(nameserver).collect();
    servers.len() == 1 && servers[0].to_string() == SYSTEMD_STUB
}

/// The host's resolver configuration: which file, and its text. A missing file
/// reads as empty (the resolver's defaults, docker's for the container).
pub fn host_resolv_conf() -> Result<(PathBuf, String), EtcError> {
    let main = PathBuf::from(HOST_RESOLV_CONF);
    let text = read_host_file(&main)?.unwrap_or_default();
    if only_systemd_stub(&text) {
        let upstream = PathBuf::from(SYSTEMD_RESOLV_CONF);
        if let Some(upstream_text) = read_host_file(&upstream)? {
            return Ok((upstream, upstream_text));
        }
    }
    Ok((main, text))
}

/// Reads one of the host's configuration files: a regular file (a FIFO would block,
/// a device never end), opened non-blocking and read up to a cap. `Ok(None)` when
/// it does not exist.
fn read_host_file(path: &Path) -> Result<Option<String>, EtcError> {
    use crate::safe_path::HostFileError;
    match crate::safe_path::read_host_file(path, RESOLV_CONF_CAP) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(HostFileError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(HostFileError::Io(source)) => Err(EtcError::ReadHost {
            path: path.to_path_buf(),
            source,
        }),
        Err(
            HostFileError::NotRegular | HostFileError::TooLarge { .. } | HostFileError::Refused(_),
        ) => Err(EtcError::HostNotPlain {
            path: path.to_path_buf(),
            cap: RESOLV_CONF_CAP,
        }),
    }
}

/// Writes the container's three files into its directory.
/// What the container's /etc files are made from.
#[derive(Debug, Clone, Default)]
pub struct EtcRequest<'a> {
    pub hostname: &'a str,
    /// Its address, once it has one (chapter 10 rewrites hosts when it does).
    pub address: Option<Ipv4Addr>,
    /// Whether it has a network namespace of its own.
    pub own_network: bool,
    /// `--dns` servers, instead of the host's.
    pub dns: &'a [IpAddr],
    /// `--add-host` lines.
    pub extra_hosts: &'a [(String, Ipv4Addr)],
}

/// Writes the container's three files into its directory.
pub fn write(bundle: &Bundle, request: &EtcRequest) -> Result<EtcFiles, EtcError> {
    let (from, host) = host_resolv_conf()?;
    let resolv = if request.dns.is_empty() {
        resolv_conf(&from, &host, request.own_network)
    } else {
        resolv_conf_with(request.dns, &host)
    };
    let hostname = request.hostname;
    Ok(EtcFiles {
        hostname: bundle.write_file("hostname", &format!("{hostname}\n"))?,
        hosts: bundle.write_file(
            "hosts",
            &hosts_with(hostname, request.address, request.extra_hosts),
        )?,
        resolv_conf: bundle.write_file("resolv.conf", &resolv)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "/etc/resolv.conf";

    fn container(host: &str) -> String {
        resolv_conf(Path::new(FROM), host, true)
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn hosts_has_dockers_lines_and_the_hostname() {
        let text = hosts("web", None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[1], "::1\tlocalhost ip6-localhost ip6-loopback");
        assert!(lines.contains(&"ff02::2\tip6-allrouters"));
        assert_eq!(lines.last(), Some(&"127.0.1.1\tweb"));
        // Chapter 10's seam: the container's own address.
        let text = hosts("web", Some("172.18.0.2".parse().unwrap()));
        assert!(text.ends_with("172.18.0.2\tweb\n"), "{text}");
    }

    #[test]
    fn loopback_nameservers_are_dropped_and_the_rest_kept() {
        let host = "# from DHCP\nsearch corp.example lab.example\nnameserver 127.0.0.1\n\
                    nameserver 10.0.0.2\nnameserver ::1\nnameserver fe80::1%eth0\n\
                    options ndots:2 edns0\n";
        assert_eq!(
            lines(&container(host)),
            [
                "search corp.example lab.example",
                "nameserver 10.0.0.2",
                "nameserver fe80::1%eth0",
                "options ndots:2 edns0",
            ]
        );
        assert!(container(host).contains("# left out 127.0.0.1, ::1:"));
    }

    #[test]
    fn docker_defaults_when_no_nameserver_is_left() {
        let host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch home\n";
        assert_eq!(
            lines(&container(host)),
            [
                "options edns0 trust-ad",
                "search home",
                "nameserver 8.8.8.8",
                "nameserver 8.8.4.4",
                "nameserver 2001:4860:4860::8888",
                "nameserver 2001:4860:4860::8844",
            ]
        );
        // An empty (or missing) host file too.
        assert_eq!(lines(&container("")).len(), 4);
    }

    #[test]
    fn without_a_network_namespace_the_host_file_is_kept_as_is() {
        let host = "nameserver 127.0.0.53\nsearch home\n";
        let text = resolv_conf(Path::new(FROM), host, false);
        assert_eq!(lines(&text), ["nameserver 127.0.0.53", "search home"]);
    }

    #[test]
    fn only_the_systemd_stub_sends_us_to_resolveds_file() {
        assert!(only_systemd_stub(
            "# stub\nnameserver 127.0.0.53\noptions edns0\n"
        ));
        assert!(!only_systemd_stub(
            "nameserver 127.0.0.53\nnameserver 10.0.0.1\n"
        ));
        assert!(!only_systemd_stub("nameserver 127.0.0.1\n"));
        assert!(!only_systemd_stub(""));
    }

    #[test]
    fn a_nameserver_line_is_parsed_loosely_and_other_lines_are_not() {
        assert_eq!(
            nameserver("nameserver\t10.1.2.3 # x"),
            "10.1.2.3".parse().ok()
        );
        assert_eq!(nameserver("nameserver"), None);
        assert_eq!(nameserver("nameserver not-an-ip"), None);
        assert_eq!(nameserver("#nameserver 127.0.0.1"), None);
        assert_eq!(nameserver("search nameserver"), None);
    }
}
