//! The image commands, as docker's: `images`, `load`, `save`, `import`, `tag`,
//! `rmi`, `history`, `image inspect | ls | rm | prune`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::run::CliError;
use super::table;
use crate::clock;
use crate::images::archive;
use crate::images::{Image, ImageError, Reference, Store};

/// `images [-q] [--digests] [-a]`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only the image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show each image's manifest digest
    #[arg(long)]
    pub digests: bool,
    /// Show untagged images too (they are always shown: accepted for docker's scripts)
    #[arg(short, long)]
    pub all: bool,
    /// Show full ids
    #[arg(long)]
    pub no_trunc: bool,
}

/// `load [-i FILE] [-q]`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this archive instead of stdin (an OCI layout or a docker save archive, plain or gzip)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Say nothing
    #[arg(short, long)]
    pub quiet: bool,
}

/// `save -o FILE IMAGE...`
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file (an OCI image layout that docker load reads too)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `import FILE|- [REPOSITORY[:TAG]]`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A tarball of a root filesystem, or - for stdin
    pub file: String,
    /// The name to give the new image
    pub reference: Option<String>,
}

/// `tag SOURCE TARGET`
#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

/// `rmi [-f] IMAGE...`
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image a container uses, or with several names, all of them
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `history IMAGE`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub image: String,
    /// Do not shorten the commands
    #[arg(long)]
    pub no_trunc: bool,
}

/// `image COMMAND`
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images
    Rm(RmiArgs),
    /// Remove images without a name (all unused images with --all)
    Prune {
        /// Every image no container uses
        #[arg(short, long)]
        all: bool,
        /// Do not ask (ferry never asks)
        #[arg(short, long)]
        force: bool,
    },
    /// Show how an image was made
    History(HistoryArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    Import(ImportArgs),
    Tag(TagArgs),
    /// Download an image from a registry
    Pull(super::registry::PullArgs),
    /// Upload an image to a registry
    Push(super::registry::PushArgs),
}

fn reference(text: &str) -> Result<Reference, CliError> {
    Reference::parse(text).map_err(|e| CliError::Image(ImageError::Reference(e)))
}

/// docker's sizes: decimal units, three significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    let text = if value >= 100.0 || unit == 0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

fn short_id(image: &Image, full: bool) -> String {
    let hex = image.id().hex();
    if full {
        image.id().to_string()
    } else {
        hex[..12].to_string()
    }
}

/// `images`
pub fn images(args: &ImagesArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let images = store.images()?;
    if args.quiet {
        let mut seen = Vec::new();
        for image in &images {
            let id = short_id(image, args.no_trunc);
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(0);
    }
    let now = SystemTime::now();
    let mut rows = Vec::new();
    for image in &images {
        let created = image
            .config
            .created
            .as_deref()
            .map_or("N/A".to_string(), |c| clock::ago(c, now));
        let size = human_size(store.unpacked_size(image));
        let names: Vec<(String, String)> = if image.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            image
                .names
                .iter()
                .map(|n| {
                    (
                        n.familiar_name(),
                        n.tag.clone().unwrap_or_else(|| "<none>".into()),
                    )
                })
                .collect()
        };
        for (repository, tag) in names {
            let mut row = vec![repository, tag];
            if args.digests {
                row.push(image.manifest_digest.to_string());
            }
            row.extend([
                short_id(image, args.no_trunc),
                created.clone(),
                size.clone(),
            ]);
            rows.push(row);
        }
    }
    let header: &[&str] = if args.digests {
        &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    print!("{}", table::render(header, &rows));
    Ok(0)
}

/// `load`
pub fn load(args: &LoadArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let loaded = match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| ImageError::Io {
                action: "open",
                path: path.clone(),
                source,
            })?;
            archive::load(&store, file)?
        }
        None => archive::load(&store, std::io::stdin().lock())?,
    };
    if !args.quiet {
        for image in &loaded {
            if image.names.is_empty() {
                println!("Loaded image ID: {}", image.id);
            }
            for name in &image.names {
                println!(
                    "Loaded image: {}:{}",
                    name.familiar_name(),
                    name.tag.as_deref().unwrap_or("latest")
                );
            }
        }
    }
    Ok(0)
}

/// `save`
pub fn save(args: &SaveArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let mut chosen = Vec::new();
    for text in &args.images {
        let image = store.resolve(text)?;
        // Saved under the name asked for, or all its names for an id.
        let names = match Reference::parse(text) {
            Ok(name) if image.names.contains(&name) => vec![name],
            _ => image.names.clone(),
        };
        chosen.push((image, names));
    }
    // A private temporary file next to the output (O_CREAT|O_EXCL|O_NOFOLLOW, 0600,
    // a random name): nothing planted at a guessable name is written through.
    let dir = args
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let random = crate::id::ContainerId::generate().map_err(|source| ImageError::Io {
        action: "name",
        path: dir.to_path_buf(),
        source,
    })?;
    let temp = dir.join(format!(".{}.partial", &random.as_str()[..16]));
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
    }
    .map_err(|source| ImageError::Io {
        action: "create",
        path: temp.clone(),
        source,
    })?;
    let written = archive::save(&store, &chosen, std::io::BufWriter::new(file));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    std::fs::rename(&temp, &args.output).map_err(|source| ImageError::Io {
        action: "rename",
        path: args.output.clone(),
        source,
    })?;
    Ok(0)
}

/// `import`
pub fn import(args: &ImportArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let name = args.reference.as_deref().map(reference).transpose()?;
    let loaded = if args.file == "-" {
        archive::import(&store, std::io::stdin().lock(), name)?
    } else {
        let path = PathBuf::from(&args.file);
        let file = std::fs::File::open(&path).map_err(|source| ImageError::Io {
            action: "open",
            path,
            source,
        })?;
        archive::import(&store, file, name)?
    };
    println!("{}", loaded.id);
    Ok(0)
}

