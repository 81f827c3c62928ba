//! Building images from Dockerfiles (chapter 11, chapters/11-build.md).
//!
//! A build is a loop the earlier chapters already hold every piece of: start from
//! an image (FROM: the store, chapter 6, or a registry, chapter 7); for each
//! instruction, either change the image's config (ENV, CMD, LABEL, ...: an *empty
//! layer*) or change its files — RUN in a real container (chapter 8) on the
//! default network (chapter 10), COPY and ADD into an overlay (chapter 5) — and
//! lift the overlay's upper directory off as a new layer (`images::layer::snapshot`,
//! the inverse of unpacking). Each step's result is an image of its own, stored
//! like any other but named by no one: the next step runs on it.
//!
//! * **Cache**: a step's cache key is the key of the step before it plus what the
//!   step is (its instruction as expanded, the build args it sees, for COPY/ADD a
//!   hash of the sources' contents). A key already recorded gives the image that
//!   step made last time, and the step is skipped (`CACHED`). Keys chain, so one
//!   changed step invalidates itself and everything after it, nothing before.
//! * **Stages**: `FROM ... AS name` starts a stage; only the stages the target
//!   needs (through FROM and `COPY --from`) are built, in file order.
//!
//! The files: `plan` (stages, their bases and what the target needs), `context`
//! (the build context and `.dockerignore`), `stage` (a stage's state and the
//! metadata instructions), `steps` (RUN, COPY, ADD, WORKDIR) and `layers` (an
//! upper directory into the store as a layer and an image; also `ferry commit`).

pub mod context;
pub mod copy;
pub mod layers;
pub mod plan;
pub mod stage;
pub mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dockerfile::{self, Dockerfile, Location, ParseError};
use crate::images::{Digest, Image, ImageError, Reference, Store};

pub use plan::{Base, Plan};
pub use stage::StageState;

/// What `ferry build` is asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The build context: a directory (a tar from stdin is unpacked into one first).
    pub context: PathBuf,
    /// The Dockerfile's text, and its name for messages (`Dockerfile`).
    pub dockerfile: String,
    pub dockerfile_name: String,
    /// `--build-arg K=V` (K alone: the caller's environment value, resolved by the CLI).
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`: build up to that stage (default: the last).
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--pull`: fetch the bases even when the store has them.
    pub pull: bool,
    /// `--label K=V` on the final image.
    pub labels: Vec<(String, String)>,
    /// `-t NAME:TAG`.
    pub tags: Vec<Reference>,
    /// `--cgroup-parent`: where the RUN steps' containers go.
    pub cgroup_parent: Option<String>,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The final image (its id is the config digest, as docker's).
    pub image: Image,
    /// How many steps came from the cache, of how many.
    pub cached: usize,
    pub steps: usize,
}

/// Where the bases come from: the store, or a registry (the CLI pulls, as `run`
/// does; the engine does not know registry credentials or progress bars).
pub trait Bases {
    /// The image `name`, pulled first when it is missing or `pull` is set.
    fn image(&self, name: &str, pull: bool) -> Result<Image, BuildError>;
}

/// A step as the progress output shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// Its number in the whole build (BuildKit's `#N`).
    pub number: usize,
    /// `[build 2/5] RUN make`.
    pub title: String,
}

/// What the build reports as it goes; the CLI draws it (plain or tty).
pub trait Progress: Send + Sync {
    fn step_started(&self, step: &StepInfo);
    fn step_cached(&self, step: &StepInfo);
    /// Output of a RUN step, a chunk as it came (stdout or stderr).
    fn step_output(&self, step: &StepInfo, bytes: &[u8]);
    fn step_done(&self, step: &StepInfo, took: Duration);
    fn step_failed(&self, step: &StepInfo, took: Duration);
    /// A line about the build itself (`exporting to image`, warnings).
    fn note(&self, text: &str);
}

/// Everything a build can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}", .error.render(.file))]
    Parse { file: String, error: ParseError },
    /// A step that cannot be done as written, located in the Dockerfile.
    #[error("{file}:{location}: {message}\n {}", source_line(.location, .line))]
    At {
        file: String,
        location: Location,
        line: String,
        message: String,
    },
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("the build context {path} cannot be used: {why}")]
    Context { path: PathBuf, why: String },
    #[error("the --target stage {target:?} is not in the Dockerfile (its stages: {stages})")]
    NoTarget { target: String, stages: String },
    #[error("the base image {name} cannot be had")]
    Base {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Layer(#[from] crate::images::layer::LayerError),
    #[error(transparent)]
    Snapshot(#[from] crate::images::layer::snapshot::SnapshotError),
    #[error(transparent)]
    Engine(Box<crate::engine::EngineError>),
    #[error("{0}")]
    Step(String),
}

impl From<crate::engine::EngineError> for BuildError {
    fn from(error: crate::engine::EngineError) -> BuildError {
        BuildError::Engine(Box::new(error))
    }
}

impl BuildError {
    /// The likely cause and the chapter that explains it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            BuildError::Parse { .. } | BuildError::At { .. } => {
                "fix the line shown; `build --check` checks a Dockerfile without building (see chapters/11-build.md)"
            }
            BuildError::RunFailed { .. } => {
                "the step's own output is above it: try the command by hand in a container of the image before that step, `run --rm -it IMAGE sh` (see chapters/11-build.md)"
            }
            BuildError::Context { .. } => {
                "give the build context as a directory, or `-` with a tar (or a lone Dockerfile) on stdin"
            }
            BuildError::NoTarget { .. } => "--target takes the name of a stage: FROM IMAGE AS NAME",
            BuildError::Base { .. } => {
                "the base image is neither in the store nor pullable: `pull` it, `load` it, or check its name (see chapters/07-registry.md)"
            }
            _ => return None,
        };
        Some(hint.to_string())
    }
}

