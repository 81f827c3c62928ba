//! ferry — a container engine small enough to read in a week of evenings.
//!
//! Each module is one kernel concept and one chapter of the workshop book
//! (`chapters/`). `runtime` is the skeleton that calls them in the order a real
//! runtime (runc) uses; the chapters fill in its steps.
#![deny(unsafe_code)]

pub mod cgroups;
pub mod cli;
pub mod clock;
pub mod dockerfile;
pub mod engine;
pub mod env;
pub mod errors;
pub mod id;
pub mod images;
pub mod init;
pub mod mountinfo;
pub mod namespaces;
pub mod network;
pub mod note;
pub mod privileges;
pub mod process;
pub mod registry;
pub mod rootfs;
pub mod runtime;
pub mod safe_path;
pub mod seccomp;
pub mod signals;
#[allow(unsafe_code)]
pub mod sys;
pub mod terminal;

/// The engine's name as users see it: `ferry` here, `myferry` in the student's workshop.
/// Messages, the default state root and notes all derive from it, so the two engines
/// never touch each other's state.
pub const ENGINE: &str = env!("CARGO_PKG_NAME");
