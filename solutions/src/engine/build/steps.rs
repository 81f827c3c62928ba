//! One instruction as a build step: its cache key, the cache looked up, and on a
//! miss the work — a config change, a RUN in a container, a COPY into an overlay.
//!
//! A RUN is a real container, made by chapter 8's `create` from the stage's
//! image so far: its Env, WorkingDir and User are the image's, the build args
//! come as more variables, its network is the default one (chapter 10's bridge)
//! unless `RUN --network=none|host`. Its output streams to the progress as it
//! comes; it reads /dev/null. When it ends with 0 its overlay's upper directory
//! is the step's layer; otherwise the build stops with its exit code, and the
//! container goes either way.

use std::sync::Arc;
use std::time::Instant;

use super::stage::StageState;
use super::{cache_key, copy, layers, BuildError, Builder, StepInfo};
use crate::dockerfile::{Command, Instruction, Kind, Run};
use crate::engine::containers::{
    supervisor, ContainerError, Containers, CreateRequest, ProcessRef,
};
use crate::engine::options::RunOptions;
use crate::env::EnvEntry;
use crate::images::oci::Descriptor;
use crate::images::Digest;
use crate::network::Mode;

/// Whether the progress shows `kind` as a step of its own (BuildKit shows the
/// steps that change files; config changes are folded into the image).
pub fn shows_as_step(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Run(_) | Kind::Copy(_) | Kind::Add(_) | Kind::Workdir(_)
    )
}

/// Runs one instruction of `state`'s stage. Returns whether it came from the
/// cache.
pub fn step(
    builder: &mut Builder,
    state: &mut StageState,
    instruction: &Instruction,
    shown: Option<&StepInfo>,
) -> Result<bool, BuildError> {
    match (&instruction.kind, shown) {
        (Kind::Run(run), Some(step)) => run_step(builder, state, instruction, run, step),
        (Kind::Copy(what), Some(step)) => {
            copy::copy_step(builder, state, instruction, what, false, step)
        }
        (Kind::Add(what), Some(step)) => {
            copy::copy_step(builder, state, instruction, what, true, step)
        }
        (Kind::Workdir(raw), Some(step)) => {
            copy::workdir_step(builder, state, instruction, raw, step)
        }
        (kind, _) => {
            let line = state
                .apply_metadata(kind)
                .map_err(|why| builder.error_at(instruction.location, why))?
                .unwrap_or_else(|| instruction.source.clone());
            let key = cache_key(&state.key, &[&line]);
            if let Some(manifest) = cached(builder, &key) {
                state.adopt(&builder.store, &manifest, key)?;
                return Ok(true);
            }
            state.commit(&builder.store, None, line, key)?;
            Ok(false)
        }
    }
}

/// The manifest the cache has for `key`, unless `--no-cache`.
pub fn cached(builder: &Builder, key: &Digest) -> Option<Digest> {
    if builder.request.no_cache {
        return None;
    }
    builder.store.cached_step(key)
}

/// Starts a step that changes files: shows it, and when the cache has its key,
/// takes the cached image as the stage's and shows `CACHED`. Returns whether it
/// came from the cache.
pub fn start(
    builder: &Builder,
    state: &mut StageState,
    key: &Digest,
    step: &StepInfo,
) -> Result<bool, BuildError> {
    builder.progress.step_started(step);
    let Some(manifest) = cached(builder, key) else {
        return Ok(false);
    };
    state.adopt(&builder.store, &manifest, key.clone())?;
    builder.progress.step_cached(step);
    Ok(true)
}

/// Ends a step that ran: commits its layer with its history line, or shows it
/// failed and passes the error on.
pub fn finish(
    builder: &Builder,
    state: &mut StageState,
    made: Result<Option<(Descriptor, Digest)>, BuildError>,
    line: String,
    key: Digest,
    step: &StepInfo,
    started: Instant,
) -> Result<bool, BuildError> {
    match made {
        Ok(layer) => {
            state.commit(&builder.store, layer, line, key)?;
            builder.progress.step_done(step, started.elapsed());
            Ok(false)
        }
        Err(error) => {
            builder.progress.step_failed(step, started.elapsed());
            Err(error)
        }
    }
}

/// A RUN step.
fn run_step(
    builder: &mut Builder,
    state: &mut StageState,
    instruction: &Instruction,
    run: &Run,
    step: &StepInfo,
) -> Result<bool, BuildError> {
    let argv = run_argv(state, run);
    let args = state.run_args();
    let network = run.network.clone().unwrap_or_else(|| "default".to_string());
    let mut parts = vec![
        "RUN".to_string(),
        serde_json::to_string(&argv).expect("strings serialize"),
        network.clone(),
    ];
    parts.extend(args.iter().map(|(k, v)| format!("{k}={v}")));
    let key = cache_key(
        &state.key,
        &parts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    if start(builder, state, &key, step)? {
        return Ok(true);
    }
    // BuildKit's history line: the build args a RUN saw, then its command.
    let shown_args = if args.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("|{} {} ", args.len(), pairs.join(" "))
    };
    let created_by = format!("RUN {shown_args}{}", argv.join(" "));
    let started = Instant::now();
    let ran =
        run_container(builder, state, &argv, &args, &network, step).map_err(|error| match error {
            BuildError::Step(why) => builder.error_at(instruction.location, why),
            // The container could not be made (an unknown USER, say): that too is
            // this line's.
            BuildError::Engine(error) => {
                builder.error_at(instruction.location, crate::errors::chain(&*error))
            }
            other => other,
        });
    finish(builder, state, ran, created_by, key, step, started)
}