/// The quoted line under a located error.
fn source_line(location: &Location, line: &str) -> String {
    format!("{} | {}", location.line, line.trim_end())
}

/// Parses the Dockerfile of `request`, with its file name in the error.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, BuildError> {
    dockerfile::parse(text).map_err(|error| BuildError::Parse {
        file: file.to_string(),
        error,
    })
}

/// `ferry build --check`: parses the Dockerfile and plans its stages (bases,
/// `--from` references, the target) without building or pulling anything.
pub fn check(request: &Request) -> Result<Plan, BuildError> {
    let file = parse(&request.dockerfile, &request.dockerfile_name)?;
    let plan = Plan::new(&file, request)?;
    // Every instruction's words must expand (an unterminated quote or `${` is an
    // error docker reports before building too).
    for (index, stage) in file.stages.iter().enumerate() {
        let state = StageState::for_check(&plan, index, request);
        state.check_words(&stage.instructions, &request.dockerfile_name)?;
    }
    Ok(plan)
}

/// Builds the image `request` describes; stores it and names it with the tags.
pub fn build(
    request: &Request,
    state_root: &std::path::Path,
    bases: &dyn Bases,
    progress: Arc<dyn Progress>,
) -> Result<Built, BuildError> {
    let store = Store::new(state_root);
    // No garbage collection removes a step's layers while the build runs.
    let _lease = store.lease()?;
    sweep_stale(state_root);
    let file = parse(&request.dockerfile, &request.dockerfile_name)?;
    let plan = Plan::new(&file, request)?;
    let context = context::Context::open(&request.context, &request.dockerfile_name)?;
    let mut builder = Builder {
        request,
        state_root: state_root.to_path_buf(),
        store,
        file: &file,
        plan: &plan,
        context,
        bases,
        progress,
        built: BTreeMap::new(),
        numbered: 0,
        cached: 0,
        steps: 0,
        used_args: Vec::new(),
    };
    for &index in &plan.order {
        let image = builder.build_stage(index)?;
        builder.built.insert(index, image);
    }
    let target = builder
        .built
        .remove(&plan.target)
        .expect("the target was built");
    let image = builder.finish(target)?;
    let unused: Vec<&String> = request
        .build_args
        .keys()
        .filter(|k| !builder.used_args.contains(k) && !stage::is_predefined(k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        builder.progress.note(&format!(
            "warning: one or more build-args [{}] were not consumed",
            names.join(" ")
        ));
    }
    Ok(Built {
        image,
        cached: builder.cached,
        steps: builder.steps,
    })
}

/// One build's working state.
pub struct Builder<'a> {
    pub request: &'a Request,
    pub state_root: PathBuf,
    pub store: Store,
    pub file: &'a Dockerfile,
    pub plan: &'a Plan,
    pub context: context::Context,
    pub bases: &'a dyn Bases,
    pub progress: Arc<dyn Progress>,
    /// The stages built so far: their final images.
    pub built: BTreeMap<usize, Image>,
    /// The last `#N` given out.
    numbered: usize,
    cached: usize,
    steps: usize,
    /// The build args some ARG declared.
    pub used_args: Vec<String>,
}

