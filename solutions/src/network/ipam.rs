//! Address management (IPAM): which address of a network's subnet a container
//! gets. The store keeps the leases (who holds which address) under its lock;
//! this is the arithmetic.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet: `10.87.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The mask of the prefix: /16 → 255.255.0.0.
    pub fn mask(self) -> u32 {
        u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0)
    }

    /// The subnet's first address (the network itself, never handed out).
    pub fn first(self) -> u32 {
        u32::from(self.network) & self.mask()
    }

    /// The subnet's last address (the broadcast, never handed out).
    pub fn last(self) -> u32 {
        self.first() | !self.mask()
    }

    /// The gateway: the first usable address, held by the bridge (as docker does).
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// Whether `address` is in the subnet.
    pub fn contains(self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == self.first()
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(self, other: Subnet) -> bool {
        self.contains(Ipv4Addr::from(other.first())) || other.contains(Ipv4Addr::from(self.first()))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(text: &str) -> Result<Subnet, String> {
        let invalid = || {
            format!("invalid subnet {text:?}: an IPv4 network in CIDR form, such as 10.90.0.0/24")
        };
        let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let network: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("invalid subnet {text:?}: the prefix must be from /8 to /30, to leave room for a gateway and containers"));
        }
        let subnet = Subnet { network, prefix };
        let special: [(&str, [u8; 4], u8); 5] = [
            ("this network", [0, 0, 0, 0], 8),
            ("loopback", [127, 0, 0, 0], 8),
            ("link-local", [169, 254, 0, 0], 16),
            ("multicast", [224, 0, 0, 0], 4),
            ("reserved", [240, 0, 0, 0], 4),
        ];
        for (what, range, bits) in special {
            let range = Subnet {
                network: Ipv4Addr::from(range),
                prefix: bits,
            };
            if range.overlaps(subnet) {
                return Err(format!("invalid subnet {text:?}: it overlaps {range}, the {what} range; use a private range such as 10.90.0.0/24"));
            }
        }
        if u32::from(network) != subnet.first() {
            return Err(format!(
                "invalid subnet {text:?}: it has host bits set; did you mean {}/{prefix}?",
                Ipv4Addr::from(subnet.first())
            ));
        }
        Ok(subnet)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Subnet, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The lowest address of `subnet` that is not `taken`, leaving out the network
/// address, the gateway and the broadcast address; `None` when all are taken.
pub fn next_free(subnet: Subnet, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    // BEGIN SOLUTION ch10 "hand out the lowest free address of the subnet"
    let gateway = u32::from(subnet.gateway());
    (subnet.first() + 1..subnet.last())
        .filter(|&candidate| candidate != gateway)
        .map(Ipv4Addr::from)
        .find(|candidate| !taken.contains(candidate))
    // END SOLUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn subnets_read_and_check() {
        let s = subnet("10.87.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 87, 0, 1));
        assert!(s.contains(Ipv4Addr::new(10, 87, 255, 254)));
        assert!(!s.contains(Ipv4Addr::new(10, 88, 0, 1)));
        assert!(s.overlaps(subnet("10.87.3.0/24")));
        assert!(!s.overlaps(subnet("10.86.0.0/16")));
        assert!("10.87.0.1/16"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("10.87.0.0/16"));
        assert!("10.87.0.0/31".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
        for special in ["127.0.0.0/16", "224.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16"] {
            assert!(special.parse::<Subnet>().is_err(), "{special} was accepted");
        }
    }

    #[test]
    fn addresses_skip_the_gateway_and_what_is_taken() {
        let s = subnet("192.0.2.0/29"); // .0 network, .1 gateway, .2–.6, .7 broadcast
        let mut taken = BTreeSet::new();
        let mut handed = Vec::new();
        while let Some(address) = next_free(s, &taken) {
            taken.insert(address);
            handed.push(address.octets()[3]);
        }
        assert_eq!(handed, vec![2, 3, 4, 5, 6]);
        taken.remove(&Ipv4Addr::new(192, 0, 2, 4));
        assert_eq!(next_free(s, &taken), Some(Ipv4Addr::new(192, 0, 2, 4)));
    }
}
