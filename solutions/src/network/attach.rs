//! A container joining its network before it runs, and leaving it after: the
//! steps in order, under the networks' lock, each undone if a later one fails.
//!
//! 1. the host ports are bound (held by this process while the container runs,
//!    so a port already taken is an error before anything is made);
//! 2. an address is leased ([`ipam::next_free`]);
//! 3. the namespace is made and pinned on ROOT/netns/ID ([`netns`]);
//! 4. the bridge is made if needed and the veth pair wired ([`plumbing`]);
//! 5. the lease is written and the rules and hosts files rewritten
//!    ([`Networks::reconcile_locked`]).

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use super::netlink::Netlink;
use super::store::{Holder, Lease, Networks};
use super::{
    ipam, netns, plumbing, Mode, NetworkError, PortBinding, PortRequest, Protocol, Subnet,
};

/// Makes a container's own /etc/hosts from its hostname, address and
/// `--add-host` lines (the engine's `etc_files::hosts_with`).
pub type HostsText = fn(&str, Option<Ipv4Addr>, &[(String, Ipv4Addr)]) -> String;

/// What a container asks of its network.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub name: String,
    pub mode: Mode,
    pub ports: Vec<PortRequest>,
    pub aliases: Vec<String>,
    /// The container's /etc/hosts, in its directory.
    pub hosts_file: PathBuf,
    /// Its own lines of /etc/hosts, given its address.
    pub hosts: HostsText,
    pub hostname: String,
    pub extra_hosts: Vec<(String, Ipv4Addr)>,
    /// For `container:NAME`: that container's /proc/PID/ns/net.
    pub share_from: Option<PathBuf>,
}

/// A container on its network, until [`Attachment::detach`] (or drop).
#[derive(Debug)]
pub struct Attachment {
    state_root: PathBuf,
    id: String,
    /// The network it is on, for a bridge network.
    pub network: Option<super::Network>,
    pub address: Option<Ipv4Addr>,
    pub ports: Vec<PortBinding>,
    host_end: Option<String>,
    netns: Option<PathBuf>,
    /// The bound host ports, held while the container runs.
    _reserved: Vec<Reserved>,
    detached: bool,
}

