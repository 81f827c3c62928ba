//! The registry commands, as docker's: `pull`, `push`, `login`, `logout`, and the
//! pull that `run` does on demand. This edge reads what the engine must not: the
//! environment (where docker's config.json is, who ran sudo), the terminal (a
//! password typed without echo) and how output is drawn.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::{Args, ValueEnum};

use super::run::CliError;
use crate::images::{Reference, Store};
use crate::registry::auth::{CredentialFile, Credentials};
use crate::registry::progress::{Progress, Silent, Status};
use crate::registry::{hosts, pull, push, Client, Platform, Settings};

/// How ferry reaches registries; flags shared by the commands that do.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryFlags {
    /// Allow plain HTTP (or HTTPS without checking the certificate) for this
    /// registry, HOST[:PORT] (adds to the registries file's insecure-registries)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

/// `pull [--platform P] [-q] NAME[:TAG|@DIGEST]`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image to pull
    pub name: String,
    /// The platform of a multi-platform image [default: this machine's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the image's full name
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `push [-q] NAME[:TAG]`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image to push, named after the registry it goes to (`tag` it first)
    pub name: String,
    /// Print only the pushed manifest's digest
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `login [-u USER] [-p PASSWORD | --password-stdin] [SERVER]`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, HOST[:PORT] [default: Docker Hub]
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible to other users in ps: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `logout [SERVER]`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, HOST[:PORT] [default: Docker Hub]
    pub server: Option<String>,
}

/// `run --pull`: when to pull the image, docker's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull when the store does not have it
    #[default]
    Missing,
    /// Pull every time (layers the store has are not fetched again)
    Always,
    /// Never pull: the image must be in the store
    Never,
}

/// Where docker's config.json is for the user who asked: `$DOCKER_CONFIG`, else
/// `~/.docker/` of the user who ran sudo, else of `$HOME`. A file rewritten for a
/// sudo user stays that user's.
pub fn credential_file() -> CredentialFile {
    let sudo_owner = (nix::unistd::geteuid().is_root())
        .then(|| {
            let uid = std::env::var("SUDO_UID").ok()?.parse::<u32>().ok()?;
            let gid = std::env::var("SUDO_GID").ok()?.parse::<u32>().ok()?;
            Some((uid, gid))
        })
        .flatten();
    let dir = if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        PathBuf::from(dir)
    } else if let Some(home) = sudo_owner.and_then(|(uid, _)| {
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.dir)
    }) {
        home.join(".docker")
    } else {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".docker")
    };
    CredentialFile {
        path: dir.join("config.json"),
        owner: sudo_owner,
    }
}

/// The client for this command: the registries file, the flags, the credentials.
fn client(state_root: &Path, flags: &RegistryFlags) -> Result<Client, CliError> {
    let mut settings = Settings::load(state_root)?;
    settings
        .insecure_registries
        .extend(flags.insecure_registry.iter().cloned());
    Ok(Client::new(settings, Some(credential_file())))
}

/// The name docker shows in `Status:` lines: `busybox:latest`, `host:5000/app:v1`.
fn familiar(reference: &Reference) -> String {
    let mut text = reference.familiar_name();
    if let Some(tag) = &reference.tag {
        text.push(':');
        text.push_str(tag);
    }
    if let Some(digest) = &reference.digest {
        text.push('@');
        text.push_str(digest.as_str());
    }
    text
}

