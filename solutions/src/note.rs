//! Notes: one-line messages from the engine that are not errors.
//!
//! The workshop uses them for the ladder (see ARCHITECTURE.md): a stub of a later
//! chapter that sits on an earlier chapter's path prints one note and lets the
//! container run on without that protection, instead of panicking.

/// Prints `ENGINE: note: chapter N (topic) is not done yet — consequence` on stderr.
pub fn chapter_not_done(chapter: u32, topic: &str, consequence: &str) {
    eprintln!(
        "{}: note: chapter {chapter} ({topic}) is not done yet — {consequence}",
        crate::ENGINE
    );
}
