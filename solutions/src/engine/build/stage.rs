//! A stage's state as its instructions run: the image so far (config, layers,
//! history), its cache key, the ARGs it declared and its SHELL; and the
//! instructions that only change the config (ENV, ARG, LABEL, CMD, ...).
//!
//! Variables: a word is expanded with the stage's ENV first, then its ARGs (an
//! ENV of the same name wins, as docker's docs say). An ARG is seen only after it
//! is declared, and only in its stage: a global ARG (before the first FROM) must
//! be declared again, `ARG NAME`, to be seen inside one. The proxy ARGs
//! (`HTTP_PROXY`, ...) need no declaration and never reach the image's history.

use std::collections::BTreeMap;

use super::plan::Plan;
use super::{at, BuildError, Request};
use crate::clock;
use crate::dockerfile::{self, words, Command, Healthcheck, Instruction, Kind, Location};
use crate::images::oci::{self, Descriptor, History, ImageConfig, RunConfig};
use crate::images::{Digest, Image, Store};

/// The build args every Dockerfile may use without declaring them.
const PREDEFINED: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SOURCE_DATE_EPOCH",
];

/// Whether `name` is one of the predefined build args.
pub fn is_predefined(name: &str) -> bool {
    PREDEFINED.contains(&name)
}

/// docker's default SHELL.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A stage being built.
#[derive(Debug, Clone)]
pub struct StageState {
    pub index: usize,
    /// The image so far: its config (layers' diff ids and history included) …
    pub config: ImageConfig,
    /// … its layer blobs …
    pub layers: Vec<Descriptor>,
    /// … and its stored manifest, once there is one (a base, or a step's result).
    pub manifest: Option<Digest>,
    /// The cache key of the last step.
    pub key: Digest,
    /// The ARGs declared in this stage, with their values, in order.
    pub args: Vec<(String, String)>,
    global_args: Vec<(String, String)>,
    build_args: BTreeMap<String, String>,
    pub escape: char,
    /// SOURCE_DATE_EPOCH, when given: every timestamp of the image (config,
    /// history, file mtimes in new layers) is clamped to it.
    pub epoch: Option<u64>,
}

impl StageState {
    /// A stage starting from `base` (none: scratch).
    pub fn new(plan: &Plan, index: usize, request: &Request, base: Option<&Image>) -> StageState {
        let (os, architecture, _) = crate::images::this_platform();
        let config = match base {
            Some(image) => image.config.clone(),
            None => ImageConfig {
                architecture: architecture.to_string(),
                os: os.to_string(),
                config: Some(RunConfig::default()),
                ..ImageConfig::default()
            },
        };
        let key = match base {
            Some(image) => image.manifest_digest.clone(),
            None => Digest::of(b"scratch"),
        };
        StageState {
            index,
            config,
            layers: base.map(|b| b.manifest.layers.clone()).unwrap_or_default(),
            manifest: base.map(|b| b.manifest_digest.clone()),
            key,
            args: Vec::new(),
            global_args: plan.global_args.clone(),
            build_args: request.build_args.clone(),
            escape: '\\',
            epoch: request
                .build_args
                .get("SOURCE_DATE_EPOCH")
                .and_then(|v| v.parse().ok()),
        }
    }

    /// A stage for `--check`: no base, nothing stored.
    pub fn for_check(plan: &Plan, index: usize, request: &Request) -> StageState {
        StageState::new(plan, index, request, None)
    }

    /// The run config (made when missing).
    pub fn run_config(&mut self) -> &mut RunConfig {
        self.config.config.get_or_insert_with(RunConfig::default)
    }

    /// The SHELL shell-form commands run under.
    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    /// The value of variable `name` for expansion: ENV, then this stage's ARGs.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let env = self.config.config.as_ref().and_then(|c| c.env.as_ref());
        env.into_iter()
            .flatten()
            .rev()
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| {
                self.args
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
    }

    /// Expands a raw word with what the stage has reached.
    pub fn expand(&self, raw: &str) -> Result<String, String> {
        words::expand(raw, self.escape, &|name| self.lookup(name)).map_err(|e| e.to_string())
    }

