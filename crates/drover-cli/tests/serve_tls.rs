//! HTTPS (`--features tls`): a self-signed certificate made for the test; a client that trusts
//! it gets the API over TLS, and one that does not is refused by the handshake.

#![cfg(feature = "tls")]

mod serve_common;

use serve_common::*;

#[test]
fn the_api_is_served_over_https_with_the_given_certificate() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("self-signed certificate");
    let workspace = Workspace::new(
        &[("gated.yaml", GATED_POOL)],
        "tls: {cert: cert.pem, key: key.pem}\n",
    );
    std::fs::write(workspace.path("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        workspace.path("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let mut command = workspace.command();
    command
        .args(["serve", "--config"])
        .arg(workspace.path("serve.yaml"))
        .args(["--listen", "127.0.0.1:0"]);
    let server = Server::start(command, "https");
    let trusted = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let response = trusted
        .get(server.url("/api/v1/clusters"))
        .send()
        .expect("HTTPS request");
    assert_eq!(response.status().as_u16(), 200);
    let clusters: serde_json::Value = response.json().unwrap();
    assert_eq!(clusters["clusters"][0]["name"], "gated");
    let untrusting = reqwest::blocking::Client::new();
    assert!(
        untrusting.get(server.url("/healthz")).send().is_err(),
        "an unknown certificate must fail the handshake"
    );
}