/// `tag`
pub fn tag(args: &TagArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let image = store.resolve(&args.source)?;
    let target = reference(&args.target)?;
    let descriptor = crate::images::oci::Descriptor {
        media_type: crate::images::oci::MEDIA_OCI_MANIFEST.to_string(),
        digest: image.manifest_digest.clone(),
        size: std::fs::metadata(store.blob_path(&image.manifest_digest))
            .map(|m| m.len())
            .unwrap_or(0),
        annotations: Default::default(),
        platform: None,
    };
    store.add_image(&descriptor, &[target])?;
    Ok(0)
}

/// `rmi`
pub fn rmi(args: &RmiArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    for text in &args.images {
        let image = match store.resolve(text) {
            Ok(image) => image,
            // A name whose image is broken in the store (a blob lost or changed
            // behind its back) can still be removed.
            Err(ImageError::NotFound { .. })
                if Reference::parse(text).is_ok_and(|r| store.untag(&r).is_ok()) =>
            {
                println!("Untagged: {text}");
                store.collect_garbage()?;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        if let (false, Some(container)) = (args.force, container_using(state_root, &image)) {
            return Err(ImageError::InUse {
                name: text.clone(),
                container,
            }
            .into());
        }
        let by_name = Reference::parse(text)
            .ok()
            .filter(|n| image.names.contains(n));
        match by_name {
            Some(name) if image.names.len() > 1 || args.force => {
                println!(
                    "Untagged: {}:{}",
                    name.familiar_name(),
                    name.tag.as_deref().unwrap_or("latest")
                );
                if store.untag(&name)? {
                    store.collect_garbage()?;
                    println!("Deleted: {}", image.id());
                }
            }
            _ => {
                for name in &image.names {
                    println!(
                        "Untagged: {}:{}",
                        name.familiar_name(),
                        name.tag.as_deref().unwrap_or("latest")
                    );
                }
                store.remove_image(&image)?;
                println!("Deleted: {}", image.id());
            }
        }
    }
    Ok(0)
}

/// The short id of a container that runs `image`, if any (its spec's annotation).
fn container_using(state_root: &Path, image: &Image) -> Option<String> {
    crate::engine::bundle::container_whose_spec(state_root, |spec| {
        spec.annotation(crate::runtime::spec::ANNOTATION_IMAGE) == Some(image.id().as_str())
    })
}

/// `image prune`
pub fn prune(all: bool, state_root: &Path) -> Result<i32, CliError> {
    crate::engine::sweep::sweep(state_root);
    let store = Store::new(state_root);
    let mut reclaimed = 0;
    println!("Deleted Images:");
    for image in store.images()? {
        let unused = container_using(state_root, &image).is_none();
        if unused && (all || image.names.is_empty()) {
            reclaimed += store.unpacked_size(&image);
            for name in &image.names {
                println!("untagged: {name}");
            }
            store.remove_image(&image)?;
            println!("deleted: {}", image.id());
        }
    }
    println!();
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

/// `history`
pub fn history(args: &HistoryArgs, state_root: &Path) -> Result<i32, CliError> {
    let store = Store::new(state_root);
    let image = store.resolve(&args.image)?;
    let now = SystemTime::now();
    let sizes = store.layer_sizes(&image);
    let mut layer = 0;
    let mut rows = Vec::new();
    for (at, step) in image.config.history.iter().enumerate() {
        let size = if step.empty_layer {
            0
        } else {
            let size = sizes.get(layer).copied().unwrap_or(0);
            layer += 1;
            size
        };
        let id = if at + 1 == image.config.history.len() {
            short_id(&image, false)
        } else {
            "<missing>".to_string()
        };
        let mut by = step.created_by.clone().unwrap_or_default();
        if !args.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let created = step
            .created
            .as_deref()
            .map_or("N/A".to_string(), |c| clock::ago(c, now));
        rows.push(vec![
            id,
            created,
            by,
            human_size(size),
            step.comment.clone().unwrap_or_default(),
        ]);
    }
    rows.reverse();
    print!(
        "{}",
        table::render(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &rows
        )
    );
    Ok(0)
}

/// `image inspect`: docker's JSON shape.
pub fn inspect(images: &[String], state_root: &Path) -> Result<i32, CliError> {
    let shown = images
        .iter()
        .map(|text| inspect_value(text, state_root))
        .collect::<Result<Vec<_>, _>>()?;
    println!("{}", serde_json::to_string_pretty(&shown).expect("JSON"));
    Ok(0)
}

/// One image as `image inspect` shows it (docker's field names).
pub fn inspect_value(text: &str, state_root: &Path) -> Result<serde_json::Value, CliError> {
    let store = Store::new(state_root);
    let image = store.resolve(text)?;
    let tags: Vec<String> = image
        .names
        .iter()
        .map(|n| {
            format!(
                "{}:{}",
                n.familiar_name(),
                n.tag.as_deref().unwrap_or("latest")
            )
        })
        .collect();
    Ok(serde_json::json!({
        "Id": image.id(),
        "RepoTags": tags,
        "RepoDigests": image.names.iter().map(|n| format!("{}@{}", n.familiar_name(), image.manifest_digest)).collect::<Vec<_>>(),
        "Created": image.config.created,
        "Config": image.config.config,
        "Architecture": image.config.architecture,
        "Os": image.config.os,
        "Size": store.unpacked_size(&image),
        "RootFS": {"Type": image.config.rootfs.kind, "Layers": image.config.rootfs.diff_ids},
        "Metadata": {"LastTagTime": serde_json::Value::Null},
    }))
}
