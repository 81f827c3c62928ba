//! Container names: the user's (`--name`), checked as docker checks them, or a
//! generated `adjective_noun` that no other container of the store has.

use super::ContainerError;

/// The first half of a generated name.
const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brave", "breezy", "bright", "calm", "clever", "cosy", "curious", "daring",
    "deft", "eager", "early", "fair", "fond", "gentle", "glad", "golden", "happy", "hardy",
    "honest", "jolly", "keen", "kind", "lively", "lucky", "merry", "mellow", "modest", "nimble",
    "noble", "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "salty",
    "serene", "sharp", "shy", "silver", "sleepy", "snug", "steady", "sturdy", "sunny", "swift",
    "tidy", "trusty", "upbeat", "vivid", "wary", "witty", "young", "zesty",
];

/// The second half: things of a harbour.
const NOUNS: &[&str] = &[
    "anchor",
    "barge",
    "beacon",
    "bollard",
    "buoy",
    "cabin",
    "canal",
    "cargo",
    "compass",
    "crane",
    "current",
    "deck",
    "dinghy",
    "dock",
    "estuary",
    "ferry",
    "fjord",
    "galley",
    "gull",
    "harbour",
    "hull",
    "island",
    "jetty",
    "keel",
    "lantern",
    "lighthouse",
    "lock",
    "mast",
    "mooring",
    "oar",
    "pier",
    "pilot",
    "porthole",
    "quay",
    "raft",
    "rope",
    "rudder",
    "sail",
    "schooner",
    "shore",
    "skiff",
    "slipway",
    "sloop",
    "tide",
    "tiller",
    "tugboat",
    "wake",
    "wharf",
    "wave",
    "yacht",
];

/// A name no container has yet: `adjective_noun` from the lists above, picked at
/// random; when that is `taken`, another, and after a few tries with a digit
/// appended (`merry_quay3`), as docker does.
pub fn generate(taken: &dyn Fn(&str) -> bool) -> String {
    // BEGIN SOLUTION ch08 "a random adjective_noun name that no other container has"
    for attempt in 0u32.. {
        let adjective = ADJECTIVES[random_below(ADJECTIVES.len())];
        let noun = NOUNS[random_below(NOUNS.len())];
        let mut name = format!("{adjective}_{noun}");
        if attempt >= 10 {
            name.push_str(&random_below(10).to_string());
        }
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("the loop above only ends by returning")
    // END SOLUTION
}

/// A random number below `n`, from the kernel's random bytes.
pub fn random_below(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    getrandom(&mut bytes);
    (u64::from_ne_bytes(bytes) % n as u64) as usize
}

fn getrandom(bytes: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        let _ = random.read_exact(bytes);
    }
}

/// Checks a name the user gave: docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check(name: &str) -> Result<(), ContainerError> {
    let name_ok = name.len() >= 2
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if name_ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_avoid_taken_ones_and_user_names_are_checked() {
        let name = generate(&|_| false);
        let (adjective, noun) = name.split_once('_').unwrap();
        assert!(
            ADJECTIVES.contains(&adjective) && NOUNS.contains(&noun),
            "{name}"
        );
        // Every plain name taken: a digit makes one free.
        let name = generate(&|name| !name.chars().any(|c| c.is_ascii_digit()));
        assert!(name.ends_with(|c: char| c.is_ascii_digit()), "{name}");
        assert!(check("web-1").is_ok() && check("a.b_c").is_ok());
        for bad in ["", "x", "-web", "we b", "web/1", "ünï"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
