//! Links, addresses and routes through rtnetlink(7), the kernel's own interface
//! for them: what `ip link`, `ip addr` and `ip route` send. Messages are built
//! and parsed by netlink-packet-route and sent on a netlink-sys socket, one
//! request at a time, each acknowledged (see ARCHITECTURE.md for why these crates
//! and why synchronously).
//!
//! A netlink socket talks to the network namespace it was created in. To change
//! a container's links, [`Netlink::open_in`] creates the socket in a thread that
//! has joined the container's namespace: the socket stays there, the process does
//! not move.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A netlink socket of one network namespace.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

/// A link: its index and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Its kind (`veth`, `bridge`, ...), when it has one.
    pub kind: Option<String>,
    /// The bridge it is a port of.
    pub controller: Option<u32>,
    pub mtu: u32,
}

impl Netlink {
    /// A socket of this process's network namespace.
    pub fn open() -> std::io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// A socket of the network namespace `netns` (a /proc/PID/ns/net or a
    /// bind-mounted namespace file), made by a thread that joins it (setns(2)).
    pub fn open_in(netns: &File) -> std::io::Result<Netlink> {
        let fd = netns.try_clone()?;
        std::thread::spawn(move || {
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            Netlink::open()
        })
        .join()
        .map_err(|_| std::io::Error::other("the netlink thread panicked"))?
    }

    /// Sends `message` and waits for its acknowledgement; with `dump`, collects
    /// the answers until the kernel says it is done.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> std::io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        let mut answers = Vec::new();
        loop {
            let (received, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < received.len() {
                let answer =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&received[offset..])
                        .map_err(|error| std::io::Error::other(format!("netlink: {error}")))?;
                let length = answer.header.length as usize;
                if length == 0 {
                    return Err(std::io::Error::other("netlink: an empty answer"));
                }
                offset += length;
                if answer.header.sequence_number != self.sequence {
                    continue;
                }
                match answer.payload {
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(answers),
                            Some(_) => Err(error.to_io()),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(inner) => {
                        answers.push(inner);
                        if flags & NLM_F_DUMP != NLM_F_DUMP {
                            // A single answer to a get comes before its ack.
                            continue;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> std::io::Result<Vec<Link>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => Some(link_of(&link)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> std::io::Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|link| link.name == name))
    }

    /// Makes a bridge called `name` (`ip link add NAME type bridge`).
    pub fn add_bridge(&mut self, name: &str, mtu: u32) -> std::io::Result<()> {
        let mut link = LinkMessage::default();
        link.attributes
            .push(LinkAttribute::IfName(name.to_string()));
        link.attributes.push(LinkAttribute::Mtu(mtu));
        link.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(link),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Makes a veth pair: `name` here, `peer` created straight in the network
    /// namespace `peer_netns` (`ip link add NAME type veth peer name PEER netns NS`).
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        mtu: u32,
    ) -> std::io::Result<()> {
        let mut peer_link = LinkMessage::default();
        peer_link
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_link.attributes.push(LinkAttribute::Mtu(mtu));
        peer_link
            .attributes
            .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        let mut link = LinkMessage::default();
        link.attributes
            .push(LinkAttribute::IfName(name.to_string()));
        link.attributes.push(LinkAttribute::Mtu(mtu));
        link.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(link),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Makes link `index` a port of the bridge `bridge` (`ip link set master`).
    pub fn set_controller(&mut self, index: u32, bridge: u32) -> std::io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes.push(LinkAttribute::Controller(bridge));
        self.request(RouteNetlinkMessage::SetLink(link), NLM_F_ACK)
            .map(drop)
    }

    /// Brings link `index` up (`ip link set up`).
    pub fn set_up(&mut self, index: u32) -> std::io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(link), NLM_F_ACK)
            .map(drop)
    }

    /// Removes link `index` (`ip link del`); a veth's peer goes with it.
    pub fn delete_link(&mut self, index: u32) -> std::io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(link), NLM_F_ACK)
            .map(drop)
    }

    /// Gives link `index` the address `address/prefix` (`ip addr add`).
    pub fn add_address(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
    ) -> std::io::Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message
            .attributes
            .push(AddressAttribute::Local(address.into()));
        message
            .attributes
            .push(AddressAttribute::Address(address.into()));
        let broadcast = u32::from(address) | (u32::MAX.checked_shr(prefix as u32).unwrap_or(0));
        message
            .attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
        self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The IPv4 addresses of link `index`, as (address, prefix).
    pub fn addresses(&mut self, index: u32) -> std::io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut query = AddressMessage::default();
        query.header.family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetAddress(query), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewAddress(message) if message.header.index == index => {
                    message.attributes.iter().find_map(|a| match a {
                        AddressAttribute::Local(std::net::IpAddr::V4(address)) => {
                            Some((*address, message.header.prefix_len))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds the default route through `gateway` (`ip route add default via GW`).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> std::io::Result<()> {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet;
        route.header.table = RouteHeader::RT_TABLE_MAIN;
        route.header.protocol = RouteProtocol::Boot;
        route.header.scope = RouteScope::Universe;
        route.header.kind = RouteType::Unicast;
        route
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(route),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The link of the default IPv4 route, if there is one.
    pub fn default_route_link(&mut self) -> std::io::Result<Option<u32>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetRoute(query), NLM_F_DUMP)?;
        Ok(answers.into_iter().find_map(|answer| match answer {
            RouteNetlinkMessage::NewRoute(route)
                if route.header.destination_prefix_length == 0
                    && route.header.table == RouteHeader::RT_TABLE_MAIN =>
            {
                route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(index) => Some(*index),
                    _ => None,
                })
            }
            _ => None,
        }))
    }

    /// The IPv4 destinations of the namespace's routes, as (network, prefix):
    /// a new subnet must not overlap any of them.
    pub fn routed_subnets(&mut self) -> std::io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetRoute(query), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewRoute(route)
                    if route.header.table == RouteHeader::RT_TABLE_MAIN
                        && route.header.destination_prefix_length > 0 =>
                {
                    route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(network)) => {
                            Some((*network, route.header.destination_prefix_length))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }
}

fn link_of(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        controller: None,
        mtu: 0,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Controller(index) => link.controller = Some(*index),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}
