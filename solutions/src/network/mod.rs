//! Chapter 10 — networking: a network namespace per container, wired to the host.
//!
//! Chapter 2 gave every container a network namespace with only `lo`: private,
//! and useless for a server. This module connects it, the way docker's default
//! bridge and podman's netavark do:
//!
//! ```text
//!  container netns            host netns
//!  eth0 10.87.0.2/16 ──veth── vethXXXX ─┐
//!                                       ├─ ferry0 10.87.0.1/16 (a bridge) ── routing ── NAT ── eth0 of the host
//!  eth0 10.87.0.3/16 ──veth── vethYYYY ─┘
//! ```
//!
//! * a **bridge** per network (a virtual switch) holding the gateway address;
//! * a **veth pair** per container: one end a port of the bridge, the other
//!   created straight in the container's namespace as `eth0`, with an address
//!   from the network's allocator ([`ipam`]) and a default route via the bridge;
//! * **nftables** rules in ferry's own table ([`firewall`]): masquerade for what
//!   leaves the subnet, DNAT for published ports, isolation between networks;
//! * names: on a network the user made, each container's `/etc/hosts` lists the
//!   others (kept current as they come and go).
//!
//! The engine makes the namespace ([`netns`]) and wires it before the runtime
//! runs; the runtime joins it by path, as runc joins the one podman made. The
//! runtime knows nothing of bridges.

pub mod attach;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod plumbing;
pub mod store;

use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use attach::{attach, Attachment, Request};
pub use ipam::Subnet;
pub use store::{Network, Networks};

/// The network every container joins unless told otherwise.
pub const DEFAULT_NETWORK: &str = "bridge";

/// How a container is networked (`--network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Its own namespace with only `lo` (chapter 2's).
    None,
    /// The host's namespace: no isolation at all.
    Host,
    /// Its own namespace wired to the bridge network of that name.
    Bridge(String),
    /// The network namespace of another container (by name or id).
    Container(String),
}

impl Mode {
    /// docker's word for it (`HostConfig.NetworkMode`).
    pub fn name(&self) -> String {
        match self {
            Mode::None => "none".to_string(),
            Mode::Host => "host".to_string(),
            Mode::Bridge(network) => network.clone(),
            Mode::Container(other) => format!("container:{other}"),
        }
    }

    /// Whether the engine makes the namespace and hands it to the runtime by path
    /// (as opposed to the runtime making one, or none at all).
    pub fn namespace_by_path(&self) -> bool {
        matches!(self, Mode::Bridge(_) | Mode::Container(_))
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Mode, String> {
        Ok(match text {
            "none" => Mode::None,
            "host" => Mode::Host,
            "" => return Err(
                "an empty network name: use none, host, bridge, a network's name or container:NAME"
                    .to_string(),
            ),
            "default" => Mode::Bridge(DEFAULT_NETWORK.to_string()),
            _ => match text.strip_prefix("container:") {
                Some("") => {
                    return Err("container: needs the name or id of a running container".to_string())
                }
                Some(other) => Mode::Container(other.to_string()),
                None => Mode::Bridge(text.to_string()),
            },
        })
    }
}

/// The network a container gets when `--network` is not given.
pub fn default_mode() -> Mode {
    // BEGIN SOLUTION ch10 "containers join the default bridge network unless told otherwise"
    Mode::Bridge(DEFAULT_NETWORK.to_string())
    // BEGIN STUB
    // // Until chapter 10 is done a container keeps chapter 2's namespace with only lo.
    // Mode::None
    // END SOLUTION
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Protocol, String> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(format!("unknown protocol {other:?}: use tcp or udp")),
        }
    }
}

