//! A step's changes into the store: the overlay's upper directory snapshotted as
//! a gzip layer (`images::layer::snapshot`), stored and unpacked like a pulled
//! one, and images written over the layers. `ferry commit` is the same with a
//! container's upper directory.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::stage::StageState;
use super::BuildError;
use crate::clock;
use crate::images::layer::snapshot::{snapshot, SnapshotOptions};
use crate::images::oci::{self, Descriptor, History, ImageConfig, RunConfig};
use crate::images::{Digest, Image, Store};

/// Snapshots `upper` into a layer of the store, over the layers `below` (diff
/// ids, bottom first). `None` when nothing changed: the step is an empty layer.
/// `mount_points` are the engine's own mount targets, left out when empty.
pub fn store_layer(
    store: &Store,
    upper: &Path,
    mount_points: &[&str],
    clamp_mtime: Option<u64>,
    below: &[Digest],
) -> Result<Option<(Descriptor, Digest)>, BuildError> {
    let temp = store.temp_path("snapshot")?;
    let result = (|| {
        let io_error =
            |e: std::io::Error| BuildError::Step(format!("failed to write the layer: {e}"));
        let file = File::create(&temp).map_err(io_error)?;
        let mut out = std::io::BufWriter::new(file);
        let options = SnapshotOptions {
            mount_points,
            clamp_mtime,
        };
        let snapshot = snapshot(upper, &options, &mut out)?;
        out.flush().map_err(io_error)?;
        drop(out);
        if snapshot.entries == 0 {
            return Ok(None);
        }
        let descriptor = Descriptor {
            media_type: oci::MEDIA_OCI_LAYER_GZIP.to_string(),
            digest: snapshot.digest.clone(),
            size: snapshot.size,
            annotations: Default::default(),
            platform: None,
        };
        let mut diff_ids = below.to_vec();
        diff_ids.push(snapshot.diff_id.clone());
        let chain = oci::chain_ids(&diff_ids).pop().expect("one layer at least");
        let file = File::open(&temp).map_err(io_error)?;
        store.put_layer(file, &descriptor, &snapshot.diff_id, &chain)?;
        Ok(Some((descriptor, snapshot.diff_id)))
    })();
    let _ = std::fs::remove_file(&temp);
    result
}

/// The image's manifest descriptor, for the index.
pub fn descriptor_of(store: &Store, image: &Image) -> Result<Descriptor, BuildError> {
    let size = std::fs::metadata(store.blob_path(&image.manifest_digest))
        .map(|m| m.len())
        .map_err(|e| BuildError::Step(format!("failed to read the manifest: {e}")))?;
    Ok(Descriptor {
        media_type: image
            .manifest
            .media_type
            .clone()
            .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string()),
        digest: image.manifest_digest.clone(),
        size,
        annotations: Default::default(),
        platform: None,
    })
}

/// `image` with `labels` added to its config (`build --label`).
pub fn with_labels(
    store: &Store,
    image: &Image,
    labels: &[(String, String)],
) -> Result<Image, BuildError> {
    let mut config = image.config.clone();
    let run = config.config.get_or_insert_with(RunConfig::default);
    let map = run.labels.get_or_insert_with(Default::default);
    for (key, value) in labels {
        map.insert(key.clone(), value.clone());
    }
    let manifest = store.write_image(&config, &image.manifest.layers)?;
    Ok(store.image_of_manifest(&manifest.digest)?)
}

/// What `ferry commit` is asked.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// `-m`: the history entry's comment.
    pub message: Option<String>,
    /// `-a`: the author.
    pub author: Option<String>,
    /// `-c`: Dockerfile instructions for the config (`CMD ["sh"]`, `ENV A=b`).
    pub changes: Vec<String>,
}

/// The instructions `commit --change` takes (docker's list, plus STOPSIGNAL).
const CHANGES: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
];

/// `ferry commit`: the container's upper directory as a new layer over its
/// image, the changes applied to the config, stored and named `tag`.
pub fn commit_container(
    state_root: &Path,
    container: &str,
    request: &Commit,
    tag: Option<&crate::images::Reference>,
) -> Result<Image, BuildError> {
    let containers = crate::engine::containers::Containers::new(state_root);
    let record = containers
        .get(container)
        .map_err(super::steps::container_error)?;
    let store = Store::new(state_root);
    let image = store
        .resolve(&record.config.image)
        .or_else(|_| store.resolve(&record.image))
        .map_err(|_| {
            BuildError::Step(format!(
                "container {container} was not made from an image of this store (--rootfs, or its image was removed): there is nothing to commit onto"
            ))
        })?;
    let mut state = StageState::new(
        &super::Plan {
            stages: Vec::new(),
            global_args: Vec::new(),
            target: 0,
            order: Vec::new(),
        },
        0,
        &super::Request::default(),
        Some(&image),
    );
    for change in &request.changes {
        let text = format!("FROM scratch\n{change}\n");
        let parsed = crate::dockerfile::parse(&text)
            .map_err(|e| BuildError::Step(format!("--change {change:?}: {}", e.message)))?;
        for instruction in parsed.stages.iter().flat_map(|s| &s.instructions) {
            let name = instruction.kind.name();
            if !CHANGES.contains(&name) {
                return Err(BuildError::Step(format!(
                    "--change {change:?}: {name} cannot be applied by commit; it takes {}",
                    CHANGES.join(", ")
                )));
            }
            state
                .apply_metadata(&instruction.kind)
                .map_err(|why| BuildError::Step(format!("--change {change:?}: {why}")))?;
        }
    }
    let dir = containers.dir(&record.id);
    let targets = mount_targets(&dir);
    let mount_points: Vec<&str> = targets.iter().map(String::as_str).collect();
    let _lease = store.lease()?;
    let layer = store_layer(
        &store,
        &dir.join("upper"),
        &mount_points,
        None,
        &image.config.rootfs.diff_ids,
    )?;
    let mut config: ImageConfig = state.config;
    let mut layers = image.manifest.layers.clone();
    let created = clock::rfc3339(std::time::SystemTime::now());
    let empty_layer = layer.is_none();
    if let Some((descriptor, diff_id)) = layer {
        layers.push(descriptor);
        config.rootfs.diff_ids.push(diff_id);
    }
    if request.author.is_some() {
        config.author = request.author.clone();
    }
    let command: Vec<String> = std::iter::once(record.path.clone())
        .chain(record.args.iter().cloned())
        .collect();
    config.created = Some(created.clone());
    config.history.push(History {
        created: Some(created),
        created_by: Some(command.join(" ")),
        comment: request.message.clone(),
        empty_layer,
    });
    let manifest = store.write_image(&config, &layers)?;
    let tags: Vec<crate::images::Reference> = tag.into_iter().cloned().collect();
    store.add_image(&manifest, &tags)?;
    Ok(store.image_of_manifest(&manifest.digest)?)
}

/// The mount targets of the container in `dir` (from its spec), relative to its
/// root: the empty directories and files the runtime made in its upper for them,
/// which a snapshot leaves out (docker's commit does the same).
pub fn mount_targets(dir: &Path) -> Vec<String> {
    let spec = crate::engine::containers::read_spec(dir);
    spec.iter()
        .flat_map(|s| s.mounts.iter())
        .map(|m| m.destination.trim_start_matches('/').to_string())
        .collect()
}
