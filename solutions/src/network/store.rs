//! The networks and who is on them, under the state root:
//!
//! ```text
//! ROOT/networks.lock            flock(2): one change of networks or leases at a time
//! ROOT/networks/NAME.json       a network: subnet, gateway, bridge
//! ROOT/networks/leases.json     who holds which address, and its published ports
//! ROOT/netns/ID                 a container's network namespace, pinned (netns.rs)
//! ```
//!
//! A lease names the process that holds it (the container's supervisor, checked
//! by its start time). A lease whose holder is gone — a supervisor killed with
//! SIGKILL — is stale: [`Networks::reconcile`] removes what it left (veth,
//! namespace file) and rewrites the rules from the leases that remain. Every
//! attach and detach reconciles, so the rules and /etc/hosts files are always
//! made from the truth.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::firewall::{self, NetworkRules};
use super::netlink::Netlink;
use super::{netns, plumbing, NetworkError, PortBinding, Subnet, DEFAULT_NETWORK};
use crate::safe_path::HostFileError;

/// The default network's subnet and bridge (docker's is 172.17.0.0/16 on
/// docker0, podman's 10.88.0.0/16 on podman0: ferry's stays clear of both).
pub const DEFAULT_SUBNET: &str = "10.87.0.0/16";
pub const DEFAULT_BRIDGE: &str = "ferry0";

/// Where the subnets of the networks users make come from: 10.86.N.0/24.
const POOL_FIRST: u8 = 10;
const POOL_SECOND: u8 = 86;

/// The most a leases file may hold (a lease is about 500 bytes).
const LEASES_CAP: u64 = 16 << 20;

/// Names that are modes, not networks.
const RESERVED: &[&str] = &["bridge", "host", "none", "default", "leases", "forwarding"];

/// A network, as `network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Its bridge on the host.
    pub bridge: String,
}

impl Network {
    /// Whether containers on it find each other by name (docker: only on
    /// networks users make, not on the default bridge).
    pub fn has_names(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// The process that holds a lease (the container's supervisor).
pub use crate::process::ProcessRef as Holder;

/// One container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Lease {
    pub network: String,
    pub address: Ipv4Addr,
    /// The container's id and name.
    pub container: String,
    pub name: String,
    /// More names it answers to on the network (`--network-alias`).
    pub aliases: Vec<String>,
    pub holder: Holder,
    /// The host's end of its veth pair.
    pub host_end: String,
    pub ports: Vec<PortBinding>,
    /// The container's /etc/hosts (in its directory) and its own lines; the
    /// names of the others on the network are added after them.
    pub hosts_file: PathBuf,
    pub hosts: String,
}

/// The lock that state roots share: the host has one bridge `ferry0` and one table
/// `ip ferry`, whichever root asks, so the look at who holds them
/// ([`Networks::held_elsewhere`]) and the change that follows are made under it.
/// A file only root can make (`/run` is root's), opened without following a
/// symlink and refused unless root owns it: nobody else can hold it.
pub const HOST_LOCK: &str = "/run/ferry-network.lock";

/// Both locks of a change of networks, released on drop.
pub struct NetworkLock {
    _root: Flock<File>,
    _host: Flock<File>,
}

/// flock(2) on `path` (made, mode 0600, when missing), exclusive, waiting.
fn lock_file(path: &Path) -> Result<Flock<File>, NetworkError> {
    use std::os::unix::fs::MetadataExt;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(NetworkError::io(format!(
            "failed to open {}",
            path.display()
        )))?;
    let metadata = file.metadata().map_err(NetworkError::io(format!(
        "failed to read {}",
        path.display()
    )))?;
    if !metadata.is_file() || metadata.uid() != nix::unistd::geteuid().as_raw() {
        return Err(NetworkError::Invalid(format!(
            "{} is not a file of this user's: another user could hold ferry's network lock through it; remove it (it is made again)",
            path.display()
        )));
    }
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| NetworkError::Io {
        what: format!("failed to lock {}", path.display()),
        source: errno.into(),
    })
}

/// The networks of one state root.
pub struct Networks {
    root: PathBuf,
}