impl Builder<'_> {
    /// Builds stage `index`: its base, then each instruction in turn.
    fn build_stage(&mut self, index: usize) -> Result<Image, BuildError> {
        let stage = &self.file.stages[index];
        let shown = self.shown_steps(index);
        let mut position = 1;
        let title = format!(
            "[{}{position}/{shown}] {}",
            self.stage_label(index),
            stage.source
        );
        let step = self.next_step(title);
        self.progress.step_started(&step);
        let started = Instant::now();
        let base = match &self.plan.stages[index].base {
            Base::Scratch => None,
            Base::Stage(other) => Some(self.built[other].clone()),
            Base::Image(name) => Some(self.bases.image(name, self.request.pull)?),
        };
        self.progress.step_done(&step, started.elapsed());
        let mut state = StageState::new(self.plan, index, self.request, base.as_ref());
        // The base image's ONBUILD triggers run first, as if written after FROM.
        let triggers = state.take_triggers(&self.request.dockerfile_name, stage.location)?;
        for instruction in triggers.iter().chain(&stage.instructions) {
            let shows = steps::shows_as_step(&instruction.kind);
            let step = if shows {
                position += 1;
                let title = format!(
                    "[{}{position}/{shown}] {}",
                    self.stage_label(index),
                    instruction.source
                );
                Some(self.next_step(title))
            } else {
                None
            };
            self.steps += 1;
            let hit = steps::step(self, &mut state, instruction, step.as_ref())?;
            if hit {
                self.cached += 1;
            }
        }
        self.used_args.extend(state.used_args());
        state.into_image(&self.store)
    }

    /// The final image: `--label`s added, stored and named.
    fn finish(&mut self, mut image: Image) -> Result<Image, BuildError> {
        if !self.request.labels.is_empty() {
            image = layers::with_labels(&self.store, &image, &self.request.labels)?;
        }
        self.numbered += 1;
        let step = StepInfo {
            number: self.numbered,
            title: "exporting to image".to_string(),
        };
        let started = Instant::now();
        self.progress.step_started(&step);
        self.progress.note(&format!(
            "#{} writing image {} done",
            step.number,
            image.id()
        ));
        self.store.add_image(
            &layers::descriptor_of(&self.store, &image)?,
            &self.request.tags,
        )?;
        for tag in &self.request.tags {
            self.progress
                .note(&format!("#{} naming to {tag} done", step.number));
        }
        self.progress.step_done(&step, started.elapsed());
        image.names = self.request.tags.clone();
        Ok(image)
    }

    fn next_step(&mut self, title: String) -> StepInfo {
        self.numbered += 1;
        StepInfo {
            number: self.numbered,
            title,
        }
    }

    /// `build ` for a named stage of a multi-stage build, `stage-1 ` for an
    /// unnamed one, nothing when there is one stage (BuildKit's labels).
    fn stage_label(&self, index: usize) -> String {
        if self.file.stages.len() == 1 {
            return String::new();
        }
        match &self.file.stages[index].name {
            Some(name) => format!("{name} "),
            None => format!("stage-{index} "),
        }
    }

    /// How many steps the progress shows for stage `index`: its FROM and the
    /// instructions that change files.
    fn shown_steps(&self, index: usize) -> usize {
        1 + self.file.stages[index]
            .instructions
            .iter()
            .filter(|i| steps::shows_as_step(&i.kind))
            .count()
    }

    /// A located error for `location` in the Dockerfile.
    pub fn error_at(&self, location: Location, message: impl Into<String>) -> BuildError {
        at(
            &self.request.dockerfile,
            &self.request.dockerfile_name,
            location,
            message,
        )
    }
}

/// A located error: the file, line and column, the line as written, the message.
pub fn at(text: &str, file: &str, location: Location, message: impl Into<String>) -> BuildError {
    BuildError::At {
        file: file.to_string(),
        location,
        line: text
            .lines()
            .nth(location.line.saturating_sub(1))
            .unwrap_or_default()
            .to_string(),
        message: message.into(),
    }
}

/// The cache key of a step: the key before it and what the step is, hashed.
pub fn cache_key(parent: &Digest, parts: &[&str]) -> Digest {
    // BEGIN SOLUTION ch11 "a step's cache key: the parent's key and every part of the step, hashed unambiguously"
    let mut text = String::from(parent.as_str());
    for part in parts {
        // Each part with its length: ("ab", "c") and ("a", "bc") differ.
        text.push_str(&format!("\n{}:{part}", part.len()));
    }
    Digest::of(text.as_bytes())
    // END SOLUTION
}

/// Removes what killed builds left: their RUN steps' containers (with their
/// cgroups and network), and in `ROOT/builds` (a step's upper, a context unpacked
/// from stdin) the directories whose owner, the pid their name starts with, is
/// gone. Their mounts went with the killed process's mount namespace. Returns how
/// many were removed.
pub fn sweep_stale(state_root: &std::path::Path) -> usize {
    let containers = crate::engine::containers::Containers::new(state_root);
    let mut removed = 0;
    for record in containers.all() {
        let orphaned = record
            .supervision
            .build
            .as_ref()
            .is_some_and(|build| !crate::engine::containers::is_alive(build));
        if orphaned && containers.remove(&record, true).is_ok() {
            log::debug!("removed {}, a step of a killed build", record.id);
            removed += 1;
        }
    }
    let Ok(entries) = std::fs::read_dir(state_root.join("builds")) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            .map_or_else(|errno| errno != nix::errno::Errno::ESRCH, |()| true);
        if !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            log::debug!("removed {}, left by a killed build", entry.path().display());
            removed += 1;
        }
    }
    removed
}