    /// The variables a RUN sees beyond the image's Env: the declared ARGs and the
    /// proxy args given, as `K=V`.
    pub fn run_args(&self) -> Vec<(String, String)> {
        let mut args: Vec<(String, String)> = Vec::new();
        let proxies = self
            .build_args
            .iter()
            .filter(|(k, _)| is_predefined(k) && k.as_str() != "SOURCE_DATE_EPOCH");
        for (name, value) in self.args.iter().map(|(k, v)| (k, v)).chain(proxies) {
            args.retain(|(k, _)| k != name);
            args.push((name.clone(), value.clone()));
        }
        args
    }

    /// The build args this stage's ARGs took from `--build-arg`.
    pub fn used_args(&self) -> Vec<String> {
        self.args
            .iter()
            .filter(|(k, _)| self.build_args.contains_key(k))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The base image's ONBUILD triggers as instructions, and the config without
    /// them (a child does not inherit its parent's triggers).
    pub fn take_triggers(
        &mut self,
        file: &str,
        location: Location,
    ) -> Result<Vec<Instruction>, BuildError> {
        let triggers = self.run_config().on_build.take().unwrap_or_default();
        let mut instructions = Vec::new();
        for trigger in triggers {
            let text = format!("FROM scratch\n{trigger}\n");
            let parsed = dockerfile::parse(&text).map_err(|error| {
                at(
                    &text,
                    file,
                    location,
                    format!(
                        "the base image's ONBUILD trigger {trigger:?} does not parse: {}",
                        error.message
                    ),
                )
            })?;
            for mut instruction in parsed.stages.into_iter().flat_map(|s| s.instructions) {
                instruction.location = location;
                instructions.push(instruction);
            }
        }
        Ok(instructions)
    }

    /// Applies an instruction that only changes the config (or the stage's ARGs),
    /// and returns its history line (`ENV A=b`). `None` for the instructions that
    /// change files (RUN, COPY, ADD), which the steps do.
    pub fn apply_metadata(&mut self, kind: &Kind) -> Result<Option<String>, String> {
        let line = match kind {
            Kind::Env(pairs) => {
                // Every pair is expanded with the values from before the
                // instruction (docker's rule): `ENV A=2 B=$A` gives B the old A.
                let mut expanded = Vec::new();
                for (raw_key, raw_value) in pairs {
                    expanded.push((self.expand(raw_key)?, self.expand(raw_value)?));
                }
                let mut shown = Vec::new();
                for (key, value) in expanded {
                    if key.is_empty() || key.contains('=') {
                        return Err(format!("invalid ENV name {key:?}"));
                    }
                    let env = self.run_config().env.get_or_insert_with(Vec::new);
                    env.retain(|pair| pair.split_once('=').map(|(k, _)| k) != Some(&key));
                    env.push(format!("{key}={value}"));
                    shown.push(format!("{key}={value}"));
                }
                format!("ENV {}", shown.join(" "))
            }
            Kind::Arg(args) => {
                let mut shown = Vec::new();
                for (name, default) in args {
                    let value = match (self.build_args.get(name), default) {
                        (Some(value), _) => value.clone(),
                        (None, Some(raw)) => self.expand(raw)?,
                        // `ARG NAME` inside a stage brings in the global one.
                        (None, None) => self
                            .global_args
                            .iter()
                            .rev()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    };
                    self.args.retain(|(k, _)| k != name);
                    self.args.push((name.clone(), value.clone()));
                    shown.push(format!("{name}={value}"));
                }
                format!("ARG {}", shown.join(" "))
            }
            Kind::Label(pairs) => {
                let mut shown = Vec::new();
                for (raw_key, raw_value) in pairs {
                    let (key, value) = (self.expand(raw_key)?, self.expand(raw_value)?);
                    if key.is_empty() {
                        return Err("a LABEL needs a key: LABEL key=value".to_string());
                    }
                    shown.push(format!("{key}={value}"));
                    self.run_config()
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key, value);
                }
                format!("LABEL {}", shown.join(" "))
            }
            Kind::User(raw) => {
                let user = self.expand(raw)?;
                if user.is_empty() {
                    return Err("USER needs a user: a name or a uid, optionally :group".into());
                }
                self.run_config().user = Some(user.clone());
                format!("USER {user}")
            }
            Kind::Cmd(command) => {
                let argv = self.argv(command);
                let shown = go_list(&argv);
                self.run_config().cmd = Some(argv);
                format!("CMD {shown}")
            }
            Kind::Entrypoint(command) => {
                let argv = self.argv(command);
                let shown = go_list(&argv);
                let config = self.run_config();
                config.entrypoint = Some(argv);
                // A new ENTRYPOINT drops the CMD the base image had (docker's rule):
                // it was an argument list for the old entrypoint.
                config.cmd = None;
                format!("ENTRYPOINT {shown}")
            }
            Kind::Expose(raw_ports) => {
                let mut ports = Vec::new();
                for raw in raw_ports {
                    ports.extend(expose_ports(&self.expand(raw)?)?);
                }
                let exposed = self
                    .run_config()
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for port in &ports {
                    exposed.insert(port.clone(), serde_json::json!({}));
                }
                let shown: Vec<String> = ports.iter().map(|p| format!("{p}:{{}}")).collect();
                format!("EXPOSE map[{}]", shown.join(" "))
            }
            Kind::Volume(raw_paths) => {
                let mut paths = Vec::new();
                for raw in raw_paths {
                    let path = self.expand(raw)?;
                    if path.is_empty() {
                        return Err("VOLUME needs a path".to_string());
                    }
                    paths.push(path);
                }
                let volumes = self.run_config().volumes.get_or_insert_with(BTreeMap::new);
                for path in &paths {
                    volumes.insert(path.clone(), serde_json::json!({}));
                }
                format!("VOLUME {}", go_list(&paths))
            }
            Kind::StopSignal(raw) => {
                let signal = self.expand(raw)?;
                if crate::engine::containers::stop::parse_signal(&signal).is_none() {
                    return Err(format!(
                        "invalid STOPSIGNAL {signal:?}: give a signal name (SIGTERM, TERM) or number"
                    ));
                }
                self.run_config().stop_signal = Some(signal.clone());
                format!("STOPSIGNAL {signal}")
            }
            Kind::Shell(shell) => {
                self.run_config().shell = Some(shell.clone());
                format!("SHELL {}", go_list(shell))
            }
            Kind::Healthcheck(check) => {
                let healthcheck = self.healthcheck(check)?;
                let shown = go_list(&healthcheck.test);
                self.run_config().healthcheck = Some(healthcheck);
                format!("HEALTHCHECK &{{{shown}}}")
            }
            Kind::Onbuild(inner) => {
                let trigger = inner.source.clone();
                self.run_config()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger.clone());
                format!("ONBUILD {trigger}")
            }
            Kind::Maintainer(raw) => {
                let author = self.expand(raw)?;
                self.config.author = Some(author.clone());
                format!("MAINTAINER {author}")
            }
            Kind::Workdir(raw) => {
                let dir = self.workdir_of(raw)?;
                self.run_config().working_dir = Some(dir.clone());
                format!("WORKDIR {dir}")
            }
            Kind::Run(_) | Kind::Copy(_) | Kind::Add(_) => return Ok(None),
        };
        Ok(Some(line))
    }

    /// WORKDIR's directory: absolute, or relative to the current one.
    pub fn workdir_of(&self, raw: &str) -> Result<String, String> {
        let dir = self.expand(raw)?;
        if dir.is_empty() {
            return Err("WORKDIR needs a directory".to_string());
        }
        let current = self.working_dir();
        let joined = if dir.starts_with('/') {
            dir
        } else {
            format!("{}/{dir}", current.trim_end_matches('/'))
        };
        Ok(clean(&joined))
    }

    /// The current working directory (`/` until a WORKDIR).
    pub fn working_dir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".to_string())
    }

    /// A command's argv: exec form as it is, shell form wrapped in the SHELL.
    pub fn argv(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(argv) => argv.clone(),
            Command::Shell(text) => {
                let mut argv = self.shell();
                argv.push(text.clone());
                argv
            }
        }
    }

    fn healthcheck(&self, check: &Healthcheck) -> Result<oci::Healthcheck, String> {
        let Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } = check
        else {
            return Ok(oci::Healthcheck {
                test: vec!["NONE".to_string()],
                ..Default::default()
            });
        };
        let test = match test {
            Command::Exec(argv) => std::iter::once("CMD".to_string())
                .chain(argv.iter().cloned())
                .collect(),
            Command::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
        };
        let nanos = |value: &Option<String>| -> Result<Option<u64>, String> {
            value.as_deref().map(duration_nanos).transpose()
        };
        Ok(oci::Healthcheck {
            test,
            interval: nanos(interval)?,
            timeout: nanos(timeout)?,
            start_period: nanos(start_period)?,
            start_interval: nanos(start_interval)?,
            retries: *retries,
        })
    }

    /// The words of `instructions` expanded, the metadata ones applied: what
    /// `--check` can find wrong without building.
    pub fn check_words(&self, instructions: &[Instruction], file: &str) -> Result<(), BuildError> {
        let mut state = self.clone();
        for instruction in instructions {
            let fail = |message: String| {
                BuildError::Step(format!("{file}:{}: {message}", instruction.location))
            };
            state.apply_metadata(&instruction.kind).map_err(fail)?;
            if let Kind::Copy(copy) | Kind::Add(copy) = &instruction.kind {
                for raw in copy.sources.iter().chain([&copy.dest]) {
                    state.expand(raw).map_err(fail)?;
                }
            }
        }
        Ok(())
    }

    /// Adds a step's result: its layer (none for a config-only step), its
    /// history line; the image is stored and becomes the stage's current one.
    pub fn commit(
        &mut self,
        store: &Store,
        layer: Option<(Descriptor, Digest)>,
        created_by: String,
        key: Digest,
    ) -> Result<(), BuildError> {
        let created = match self.epoch {
            Some(epoch) => {
                clock::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
            }
            None => clock::rfc3339(std::time::SystemTime::now()),
        };
        let empty_layer = layer.is_none();
        if let Some((descriptor, diff_id)) = layer {
            self.layers.push(descriptor);
            self.config.rootfs.diff_ids.push(diff_id);
        }
        self.config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(created_by),
            comment: None,
            empty_layer,
        });
        self.config.created = Some(created);
        let manifest = store.write_image(&self.config, &self.layers)?;
        store.cache_step(&key, &manifest.digest)?;
        self.manifest = Some(manifest.digest);
        self.key = key;
        Ok(())
    }

    /// Takes the image a cached step made (`manifest`) as the stage's current one.
    pub fn adopt(
        &mut self,
        store: &Store,
        manifest: &Digest,
        key: Digest,
    ) -> Result<(), BuildError> {
        let image = store.image_of_manifest(manifest)?;
        self.config = image.config;
        self.layers = image.manifest.layers;
        self.manifest = Some(manifest.clone());
        self.key = key;
        Ok(())
    }

    /// The stage's final image.
    pub fn into_image(mut self, store: &Store) -> Result<Image, BuildError> {
        if self.manifest.is_none() {
            // FROM scratch and nothing else: an image of no layers.
            let key = self.key.clone();
            self.commit(store, None, "FROM scratch".to_string(), key)?;
        }
        let manifest = self.manifest.expect("a manifest was stored");
        Ok(store.image_of_manifest(&manifest)?)
    }
}