impl Networks {
    pub fn new(state_root: &Path) -> Networks {
        Networks {
            root: state_root.to_path_buf(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("networks")
    }

    /// Where container `id`'s network namespace is pinned.
    pub fn netns_path(state_root: &Path, id: &str) -> PathBuf {
        state_root.join("netns").join(id)
    }

    /// Takes the lock every change holds: this root's, then the host's (see
    /// [`HOST_LOCK`]), always in that order.
    pub fn lock(&self) -> Result<NetworkLock, NetworkError> {
        std::fs::create_dir_all(self.dir())
            .and_then(|()| std::fs::create_dir_all(self.root.join("netns")))
            .map_err(NetworkError::io(format!(
                "failed to make {}",
                self.dir().display()
            )))?;
        let root = lock_file(&self.root.join("networks.lock"))?;
        let host = lock_file(Path::new(HOST_LOCK))?;
        Ok(NetworkLock {
            _root: root,
            _host: host,
        })
    }

    /// Every network, the default one first (made on first use).
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        let mut networks = vec![self.default_network()?];
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return Ok(networks);
        };
        let mut others: Vec<Network> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".json")?;
                self.read(name).ok().flatten()
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        networks.extend(others);
        Ok(networks)
    }

    /// The network called `name` (or whose id starts with it).
    pub fn get(&self, name: &str) -> Result<Network, NetworkError> {
        if name == DEFAULT_NETWORK {
            return self.default_network();
        }
        if valid_name(name) {
            if let Some(network) = self.read(name)? {
                return Ok(network);
            }
        }
        let by_id: Vec<Network> = self
            .list()?
            .into_iter()
            .filter(|n| name.len() >= 3 && n.id.starts_with(name))
            .collect();
        match by_id.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(NetworkError::NotFound {
                name: name.to_string(),
            }),
        }
    }

    fn read(&self, name: &str) -> Result<Option<Network>, NetworkError> {
        let path = self.dir().join(format!("{name}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                NetworkError::Invalid(format!("{} cannot be read: {error}", path.display()))
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(NetworkError::io(format!(
                "failed to read {}",
                path.display()
            ))(error)),
        }
    }

    fn default_network(&self) -> Result<Network, NetworkError> {
        let subnet: Subnet = DEFAULT_SUBNET.parse().map_err(NetworkError::Invalid)?;
        Ok(Network {
            name: DEFAULT_NETWORK.to_string(),
            id: fixed_id(DEFAULT_NETWORK),
            created: "0001-01-01T00:00:00Z".to_string(),
            driver: "bridge".to_string(),
            subnet,
            gateway: subnet.gateway(),
            bridge: DEFAULT_BRIDGE.to_string(),
        })
    }

    /// Makes network `name` (`network create`), with `subnet` or the first free
    /// /24 of 10.86.0.0/16 that no other network and no route of the host uses.
    pub fn create(&self, name: &str, subnet: Option<Subnet>) -> Result<Network, NetworkError> {
        if RESERVED.contains(&name) {
            return Err(NetworkError::Invalid(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        if !valid_name(name) {
            return Err(NetworkError::Invalid(format!(
                "invalid network name {name:?}: letters, digits, '_', '.' and '-', starting with a letter or digit"
            )));
        }
        let _lock = self.lock()?;
        if self.read(name)?.is_some() {
            return Err(NetworkError::Exists {
                name: name.to_string(),
            });
        }
        let used: Vec<Subnet> = self.list()?.iter().map(|n| n.subnet).collect();
        let routed: Vec<Subnet> = Netlink::open()
            .and_then(|mut host| host.routed_subnets())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(network, prefix)| format!("{network}/{prefix}").parse().ok())
            .collect();
        let subnet = match subnet {
            Some(subnet) => {
                if let Some(route) = routed.iter().find(|r| r.overlaps(subnet)) {
                    return Err(NetworkError::Invalid(format!(
                        "invalid pool request: subnet {subnet} overlaps with {route}, a network this host already routes (see `ip route`): pick another --subnet"
                    )));
                }
                if let Some(other) = self.list()?.iter().find(|n| n.subnet.overlaps(subnet)) {
                    return Err(NetworkError::Invalid(format!(
                        "invalid pool request: subnet {subnet} overlaps with network {} ({}): pick another --subnet",
                        other.name, other.subnet
                    )));
                }
                subnet
            }
            None => (1..=255u8)
                .map(|third| Subnet {
                    network: Ipv4Addr::new(POOL_FIRST, POOL_SECOND, third, 0),
                    prefix: 24,
                })
                .find(|candidate| {
                    !used.iter().chain(&routed).any(|u| u.overlaps(*candidate))
                })
                .ok_or_else(|| {
                    NetworkError::Invalid(
                        "no free subnet left in 10.86.0.0/16: give one with --subnet, or prune networks".to_string(),
                    )
                })?,
        };
        let id = crate::id::ContainerId::generate()
            .map_err(NetworkError::io("failed to make a network id"))?;
        let network = Network {
            name: name.to_string(),
            id: id.as_str().to_string(),
            created: crate::clock::rfc3339_nanos(std::time::SystemTime::now()),
            driver: "bridge".to_string(),
            subnet,
            gateway: subnet.gateway(),
            bridge: format!("ferry-{}", &id.as_str()[..9]),
        };
        self.write_atomically(
            &self.dir().join(format!("{name}.json")),
            &serde_json::to_vec_pretty(&network).unwrap_or_default(),
        )?;
        Ok(network)
    }

    /// Removes network `name`: refused for the default one and while
    /// containers are on it; its bridge goes with it.
    pub fn remove(&self, name: &str) -> Result<Network, NetworkError> {
        let _lock = self.lock()?;
        let network = self.get(name)?;
        if network.name == DEFAULT_NETWORK {
            return Err(NetworkError::Invalid(
                "bridge is a pre-defined network and cannot be removed".to_string(),
            ));
        }
        let leases = self.live_leases()?;
        let on_it: Vec<&str> = leases
            .iter()
            .filter(|l| l.network == network.name)
            .map(|l| l.name.as_str())
            .collect();
        if !on_it.is_empty() {
            return Err(NetworkError::InUse {
                name: network.name,
                containers: on_it.join(", "),
            });
        }
        if let Ok(mut host) = Netlink::open() {
            plumbing::disconnect(&mut host, &network.bridge)?;
        }
        let path = self.dir().join(format!("{}.json", network.name));
        std::fs::remove_file(&path).map_err(NetworkError::io(format!(
            "failed to remove {}",
            path.display()
        )))?;
        self.reconcile_locked(leases)?;
        Ok(network)
    }

    /// Removes every network users made that no container is on; their names.
    pub fn prune(&self) -> Result<Vec<String>, NetworkError> {
        let mut removed = Vec::new();
        for network in self.list()? {
            if network.name == DEFAULT_NETWORK {
                continue;
            }
            match self.remove(&network.name) {
                Ok(network) => removed.push(network.name),
                Err(NetworkError::InUse { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(removed)
    }

    /// Every lease on record, stale ones included.
    pub fn leases(&self) -> Result<Vec<Lease>, NetworkError> {
        self.read_leases(|_| Ok(()))
    }

    /// The leases file, read as warily as a file of the host's (`held_elsewhere`
    /// reads another state root's, named by the kernel's table), `check`ed first.
    fn read_leases(
        &self,
        check: impl FnOnce(&std::fs::Metadata) -> Result<(), HostFileError>,
    ) -> Result<Vec<Lease>, NetworkError> {
        let path = self.dir().join("leases.json");
        match crate::safe_path::read_host_file_checked(&path, LEASES_CAP, check) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                NetworkError::Invalid(format!("{} cannot be read: {error}", path.display()))
            }),
            Err(HostFileError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(Vec::new())
            }
            Err(HostFileError::Io(error)) => Err(NetworkError::io(format!(
                "failed to read {}",
                path.display()
            ))(error)),
            Err(refused) => Err(NetworkError::Invalid(format!(
                "{} cannot be read: {refused}",
                path.display()
            ))),
        }
    }

    /// The leases whose holders still run, stale ones cleaned up and dropped.
    /// Call with the lock held.
    pub fn live_leases(&self) -> Result<Vec<Lease>, NetworkError> {
        let (live, stale): (Vec<Lease>, Vec<Lease>) =
            self.leases()?.into_iter().partition(|l| l.holder.runs());
        if !stale.is_empty() {
            let mut host =
                Netlink::open().map_err(NetworkError::netlink("open a netlink socket"))?;
            for lease in &stale {
                log::debug!(
                    "cleaning the stale lease of {} on {}",
                    lease.container,
                    lease.network
                );
                let _ = plumbing::disconnect(&mut host, &lease.host_end);
                netns::remove(&Self::netns_path(&self.root, &lease.container));
            }
            self.save_leases(&live)?;
        }
        Ok(live)
    }

    /// Writes the leases. Call with the lock held.
    pub fn save_leases(&self, leases: &[Lease]) -> Result<(), NetworkError> {
        self.write_atomically(
            &self.dir().join("leases.json"),
            &serde_json::to_vec_pretty(leases).unwrap_or_default(),
        )
    }

    /// The addresses of `network` that are held.
    pub fn taken(leases: &[Lease], network: &Network) -> BTreeSet<Ipv4Addr> {
        leases
            .iter()
            .filter(|l| l.network == network.name)
            .map(|l| l.address)
            .collect()
    }

    /// Container `id` is now called `name`: its lease says so, and the others'
    /// /etc/hosts files are rewritten.
    pub fn rename(&self, id: &str, name: &str) -> Result<(), NetworkError> {
        let _lock = self.lock()?;
        let mut leases = self.live_leases()?;
        if !leases.iter().any(|l| l.container == id) {
            return Ok(());
        }
        for lease in leases.iter_mut().filter(|l| l.container == id) {
            lease.name = name.to_string();
        }
        self.save_leases(&leases)?;
        self.reconcile_locked(leases)
    }

    /// Cleans up after holders that are gone and rewrites the rules and the
    /// /etc/hosts files from the leases that remain (takes the lock).
    pub fn reconcile(&self) -> Result<(), NetworkError> {
        let _lock = self.lock()?;
        let leases = self.live_leases()?;
        self.reconcile_locked(leases)
    }

    /// [`Networks::reconcile`] with the lock held and the live leases read.
    pub fn reconcile_locked(&self, leases: Vec<Lease>) -> Result<(), NetworkError> {
        let networks = self.list()?;
        // The networks whose bridge exists here (one look at the links).
        let links: Vec<String> = Netlink::open()
            .and_then(|mut host| host.links())
            .unwrap_or_default()
            .into_iter()
            .map(|link| link.name)
            .collect();
        let rules: Vec<NetworkRules> = networks
            .iter()
            .filter(|network| links.contains(&network.bridge))
            .map(|network| NetworkRules {
                bridge: network.bridge.clone(),
                subnet: network.subnet,
                ports: leases
                    .iter()
                    .filter(|l| l.network == network.name)
                    .flat_map(|l| l.ports.iter().map(|p| (l.address, *p)))
                    .collect(),
            })
            .collect();
        let now = firewall::current();
        match self.held_elsewhere(&now) {
            // Another state root's rules: not this one's to replace or remove.
            Some((owner, _)) => log::debug!(
                "table ip {} holds the rules of {}: left alone",
                firewall::TABLE,
                owner.state_root.display()
            ),
            None => firewall::apply(
                &rules,
                self.forwarding_was_off(),
                &self.dir().join("applied.nft"),
                &self.owner(),
                &now,
            )?,
        }
        for lease in &leases {
            let Some(network) = networks.iter().find(|n| n.name == lease.network) else {
                continue;
            };
            let mut text = lease.hosts.clone();
            if network.has_names() {
                for peer in leases
                    .iter()
                    .filter(|p| p.network == lease.network && p.container != lease.container)
                {
                    text.push_str(&format!("{}\t{}\n", peer.address, peer_names(peer)));
                }
            }
            rewrite_in_place(&lease.hosts_file, &text);
        }
        Ok(())
    }

    /// This state root as the owner of the host's table.
    fn owner(&self) -> firewall::Owner {
        firewall::Owner {
            engine: crate::ENGINE.to_string(),
            state_root: std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone()),
        }
    }

    /// Another state root whose containers are on the host's network now, and
    /// their names: the owner `ruleset`'s table names, when that is not this
    /// root and a holder of one of its leases still runs. (A root whose holders
    /// are all gone, or that is gone itself, holds nothing: its rules are taken
    /// over.)
    pub fn held_elsewhere(&self, ruleset: &str) -> Option<(firewall::Owner, Vec<String>)> {
        let owner = firewall::Owner::of(ruleset)?;
        if owner.state_root == self.owner().state_root {
            return None;
        }
        // Only a leases file this user (root) keeps counts: a root under /tmp that
        // was removed could be made again by anybody, with leases of their own.
        let kept_by_us = |metadata: &std::fs::Metadata| {
            use std::os::unix::fs::MetadataExt;
            let ours = metadata.uid() == nix::unistd::geteuid().as_raw();
            match ours && metadata.mode() & 0o022 == 0 {
                true => Ok(()),
                false => Err(HostFileError::Refused(
                    "it is not a file of this user's that only they can write".into(),
                )),
            }
        };
        let leases = match Networks::new(&owner.state_root).read_leases(kept_by_us) {
            Ok(leases) => leases,
            Err(error) => {
                log::warn!(
                    "table ip {} names the state root {}, whose leases do not count: {error}",
                    firewall::TABLE,
                    owner.state_root.display()
                );
                Vec::new()
            }
        };
        let names: Vec<String> = leases
            .into_iter()
            .filter(|lease| lease.holder.runs())
            .map(|lease| lease.name)
            .collect();
        (!names.is_empty()).then_some((owner, names))
    }

    /// Refuses to put a container on a network while another state root's
    /// containers are on the host's (they share bridge ferry0 and table `ip
    /// ferry`: this root's addresses and rules would collide with theirs).
    pub fn refuse_if_held_elsewhere(&self) -> Result<(), NetworkError> {
        match self.held_elsewhere(&firewall::current()) {
            None => Ok(()),
            Some((owner, names)) => Err(NetworkError::HeldElsewhere {
                engine: owner.engine,
                state_root: owner.state_root,
                containers: names.join(" "),
            }),
        }
    }

    /// Whether IP forwarding was off before ferry first turned it on (kept in
    /// ROOT/networks/forwarding, written the first time): then ferry drops the
    /// forwarded traffic that is not its containers'.
    fn forwarding_was_off(&self) -> bool {
        let path = self.dir().join("forwarding");
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim() == "off",
            Err(_) => {
                let off = firewall::forwarding_is_off();
                let _ = self.write_atomically(&path, if off { b"off\n" } else { b"on\n" });
                off
            }
        }
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), NetworkError> {
        let temporary = path.with_extension("tmp");
        let written = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| std::fs::rename(&temporary, path));
        written.map_err(NetworkError::io(format!(
            "failed to write {}",
            path.display()
        )))
    }
}

/// The names a container answers to on its network: its name, its aliases and
/// its short id (as docker's DNS does).
pub fn peer_names(lease: &Lease) -> String {
    let mut names = vec![lease.name.clone()];
    names.extend(lease.aliases.iter().cloned());
    names.push(lease.container[..12.min(lease.container.len())].to_string());
    names.join(" ")
}

/// Replaces the text of `path` keeping its inode: it is bind-mounted into the
/// container, and a rename would leave the container the old file.
fn rewrite_in_place(path: &Path, text: &str) {
    let file = File::options()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    if let Ok(mut file) = file {
        let _ = file.write_all(text.as_bytes());
    }
}

/// The id of a network ferry did not make with `network create` (the default
/// bridge, and the host and none modes `network ls` lists): the same on every
/// host, hex as any other id.
pub fn fixed_id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("ferry network {name}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// docker's rule for network names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64
}
