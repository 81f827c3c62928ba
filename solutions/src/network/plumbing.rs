//! The wires: a network's bridge on the host, and a container's veth pair from
//! that bridge into its namespace.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use super::netlink::Netlink;
use super::{NetworkError, Subnet};

/// The name of the container's end of its veth pair.
pub const CONTAINER_END: &str = "eth0";

/// The MTU a link gets when the host has no default route to copy it from.
pub const DEFAULT_MTU: u32 = 1500;

/// The MTU of the host's default route's link (docker and podman copy it, so a
/// container's packets fit the host's path out), or 1500.
pub fn host_mtu(host: &mut Netlink) -> u32 {
    let link = host.default_route_link().ok().flatten();
    let links = host.links().unwrap_or_default();
    link.and_then(|index| links.iter().find(|l| l.index == index))
        .map(|l| l.mtu)
        .filter(|mtu| *mtu >= 576)
        .unwrap_or(DEFAULT_MTU)
}

/// Makes sure the bridge `name` exists, holds the gateway address of `subnet`
/// and is up; its link index.
pub fn ensure_bridge(
    host: &mut Netlink,
    name: &str,
    subnet: Subnet,
    mtu: u32,
) -> Result<u32, NetworkError> {
    let bridge = match host
        .link(name)
        .map_err(NetworkError::netlink("list the links"))?
    {
        Some(link) => link,
        None => {
            host.add_bridge(name, mtu)
                .map_err(NetworkError::netlink(format!("create the bridge {name}")))?;
            host.link(name)
                .map_err(NetworkError::netlink("list the links"))?
                .ok_or_else(|| {
                    NetworkError::Invalid(format!("the bridge {name} vanished as it was made"))
                })?
        }
    };
    let gateway = subnet.gateway();
    let addresses = host
        .addresses(bridge.index)
        .map_err(NetworkError::netlink(format!(
            "read the addresses of {name}"
        )))?;
    if !addresses.contains(&(gateway, subnet.prefix)) {
        host.add_address(bridge.index, gateway, subnet.prefix)
            .map_err(NetworkError::netlink(format!(
                "give {name} the address {gateway}/{}",
                subnet.prefix
            )))?;
    }
    host.set_up(bridge.index)
        .map_err(NetworkError::netlink(format!("bring {name} up")))?;
    // Published ports answer on the host's loopback too: DNAT from 127.0.0.1 to
    // the bridge is only routed where route_localnet allows it (firewall.rs).
    write_sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1")?;
    // ferry's networks are IPv4 only: without IPv6 on the bridge, a container's
    // router advertisement cannot give the host a route (CVE-2020-13401's class),
    // nor reach the host's services on [::] over a link-local address.
    write_sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "1")?;
    Ok(bridge.index)
}

/// Writes `value` to /proc/sys/`key` (a sysctl of this network namespace).
pub fn write_sysctl(key: &str, value: &str) -> Result<(), NetworkError> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(NetworkError::io(format!(
        "failed to write {value} to {path}"
    )))
}

/// Writes `value` to the sysctl `key` of the network namespace `netns`, from a
/// thread that joins it (a /proc/sys/net file is the opener's namespace's).
pub fn in_namespace(netns: &std::path::Path, key: &str, value: &str) -> Result<(), NetworkError> {
    let file = File::open(netns).map_err(NetworkError::io(format!(
        "failed to open {}",
        netns.display()
    )))?;
    let (key, value) = (key.to_string(), value.to_string());
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
            NetworkError::Io {
                what: "failed to join the container's network namespace (setns(2))".into(),
                source: errno.into(),
            }
        })?;
        write_sysctl(&key, &value)
    })
    .join()
    .map_err(|_| NetworkError::Invalid("the sysctl thread panicked".into()))?
}

/// One container's wires.
pub struct Wiring<'a> {
    /// The link index of the network's bridge.
    pub bridge: u32,
    /// The name of the host's end (`vethXXXXXXXXXXX`).
    pub host_end: &'a str,
    /// The container's network namespace.
    pub netns: &'a File,
    /// Its address in the network's subnet.
    pub address: Ipv4Addr,
    pub subnet: Subnet,
    pub mtu: u32,
}

/// Wires a container's namespace to its network's bridge: a veth pair with the
/// host's end a port of the bridge and the other end [`CONTAINER_END`] in the
/// container's namespace, with the container's address, up, `lo` up, and a
/// default route via the gateway (the bridge's address). `host` talks to the
/// host's namespace; [`Netlink::open_in`] gives a socket of the container's.
pub fn connect(host: &mut Netlink, wiring: &Wiring) -> Result<(), NetworkError> {
    // BEGIN SOLUTION ch10 "a veth pair from the bridge into the container's namespace, addressed and routed"
    let name = wiring.host_end;
    host.add_veth(name, CONTAINER_END, wiring.netns.as_fd(), wiring.mtu)
        .map_err(NetworkError::netlink(format!(
            "create the veth pair {name} / {CONTAINER_END}"
        )))?;
    let end = host
        .link(name)
        .map_err(NetworkError::netlink("list the links"))?
        .ok_or_else(|| NetworkError::Invalid(format!("the veth {name} vanished as it was made")))?;
    host.set_controller(end.index, wiring.bridge)
        .map_err(NetworkError::netlink(format!(
            "attach {name} to its bridge"
        )))?;
    host.set_up(end.index)
        .map_err(NetworkError::netlink(format!("bring {name} up")))?;
    let mut inside = Netlink::open_in(wiring.netns).map_err(NetworkError::netlink(
        "open a netlink socket in the container's namespace",
    ))?;
    for link in inside
        .links()
        .map_err(NetworkError::netlink("list the container's links"))?
    {
        match link.name.as_str() {
            CONTAINER_END => {
                inside
                    .add_address(link.index, wiring.address, wiring.subnet.prefix)
                    .map_err(NetworkError::netlink(format!(
                        "give {CONTAINER_END} the address {}",
                        wiring.address
                    )))?;
                inside
                    .set_up(link.index)
                    .map_err(NetworkError::netlink(format!("bring {CONTAINER_END} up")))?;
            }
            "lo" => inside
                .set_up(link.index)
                .map_err(NetworkError::netlink("bring lo up"))?,
            _ => {}
        }
    }
    inside
        .add_default_route(wiring.subnet.gateway())
        .map_err(NetworkError::netlink(format!(
            "add the default route via {}",
            wiring.subnet.gateway()
        )))
    // END SOLUTION
}

/// Removes the host's end `name` of a veth pair (its peer goes with it); a link
/// already gone is fine.
pub fn disconnect(host: &mut Netlink, name: &str) -> Result<(), NetworkError> {
    match host
        .link(name)
        .map_err(NetworkError::netlink("list the links"))?
    {
        Some(link) => host
            .delete_link(link.index)
            .map_err(NetworkError::netlink(format!("delete the veth {name}"))),
        None => Ok(()),
    }
}
