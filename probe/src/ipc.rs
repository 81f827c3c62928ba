//! System V IPC, for the IPC namespace: the test creates a message queue and a shared memory
//! segment on the host with `ipc-create KEY`, looks for the same key inside a container with
//! `ipc-find KEY` (a container with its own IPC namespace finds nothing), and removes them with
//! `ipc-remove MSG_ID SHM_ID`.

use std::io;

use crate::json::{errno_fields, Json};
use crate::sys;

/// The size of the segment `ipc-create` makes: one page, never attached.
const SEGMENT_SIZE: usize = 4096;

/// Read and write for the owner only.
const MODE: i32 = 0o600;

/// `{"msg_id", "shm_id", "errno", "error"}`: creates a new message queue and a new segment for
/// `key`, failing (EEXIST) rather than reusing existing ones.
///
/// The two are independent: either id may be null. `errno` and `error` describe the first
/// failure, and `error` names the call ("shmget: File exists").
pub fn create(key: i32) -> Json {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | MODE;
    let msg = sys::msgget(key, flags);
    let shm = sys::shmget(key, SEGMENT_SIZE, flags);
    let (errno, error) = match (&msg, &shm) {
        (Err(e), _) => labelled("msgget", e),
        (_, Err(e)) => labelled("shmget", e),
        _ => (Json::Null, Json::Null),
    };
    Json::object([
        ("msg_id", msg.ok().into()),
        ("shm_id", shm.ok().into()),
        ("errno", errno),
        ("error", error),
    ])
}

/// `{"msg_found", "shm_found", "msg_errno", "shm_errno"}`: opens, without creating, the message
/// queue and the segment of `key`. Not found is ENOENT.
pub fn find(key: i32) -> Json {
    let msg = sys::msgget(key, 0);
    let shm = sys::shmget(key, 0, 0);
    Json::object([
        ("msg_found", Json::from(msg.is_ok())),
        ("shm_found", Json::from(shm.is_ok())),
        ("msg_errno", raw_errno(&msg)),
        ("shm_errno", raw_errno(&shm)),
    ])
}

/// `{"msg_removed", "shm_removed"}`: removes message queue `msg_id` and segment `shm_id`. An id
/// that does not exist (-1, say) is simply not removed.
pub fn remove(msg_id: i32, shm_id: i32) -> Json {
    Json::object([
        ("msg_removed", Json::from(sys::msg_remove(msg_id).is_ok())),
        ("shm_removed", Json::from(sys::shm_remove(shm_id).is_ok())),
    ])
}

fn labelled(call: &str, err: &io::Error) -> (Json, Json) {
    match errno_fields(err) {
        (errno, Json::Str(words)) => (errno, Json::Str(format!("{call}: {words}"))),
        fields => fields,
    }
}

fn raw_errno<T>(result: &io::Result<T>) -> Json {
    result
        .as_ref()
        .err()
        .and_then(io::Error::raw_os_error)
        .into()
}