/// What a RUN executes: exec form as it is; shell form in the SHELL. A RUN that
/// is only a heredoc (`RUN <<EOF`) runs the heredoc's body as the script; a
/// command with heredocs gets them back, for the shell to feed (`cat <<EOF`).
pub fn run_argv(state: &StageState, run: &Run) -> Vec<String> {
    match &run.command {
        Command::Exec(argv) => argv.clone(),
        Command::Shell(text) => {
            let only_heredoc =
                run.heredocs.len() == 1 && is_heredoc_marker(text.trim(), &run.heredocs[0].name);
            let script = if only_heredoc {
                run.heredocs[0].content.clone()
            } else if run.heredocs.is_empty() {
                text.clone()
            } else {
                let mut script = text.clone();
                script.push('\n');
                for heredoc in &run.heredocs {
                    script.push_str(&heredoc.content);
                    script.push_str(&heredoc.name);
                    script.push('\n');
                }
                script
            };
            let mut argv = state.shell();
            argv.push(script);
            argv
        }
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`.
fn is_heredoc_marker(text: &str, name: &str) -> bool {
    let Some(rest) = text.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let unquoted = rest.trim_matches(|c| c == '"' || c == '\'');
    unquoted == name
}

/// Runs `argv` in a container of the stage's image; its changes as a layer.
fn run_container(
    builder: &Builder,
    state: &StageState,
    argv: &[String],
    args: &[(String, String)],
    network: &str,
    step: &StepInfo,
) -> Result<Option<(Descriptor, Digest)>, BuildError> {
    let Some(manifest) = &state.manifest else {
        return Err(BuildError::Step(
            "RUN needs files to run in, and this stage is FROM scratch with none yet: start from an image with a shell, or COPY a static program in first and RUN it in exec form".into(),
        ));
    };
    // An ENV of the same name wins over a build arg.
    let env: Vec<EnvEntry> = args
        .iter()
        .filter(|(k, _)| {
            state
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.as_ref())
                .is_none_or(|env| {
                    !env.iter()
                        .any(|e| e.split_once('=').map(|p| p.0) == Some(k))
                })
        })
        .map(|(k, v)| EnvEntry::Set(k.clone(), v.clone()))
        .collect();
    let network = match network {
        "none" => Some(Mode::None),
        "host" => Some(Mode::Host),
        _ => None,
    };
    let options = RunOptions {
        image: Some(manifest.to_string()),
        command: argv.to_vec(),
        entrypoint: Some(Vec::new()),
        env,
        network,
        cgroup_parent: builder.request.cgroup_parent.clone(),
        no_new_privileges: true,
        ..RunOptions::default()
    };
    let containers = Containers::new(&builder.state_root);
    let record = containers
        .create(&CreateRequest {
            options,
            build: Some(ProcessRef::me()),
            ..CreateRequest::default()
        })
        .map_err(container_error)?;
    let made = Made {
        containers: &containers,
        id: record.id.clone(),
    };
    let progress = Arc::clone(&builder.progress);
    let shown = step.clone();
    let output: supervisor::OutputSink =
        Box::new(move |_, bytes: &[u8]| progress.step_output(&shown, bytes));
    let exit = supervisor::run_captured(&containers, &record, output)?;
    if exit.code != 0 {
        return Err(BuildError::RunFailed {
            command: argv.join(" "),
            code: exit.code,
        });
    }
    let dir = containers.dir(&record.id);
    let targets = layers::mount_targets(&dir);
    let mount_points: Vec<&str> = targets.iter().map(String::as_str).collect();
    let layer = layers::store_layer(
        &builder.store,
        &dir.join("upper"),
        &mount_points,
        state.epoch,
        &state.config.rootfs.diff_ids,
    );
    drop(made);
    layer
}

/// A build step's container, removed when the step ends however it ends.
struct Made<'a> {
    containers: &'a Containers,
    id: String,
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        if let Ok(record) = self.containers.load(&self.id) {
            if let Err(error) = self.containers.remove(&record, true) {
                log::warn!("failed to remove the build container {}: {error}", self.id);
            }
        }
    }
}

/// A container store error, as a build error.
pub fn container_error(error: ContainerError) -> BuildError {
    match error {
        ContainerError::Engine(error) => BuildError::Engine(error),
        other => BuildError::Step(crate::errors::chain(&other)),
    }
}
