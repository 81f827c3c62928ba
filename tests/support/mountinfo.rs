//! /proc/PID/mountinfo read the way the harness needs it (see proc_pid_mountinfo(5)).

/// (mount point, filesystem type) of each line: the 5th field, and the one after
/// the lone `-` that ends the optional fields.
pub fn mount_table(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((
                fields.get(4)?.to_string(),
                fields.get(dash + 1)?.to_string(),
            ))
        })
        .collect()
}