/// A port the user asked to publish (`-p`): `[IP:][HOSTPORT:]CTRPORT[/PROTO]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortRequest {
    /// The host address it listens on (all of them when none).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; none: a free one, picked when the container starts.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl FromStr for PortRequest {
    type Err = String;
    fn from_str(text: &str) -> Result<PortRequest, String> {
        let (ports, protocol) = match text.rsplit_once('/') {
            Some((ports, protocol)) => (ports, protocol.parse()?),
            None => (text, Protocol::Tcp),
        };
        let port = |word: &str| -> Result<u16, String> {
            if word.contains('-') {
                return Err(format!(
                    "port ranges ({word}) are not supported: publish each port with its own -p"
                ));
            }
            match word.parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("invalid port {word:?}: a number from 1 to 65535")),
                Ok(port) => Ok(port),
            }
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container) = match parts.as_slice() {
            [container] => (None, None, *container),
            [host, container] => (None, Some(*host), *container),
            [ip, host, container] => (Some(*ip), Some(*host), *container),
            _ => {
                return Err(format!(
                    "invalid port {text:?}: use [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]"
                ))
            }
        };
        let host_ip = match host_ip {
            None | Some("") => None,
            Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                format!("invalid host address {ip:?}: an IPv4 address such as 127.0.0.1 (IPv6 is not supported)")
            })?),
        };
        let host_port = match host_port {
            None | Some("") => None,
            Some(word) => Some(port(word)?),
        };
        Ok(PortRequest {
            host_ip,
            host_port,
            container_port: port(container)?,
            protocol,
        })
    }
}

/// A published port as it is: the host side the kernel gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl std::fmt::Display for PortBinding {
    /// docker's `ps` form: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.protocol
        )
    }
}

/// Everything networking can fail with; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {name} not found: list them with `{engine} network ls`, make one with `{engine} network create {name}`", engine = crate::ENGINE)]
    NotFound { name: String },
    #[error("network with name {name} already exists")]
    Exists { name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("Bind for {address}:{port} failed: port is already allocated; pick another host port, or -p {container_port} for a free one")]
    PortTaken {
        address: Ipv4Addr,
        port: u16,
        container_port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("network {network} has no free address left in {subnet}: remove containers or make a network with a larger --subnet")]
    Exhausted { network: String, subnet: Subnet },
    #[error("failed to {what} (netlink, see rtnetlink(7)); chapter 10 explains each step")]
    Netlink {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nft failed to load ferry's rules: {message}\nnftables is needed for NAT and published ports: apt-get install nftables (chapter 10, troubleshooting)")]
    Firewall { message: String },
    #[error("the host's container network (bridge ferry0, nft table ip ferry) is in use by another state root, {} ({engine}): its containers {containers} are on it", state_root.display())]
    HeldElsewhere {
        engine: String,
        state_root: std::path::PathBuf,
        containers: String,
    },
    #[error("error response from daemon: network {name} has active endpoints ({containers}): remove them first, or `{engine} rm -f` them", engine = crate::ENGINE)]
    InUse { name: String, containers: String },
}

impl NetworkError {
    /// A netlink step that failed.
    pub fn netlink(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
        let what = what.into();
        move |source| NetworkError::Netlink { what, source }
    }

    /// A file or system call that failed.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
        let what = what.into();
        move |source| NetworkError::Io { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_docker_writes_them() {
        assert_eq!("none".parse(), Ok(Mode::None));
        assert_eq!("host".parse(), Ok(Mode::Host));
        assert_eq!("bridge".parse(), Ok(Mode::Bridge("bridge".into())));
        assert_eq!("backend".parse(), Ok(Mode::Bridge("backend".into())));
        assert_eq!("container:db".parse(), Ok(Mode::Container("db".into())));
        assert!("container:".parse::<Mode>().is_err());
    }

    #[test]
    fn ports_read_as_docker_writes_them() {
        let p: PortRequest = "8080:80".parse().unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.protocol),
            (None, Some(8080), 80, Protocol::Tcp)
        );
        let p: PortRequest = "127.0.0.1:5353:53/udp".parse().unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.protocol),
            (Some(Ipv4Addr::LOCALHOST), Some(5353), Protocol::Udp)
        );
        let p: PortRequest = "80".parse().unwrap();
        assert_eq!(p.host_port, None);
        let p: PortRequest = "127.0.0.1::80".parse().unwrap();
        assert_eq!((p.host_ip, p.host_port), (Some(Ipv4Addr::LOCALHOST), None));
        for bad in [
            "0",
            "70000",
            "a:80",
            "80/sctp",
            "8000-8010:80",
            "1:2:3:4",
            "::1:80:80",
        ] {
            assert!(bad.parse::<PortRequest>().is_err(), "{bad} was accepted");
        }
    }
}
