//! CloudStack's request signature, as the management server checks it
//! (apache/cloudstack `server/src/main/java/com/cloud/api/ApiServer.java`, `verifyRequest`):
//! every parameter except `signature`, sorted by name (Java's `Collections.sort`: case-sensitive,
//! by UTF-16 code unit), each value encoded with `java.net.URLEncoder` and `+` replaced by `%20`,
//! joined as `name=value&…`, the whole string lower-cased, HMAC-SHA1 with the secret key,
//! Base64. With `signatureVersion=3` an `expires` parameter (`yyyy-MM-dd'T'HH:mm:ssZ`) is
//! required and a request past it is refused. PyPI `cs` (exoscale/cs `cs/client.py`, `_sign`,
//! `cs_encode`) signs the same string.
//!
//! Pure functions: this module must not know HTTP or the management server.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Why a request's signature is refused (the server answers every one of them with the same 401).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    MissingSignatureOrKey,
    UnknownApiKey,
    MissingExpires,
    BadExpires,
    Expired,
    Mismatch,
}

/// `java.net.URLEncoder.encode(value, "UTF-8").replaceAll("\\+", "%20")`: letters, digits and
/// `.-*_` stay, a space becomes `%20`, every other byte `%XX` (upper-case hex).
pub fn java_url_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The string the signature covers: the decoded parameters but `signature`, sorted by name,
/// re-encoded, lower-cased.
pub fn unsigned_request(parameters: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = parameters
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("signature"))
        .collect();
    // Java sorts Strings by UTF-16 code unit; for the ASCII names of the API that is byte order.
    sorted.sort_by(|left, right| left.0.cmp(&right.0));
    sorted
        .iter()
        .map(|(name, value)| format!("{name}={}", java_url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
        .to_lowercase()
}

/// Base64 of HMAC-SHA1(secret, text).
pub fn sign(secret: &str, text: &str) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(text.as_bytes());
    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
}

/// The first value of the parameter `name` (case-insensitive, as the server reads the
/// signature's own parameters).
pub fn parameter<'a>(parameters: &'a [(String, String)], name: &str) -> Option<&'a str> {
    parameters
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// `expires` as `DateUtil.parseTZDateString` reads it (`2026-12-06T10:00:00+0000`, or with a
/// `+00:00` offset), in epoch milliseconds.
pub fn parse_expires_ms(text: &str) -> Option<u64> {
    let parsed = jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%z", text)
        .or_else(|_| jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%:z", text))
        .ok()?;
    let timestamp = parsed.to_timestamp().ok()?;
    u64::try_from(timestamp.as_millisecond()).ok()
}

/// Checks a request's parameters against the one key pair the emulator knows.
pub fn verify(
    parameters: &[(String, String)],
    api_key: &str,
    secret_key: &str,
    now_ms: u64,
) -> Result<(), Refusal> {
    let (Some(signature), Some(key)) = (
        parameter(parameters, "signature"),
        parameter(parameters, "apikey"),
    ) else {
        return Err(Refusal::MissingSignatureOrKey);
    };
    if parameter(parameters, "signatureversion") == Some("3") {
        let expires = parameter(parameters, "expires").ok_or(Refusal::MissingExpires)?;
        let expires_ms = parse_expires_ms(expires).ok_or(Refusal::BadExpires)?;
        if expires_ms < now_ms {
            return Err(Refusal::Expired);
        }
    }
    if key != api_key {
        return Err(Refusal::UnknownApiKey);
    }
    let computed = sign(secret_key, &unsigned_request(parameters));
    // Constant-time, as the server's `ConstantTimeComparator`.
    let equal = computed.len() == signature.len()
        && computed
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0;
    if equal {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn the_unsigned_request_is_sorted_encoded_the_java_way_and_lower_cased() {
        let parameters = pairs(&[
            ("response", "json"),
            ("command", "listHosts"),
            ("apiKey", "Key"),
            ("name", "a b~c*"),
            ("signature", "ignored"),
        ]);
        assert_eq!(
            unsigned_request(&parameters),
            "apikey=key&command=listhosts&name=a%20b%7ec*&response=json"
        );
    }

    #[test]
    fn a_request_signed_with_the_secret_passes_and_any_other_is_refused() {
        let mut parameters = pairs(&[("command", "listZones"), ("apiKey", "k")]);
        let signature = sign("s3cret", &unsigned_request(&parameters));
        parameters.push(("signature".into(), signature));
        assert_eq!(verify(&parameters, "k", "s3cret", 0), Ok(()));
        assert_eq!(verify(&parameters, "k", "other", 0), Err(Refusal::Mismatch));
        assert_eq!(
            verify(&parameters, "k2", "s3cret", 0),
            Err(Refusal::UnknownApiKey)
        );
        assert_eq!(
            verify(&parameters[..2], "k", "s3cret", 0),
            Err(Refusal::MissingSignatureOrKey)
        );
    }

    #[test]
    fn version_3_needs_an_expires_in_the_future() {
        let mut parameters = pairs(&[
            ("command", "listZones"),
            ("apiKey", "k"),
            ("signatureVersion", "3"),
            ("expires", "2030-01-01T00:00:00+0000"),
        ]);
        let signature = sign("s", &unsigned_request(&parameters));
        parameters.push(("signature".into(), signature));
        assert_eq!(verify(&parameters, "k", "s", 1_000), Ok(()));
        let after_ms = parse_expires_ms("2030-01-01T00:00:01+0000").unwrap();
        assert_eq!(
            verify(&parameters, "k", "s", after_ms),
            Err(Refusal::Expired)
        );
        parameters.retain(|(name, _)| name != "expires");
        assert_eq!(
            verify(&parameters, "k", "s", 0),
            Err(Refusal::MissingExpires)
        );
    }

    #[test]
    fn the_mac_is_hmac_sha1_in_base64() {
        // The published HMAC-SHA1 test vector (key "key"), in Base64.
        let parameters = pairs(&[
            ("apiKey", "emulator-key"),
            ("command", "listZones"),
            ("response", "json"),
        ]);
        let text = unsigned_request(&parameters);
        assert_eq!(text, "apikey=emulator-key&command=listzones&response=json");
        assert_eq!(
            sign("key", "The quick brown fox jumps over the lazy dog"),
            "3nybhbi3iqa8ino29wqQcBydtNk="
        );
    }
}
