//! How ferry reports failures: exit codes as docker's, messages that teach.
//!
//! * 125 — ferry itself failed (bad flags included), 126 — the command is not
//!   executable, 127 — the command was not found; otherwise the command's own code.
//! * A `todo!()` left in the engine is not a crash but "your turn": it is reported
//!   as "chapter N (topic) is not done yet", exit 125, never as the container's
//!   exit code.

use std::any::Any;
use std::cell::RefCell;
use std::error::Error;

/// ferry's own failure (docker's convention).
pub const EXIT_ENGINE_FAILED: i32 = 125;
/// The command exists but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The command was not found in the container.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Joins an error and its sources into one sentence: "failed to a: failed to b: cause".
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces Rust's panic printout with nothing: `describe_panic` reports it instead,
/// once, in ferry's own words. The location is kept for internal errors.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_LOCATION.with(|cell| *cell.borrow_mut() = location);
    }));
}

/// Turns a caught panic into the message ferry prints. `todo!("chapter N (topic):
/// ...")` stubs read as "chapter N (topic) is not done yet: ..."; anything else is a
/// bug in ferry.
pub fn describe_panic(payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    let stub = message
        .strip_prefix("not yet implemented: ")
        .unwrap_or(&message);
    if let Some((chapter, what)) = stub
        .strip_prefix("chapter ")
        .and_then(|rest| rest.split_once(": "))
    {
        return format!("chapter {chapter} is not done yet: {what}");
    }
    let location = PANIC_LOCATION
        .with(|cell| cell.borrow().clone())
        .unwrap_or_else(|| "unknown location".to_string());
    format!(
        "internal error at {location}: {message} (this is a bug in {})",
        crate::ENGINE
    )
}
