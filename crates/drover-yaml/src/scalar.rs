//! What an untagged scalar means, word for word as serde_yaml_ng 0.10 decides it: null, boolean,
//! integer (decimal, `0x`, `0o`, `0b`, signed, 128-bit), float (`.inf`, `.nan`) or text.
//!
//! The fast reader must hand serde exactly the values serde_yaml_ng hands it, or a file would
//! mean one thing on the fast path and another on the plain one; so these functions are a port of
//! serde_yaml_ng's private ones (`de.rs`, MIT or Apache-2.0), kept in the same order and shape to
//! make a comparison with a future version easy. This module knows no event, no parser and no
//! file format: text in, meaning out.

use std::num::ParseIntError;

use serde::de::Visitor;

/// `~`, `null`, `Null`, `NULL` (an empty plain scalar is null too, checked by the callers).
pub(crate) fn parse_null(scalar: &str) -> bool {
    matches!(scalar, "null" | "Null" | "NULL" | "~")
}

pub(crate) fn parse_bool(scalar: &str) -> Option<bool> {
    match scalar {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A radix parser such as `u64::from_str_radix`.
type FromStrRadix<T> = fn(&str, u32) -> Result<T, ParseIntError>;

pub(crate) fn parse_unsigned_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) {
        return None;
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

pub(crate) fn parse_signed_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        unpositive
    } else {
        scalar
    };
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
        if let Some(rest) = scalar
            .strip_prefix('-')
            .and_then(|rest| rest.strip_prefix(prefix))
        {
            if let Ok(int) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_negative_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix) {
            if let Ok(int) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(scalar, 10).ok()
}

pub(crate) fn parse_f64(scalar: &str) -> Option<f64> {
    let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        unpositive
    } else {
        scalar
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = scalar {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = scalar {
        return Some(f64::NAN.copysign(1.0));
    }
    if let Ok(float) = unpositive.parse::<f64>() {
        if float.is_finite() {
            return Some(float);
        }
    }
    None
}

/// Leading zeros followed by digits (`0123`) are text in YAML 1.2, not a number.
fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The visitor back when `scalar` is no integer, so the caller can try the next meaning.
fn visit_int<'de, V: Visitor<'de>, E: serde::de::Error>(
    visitor: V,
    scalar: &str,
) -> Result<Result<V::Value, E>, V> {
    if let Some(int) = parse_unsigned_int(scalar, u64::from_str_radix) {
        return Ok(visitor.visit_u64(int));
    }
    if let Some(int) = parse_negative_int(scalar, i64::from_str_radix) {
        return Ok(visitor.visit_i64(int));
    }
    if let Some(int) = parse_unsigned_int(scalar, u128::from_str_radix) {
        return Ok(visitor.visit_u128(int));
    }
    if let Some(int) = parse_negative_int(scalar, i128::from_str_radix) {
        return Ok(visitor.visit_i128(int));
    }
    Err(visitor)
}

/// A plain scalar handed to `deserialize_any`: null, boolean, integer, float, else text.
/// `borrowed` is the same text when it is a slice of the input, which serde may keep.
pub(crate) fn visit_untagged_scalar<'de, V: Visitor<'de>, E: serde::de::Error>(
    visitor: V,
    scalar: &str,
    borrowed: Option<&'de str>,
) -> Result<V::Value, E> {
    if scalar.is_empty() || parse_null(scalar) {
        return visitor.visit_unit();
    }
    if let Some(boolean) = parse_bool(scalar) {
        return visitor.visit_bool(boolean);
    }
    let visitor = match visit_int(visitor, scalar) {
        Ok(result) => return result,
        Err(visitor) => visitor,
    };
    if !digits_but_not_number(scalar) {
        if let Some(float) = parse_f64(scalar) {
            return visitor.visit_f64(float);
        }
    }
    match borrowed {
        Some(borrowed) => visitor.visit_borrowed_str(borrowed),
        None => visitor.visit_str(scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_serde_yaml_ng_reads_them() {
        assert_eq!(parse_unsigned_int("0x1F", u64::from_str_radix), Some(31));
        assert_eq!(parse_unsigned_int("+12", u64::from_str_radix), Some(12));
        assert_eq!(parse_unsigned_int("012", u64::from_str_radix), None);
        assert_eq!(parse_unsigned_int("-1", u64::from_str_radix), None);
        assert_eq!(parse_signed_int("-0x10", i64::from_str_radix), Some(-16));
        assert_eq!(parse_signed_int("++1", i64::from_str_radix), None);
        assert_eq!(parse_f64("-.INF"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64("1e3"), Some(1000.0));
        assert_eq!(parse_f64("inf"), None);
    }
}
