//! The command line: clap derive, one args struct per subcommand, a thin adapter
//! per command. Doc comments are the help text. The CLI is the edge: it reads its
//! own environment and files for the engine, turns flags into the engine's options,
//! and is the only place that prints errors, hints and exit codes.

mod build;
pub mod container;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod logs;
mod mounts;
mod network;
pub mod oci;
pub mod ps;
pub mod registry;
mod run;
mod table;
pub mod template;
mod terminal;
mod volume;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::errors::{self, EXIT_ENGINE_FAILED};
use crate::ENGINE;
pub use run::{CliError, RunArgs};

/// A container engine you build yourself, chapter by chapter.
#[derive(Debug, Parser)]
#[command(name = ENGINE, version, disable_help_subcommand = true)]
pub struct Cli {
    /// Directory where the engine keeps its state [default: /var/lib/<engine>]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Narrate every step on stderr (same as RUST_LOG=debug)
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Attach to a running container's output
    Attach(logs::AttachArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::ContainersArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Display detailed information on containers or images
    Inspect(inspect::InspectArgs),
    /// Display the running processes of a container
    Top(container::ContainersArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::ContainersArgs),
    /// Manage containers
    Container(container::ContainerArgs),
    /// The supervisor of one container (ferry starts it itself)
    #[command(hide = true)]
    Supervise(container::SuperviseArgs),
    /// Manage volumes
    Volume(volume::VolumeArgs),
    /// Manage networks
    Network(network::NetworkArgs),
    /// List a container's published ports
    Port(network::PortArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Manage images
    Image(image::ImageArgs),
    /// Load images from an archive (an OCI layout or a docker save archive)
    Load(image::LoadArgs),
    /// Save images to an archive that OCI tools and docker load read
    Save(image::SaveArgs),
    /// Make an image of a root filesystem tarball
    Import(image::ImportArgs),
    /// Give an image another name
    Tag(image::TagArgs),
    /// Remove images
    Rmi(image::RmiArgs),
    /// Show how an image was made
    History(image::HistoryArgs),
    /// Build an image from a Dockerfile
    Build(Box<build::BuildArgs>),
    /// Manage the build cache
    Builder(build::BuilderArgs),
    /// Create a new image from a container's changes
    Commit(build::CommitArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry (credentials go to docker's config.json)
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// The runtime alone, with runc's command line (`ferry runtime --help`; chapter 12)
    #[command(disable_help_flag = true)]
    Runtime {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Parses the arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    errors::quiet_panics();
    // The runtime's own dialect (runc's): `ferry runtime ...`, or this binary
    // called through a symlink named `ferry-runtime` (for podman --runtime).
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called_as_runtime = args.first().is_some_and(|arg0| {
        Path::new(arg0)
            .file_name()
            .is_some_and(|name| name.to_string_lossy() == format!("{ENGINE}-runtime"))
    });
    if called_as_runtime {
        return oci::main(args);
    }
    if args.get(1).is_some_and(|arg| arg == "runtime") {
        args.remove(0);
        return oci::main(args);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are not errors; a bad flag is ferry's failure (125),
            // as docker's CLI has it.
            let code = if error.use_stderr() {
                EXIT_ENGINE_FAILED
            } else {
                0
            };
            let _ = error.print();
            return code;
        }
    };
    init_logging(cli.debug);
    let outcome = std::panic::catch_unwind(|| dispatch(cli));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("{ENGINE}: error: {}", errors::chain(&error));
            if let Some(hint) = error.hint() {
                eprintln!("{ENGINE}: hint: {hint}");
            }
            error.exit_code()
        }
        Err(panic) => {
            eprintln!(
                "{ENGINE}: error: {}",
                errors::describe_panic(panic.as_ref())
            );
            EXIT_ENGINE_FAILED
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let explicit_root = cli.root.clone();
    let state_root = cli
        .root
        .unwrap_or_else(|| PathBuf::from(format!("/var/lib/{ENGINE}")));
    // Absolute, so that no later step depends on the current directory (the
    // runtime changes it).
    let state_root = std::path::absolute(&state_root).unwrap_or(state_root);
    match cli.command {
        Command::Run(args) => run::run(&args, &state_root),
        Command::Create(args) => container::create(&args, &state_root),
        Command::Start(args) => container::start(&args, &state_root),
        Command::Attach(args) => logs::attach(&args, &state_root),
        Command::Exec(args) => exec::exec(&args, &state_root),
        Command::Ps(args) => ps::ps(&args, &state_root),
        Command::Logs(args) => logs::logs(&args, &state_root),
        Command::Stop(args) => container::stop_containers(&args, &state_root),
        Command::Kill(args) => container::kill(&args, &state_root),
        Command::Restart(args) => container::restart(&args, &state_root),
        Command::Wait(args) => container::wait(&args, &state_root),
        Command::Rm(args) => container::rm(&args, &state_root),
        Command::Rename(args) => container::rename(&args, &state_root),
        Command::Inspect(args) => inspect::inspect(&args, &state_root),
        Command::Top(args) => inspect::top(&args, &state_root),
        Command::Diff(args) => inspect::diff(&args, &state_root),
        Command::Container(args) => container::container(args, &state_root),
        Command::Supervise(args) => Ok(container::supervise(&args, &state_root)),
        Command::Volume(args) => volume::run(&args, &state_root),
        Command::Network(args) => network::run(&args, &state_root),
        Command::Port(args) => network::port(&args, &state_root),
        Command::Images(args) => image::images(&args, &state_root),
        Command::Load(args) => image::load(&args, &state_root),
        Command::Save(args) => image::save(&args, &state_root),
        Command::Import(args) => image::import(&args, &state_root),
        Command::Tag(args) => image::tag(&args, &state_root),
        Command::Rmi(args) => image::rmi(&args, &state_root),
        Command::History(args) => image::history(&args, &state_root),
        Command::Build(args) => build::build(&args, &state_root),
        Command::Builder(args) => build::builder(&args, &state_root),
        Command::Commit(args) => build::commit(&args, &state_root),
        Command::Pull(args) => registry::pull(&args, &state_root),
        Command::Push(args) => registry::push(&args, &state_root),
        Command::Login(args) => registry::login(&args, &state_root),
        Command::Logout(args) => registry::logout(&args),
        // Handled in `main` before the engine's parser; here only for `--help`.
        // With `ENGINE --root DIR runtime ...`, DIR is the runtime's root too.
        Command::Runtime { args } => {
            let mut all = vec![std::ffi::OsString::from("runtime")];
            if let Some(root) = explicit_root {
                all.extend(["--root".into(), root.into_os_string()]);
            }
            all.extend(args.into_iter().map(Into::into));
            Ok(oci::main(all))
        }
        Command::Image(args) => match args.command {
            image::ImageCommand::Ls(args) => image::images(&args, &state_root),
            image::ImageCommand::Inspect { images } => image::inspect(&images, &state_root),
            image::ImageCommand::Rm(args) => image::rmi(&args, &state_root),
            image::ImageCommand::Prune { all, .. } => image::prune(all, &state_root),
            image::ImageCommand::History(args) => image::history(&args, &state_root),
            image::ImageCommand::Load(args) => image::load(&args, &state_root),
            image::ImageCommand::Save(args) => image::save(&args, &state_root),
            image::ImageCommand::Import(args) => image::import(&args, &state_root),
            image::ImageCommand::Tag(args) => image::tag(&args, &state_root),
            image::ImageCommand::Pull(args) => registry::pull(&args, &state_root),
            image::ImageCommand::Push(args) => registry::push(&args, &state_root),
        },
    }
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_target(false)
        .format_timestamp(None)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
