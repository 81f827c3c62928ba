//! What a pull or a push tells as it goes: one line per layer, by its short digest,
//! in docker's words. The CLI draws it (bars on a terminal, lines otherwise); the
//! registry code only reports.

/// The state of one layer, as docker's pull and push output names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Pull: queued ("Pulling fs layer").
    Waiting,
    /// Pull: its unpacked layer is in the store ("Already exists").
    AlreadyExists,
    /// Pull: bytes arrived so far, of the whole.
    Downloading { done: u64, total: u64 },
    /// Pull: the connection broke; going on where it broke with a Range request.
    Retrying { attempt: u32 },
    /// Pull: fetched, checked against its digest and unpacked ("Pull complete").
    PullComplete,
    /// Push: queued ("Preparing").
    Preparing,
    /// Push: bytes sent so far.
    Pushing { done: u64, total: u64 },
    /// Push: the registry has it already ("Layer already exists").
    LayerExists,
    /// Push: mounted from another repository of the registry ("Mounted from X").
    Mounted { from: String },
    /// Push: uploaded ("Pushed").
    Pushed,
}

impl Status {
    /// Docker's words for it.
    pub fn words(&self) -> String {
        match self {
            Status::Waiting => "Pulling fs layer".into(),
            Status::AlreadyExists => "Already exists".into(),
            Status::Downloading { .. } => "Downloading".into(),
            Status::Retrying { attempt } => format!("Retrying (attempt {attempt})"),
            Status::PullComplete => "Pull complete".into(),
            Status::Preparing => "Preparing".into(),
            Status::Pushing { .. } => "Pushing".into(),
            Status::LayerExists => "Layer already exists".into(),
            Status::Mounted { from } => format!("Mounted from {from}"),
            Status::Pushed => "Pushed".into(),
        }
    }

    /// Whether the line is a transfer in progress (drawn as a bar, not printed).
    pub fn is_transfer(&self) -> bool {
        matches!(self, Status::Downloading { .. } | Status::Pushing { .. })
    }
}

/// Where the reports go. Called from the download threads, hence `Sync`.
pub trait Progress: Sync {
    /// A line of its own ("latest: Pulling from library/busybox").
    fn line(&self, text: &str);
    /// Layer `id` (its short digest, 12 hex digits) is now `status`.
    fn layer(&self, id: &str, status: Status);
}

/// Reports nothing (`--quiet`).
pub struct Silent;

impl Progress for Silent {
    fn line(&self, _: &str) {}
    fn layer(&self, _: &str, _: Status) {}
}

/// The 12 hex digits docker shows for a layer.
pub fn short(digest: &crate::images::Digest) -> String {
    digest.hex()[..12].to_string()
}
