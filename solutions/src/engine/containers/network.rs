//! A container's network at each start (chapter 10): what its record asks for,
//! handed to `network::attach`; `container:NAME` resolved to that container's
//! namespace here, where records are known.

use super::{Containers, Record, Status};
use crate::engine::etc_files;
use crate::engine::EngineError;
use crate::network::{self, Attachment, Mode};

/// Puts container `record` on its network; it leaves when the attachment is
/// detached (or dropped).
pub fn attach(containers: &Containers, record: &Record) -> Result<Attachment, EngineError> {
    let wanted = &record.supervision.network;
    let mode = wanted.mode.clone().unwrap_or(Mode::None);
    let share_from = match &mode {
        Mode::Container(other) => Some(namespace_of(containers, other)?),
        _ => None,
    };
    let request = network::Request {
        id: record.id.clone(),
        name: record.short_name().to_string(),
        mode,
        ports: wanted.ports.clone(),
        aliases: wanted.aliases.clone(),
        hosts_file: containers.dir(&record.id).join("hosts"),
        hosts: etc_files::hosts_with,
        hostname: record.config.hostname.clone(),
        extra_hosts: wanted.extra_hosts.clone(),
        share_from,
    };
    Ok(network::attach(&containers.root, &request)?)
}

/// The network namespace of running container `name`, for `container:NAME`.
fn namespace_of(containers: &Containers, name: &str) -> Result<std::path::PathBuf, EngineError> {
    let other = containers
        .get(name)
        .map_err(|error| EngineError::Store(error.to_string()))?;
    let process = other
        .supervision
        .process
        .filter(|_| other.state.status == Status::Running);
    let Some(process) = process else {
        return Err(EngineError::Store(format!(
            "cannot join the network of container {name}: it is not running (start it first)"
        )));
    };
    if crate::process::start_time(process.pid) != Some(process.start_time) {
        return Err(EngineError::Store(format!(
            "cannot join the network of container {name}: its process is gone"
        )));
    }
    Ok(format!("/proc/{}/ns/net", process.pid).into())
}
