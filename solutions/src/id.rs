//! Container ids: 64 random hex digits, shown shortened to 12 as docker does.
//!
//! Chapter 0 (chapters/00-process.md). The short id is also the container's default
//! hostname, so `HOSTNAME` inside tells you which container you are in.

use std::fmt;
use std::io;

/// A container's id: 32 random bytes written as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerId(String);

impl ContainerId {
    /// Makes a new random id from the kernel's random pool (see random(4)).
    pub fn generate() -> io::Result<ContainerId> {
        // BEGIN SOLUTION ch00 "generate a random 64-hex-digit container id from /dev/urandom"
        use std::io::Read;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(ContainerId(hex))
        // END SOLUTION
    }

    /// The full 64-digit id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits: what `ps` shows and the default hostname.
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let a = ContainerId::generate().unwrap();
        let b = ContainerId::generate().unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(a.short(), &a.as_str()[..12]);
    }
}
