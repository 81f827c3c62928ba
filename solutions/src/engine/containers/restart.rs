//! Restart policies (`--restart`), as docker's: whether a container that ended
//! is started again, and after how long. The supervisor applies them; they hold
//! only while it lives (docker's daemon also restarts containers at boot: ferry
//! has no daemon).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// docker's `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `no`, `on-failure`, `always` or `unless-stopped`.
    pub name: String,
    /// on-failure's limit (0: no limit).
    pub maximum_retry_count: u32,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            name: "no".to_string(),
            maximum_retry_count: 0,
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    /// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
    fn from_str(text: &str) -> Result<RestartPolicy, String> {
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let maximum_retry_count = match (name, count) {
            ("no" | "always" | "unless-stopped", None) => 0,
            ("on-failure", None) => 0,
            ("on-failure", Some(count)) => count
                .parse()
                .map_err(|_| format!("maximum retry count must be a number, not {count:?}"))?,
            ("no" | "always" | "unless-stopped", Some(_)) => {
                return Err(format!(
                    "maximum retry count cannot be used with restart policy '{name}'"
                ))
            }
            _ => {
                return Err("use no, always, unless-stopped, on-failure or on-failure:N".to_string())
            }
        };
        Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count,
        })
    }
}

/// Whether a container that ended with `exit_code`, already restarted
/// `restarts` times, starts again under `policy`. A container the user stopped
/// (`stop`, `kill`, `rm -f`) stays stopped whatever the policy.
pub fn should_restart(
    policy: &RestartPolicy,
    exit_code: i32,
    restarts: u32,
    stopped_by_user: bool,
) -> bool {
    // BEGIN SOLUTION ch08 "does the restart policy start this container again?"
    if stopped_by_user {
        return false;
    }
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            exit_code != 0
                && (policy.maximum_retry_count == 0 || restarts < policy.maximum_retry_count)
        }
        _ => false,
    }
    // END SOLUTION
}

/// How long to wait before restart number `restarts + 1`: docker's back-off,
/// 100 ms doubling, at most a minute.
pub fn delay(restarts: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << restarts.min(10))).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_decide_as_dockers() {
        let policy = |text: &str| text.parse::<RestartPolicy>().unwrap();
        assert_eq!(policy("on-failure:2").maximum_retry_count, 2);
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        assert!("always:3".parse::<RestartPolicy>().is_err());
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!(!should_restart(&policy("no"), 1, 0, false));
        assert!(should_restart(&policy("on-failure:2"), 1, 1, false));
        assert!(!should_restart(&policy("on-failure:2"), 1, 2, false));
        assert!(!should_restart(&policy("on-failure"), 0, 0, false));
        assert!(should_restart(&policy("always"), 0, 7, false));
        assert!(!should_restart(&policy("always"), 137, 0, true));
        assert_eq!(delay(0), Duration::from_millis(100));
        assert_eq!(delay(3), Duration::from_millis(800));
        assert_eq!(delay(40), Duration::from_secs(60));
    }
}
