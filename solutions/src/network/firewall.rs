//! ferry's packet filter rules: one nftables table of its own, `ip ferry`,
//! rewritten whole from the store every time a container joins or leaves a
//! network, in one `nft -f` transaction (so no packet ever sees half a change,
//! and what a killed ferry left is replaced by the truth on the next change).
//!
//! * **masquerade**: a packet from a container's subnet that leaves by another
//!   link gets the host's address as its source (and the answer is mapped back
//!   by conntrack), so the outside never sees 10.87.x.x;
//! * **DNAT** for published ports: a packet to one of the host's own addresses
//!   and a published port gets the container's address and port as its
//!   destination, in `prerouting` (from outside) and `output` (from the host
//!   itself, loopback included; route_localnet on the bridge lets 127.0.0.1 be
//!   routed there, and the masquerade of 127.0.0.0/8 gives the container an
//!   address it can answer);
//! * **isolation**: what one ferry bridge forwards to another is dropped, so
//!   containers of two networks cannot reach each other.
//!
//! nftables rather than iptables: one table of ferry's own that it can replace
//! atomically, instead of rules woven into shared chains (see ARCHITECTURE.md).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::{NetworkError, PortBinding, Subnet};

/// ferry's table (family `ip`: IPv4).
pub const TABLE: &str = "ferry";

/// Every bridge of ferry's is called so (`ferry0`, `ferry-1a2b3c4d5`): one
/// pattern for the accept rules added to another engine's FORWARD chain.
pub const BRIDGE_PATTERN: &str = "ferry*";

/// What the rules are made from: one network as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// The published ports of its containers: (container address, binding).
    pub ports: Vec<(Ipv4Addr, PortBinding)>,
}

/// The nft script that makes table `ip ferry` as `networks` need it: chains
/// `prerouting` and `output` (type nat) jumping to `published` for packets to
/// the host's own addresses (`fib daddr type local`), one DNAT rule per
/// published port there; `postrouting` (type nat) with a masquerade per subnet
/// for what leaves by another link and one for loopback sources into each bridge;
/// `forward` (type filter) dropping what goes from one ferry bridge to another.
pub fn ruleset(networks: &[NetworkRules]) -> String {
    // BEGIN SOLUTION ch10 "ferry's nftables table: masquerade, DNAT for published ports, isolation"
    let mut published = String::new();
    let mut postrouting = String::new();
    let mut forward = String::new();
    for network in networks {
        for (address, port) in &network.ports {
            let daddr = if port.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("ip daddr {} ", port.host_ip)
            };
            published.push_str(&format!(
                "    {daddr}{} dport {} dnat to {address}:{}\n",
                port.protocol, port.host_port, port.container_port
            ));
        }
        let (bridge, subnet) = (&network.bridge, network.subnet);
        postrouting.push_str(&format!(
            "    ip saddr {subnet} oifname != \"{bridge}\" masquerade\n"
        ));
        postrouting.push_str(&format!(
            "    ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade\n"
        ));
        for other in networks.iter().filter(|o| o.bridge != network.bridge) {
            forward.push_str(&format!(
                "    iifname \"{bridge}\" oifname \"{}\" drop\n",
                other.bridge
            ));
        }
    }
    format!(
        "table ip {TABLE} {{\n\
         \x20 chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }}\n\
         \x20 chain output {{\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }}\n\
         \x20 chain published {{\n{published}  }}\n\
         \x20 chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{postrouting}  }}\n\
         \x20 chain forward {{\n    type filter hook forward priority filter; policy accept;\n{forward}  }}\n\
         }}\n"
    )
    // END SOLUTION
}

/// The guards ferry adds to its table whatever the student's [`ruleset`] says,
/// because route_localnet and ip_forward open doors of their own:
///
/// * `guard_raw` (prerouting, before NAT): a packet for 127.0.0.0/8 that did not
///   come from `lo` is dropped — route_localnet would otherwise let a container
///   (or a LAN neighbour routing through this host) reach the host's
///   loopback-only services and ports published on 127.0.0.1 (the class of
///   CVE-2020-8558);
/// * `guard_forward`: what is forwarded *to* a container must answer a connection
///   it made, or be a published port (DNAT); what containers send out is let
///   through. When ferry turned forwarding on (`forwarding_was_off`), everything
///   else forwarded is dropped, as before — the laptop does not become a router
///   for its LAN (docker sets FORWARD to drop for the same reason).
pub fn guards(forwarding_was_off: bool) -> String {
    let policy = if forwarding_was_off { "drop" } else { "accept" };
    let tail = if forwarding_was_off {
        ""
    } else {
        "    oifname \"ferry*\" drop\n"
    };
    format!(
        "table ip {TABLE} {{\n\
         \x20 chain guard_raw {{\n    type filter hook prerouting priority raw; policy accept;\n    iifname != \"lo\" ip daddr 127.0.0.0/8 drop\n  }}\n\
         \x20 chain guard_forward {{\n    type filter hook forward priority filter; policy {policy};\n    ct state established,related accept\n    iifname \"ferry*\" accept\n    oifname \"ferry*\" ct status dnat accept\n{tail}  }}\n\
         }}\n"
    )
}

