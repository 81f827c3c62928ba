//! The container's log: what its stdout and stderr wrote, kept apart, each line
//! with the time the supervisor read it — docker's json-file format, one JSON
//! object per line, so `docker logs` habits and tools (jq) work on it:
//!
//! ```text
//! {"log":"listening on :8080\n","stream":"stdout","time":"2026-12-02T01:02:03.123456789Z"}
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock;

/// Which of the container's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its newline (none for a last line that had none).
    pub log: String,
    pub stream: Stream,
    /// RFC 3339 with nanoseconds, when the bytes were read.
    pub time: String,
}

/// A line longer than this is written in pieces (docker's json-file splits at
/// 16 KiB too), so one endless line cannot grow the supervisor's memory.
pub const MAX_LINE: usize = 16 * 1024;

/// Writes the log: the supervisor feeds it what it reads from the container's
/// pipes, in whatever pieces the reads return.
pub struct LogWriter {
    file: File,
    /// The bytes of each stream's unfinished line (stdout, stderr).
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (or creates, 0600) the log file for appending.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(LogWriter {
            file,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Takes `bytes` the container wrote on `stream`, read at `time`: writes one
    /// entry per complete line (with its newline) and keeps the rest for the next
    /// call — or writes it as an entry of its own once it reaches `MAX_LINE`.
    pub fn write(&mut self, stream: Stream, bytes: &[u8], time: SystemTime) -> io::Result<()> {
        // BEGIN SOLUTION ch08 "one JSON entry per line: the text, its stream, the time it was read"
        let pending = &mut self.pending[stream as usize];
        pending.extend_from_slice(bytes);
        let time = clock::rfc3339_nanos(time);
        let mut out = Vec::new();
        loop {
            let cut = match pending.iter().position(|b| *b == b'\n') {
                Some(newline) if newline < MAX_LINE => newline + 1,
                _ if pending.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let line: Vec<u8> = pending.drain(..cut).collect();
            let entry = Entry {
                log: String::from_utf8_lossy(&line).into_owned(),
                stream,
                time: time.clone(),
            };
            serde_json::to_writer(&mut out, &entry)?;
            out.push(b'\n');
        }
        self.file.write_all(&out)
        // END SOLUTION
    }

    /// Writes what is left of each stream's last line (at the end of the output).
    pub fn flush(&mut self, time: SystemTime) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if rest.is_empty() {
                continue;
            }
            let entry = Entry {
                log: String::from_utf8_lossy(&rest).into_owned(),
                stream,
                time: clock::rfc3339_nanos(time),
            };
            let mut line = serde_json::to_vec(&entry)?;
            line.push(b'\n');
            self.file.write_all(&line)?;
        }
        Ok(())
    }
}

/// Reads a log from `offset`: its entries (a line that is not one — a write cut
/// short — is skipped) and the offset after the last complete line.
pub fn read_from(path: &Path, offset: u64) -> io::Result<(Vec<Entry>, u64)> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(error) => return Err(error),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut at = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break; // the end, or a line still being written
        }
        at += read as u64;
        if let Ok(entry) = serde_json::from_slice::<Entry>(&line) {
            entries.push(entry);
        }
    }
    Ok((entries, at))
}

/// The size of the log now (where a follower starts reading new lines).
pub fn end(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_entries_with_their_stream_and_pieces_are_joined() {
        let dir = std::env::temp_dir().join(format!("ferry-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let mut log = LogWriter::open(&path).unwrap();
        let now = SystemTime::now();
        log.write(Stream::Stdout, b"hel", now).unwrap();
        log.write(Stream::Stderr, b"oops\n", now).unwrap();
        log.write(Stream::Stdout, b"lo\nwor", now).unwrap();
        log.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 1], now)
            .unwrap();
        log.flush(now).unwrap();
        let (entries, end) = read_from(&path, 0).unwrap();
        let texts: Vec<(Stream, usize)> = entries.iter().map(|e| (e.stream, e.log.len())).collect();
        assert_eq!(entries[0].log, "oops\n");
        assert_eq!(entries[1].log, "hello\n");
        assert_eq!(
            texts[2..],
            [(Stream::Stdout, MAX_LINE), (Stream::Stdout, 4)],
            "a long line in pieces: {texts:?}"
        );
        assert_eq!(end, std::fs::metadata(&path).unwrap().len());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
