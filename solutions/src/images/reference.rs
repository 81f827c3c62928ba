//! Image names as docker reads them: `busybox` is `docker.io/library/busybox:latest`.
//!
//! Chapter 6 (chapters/06-images.md). A reference is `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`.
//! The first component is a registry when it has a `.` or a `:` or is `localhost`;
//! otherwise the name is Docker Hub's, and a one-component name lives under
//! `library/`. The tag defaults to `latest` unless a digest pins the image.

use std::fmt;

use super::digest::Digest;

/// Docker Hub's registry, as references name it.
pub const DOCKER_HUB: &str = "docker.io";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `ghcr.io`.
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {text:?}: {why}")]
pub struct ReferenceError {
    pub text: String,
    pub why: &'static str,
}

impl Reference {
    /// Parses and normalises `text` as docker does.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        // BEGIN SOLUTION ch06 "normalise an image reference as docker does (docker.io/library/NAME:latest)"
        let error = |why| ReferenceError {
            text: text.to_string(),
            why,
        };
        if text.is_empty() || text.len() > 255 + 128 + 72 {
            return Err(error("it must be 1 to 455 characters"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(
                    Digest::parse(digest)
                        .map_err(|_| error("the digest is not sha256:<64 hex digits>"))?,
                ),
            ),
            None => (text, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let slash = rest.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(at) => (
                &rest[..slash + at],
                Some(rest[slash + at + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(error(
                    "a tag is up to 128 letters, digits, '_', '.' and '-'",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let (host, port) = registry.split_once(':').unwrap_or((&registry, ""));
        let host_ok = host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        if !host_ok || !port.chars().all(|c| c.is_ascii_digit()) || registry.ends_with(':') {
            return Err(error("a registry is a host name with an optional :port"));
        }
        let component_ok = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(error(
                "a repository is lower-case letters, digits and single '.', '_' or '-' between them, in '/'-separated parts",
            ));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
        // END SOLUTION
    }

    /// `REGISTRY/REPOSITORY`, docker's full name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as docker shows it: `busybox` for `docker.io/library/busybox`,
    /// `team/app` for Docker Hub's, the full name otherwise.
    pub fn familiar_name(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.name();
        }
        self.repository
            .strip_prefix("library/")
            .unwrap_or(&self.repository)
            .to_string()
    }
}

impl fmt::Display for Reference {
    /// The full normalised reference: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn references_normalise_as_dockers() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("team/app:1.0"), "docker.io/team/app:1.0");
        assert_eq!(full("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(full("ghcr.io/org/tool:v2"), "ghcr.io/org/tool:v2");
        assert_eq!(
            full("index.docker.io/library/alpine"),
            "docker.io/library/alpine:latest"
        );
        let pinned = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(full(&pinned), format!("docker.io/library/{pinned}"));
        let both = format!("busybox:1@sha256:{}", "b".repeat(64));
        assert_eq!(full(&both), format!("docker.io/library/{both}"));
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_name(),
            "busybox"
        );
        for bad in [
            "",
            "UPPER",
            "a//b",
            "app:",
            "app:-x",
            "x@sha256:short",
            "../etc",
            "a/.hidden",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