/// A bound host port.
#[derive(Debug)]
enum Reserved {
    Tcp(#[allow(dead_code)] TcpListener),
    Udp(#[allow(dead_code)] UdpSocket),
}

/// The host's end of container `id`'s veth pair: `veth` and 11 digits of its id
/// (a link name has at most 15 bytes).
pub fn host_end(id: &str) -> String {
    format!("veth{}", &id[..11.min(id.len())])
}

/// Joins container `request.id` to its network (see the module's steps).
pub fn attach(state_root: &Path, request: &Request) -> Result<Attachment, NetworkError> {
    let mut attachment = Attachment {
        state_root: state_root.to_path_buf(),
        id: request.id.clone(),
        network: None,
        address: None,
        ports: Vec::new(),
        host_end: None,
        netns: None,
        _reserved: Vec::new(),
        detached: false,
    };
    let path = Networks::netns_path(state_root, &request.id);
    let network_name = match &request.mode {
        // Their /etc/hosts is the one `prepare` wrote: no address to add.
        Mode::None | Mode::Host => return Ok(attachment),
        Mode::Container(_) => {
            let from = request.share_from.as_ref().ok_or_else(|| {
                NetworkError::Invalid("container: needs a running container".to_string())
            })?;
            let networks = Networks::new(state_root);
            let _lock = networks.lock()?;
            netns::remove(&path); // a leftover of a killed run
            netns::share(from, &path)?;
            attachment.netns = Some(path);
            return Ok(attachment);
        }
        Mode::Bridge(name) => name,
    };
    let networks = Networks::new(state_root);
    let _lock = networks.lock()?;
    // Under the lock: a `network rm` cannot slip in between.
    let network = networks.get(network_name)?;
    networks.refuse_if_held_elsewhere()?;
    let mut leases = networks.live_leases()?;
    leases.retain(|lease| lease.container != request.id);
    // 1. the host ports
    for port in &request.ports {
        let (reserved, binding) = reserve(port)?;
        attachment._reserved.push(reserved);
        attachment.ports.push(binding);
    }
    // 2. the address
    let address = ipam::next_free(network.subnet, &Networks::taken(&leases, &network)).ok_or(
        NetworkError::Exhausted {
            network: network.name.clone(),
            subnet: network.subnet,
        },
    )?;
    // 3. the namespace
    netns::remove(&path); // a leftover of a killed run
    netns::create(&path)?;
    attachment.netns = Some(path.clone());
    // IPv6 stays off on eth0 (ferry's table is IPv4): no address, and no router
    // advertisement from the container is heard (see plumbing::ensure_bridge).
    plumbing::in_namespace(&path, "net/ipv6/conf/default/disable_ipv6", "1")?;
    // 4. the wires
    let mut host = Netlink::open().map_err(NetworkError::netlink("open a netlink socket"))?;
    let mtu = plumbing::host_mtu(&mut host);
    let bridge = plumbing::ensure_bridge(&mut host, &network.bridge, network.subnet, mtu)?;
    let name = host_end(&request.id);
    let _ = plumbing::disconnect(&mut host, &name); // a leftover of a killed run
    let netns_file = File::open(&path).map_err(NetworkError::io(format!(
        "failed to open {}",
        path.display()
    )))?;
    attachment.host_end = Some(name.clone());
    plumbing::connect(
        &mut host,
        &plumbing::Wiring {
            bridge,
            host_end: &name,
            netns: &netns_file,
            address,
            subnet: network.subnet,
            mtu,
        },
    )?;
    // 5. the lease, the rules, the names
    let hosts = (request.hosts)(&request.hostname, Some(address), &request.extra_hosts);
    leases.push(Lease {
        network: network.name.clone(),
        address,
        container: request.id.clone(),
        name: request.name.clone(),
        aliases: request.aliases.clone(),
        holder: Holder::me(),
        host_end: name,
        ports: attachment.ports.clone(),
        hosts_file: request.hosts_file.clone(),
        hosts,
    });
    networks.save_leases(&leases)?;
    attachment.address = Some(address);
    attachment.network = Some(network);
    networks.reconcile_locked(leases)?;
    Ok(attachment)
}

/// Binds the host side of `port` (a free port when none is asked for).
fn reserve(port: &PortRequest) -> Result<(Reserved, PortBinding), NetworkError> {
    let ip = port.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let wanted = port.host_port.unwrap_or(0);
    let taken = |source| NetworkError::PortTaken {
        address: ip,
        port: wanted,
        container_port: port.container_port,
        source,
    };
    let (reserved, bound) = match port.protocol {
        Protocol::Tcp => {
            let socket = TcpListener::bind((ip, wanted)).map_err(taken)?;
            let bound = socket.local_addr().map_err(taken)?.port();
            (Reserved::Tcp(socket), bound)
        }
        Protocol::Udp => {
            let socket = UdpSocket::bind((ip, wanted)).map_err(taken)?;
            let bound = socket.local_addr().map_err(taken)?.port();
            (Reserved::Udp(socket), bound)
        }
    };
    Ok((
        reserved,
        PortBinding {
            host_ip: ip,
            host_port: bound,
            container_port: port.container_port,
            protocol: port.protocol,
        },
    ))
}

impl Attachment {
    /// The subnet's prefix and gateway, for inspect.
    pub fn subnet(&self) -> Option<Subnet> {
        self.network.as_ref().map(|n| n.subnet)
    }

    /// Leaves the network: the lease, the veth pair, the namespace file and the
    /// rules go; the host ports are freed.
    pub fn detach(mut self) -> Result<(), NetworkError> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), NetworkError> {
        if self.detached {
            return Ok(());
        }
        self.detached = true;
        let networks = Networks::new(&self.state_root);
        let _lock = networks.lock()?;
        let mut result = Ok(());
        if let Some(name) = &self.host_end {
            if let Ok(mut host) = Netlink::open() {
                result = plumbing::disconnect(&mut host, name);
            }
        }
        if let Some(path) = &self.netns {
            netns::remove(path);
        }
        if self.network.is_some() || self.host_end.is_some() {
            let mut leases = networks.live_leases()?;
            leases.retain(|lease| lease.container != self.id);
            networks.save_leases(&leases)?;
            // Unwinding from a panic (a stub's todo!()): the rules are left to the
            // next change, as a second panic here would abort without a message.
            if !std::thread::panicking() {
                networks.reconcile_locked(leases)?;
            }
        }
        result
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Err(error) = self.undo() {
            log::warn!("failed to leave the network of {}: {error}", self.id);
        }
    }
}
