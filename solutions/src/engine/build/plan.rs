//! The build plan: each stage's base, the stages the target needs, their order.
//!
//! A multi-stage Dockerfile is a small graph. A stage depends on an earlier one
//! when its FROM names it (`FROM build`) or when it copies from it (`COPY
//! --from=build`, or `--from=0` by index). Only the target's stage and what it
//! depends on, directly or not, are built — `--target build` skips the final
//! stage altogether — and always in file order, since a stage may only name
//! stages before it.

use std::collections::BTreeSet;

use super::{at, BuildError, Request};
use crate::dockerfile::{words, Dockerfile, Instruction, Kind};
use crate::images::Reference;

/// Where a stage (or a `COPY --from`) takes its files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Nothing: `FROM scratch`.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image, by reference (the store's, or pulled).
    Image(String),
}

/// One stage as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    pub base: Base,
    /// The stages its `COPY --from` read.
    pub copies_from: Vec<usize>,
}

/// The stages, what the target needs, and the order to build them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<PlannedStage>,
    /// The ARGs before the first FROM, with their values (build args win).
    pub global_args: Vec<(String, String)>,
    pub target: usize,
    /// The stages to build, in order.
    pub order: Vec<usize>,
}

/// The platform arguments BuildKit predefines in the global scope.
pub fn platform_args() -> Vec<(String, String)> {
    let (os, arch, variant) = crate::images::this_platform();
    let platform = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    let mut args = Vec::new();
    for prefix in ["BUILD", "TARGET"] {
        args.push((format!("{prefix}PLATFORM"), platform.clone()));
        args.push((format!("{prefix}OS"), os.to_string()));
        args.push((format!("{prefix}ARCH"), arch.to_string()));
        args.push((
            format!("{prefix}VARIANT"),
            variant.unwrap_or("").to_string(),
        ));
    }
    args
}

impl Plan {
    /// Plans `file` for `request`: bases resolved (with the global ARGs), every
    /// `--from` checked, the target found.
    pub fn new(file: &Dockerfile, request: &Request) -> Result<Plan, BuildError> {
        let error = |location, message: String| {
            at(
                &request.dockerfile,
                &request.dockerfile_name,
                location,
                message,
            )
        };
        let mut global_args = platform_args();
        for instruction in &file.global_args {
            let Kind::Arg(args) = &instruction.kind else {
                continue;
            };
            for (name, default) in args {
                let value = match (request.build_args.get(name), default) {
                    (Some(value), _) => value.clone(),
                    (None, Some(raw)) => expand(raw, &global_args, file.directives.escape)
                        .map_err(|why| error(instruction.location, why))?,
                    (None, None) => String::new(),
                };
                global_args.retain(|(k, _)| k != name);
                global_args.push((name.clone(), value));
            }
        }
        let escape = file.directives.escape;
        let mut stages: Vec<PlannedStage> = Vec::new();
        for (index, stage) in file.stages.iter().enumerate() {
            let base_name = expand(&stage.base, &global_args, escape)
                .map_err(|why| error(stage.location, why))?;
            if let Some(raw) = &stage.platform {
                let platform =
                    expand(raw, &global_args, escape).map_err(|why| error(stage.location, why))?;
                check_platform(&platform).map_err(|why| error(stage.location, why))?;
            }
            let base = if base_name.eq_ignore_ascii_case("scratch") {
                Base::Scratch
            } else {
                let named = earlier_stage(file, index, &base_name)
                    .map(Base::Stage)
                    .map(Ok)
                    .unwrap_or_else(|| image_base(&base_name));
                named.map_err(|why| error(stage.location, why))?
            };
            let mut copies_from = Vec::new();
            for instruction in &stage.instructions {
                if let Some(Base::Stage(from)) = copy_from(file, index, instruction, &global_args)
                    .map_err(|why| error(instruction.location, why))?
                {
                    copies_from.push(from);
                }
            }
            stages.push(PlannedStage { base, copies_from });
        }
        let target = match &request.target {
            None => file.stages.len() - 1,
            Some(wanted) => file
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(wanted.to_lowercase().as_str()))
                .ok_or_else(|| BuildError::NoTarget {
                    target: wanted.clone(),
                    stages: stage_names(file),
                })?,
        };
        let order = stages_needed(&stages, target).into_iter().collect();
        Ok(Plan {
            stages,
            global_args,
            target,
            order,
        })
    }
}

/// The stages `target` needs: itself, and every stage its FROM or its `COPY
/// --from` names, and theirs, and so on.
pub fn stages_needed(stages: &[PlannedStage], target: usize) -> BTreeSet<usize> {
    // BEGIN SOLUTION ch11 "the stages the target needs: follow FROM and COPY --from back, each stage once"
    let mut needed = BTreeSet::new();
    let mut to_visit = vec![target];
    while let Some(index) = to_visit.pop() {
        if !needed.insert(index) {
            continue;
        }
        if let Base::Stage(base) = stages[index].base {
            to_visit.push(base);
        }
        to_visit.extend(&stages[index].copies_from);
    }
    needed
    // END SOLUTION
}

/// The index of the stage before `index` named `name` (case-insensitively).
fn earlier_stage(file: &Dockerfile, index: usize, name: &str) -> Option<usize> {
    let name = name.to_lowercase();
    file.stages[..index]
        .iter()
        .position(|s| s.name.as_deref() == Some(name.as_str()))
}

/// An image base: a valid reference, or an error that says why not.
fn image_base(name: &str) -> Result<Base, String> {
    Reference::parse(name)
        .map(|_| Base::Image(name.to_string()))
        .map_err(|error| format!("invalid base image name {name:?}: {error}"))
}

/// What `COPY --from=...`/`ADD --from=...` of stage `index` reads, if it has one:
/// a stage by name or number (earlier ones only), else an image.
pub fn copy_from(
    file: &Dockerfile,
    index: usize,
    instruction: &Instruction,
    args: &[(String, String)],
) -> Result<Option<Base>, String> {
    let (Kind::Copy(copy) | Kind::Add(copy)) = &instruction.kind else {
        return Ok(None);
    };
    let Some(raw) = &copy.from else {
        return Ok(None);
    };
    let from = expand(raw, args, file.directives.escape)?;
    if let Ok(number) = from.parse::<usize>() {
        if number >= index {
            return Err(format!(
                "invalid --from={number}: it must name an earlier stage (this is stage {index}, counting from 0)"
            ));
        }
        return Ok(Some(Base::Stage(number)));
    }
    if let Some(stage) = earlier_stage(file, index, &from) {
        return Ok(Some(Base::Stage(stage)));
    }
    image_base(&from).map(Some)
}

/// Expands a raw word with `args` as the only variables.
pub fn expand(raw: &str, args: &[(String, String)], escape: char) -> Result<String, String> {
    let lookup = |name: &str| {
        args.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    words::expand(raw, escape, &lookup).map_err(|error| error.to_string())
}

/// ferry builds for the machine it runs on.
pub fn check_platform(platform: &str) -> Result<(), String> {
    let (os, arch, _) = crate::images::this_platform();
    let wanted = platform.trim_start_matches("linux/").split('/').next();
    if platform.starts_with(&format!("{os}/")) && wanted == Some(arch) {
        return Ok(());
    }
    Err(format!(
        "ferry builds for this machine's platform ({os}/{arch}) only, not {platform}"
    ))
}

/// `build, test, (unnamed)` for a message.
fn stage_names(file: &Dockerfile) -> String {
    let names: Vec<&str> = file
        .stages
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    if names.is_empty() {
        "none is named".to_string()
    } else {
        names.join(", ")
    }
}