/// Replaces table `ip ferry` with the rules `networks` need and the [`guards`]
/// (or removes it when there are none), in one transaction; turns IP forwarding
/// on; and where another engine's FORWARD chain drops by default, lets ferry's
/// containers through it (and takes those rules away with the table).
///
/// An nft transaction costs the kernel 10–20 ms, so when the script is the one
/// applied last (`applied` keeps it: a container without published ports joining
/// a network changes nothing) and the table is still there, nothing is loaded.
///
/// `now` is the ruleset as [`current`] listed it; the table is made with a
/// comment naming `owner`, the state root its rules come from (see [`Owner`]).
pub fn apply(
    networks: &[NetworkRules],
    forwarding_was_off: bool,
    applied: &std::path::Path,
    owner: &Owner,
    now: &str,
) -> Result<(), NetworkError> {
    let mut script = format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n");
    if !networks.is_empty() {
        if let Some(comment) = owner.comment() {
            script.push_str(&format!(
                "table ip {TABLE} {{\n  comment \"{comment}\"\n}}\n"
            ));
        }
        script.push_str(&ruleset(networks));
        script.push_str(&guards(forwarding_was_off));
    }
    let unchanged = std::fs::read_to_string(applied).is_ok_and(|last| last == script);
    let wanted = !networks.is_empty();
    // One look at the whole ruleset answers both questions: is ferry's table
    // there, and does another engine's FORWARD chain drop?
    // A table made by another state root (whose containers are gone) is not the
    // one loaded last, whatever `applied` says: it is replaced.
    let ours = Owner::of(now) == owner.comment().map(|_| owner.clone());
    let present = now.contains(&format!("table ip {TABLE} {{")) && (ours || !wanted);
    if !(unchanged && present == wanted) {
        let _ = std::fs::remove_file(applied);
        nft(&["-f", "-"], Some(&script))?;
        let _ = std::fs::write(applied, &script);
    }
    if !wanted {
        remove_from_dropping_forward(now);
        return Ok(());
    }
    super::plumbing::write_sysctl("net/ipv4/ip_forward", "1")?;
    // Another engine's dropping FORWARD chain may have come since the last change.
    accept_in_dropping_forward(now)
}

/// The host's whole ruleset as `nft list ruleset` prints it (empty when nft
/// cannot list it: then [`apply`] reports what is wrong).
pub fn current() -> String {
    nft(&["list", "ruleset"], None).unwrap_or_default()
}

/// The state root whose networks table `ip ferry` is made from, and the engine
/// that made it. A host has one bridge `ferry0` and one such table, whichever
/// state root asks (the reference `ferry` and a student's `myferry`, or two
/// `--root`s): the table's comment says whose rules are in it, so that another
/// state root does not silently replace them (see `Networks::held_elsewhere`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub engine: String,
    pub state_root: std::path::PathBuf,
}

/// How the comment starts after the engine's name.
const OWNER_MARK: &str = " state root ";

impl Owner {
    /// The table's comment: "ENGINE state root PATH"; none for a path nft could
    /// not carry (a quote or backslash in it, not UTF-8, or over nft's 256 bytes).
    fn comment(&self) -> Option<String> {
        let root = self.state_root.to_str()?;
        let comment = format!("{}{OWNER_MARK}{root}", self.engine);
        let plain = !comment.contains(['"', '\\']) && !comment.chars().any(char::is_control);
        (plain && comment.len() < 250).then_some(comment)
    }

    /// The owner `ruleset` names in table `ip ferry`'s comment, if any.
    pub fn of(ruleset: &str) -> Option<Owner> {
        let table = &ruleset[ruleset.find(&format!("table ip {TABLE} {{\n"))?..];
        let first = table.lines().nth(1)?.trim();
        let comment = first.strip_prefix("comment \"")?.strip_suffix('"')?;
        let (engine, root) = comment.split_once(OWNER_MARK)?;
        Some(Owner {
            engine: engine.to_string(),
            state_root: root.into(),
        })
    }
}

/// The `chain FORWARD` of table `ip filter` in the listed `ruleset`, if any.
fn filter_forward(ruleset: &str) -> Option<&str> {
    let table = &ruleset[ruleset.find("table ip filter {")?..];
    let table = &table[..table.find("\n}").unwrap_or(table.len())];
    let chain = &table[table.find("chain FORWARD {")?..];
    Some(&chain[..chain.find("\n\t}").unwrap_or(chain.len())])
}

/// Whether IP forwarding is off now (read before ferry turns it on).
pub fn forwarding_is_off() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "0")
}

/// The accept rules ferry adds to another engine's dropping FORWARD chain, each
/// marked with the comment "ferry": containers' own traffic out, answers to it,
/// and published ports.
const FORWARD_ACCEPTS: &[&[&str]] = &[
    &["iifname", BRIDGE_PATTERN, "accept"],
    &[
        "oifname",
        BRIDGE_PATTERN,
        "ct",
        "state",
        "established,related",
        "accept",
    ],
    &["oifname", BRIDGE_PATTERN, "ct", "status", "dnat", "accept"],
];

