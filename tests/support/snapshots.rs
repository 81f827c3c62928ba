//! Snapshot tests with insta: one project macro, [`snapshot!`](crate::snapshot), and
//! shared filters so that every snapshot is stable across runs, hosts and engines.

use super::TestHost;

/// insta settings with the project's shared filters: the test's temp dir is `[ROOT]`,
/// the engine's name `[BIN]`, container ids `[ID]`, the given tokens `[TOKEN]`,
/// process ids after "pid" `[PID]`, timestamps `[TIME]`.
pub fn snapshot_settings(host: &TestHost, tokens: &[&str]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/snapshots"));
    settings.add_filter(&regex_escape(host.dir.to_str().unwrap()), "[ROOT]");
    for token in tokens {
        settings.add_filter(&regex_escape(token), "[TOKEN]");
    }
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[ID]");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[ID]");
    settings.add_filter(r"\bmyferry\b", "[BIN]");
    settings.add_filter(r"\bferry\b", "[BIN]");
    settings.add_filter(r"\bpid \d{2,}", "pid [PID]");
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
        "[TIME]",
    );
    settings
}

/// Snapshot `value` under `name` with [`snapshot_settings`].
#[macro_export]
macro_rules! snapshot {
    ($host:expr, $tokens:expr, $name:expr, $value:expr) => {
        support::snapshot_settings(&$host, $tokens).bind(|| insta::assert_snapshot!($name, $value))
    };
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
