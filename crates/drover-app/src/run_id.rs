//! The one rule for run ids, shared by the API (`run_id` in request bodies) and the CLI
//! (`--run-id`): letters, digits, `.`, `_` and `-`, 1 to 128 of them, so that an id is safe in
//! a URL path, a `Location` header, a file name and a terminal. Generated ids
//! (`CLUSTER-YYYYMMDD-HHMMSS`) follow it whenever the cluster name does.
//!
//! This module knows only the text of an id; it must not know the store or HTTP.

/// The rule as a regular expression, for the OpenAPI document.
pub const RUN_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,128}$";

/// The longest run id accepted.
pub const RUN_ID_MAX_CHARS: usize = 128;

/// `Ok` when `id` follows the rule, else why not (without echoing control characters).
pub fn check_run_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > RUN_ID_MAX_CHARS {
        return Err(format!(
            "is {} characters long; at most {RUN_ID_MAX_CHARS}",
            id.chars().count()
        ));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(bad) => Err(format!(
            "contains {:?}; only letters, digits, '.', '_' and '-' are allowed",
            bad.escape_default().to_string()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_one_rule() {
        for good in ["g1", "pool-a-20260101-120000", "a.b_c-D9", &"x".repeat(128)] {
            assert_eq!(check_run_id(good), Ok(()), "{good}");
        }
        for bad in ["", "a/b", "a b", "a\u{7}b", "é", "a\nb", &"x".repeat(129)] {
            assert!(check_run_id(bad).is_err(), "{bad:?}");
        }
    }
}
