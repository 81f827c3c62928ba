//! `build`, `builder prune` and `commit` (chapter 11): flags into a build
//! request, the progress drawn as BuildKit draws it (plain lines, or a compact
//! view on a terminal), the base images pulled as `run` pulls them.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};

use super::registry::{pull_for_run, PullPolicy, RegistryFlags};
use super::CliError;
use crate::engine::build::{self, layers, BuildError, Progress, Request, StepInfo};
use crate::images::{Image, Reference, Store};

/// `build [OPTIONS] CONTEXT|-`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: a directory, or `-` for a tar (or a lone Dockerfile) on stdin
    pub context: String,
    /// Name and optionally a tag (NAME[:TAG]); may be given more than once
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile]; `-` reads it from stdin
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<String>,
    /// A build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Build up to this stage
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Do not use the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the base images even when the store has them
    #[arg(long)]
    pub pull: bool,
    /// The platform to build for (ferry builds for this machine's only)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Metadata for the image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// How progress is drawn
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Write the image id to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Check the Dockerfile (syntax, stages, flags) without building
    #[arg(long)]
    pub check: bool,
    /// The cgroup the RUN steps' containers are created under
    #[arg(long, value_name = "CGROUP")]
    pub cgroup_parent: Option<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// How `build` draws its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// tty on a terminal, plain otherwise
    Auto,
    /// Every step and every line of output, numbered (BuildKit's plain)
    Plain,
    /// One line per step, output shown only when a step fails
    Tty,
}

/// `builder prune`
#[derive(Debug, Args)]
pub struct BuilderArgs {
    #[command(subcommand)]
    pub command: BuilderCommand,
}

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache
    Prune {
        /// Do not ask (ferry never asks; accepted for docker's scripts)
        #[arg(short, long)]
        force: bool,
        /// Remove all of it (ferry's cache has no other kind)
        #[arg(short, long)]
        all: bool,
    },
}

/// `commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The container
    pub container: String,
    /// The new image's name
    pub name: Option<String>,
    /// Commit message (the history entry's comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author ("Name <email>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// A Dockerfile instruction applied to the image's config (CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Pause the container while committing (accepted; ferry reads the upper
    /// directory as it is)
    #[arg(short, long, default_value_t = true)]
    pub pause: bool,
}

/// The most bytes read from stdin for a context or a Dockerfile.
const STDIN_DOCKERFILE_CAP: u64 = 1 << 20;