/// docker (and ufw) set the `ip filter FORWARD` chain to drop what they do not
/// know: a drop in any chain wins, so ferry's containers would reach nothing.
/// Like podman, ferry then adds its accept rules to that chain, once.
fn accept_in_dropping_forward(ruleset: &str) -> Result<(), NetworkError> {
    let Some(chain) = filter_forward(ruleset) else {
        return Ok(()); // no such chain: nothing drops
    };
    if !chain.contains("policy drop") || chain.contains("comment \"ferry\"") {
        return Ok(());
    }
    for rule in FORWARD_ACCEPTS.iter().rev() {
        let mut args = vec!["insert", "rule", "ip", "filter", "FORWARD"];
        args.extend_from_slice(rule);
        args.extend_from_slice(&["comment", "ferry"]);
        nft(&args, None)?;
    }
    Ok(())
}

/// Takes ferry's accept rules out of another engine's FORWARD chain (by handle).
fn remove_from_dropping_forward(ruleset: &str) {
    if !filter_forward(ruleset).is_some_and(|chain| chain.contains("comment \"ferry\"")) {
        return;
    }
    let Ok(chain) = nft(&["-a", "list", "chain", "ip", "filter", "FORWARD"], None) else {
        return;
    };
    for line in chain.lines().filter(|l| l.contains("comment \"ferry\"")) {
        if let Some(handle) = line.rsplit("# handle ").next().map(str::trim) {
            let _ = nft(
                &[
                    "delete", "rule", "ip", "filter", "FORWARD", "handle", handle,
                ],
                None,
            );
        }
    }
}

/// Runs nft with `args` (and `input` on its stdin); its stdout.
fn nft(args: &[&str], input: Option<&str>) -> Result<String, NetworkError> {
    let program = ["/usr/sbin/nft", "/sbin/nft", "nft"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap_or("nft");
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| NetworkError::Firewall {
            message: format!("cannot run {program}: {error}"),
        })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|error| NetworkError::Firewall {
            message: format!("{program}: {error}"),
        })?;
    if !output.status.success() {
        return Err(NetworkError::Firewall {
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tables_owner_is_read_back_from_its_comment() {
        let owner = super::Owner {
            engine: "myferry".into(),
            state_root: "/var/lib/my ferry".into(),
        };
        let comment = owner.comment().unwrap();
        let listed = format!("table ip nat {{\n}}\ntable ip ferry {{\n\tcomment \"{comment}\"\n\tchain x {{\n\t}}\n}}\n");
        assert_eq!(super::Owner::of(&listed), Some(owner));
        assert_eq!(
            super::Owner::of("table ip ferry {\n\tchain x {\n\t}\n}\n"),
            None
        );
        let quoted = super::Owner {
            engine: "ferry".into(),
            state_root: "/tmp/a\"b".into(),
        };
        assert_eq!(quoted.comment(), None, "a quote would end nft's string");
    }

    #[test]
    fn another_engines_forward_chain_is_found_in_the_ruleset() {
        let ruleset = "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tiifname \"ferry*\" accept comment \"ferry\"\n\t}\n}\ntable ip ferry {\n}\n";
        let chain = super::filter_forward(ruleset).unwrap();
        assert!(chain.contains("policy drop") && chain.contains("comment \"ferry\""));
        assert!(!chain.contains("INPUT"));
        assert_eq!(super::filter_forward("table ip ferry {\n}\n"), None);
    }

    use super::*;
    use crate::network::Protocol;

    #[test]
    fn the_ruleset_masquerades_publishes_and_isolates() {
        let networks = [
            NetworkRules {
                bridge: "ferry0".into(),
                subnet: "10.87.0.0/16".parse().unwrap(),
                ports: vec![(
                    Ipv4Addr::new(10, 87, 0, 2),
                    PortBinding {
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_port: 8080,
                        container_port: 80,
                        protocol: Protocol::Tcp,
                    },
                )],
            },
            NetworkRules {
                bridge: "ferry-1".into(),
                subnet: "10.86.1.0/24".parse().unwrap(),
                ports: vec![(
                    Ipv4Addr::new(10, 86, 1, 2),
                    PortBinding {
                        host_ip: Ipv4Addr::LOCALHOST,
                        host_port: 5353,
                        container_port: 53,
                        protocol: Protocol::Udp,
                    },
                )],
            },
        ];
        let text = ruleset(&networks);
        for line in [
            "tcp dport 8080 dnat to 10.87.0.2:80",
            "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.86.1.2:53",
            "ip saddr 10.87.0.0/16 oifname != \"ferry0\" masquerade",
            "ip saddr 127.0.0.0/8 oifname \"ferry-1\" masquerade",
            "iifname \"ferry0\" oifname \"ferry-1\" drop",
            "iifname \"ferry-1\" oifname \"ferry0\" drop",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
