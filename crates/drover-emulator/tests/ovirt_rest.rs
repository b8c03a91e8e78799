//! The oVirt front-end over HTTP, served in-process on a loopback port, in the engine's JSON
//! (`Accept: application/json`; the official SDK's XML is proven by
//! tests/emulators/ovirt_official_client.sh): the SSO's grant and its error body, 401 without or
//! with an expired token, `Version`, hosts and VMs as JSON, an asynchronous migration followed
//! through `migrating` and its job, a refused action's fault, the compatibility level, and the
//! body bound.

use std::io::Write;
use std::time::{Duration, Instant};

use drover_emulator::{ovirt, world};
use serde_json::{json, Value};

const INVENTORY: &str = r#"
cluster: {name: rest, target_version: "4.5.6"}
hosts:
  - {name: h1, version: "4.5.4", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "4.5.4", memory_mib: 16384, cpus: 8}
vms:
  - {name: web, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: pinned, host: h2, memory_mib: 1024, vcpus: 1, migratable: false}
driver: {kind: simulator, seed: 7}
"#;

struct Emulator {
    url: String,
    client: reqwest::Client,
}

impl Emulator {
    async fn start(token_ttl: Duration) -> Emulator {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(INVENTORY.as_bytes()).unwrap();
        let opened = world::open(file.path(), Some(200.0)).expect("the inventory opens");
        let engine = ovirt::Engine::new(
            opened.driver,
            opened.cluster,
            ovirt::Credentials {
                username: "admin@internal".into(),
                password: "secret".into(),
            },
            token_ttl,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(ovirt::serve(listener, engine));
        Emulator {
            url,
            client: reqwest::Client::new(),
        }
    }

    async fn grant(&self, password: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/ovirt-engine/sso/oauth/token", self.url))
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "password"),
                ("scope", "ovirt-app-api"),
                ("username", "admin@internal"),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn token(&self) -> String {
        let (status, answer) = self.grant("secret").await;
        assert_eq!(status, 200, "{answer}");
        answer["access_token"].as_str().unwrap().to_string()
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/ovirt-engine/api{path}", self.url))
            .header("Accept", "application/json")
            .header("Version", "4")
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (status, answer) = self.request(reqwest::Method::GET, path, token, None).await;
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer
    }
}

fn by_name<'a>(list: &'a Value, item: &str, name: &str) -> &'a Value {
    list[item]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sso_grants_tokens_and_the_api_refuses_requests_without_one() {
    let emulator = Emulator::start(Duration::from_millis(300)).await;
    let (status, answer) = emulator.grant("wrong").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error_code"], "access_denied", "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("Cannot authenticate user 'admin@internal'"));

    let (status, _) = emulator
        .request(reqwest::Method::GET, "/hosts", "no-such-token", None)
        .await;
    assert_eq!(status, 401);
    let token = emulator.token().await;
    emulator.get("/hosts", &token).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = emulator
        .request(reqwest::Method::GET, "/hosts", &token, None)
        .await;
    assert_eq!(
        status, 401,
        "an expired token is refused, so the client logs in again"
    );

    let token = emulator.token().await;
    let response = emulator
        .client
        .get(format!("{}/ovirt-engine/api/hosts", emulator.url))
        .header("Version", "3")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("<fault>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_documents_an_async_migration_and_a_refused_action() {
    let emulator = Emulator::start(Duration::from_secs(600)).await;
    let token = emulator.token().await;
    let hosts = emulator.get("/hosts", &token).await;
    let h1 = by_name(&hosts, "host", "h1").clone();
    let h2 = by_name(&hosts, "host", "h2").clone();
    assert_eq!(h1["status"], "up");
    assert_eq!(h1["memory"], (16384u64 * 1024 * 1024).to_string());
    assert_eq!(h1["update_available"], "true");
    assert_eq!(h1["version"]["full_version"], "4.5.4");
    assert_eq!(h1["cpu"]["topology"]["cores"], "8");

    let vms = emulator.get("/vms", &token).await;
    let web = by_name(&vms, "vm", "web").clone();
    assert_eq!(web["host"]["id"], h1["id"]);
    assert_eq!(web["placement_policy"]["affinity"], "migratable");
    let pinned = by_name(&vms, "vm", "pinned").clone();
    assert_eq!(pinned["placement_policy"]["affinity"], "pinned");
    assert_eq!(
        pinned["placement_policy"]["hosts"]["host"][0]["id"],
        h2["id"]
    );

    let web_path = format!("/vms/{}", web["id"].as_str().unwrap());
    let (status, action) = emulator
        .request(
            reqwest::Method::POST,
            &format!("{web_path}/migrate"),
            &token,
            Some(json!({"host": {"id": h2["id"]}})),
        )
        .await;
    assert_eq!(status, 200, "{action}");
    assert_eq!(action["status"], "complete");
    let job_path = format!("/jobs/{}", action["job"]["id"].as_str().unwrap());
    assert_eq!(emulator.get(&web_path, &token).await["status"], "migrating");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let vm = emulator.get(&web_path, &token).await;
        if vm["status"] == "up" && vm["host"]["id"] == h2["id"] {
            break;
        }
        assert!(Instant::now() < deadline, "web never reached h2: {vm}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = emulator.get(&job_path, &token).await;
    assert_eq!(job["status"], "finished", "{job}");
    assert!(job["description"]
        .as_str()
        .unwrap()
        .starts_with("Migrating VM web"));

    let (status, refused) = emulator
        .request(
            reqwest::Method::POST,
            &format!("/vms/{}/migrate", pinned["id"].as_str().unwrap()),
            &token,
            Some(json!({"host": {"name": "h1"}})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["fault"]["reason"], "Operation Failed");
    assert!(refused["fault"]["detail"]
        .as_str()
        .unwrap()
        .contains("pinned"));

    let (status, _) = emulator
        .request(reqwest::Method::GET, "/vms/not-an-id", &token, None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compatibility_level_rises_only_to_what_every_host_runs_and_bodies_are_bounded() {
    let emulator = Emulator::start(Duration::from_secs(600)).await;
    let token = emulator.token().await;
    let clusters = emulator.get("/clusters", &token).await;
    let cluster = &clusters["cluster"][0];
    assert_eq!(cluster["version"]["major"], "4");
    assert_eq!(cluster["version"]["minor"], "5");
    let path = format!("/clusters/{}", cluster["id"].as_str().unwrap());
    let (status, refused) = emulator
        .request(
            reqwest::Method::PUT,
            &path,
            &token,
            Some(json!({"version": {"major": "4", "minor": "6"}})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(refused["detail"]
        .as_str()
        .unwrap()
        .contains("Cannot change Cluster Compatibility Version"));
    let (status, same) = emulator
        .request(
            reqwest::Method::PUT,
            &path,
            &token,
            Some(json!({"version": {"major": "4", "minor": "5"}})),
        )
        .await;
    assert_eq!(status, 200, "{same}");

    let huge = "x".repeat(ovirt::MAX_BODY_BYTES + 1);
    let response = emulator
        .client
        .put(format!("{}/ovirt-engine/api{path}", emulator.url))
        .bearer_auth(&token)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
}
