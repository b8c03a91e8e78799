//! The OpenAPI document the server serves is the one kept in `docs/openapi.json`. When the API
//! changes on purpose, run `UPDATE_OPENAPI=1 cargo test -p drover-cli --test serve_openapi` to
//! rewrite the kept copy, and review the diff.

mod serve_common;

use serve_common::*;

#[test]
fn the_served_openapi_document_matches_docs_openapi_json() {
    let workspace = Workspace::new(&[], "");
    let server = workspace.serve(&[]);
    let response = client()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let served = response.text().unwrap();
    let document: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    for path in [
        "/api/v1/clusters",
        "/api/v1/runs/{run}",
        "/api/v1/runs/{run}/events",
    ] {
        assert!(document["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(document["components"]["schemas"]["RunView"]["properties"]
        .get("timeline")
        .is_some());
    let kept_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(kept_path.parent().unwrap()).unwrap();
        std::fs::write(&kept_path, &served).unwrap();
        return;
    }
    let kept = std::fs::read_to_string(&kept_path).unwrap_or_default();
    assert!(
        kept == served,
        "docs/openapi.json differs from the document the server serves; if the API change is intended, run `UPDATE_OPENAPI=1 cargo test -p drover-cli --test serve_openapi` and review the diff"
    );
}