pub fn build(args: &BuildArgs, state_root: &Path) -> Result<i32, CliError> {
    let mut request = Request {
        build_args: build_args(&args.build_args),
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        labels: labels(&args.labels)?,
        tags: tags(&args.tags)?,
        cgroup_parent: args.cgroup_parent.clone(),
        ..Request::default()
    };
    if let Some(platform) = &args.platform {
        build::plan::check_platform(platform).map_err(|why| CliError::Flag {
            flag: "--platform",
            value: platform.clone(),
            why,
        })?;
    }
    let _temp = read_context(args, state_root, &mut request)?;
    if args.check {
        build::check(&request).map_err(build_error)?;
        println!("Check complete, no warnings found.");
        return Ok(0);
    }
    let progress: Arc<dyn Progress> = match (args.quiet, args.progress) {
        (true, _) => Arc::new(Quiet),
        (false, ProgressMode::Plain) => Arc::new(Plain::default()),
        (false, ProgressMode::Tty) => Arc::new(Tty::default()),
        (false, ProgressMode::Auto) if std::io::stderr().is_terminal() => Arc::new(Tty::default()),
        (false, ProgressMode::Auto) => Arc::new(Plain::default()),
    };
    let bases = PullingBases {
        state_root,
        flags: &args.registry,
    };
    let built = build::build(&request, state_root, &bases, progress).map_err(build_error)?;
    let id = built.image.id().to_string();
    if args.quiet {
        println!("{id}");
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id).map_err(|e| {
            CliError::Message(format!(
                "failed to write the image id to {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(0)
}

/// Reads the Dockerfile and sets the context of `request`; a context sent on
/// stdin is unpacked into a directory that goes when the returned guard does.
fn read_context(
    args: &BuildArgs,
    state_root: &Path,
    request: &mut Request,
) -> Result<Option<TempDir>, CliError> {
    let mut temp = None;
    let mut stdin_dockerfile = None;
    if args.context == "-" {
        let dir = TempDir::new(state_root)?;
        let mut input = std::io::BufReader::new(std::io::stdin().lock());
        let head = std::io::BufRead::fill_buf(&mut input)
            .map_err(|e| CliError::Message(format!("failed to read stdin: {e}")))?
            .to_vec();
        let is_tar =
            head.starts_with(&[0x1f, 0x8b]) || (head.len() >= 262 && &head[257..262] == b"ustar");
        if is_tar {
            build::context::unpack_tar(input, &dir.path).map_err(build_error)?;
        } else {
            // docker's `build - < Dockerfile`: a Dockerfile, and no context.
            let mut text = String::new();
            input
                .take(STDIN_DOCKERFILE_CAP)
                .read_to_string(&mut text)
                .map_err(|e| {
                    CliError::Message(format!("failed to read the Dockerfile from stdin: {e}"))
                })?;
            stdin_dockerfile = Some(text);
        }
        request.context = dir.path.clone();
        temp = Some(dir);
    } else {
        request.context =
            std::path::absolute(&args.context).unwrap_or_else(|_| PathBuf::from(&args.context));
    }
    let (name, text) = match (&args.file, stdin_dockerfile) {
        (_, Some(text)) => ("Dockerfile".to_string(), text),
        (Some(file), None) if file == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .take(STDIN_DOCKERFILE_CAP)
                .read_to_string(&mut text)
                .map_err(|e| {
                    CliError::Message(format!("failed to read the Dockerfile from stdin: {e}"))
                })?;
            ("Dockerfile".to_string(), text)
        }
        (None, None) => {
            let text = read_context_dockerfile(&request.context)?;
            ("Dockerfile".to_string(), text)
        }
        (Some(file), None) => {
            let path = PathBuf::from(file);
            let text = read_dockerfile(&path)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, text)
        }
    };
    request.dockerfile = text;
    request.dockerfile_name = name;
    Ok(temp)
}

/// Reads the context's own `Dockerfile`, which is the context's (so hostile): resolved
/// inside the context (a symlink cannot lead out of it), a regular file, opened
/// non-blocking, at most [`crate::dockerfile::MAX_SIZE`] bytes.
fn read_context_dockerfile(context: &Path) -> Result<String, CliError> {
    let failed = |why: String| {
        CliError::Message(format!(
            "failed to read the Dockerfile in {}: {why}",
            context.display()
        ))
    };
    let root =
        crate::safe_path::Root::open(context).map_err(|e| failed(crate::errors::chain(&e)))?;
    match root.read_file(Path::new("/Dockerfile"), crate::dockerfile::MAX_SIZE) {
        Ok(Some(bytes)) => {
            String::from_utf8(bytes).map_err(|_| failed("it is not UTF-8 text".into()))
        }
        Ok(None) => Err(failed("there is none (name another file with -f)".into())),
        Err(error) => Err(failed(crate::errors::chain(&error))),
    }
}

/// Reads the Dockerfile `-f` names: the caller's choice of file, but still a
/// regular one (checked on the opened descriptor, opened non-blocking so a FIFO
/// cannot hang the build), at most [`crate::dockerfile::MAX_SIZE`] bytes.
fn read_dockerfile(path: &Path) -> Result<String, CliError> {
    let bytes =
        crate::safe_path::read_host_file(path, crate::dockerfile::MAX_SIZE).map_err(|why| {
            CliError::Message(format!(
                "failed to read the Dockerfile {}: {why}",
                path.display()
            ))
        })?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::Message(format!(
            "failed to read the Dockerfile {}: it is not UTF-8 text",
            path.display()
        ))
    })
}