/// A list as docker's history prints one (Go's `%q` of a slice): `["a" "b"]`.
pub fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).expect("a string serializes"))
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// EXPOSE's ports: `80` → `80/tcp`, `53/udp`, `8000-8002` → each of them.
fn expose_ports(text: &str) -> Result<Vec<String>, String> {
    let (ports, protocol) = match text.split_once('/') {
        Some((ports, protocol)) => (ports, protocol.to_lowercase()),
        None => (text, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
        return Err(format!(
            "invalid EXPOSE protocol in {text:?}: tcp, udp or sctp"
        ));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid EXPOSE port {text:?}: a port is 1 to 65535"))
    };
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if last < first || last - first > 1000 {
        return Err(format!(
            "invalid EXPOSE range {text:?}: low-high, at most 1000 ports"
        ));
    }
    Ok((first..=last).map(|p| format!("{p}/{protocol}")).collect())
}

/// A duration as docker writes them (`30s`, `1m30s`, `500ms`), in nanoseconds.
fn duration_nanos(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration {text:?}: write it as 30s, 1m30s or 500ms");
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        total = total.saturating_add(number.saturating_mul(scale));
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `path` with `.`, `..` and repeated `/` worked out by its text (absolute).
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_takes_ranges_and_protocols() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(expose_ports("8000-8002").unwrap().len(), 3);
        assert!(expose_ports("0").is_err());
        assert!(expose_ports("80/icmp").is_err());
    }

    #[test]
    fn durations_read_as_docker_writes_them() {
        assert_eq!(duration_nanos("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_nanos("1m30s").unwrap(), 90_000_000_000);
        assert!(duration_nanos("10").is_err());
        assert!(duration_nanos("").is_err());
    }

    #[test]
    fn clean_works_out_dots() {
        assert_eq!(clean("/a/./b/../c//"), "/a/c");
        assert_eq!(clean("/../.."), "/");
    }
}