/// docker's last line but one: `Status: Downloaded newer image for NAME`.
fn status_line(pulled: &pull::Pulled, reference: &Reference) -> String {
    let status = if pulled.newer {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    format!("Status: {status} {}", familiar(reference))
}

pub fn pull(args: &PullArgs, state_root: &Path) -> Result<i32, CliError> {
    let reference = Reference::parse(&args.name).map_err(crate::images::ImageError::Reference)?;
    let last = args.name.rsplit('/').next().unwrap_or(&args.name);
    if !args.quiet && !last.contains([':', '@']) {
        println!("Using default tag: latest");
    }
    let platform = match &args.platform {
        Some(text) => Platform::parse(text)?,
        None => Platform::host(),
    };
    let client = client(state_root, &args.registry)?;
    let store = Store::new(state_root);
    let mut stdout = std::io::stdout();
    if args.quiet {
        pull::pull(&client, &store, &reference, &platform, &Silent)?;
    } else {
        let progress = Drawn::stdout();
        let pulled = pull::pull(&client, &store, &reference, &platform, &progress)?;
        progress.finish();
        let _ = writeln!(stdout, "{}", status_line(&pulled, &reference));
    }
    let _ = writeln!(stdout, "{reference}");
    Ok(0)
}

/// `run`'s pull: only when the policy says so; progress on stderr, so that the
/// container's stdout stays its own.
pub fn pull_for_run(
    name: &str,
    policy: PullPolicy,
    platform: Option<&str>,
    flags: &RegistryFlags,
    state_root: &Path,
) -> Result<(), CliError> {
    let store = Store::new(state_root);
    let present = store.resolve(name).is_ok();
    match (policy, present) {
        (PullPolicy::Never, _) | (PullPolicy::Missing, true) => return Ok(()),
        _ => {}
    }
    // An image id or a name the store has not: only names can be pulled.
    let reference = Reference::parse(name).map_err(crate::images::ImageError::Reference)?;
    if !present {
        eprintln!("Unable to find image '{}' locally", familiar(&reference));
    }
    let platform = match platform {
        Some(text) => Platform::parse(text)?,
        None => Platform::host(),
    };
    let client = client(state_root, flags)?;
    let progress = Drawn::stderr();
    let pulled = pull::pull(&client, &store, &reference, &platform, &progress)?;
    progress.finish();
    eprintln!("{}", status_line(&pulled, &reference));
    Ok(())
}

pub fn push(args: &PushArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let image = store.resolve(&args.name)?;
    let target = Reference::parse(&args.name).map_err(crate::images::ImageError::Reference)?;
    let client = client(state_root, &args.registry)?;
    let pushed = if args.quiet {
        push::push(&client, &store, &image, &target, &Silent)?
    } else {
        let progress = Drawn::stdout();
        let pushed = push::push(&client, &store, &image, &target, &progress)?;
        progress.finish();
        pushed
    };
    if args.quiet {
        println!("{}", pushed.digest);
    }
    Ok(0)
}

/// `login`'s server argument as a registry name: `https://host/v1/` → `host`,
/// Docker Hub's names → `docker.io`.
fn registry_of(server: Option<&str>) -> String {
    let server = server.unwrap_or(crate::images::reference::DOCKER_HUB);
    let server = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let server = server.split('/').next().unwrap_or(server);
    match server {
        "index.docker.io" | "registry-1.docker.io" | "" => {
            crate::images::reference::DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}

pub fn login(args: &LoginArgs, state_root: &Path) -> Result<i32, CliError> {
    let registry = registry_of(args.server.as_deref());
    let stdin = std::io::stdin();
    let username = match &args.username {
        Some(username) => username.clone(),
        None if stdin.is_terminal() && !args.password_stdin => prompt("Username: ", true)?,
        None => return Err(login_error("give the username with -u")),
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| login_error(&format!("failed to read the password from stdin: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(password) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        password.clone()
    } else if stdin.is_terminal() {
        prompt("Password: ", false)?
    } else {
        return Err(login_error("give the password with --password-stdin"));
    };
    if username.is_empty() || password.is_empty() {
        return Err(login_error(
            "the username and the password must not be empty",
        ));
    }
    let credentials = Credentials { username, password };
    let client = client(state_root, &args.registry)?;
    client.login(&registry, &credentials)?;
    let file = credential_file();
    if let Some(helper) = file.helper() {
        eprintln!(
            "WARNING! {} names the credential helper {helper:?}, which {} does not run (as root it would run a program of your choosing): the password goes into the file itself.",
            file.path.display(),
            crate::ENGINE
        );
    }
    file.save(&hosts::auth_key(&registry), &credentials)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted (base64) in {}.",
        file.path.display()
    );
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(args: &LogoutArgs) -> Result<i32, CliError> {
    let registry = registry_of(args.server.as_deref());
    let file = credential_file();
    if file.remove(&hosts::auth_key(&registry))? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

fn login_error(why: &str) -> CliError {
    CliError::Flag {
        flag: "login",
        value: String::new(),
        why: why.to_string(),
    }
}

/// Asks on the terminal; without echo for a password (termios(3): ECHO off,
/// restored afterwards).
fn prompt(question: &str, echo: bool) -> Result<String, CliError> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = if echo { None } else { tcgetattr(&stdin).ok() };
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, saved);
        eprintln!();
    }
    read.map_err(|e| login_error(&format!("failed to read the answer: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The bars of a terminal: one per layer, by its short digest.
type Bars = (
    indicatif::MultiProgress,
    Mutex<Vec<(String, indicatif::ProgressBar)>>,
);

/// Progress drawn as docker draws it: a bar per layer on a terminal
/// (indicatif), one line per change of state otherwise.
pub struct Drawn {
    out: Mutex<Box<dyn Write + Send>>,
    bars: Option<Bars>,
}

impl Drawn {
    /// Progress on stdout (`pull`, `push`).
    pub fn stdout() -> Drawn {
        let terminal = std::io::stdout().is_terminal();
        Drawn::new(
            terminal.then(indicatif::ProgressDrawTarget::stdout),
            Box::new(std::io::stdout()),
        )
    }

    /// Progress on stderr (`run`'s pull).
    pub fn stderr() -> Drawn {
        let terminal = std::io::stderr().is_terminal();
        Drawn::new(
            terminal.then(indicatif::ProgressDrawTarget::stderr),
            Box::new(std::io::stderr()),
        )
    }

    fn new(terminal: Option<indicatif::ProgressDrawTarget>, out: Box<dyn Write + Send>) -> Drawn {
        let bars = terminal.map(|target| {
            (
                indicatif::MultiProgress::with_draw_target(target),
                Mutex::new(Vec::new()),
            )
        });
        Drawn {
            out: Mutex::new(out),
            bars,
        }
    }

    fn bar(&self, id: &str) -> Option<indicatif::ProgressBar> {
        let (multi, bars) = self.bars.as_ref()?;
        let mut bars = bars.lock().expect("bars lock");
        if let Some((_, bar)) = bars.iter().find(|(i, _)| i == id) {
            return Some(bar.clone());
        }
        let bar = multi.add(indicatif::ProgressBar::new(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix}: {msg:<18} {wide_bar:.cyan/blue} {binary_bytes:>9}/{binary_total_bytes}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(id.to_string());
        bars.push((id.to_string(), bar.clone()));
        Some(bar)
    }

    /// Leaves the bars as they ended.
    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for (_, bar) in bars.lock().expect("bars lock").iter() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

impl Progress for Drawn {
    fn line(&self, text: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => {
                let mut out = self.out.lock().expect("output lock");
                let _ = writeln!(out, "{text}");
            }
        }
    }

    fn layer(&self, id: &str, status: Status) {
        if let Some(bar) = self.bar(id) {
            match status {
                Status::Downloading { done, total } | Status::Pushing { done, total } => {
                    bar.set_length(total);
                    bar.set_position(done);
                    bar.set_message(status.words());
                }
                Status::PullComplete
                | Status::AlreadyExists
                | Status::Pushed
                | Status::LayerExists
                | Status::Mounted { .. } => {
                    bar.set_style(
                        indicatif::ProgressStyle::with_template("{prefix}: {msg}")
                            .expect("a valid template"),
                    );
                    bar.finish_with_message(status.words());
                }
                _ => bar.set_message(status.words()),
            }
            return;
        }
        if !status.is_transfer() {
            let mut out = self.out.lock().expect("output lock");
            let _ = writeln!(out, "{id}: {}", status.words());
        }
    }
}
