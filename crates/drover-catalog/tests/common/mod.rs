//! Helpers shared by the integration tests: the example catalog, version literals and parsing
//! of inline catalogs. Each test binary uses a different subset of them.
#![allow(dead_code)]

use drover_catalog::{parse_catalog, Catalog};
use drover_core::Version;

pub const EXAMPLE_CATALOG: &str = include_str!("../../testdata/example-catalog.yaml");

pub fn example() -> Catalog {
    parse_catalog(EXAMPLE_CATALOG, "example-catalog.yaml").expect("the example catalog parses")
}

pub fn v(text: &str) -> Version {
    text.parse().expect("a test version")
}

pub fn versions(texts: &[&str]) -> Vec<Version> {
    texts.iter().map(|text| v(text)).collect()
}

/// Parses an inline catalog, panicking with the refusal when it is refused.
pub fn catalog(text: &str) -> Catalog {
    parse_catalog(text, "test.yaml").unwrap_or_else(|error| panic!("refused: {error}"))
}

/// The one-line message an inline catalog is refused with.
pub fn refusal(text: &str) -> String {
    match parse_catalog(text, "test.yaml") {
        Ok(_) => panic!("the catalog was accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}