/// A directory under the state root, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(state_root: &Path) -> Result<TempDir, CliError> {
        let id = crate::id::ContainerId::generate()
            .map_err(|e| CliError::Message(format!("failed to make an id: {e}")))?;
        let path = state_root.join("builds").join(format!(
            "{}-context-{}",
            std::process::id(),
            id.short()
        ));
        std::fs::create_dir_all(&path)
            .map_err(|e| CliError::Message(format!("failed to create {}: {e}", path.display())))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `--build-arg`s: `K=V`, or `K` with the value of the caller's environment
/// (skipped when it has none, as docker does).
fn build_args(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|arg| match arg.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(arg).ok().map(|v| (arg.clone(), v)),
        })
        .collect()
}

fn labels(list: &[String]) -> Result<Vec<(String, String)>, CliError> {
    list.iter()
        .map(|label| {
            let (k, v) = label.split_once('=').unwrap_or((label, ""));
            if k.is_empty() {
                return Err(CliError::Flag {
                    flag: "--label",
                    value: label.clone(),
                    why: "a label is KEY=VALUE".into(),
                });
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn tags(list: &[String]) -> Result<Vec<Reference>, CliError> {
    list.iter()
        .map(|tag| {
            Reference::parse(tag).map_err(|error| CliError::Flag {
                flag: "--tag",
                value: tag.clone(),
                why: error.to_string(),
            })
        })
        .collect()
}

/// A build error for the CLI, with the chapter to read.
fn build_error(error: BuildError) -> CliError {
    match error {
        BuildError::Engine(error) => CliError::Engine(*error),
        BuildError::Image(error) => CliError::Image(error),
        other => CliError::Build(other),
    }
}

/// Bases from the store, pulled when missing (or always, with `--pull`).
struct PullingBases<'a> {
    state_root: &'a Path,
    flags: &'a RegistryFlags,
}

impl build::Bases for PullingBases<'_> {
    fn image(&self, name: &str, pull: bool) -> Result<Image, BuildError> {
        let policy = if pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| BuildError::Base {
            name: name.to_string(),
            source,
        };
        pull_for_run(name, policy, None, self.flags, self.state_root)
            .map_err(|e| failed(Box::new(e)))?;
        Store::new(self.state_root)
            .resolve(name)
            .map_err(|e| failed(Box::new(e)))
    }
}

/// No progress at all (`-q`).
struct Quiet;

impl Progress for Quiet {
    fn step_started(&self, _: &StepInfo) {}
    fn step_cached(&self, _: &StepInfo) {}
    fn step_output(&self, _: &StepInfo, _: &[u8]) {}
    fn step_done(&self, _: &StepInfo, _: Duration) {}
    fn step_failed(&self, _: &StepInfo, _: Duration) {}
    fn note(&self, _: &str) {}
}

/// BuildKit's plain progress on stderr: `#N [2/5] RUN ...`, each output line
/// as `#N 0.215 text`, then `#N DONE 0.3s` or `#N CACHED`.
#[derive(Default)]
struct Plain {
    /// Per step: when it started, and a line not yet ended.
    steps: Mutex<BTreeMap<usize, (Instant, Vec<u8>)>>,
}

impl Plain {
    fn print(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// Prints the whole lines of `step`'s pending output (all of it with `all`).
    fn flush_lines(&self, step: &StepInfo, more: &[u8], all: bool) {
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        let entry = steps
            .entry(step.number)
            .or_insert_with(|| (Instant::now(), Vec::new()));
        entry.1.extend_from_slice(more);
        let elapsed = entry.0.elapsed().as_secs_f64();
        while let Some(at) = entry.1.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = entry.1.drain(..=at).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.print(&format!("#{} {elapsed:.3} {text}", step.number));
        }
        if all && !entry.1.is_empty() {
            let text = String::from_utf8_lossy(&entry.1).into_owned();
            entry.1.clear();
            self.print(&format!("#{} {elapsed:.3} {text}", step.number));
        }
    }
}

impl Progress for Plain {
    fn step_started(&self, step: &StepInfo) {
        self.steps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(step.number, (Instant::now(), Vec::new()));
        self.print(&format!("\n#{} {}", step.number, step.title));
    }
    fn step_cached(&self, step: &StepInfo) {
        self.print(&format!("#{} CACHED", step.number));
    }
    fn step_output(&self, step: &StepInfo, bytes: &[u8]) {
        self.flush_lines(step, bytes, false);
    }
    fn step_done(&self, step: &StepInfo, took: Duration) {
        self.flush_lines(step, b"", true);
        self.print(&format!("#{} DONE {:.1}s", step.number, took.as_secs_f64()));
    }
    fn step_failed(&self, step: &StepInfo, took: Duration) {
        self.flush_lines(step, b"", true);
        self.print(&format!(
            "#{} ERROR after {:.1}s",
            step.number,
            took.as_secs_f64()
        ));
    }
    fn note(&self, text: &str) {
        self.print(text);
    }
}

/// A compact view for a terminal: one line per step, rewritten when it ends; a
/// step's output is kept (its last lines) and shown only if it fails.
#[derive(Default)]
struct Tty {
    output: Mutex<Vec<u8>>,
}

/// How many lines of a failed step's output the tty view shows.
const TTY_TAIL: usize = 20;

impl Tty {
    fn line(&self, text: &str, done: bool) {
        let mut err = std::io::stderr().lock();
        let end = if done { "\n" } else { "" };
        let _ = write!(err, "\r\x1b[2K{text}{end}");
        let _ = err.flush();
    }
}

impl Progress for Tty {
    fn step_started(&self, step: &StepInfo) {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.line(&format!(" => {}", step.title), false);
    }
    fn step_cached(&self, step: &StepInfo) {
        self.line(&format!(" => CACHED {}", step.title), true);
    }
    fn step_output(&self, _: &StepInfo, bytes: &[u8]) {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
    }
    fn step_done(&self, step: &StepInfo, took: Duration) {
        self.line(
            &format!(" => {}  {:.1}s", step.title, took.as_secs_f64()),
            true,
        );
    }
    fn step_failed(&self, step: &StepInfo, took: Duration) {
        self.line(
            &format!(" => ERROR {}  {:.1}s", step.title, took.as_secs_f64()),
            true,
        );
        let output = self.output.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&output);
        let lines: Vec<&str> = text.lines().collect();
        let mut err = std::io::stderr().lock();
        for line in &lines[lines.len().saturating_sub(TTY_TAIL)..] {
            let _ = writeln!(err, "    {line}");
        }
    }
    fn note(&self, text: &str) {
        self.line(text, true);
    }
}

pub fn builder(args: &BuilderArgs, state_root: &Path) -> Result<i32, CliError> {
    match args.command {
        BuilderCommand::Prune { .. } => {
            let removed = Store::new(state_root).clear_cache()?;
            let swept = build::sweep_stale(state_root);
            println!("Deleted build cache objects: {}", removed + swept);
            Ok(0)
        }
    }
}

pub fn commit(args: &CommitArgs, state_root: &Path) -> Result<i32, CliError> {
    let tag = match &args.name {
        Some(name) => Some(Reference::parse(name).map_err(|error| CliError::Flag {
            flag: "REPOSITORY[:TAG]",
            value: name.clone(),
            why: error.to_string(),
        })?),
        None => None,
    };
    let image = layers::commit_container(
        state_root,
        &args.container,
        &layers::Commit {
            message: args.message.clone(),
            author: args.author.clone(),
            changes: args.changes.clone(),
        },
        tag.as_ref(),
    )
    .map_err(build_error)?;
    println!("{}", image.id());
    Ok(0)
}
