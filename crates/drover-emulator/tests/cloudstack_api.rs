//! The CloudStack front-end over HTTP, served in-process on a loopback port and signed as PyPI
//! `cs` signs (the official client itself is run by tests/emulators/cloudstack_official_client.sh):
//! a bad signature and an expired request refused with 401, zones/clusters/hosts/VMs/system
//! VMs/routers/volumes/affinity groups, paging, `updateHost` allocation, an asynchronous
//! migration followed with `queryAsyncJobResult`, a refused migration (431), stop/start with a
//! host, maintenance and its cancel, and POST.

use std::io::Write;
use std::time::{Duration, Instant};

use drover_emulator::cloudstack::{self, signature};
use drover_emulator::world;
use serde_json::Value;

const INVENTORY: &str = r#"
cluster: {name: cs, target_version: "8.2.1"}
hosts:
  - {name: h1, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
  - {name: h2, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: east}}
  - {name: h3, version: "8.2.0", memory_mib: 16384, cpus: 8, labels: {zone: west}}
vms:
  - {name: web, host: h1, memory_mib: 4096, vcpus: 2, anti_affinity: front}
  - {name: api, host: h2, memory_mib: 1024, vcpus: 1, anti_affinity: front}
  - {name: notools, host: h1, memory_mib: 1024, vcpus: 1, migratable: false}
  - {name: local, host: h2, memory_mib: 1024, vcpus: 1, local_storage: true}
  - {name: r-4-VM, host: h1, memory_mib: 256, vcpus: 1}
  - {name: s-1-VM, host: h3, memory_mib: 512, vcpus: 1}
  - {name: off, host: h3, memory_mib: 512, vcpus: 1, state: stopped}
driver: {kind: simulator, seed: 7}
"#;

const KEY: &str = "test-key";
const SECRET: &str = "test-secret";

struct Emulator {
    url: String,
    client: reqwest::Client,
}

impl Emulator {
    async fn start() -> Emulator {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(INVENTORY.as_bytes()).unwrap();
        let opened = world::open(file.path(), Some(500.0)).expect("the inventory opens");
        let management = cloudstack::Management::new(
            opened.driver,
            opened.cluster,
            cloudstack::Credentials {
                api_key: KEY.into(),
                secret_key: SECRET.into(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/client/api", listener.local_addr().unwrap());
        tokio::spawn(cloudstack::serve(listener, management));
        Emulator {
            url,
            client: reqwest::Client::new(),
        }
    }

    fn signed(
        &self,
        command: &str,
        arguments: &[(&str, &str)],
        secret: &str,
    ) -> Vec<(String, String)> {
        let mut parameters: Vec<(String, String)> = arguments
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        parameters.push(("command".into(), command.into()));
        parameters.push(("apiKey".into(), KEY.into()));
        parameters.push(("response".into(), "json".into()));
        let text = signature::unsigned_request(&parameters);
        parameters.push(("signature".into(), signature::sign(secret, &text)));
        parameters
    }

    async fn call_with(
        &self,
        command: &str,
        arguments: &[(&str, &str)],
        secret: &str,
    ) -> (u16, Value) {
        let parameters = self.signed(command, arguments, secret);
        let response = self
            .client
            .get(&self.url)
            .query(&parameters)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json")));
        let mut body: Value = response.json().await.unwrap();
        let key = format!("{}response", command.to_lowercase());
        (status, body[key].take())
    }

    async fn call(&self, command: &str, arguments: &[(&str, &str)]) -> (u16, Value) {
        self.call_with(command, arguments, SECRET).await
    }

    async fn ok(&self, command: &str, arguments: &[(&str, &str)]) -> Value {
        let (status, body) = self.call(command, arguments).await;
        assert_eq!(status, 200, "{command}: {body}");
        body
    }

    async fn id_of(&self, command: &str, key: &str, name: &str) -> String {
        let list = self.ok(command, &[("listall", "true")]).await;
        list[key]
            .as_array()
            .unwrap()
            .iter()
            .find(|object| object["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {list}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn wait_job(&self, jobid: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.ok("queryAsyncJobResult", &[("jobid", jobid)]).await;
            if job["jobstatus"] != 0 {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {jobid} still pending: {job}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_an_expired_request_is_refused_with_401() {
    let emulator = Emulator::start().await;
    let (status, body) = emulator.call_with("listHosts", &[], "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["errorcode"], 401);
    assert_eq!(
        body["errortext"],
        "unable to verify user credentials and/or request signature"
    );
    let (status, _) = emulator
        .call(
            "listZones",
            &[
                ("signatureVersion", "3"),
                ("expires", "2001-01-01T00:00:00+0000"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = emulator
        .call(
            "listZones",
            &[
                ("signatureVersion", "3"),
                ("expires", "2999-01-01T00:00:00+0000"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_is_listed_as_cloudstack_describes_it() {
    let emulator = Emulator::start().await;
    let zones = emulator.ok("listZones", &[]).await;
    assert_eq!(zones["zone"][0]["name"], "east");
    let east = zones["zone"][0]["id"].as_str().unwrap().to_string();
    let clusters = emulator.ok("listClusters", &[("zoneid", &east)]).await;
    assert_eq!(clusters["count"], 1);
    assert_eq!(clusters["cluster"][0]["name"], "east-cluster1");

    let hosts = emulator
        .ok("listHosts", &[("type", "Routing"), ("zoneid", &east)])
        .await;
    assert_eq!(hosts["count"], 2, "{hosts}");
    let h1 = &hosts["host"][0];
    assert_eq!(h1["name"], "h1");
    assert_eq!(h1["state"], "Up");
    assert_eq!(h1["resourcestate"], "Enabled");
    assert_eq!(h1["hypervisor"], "XenServer");
    assert_eq!(h1["hypervisorversion"], "8.2.0");
    assert_eq!(h1["memorytotal"], 16384u64 * 1024 * 1024);
    // web 4096 + notools 1024 + r-4-VM 256 MiB run on h1.
    assert_eq!(h1["memoryallocated"], (4096u64 + 1024 + 256) * 1024 * 1024);
    assert_eq!(h1["cpunumber"], 8);

    let vms = emulator
        .ok("listVirtualMachines", &[("listall", "true")])
        .await;
    assert_eq!(vms["count"], 5, "system VMs are not user VMs: {vms}");
    let by_name = |name: &str| {
        vms["virtualmachine"]
            .as_array()
            .unwrap()
            .iter()
            .find(|vm| vm["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("web")["state"], "Running");
    assert_eq!(by_name("web")["hostname"], "h1");
    assert_eq!(by_name("web")["memory"], 4096);
    assert_eq!(by_name("web")["isdynamicallyscalable"], true);
    assert_eq!(
        by_name("web")["affinitygroup"][0]["type"],
        "host anti-affinity"
    );
    assert_eq!(by_name("notools")["isdynamicallyscalable"], false);
    assert_eq!(by_name("off")["state"], "Stopped");
    assert!(by_name("off").get("hostid").is_none());

    let routers = emulator.ok("listRouters", &[("listall", "true")]).await;
    assert_eq!(routers["router"][0]["name"], "r-4-VM");
    let system = emulator.ok("listSystemVms", &[]).await;
    assert_eq!(system["systemvm"][0]["systemvmtype"], "secondarystoragevm");

    let local = emulator
        .id_of("listVirtualMachines", "virtualmachine", "local")
        .await;
    let volumes = emulator
        .ok("listVolumes", &[("virtualmachineid", &local)])
        .await;
    assert_eq!(volumes["volume"][0]["storagetype"], "local");
    assert_eq!(volumes["volume"][0]["type"], "ROOT");

    let groups = emulator.ok("listAffinityGroups", &[]).await;
    assert_eq!(groups["affinitygroup"][0]["type"], "host anti-affinity");
    assert_eq!(
        groups["affinitygroup"][0]["virtualmachineIds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let page = emulator
        .ok("listVirtualMachines", &[("page", "2"), ("pagesize", "2")])
        .await;
    assert_eq!(page["count"], 5);
    assert_eq!(page["virtualmachine"].as_array().unwrap().len(), 2);
    let empty = emulator
        .ok("listHosts", &[("resourcestate", "Maintenance")])
        .await;
    assert_eq!(empty, serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_host_refuses_migrations_and_a_migration_is_an_async_job() {
    let emulator = Emulator::start().await;
    let h2 = emulator.id_of("listHosts", "host", "h2").await;
    let h3 = emulator.id_of("listHosts", "host", "h3").await;
    let web = emulator
        .id_of("listVirtualMachines", "virtualmachine", "web")
        .await;

    let updated = emulator
        .ok("updateHost", &[("id", &h2), ("allocationstate", "Disable")])
        .await;
    assert_eq!(updated["host"]["resourcestate"], "Disabled");
    let (status, refused) = emulator
        .call(
            "migrateVirtualMachine",
            &[("virtualmachineid", &web), ("hostid", &h2)],
        )
        .await;
    assert_eq!(status, 431, "{refused}");
    assert_eq!(refused["errorcode"], 431);
    assert_eq!(refused["cserrorcode"], 4350);
    let (status, _) = emulator
        .call(
            "updateHost",
            &[("id", &h2), ("allocationstate", "Sideways")],
        )
        .await;
    assert_eq!(status, 431);
    emulator
        .ok("updateHost", &[("id", &h2), ("allocationstate", "Enable")])
        .await;
    let (status, _) = emulator
        .call(
            "migrateVirtualMachine",
            &[("virtualmachineid", &web), ("hostid", &h3)],
        )
        .await;
    assert_eq!(status, 431, "another zone");

    let started = emulator
        .ok(
            "migrateVirtualMachine",
            &[("virtualmachineid", &web), ("hostid", &h2)],
        )
        .await;
    let jobid = started["jobid"].as_str().unwrap().to_string();
    let job = emulator.wait_job(&jobid).await;
    assert_eq!(job["jobstatus"], 1, "{job}");
    assert_eq!(job["jobresultcode"], 0);
    assert_eq!(job["jobresult"]["virtualmachine"]["hostname"], "h2");

    let (status, missing) = emulator.call("migrateVirtualMachine", &[]).await;
    assert_eq!(status, 431);
    assert!(missing["errortext"]
        .as_str()
        .unwrap()
        .contains("virtualmachineid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_without_tools_stop_and_start_on_a_chosen_host_and_an_empty_host_enters_maintenance() {
    let emulator = Emulator::start().await;
    let h1 = emulator.id_of("listHosts", "host", "h1").await;
    let h2 = emulator.id_of("listHosts", "host", "h2").await;
    let notools = emulator
        .id_of("listVirtualMachines", "virtualmachine", "notools")
        .await;
    let web = emulator
        .id_of("listVirtualMachines", "virtualmachine", "web")
        .await;
    let router = emulator.id_of("listRouters", "router", "r-4-VM").await;

    // A host with a VM without tools cannot be emptied by the server itself.
    let started = emulator
        .ok("prepareHostForMaintenance", &[("id", &h1)])
        .await;
    let job = emulator.wait_job(started["jobid"].as_str().unwrap()).await;
    assert_eq!(job["jobstatus"], 2, "{job}");
    assert_ne!(job["jobresultcode"], 0);
    assert!(job["jobresult"]["errortext"].is_string());
    let hosts = emulator.ok("listHosts", &[("name", "h1")]).await;
    assert_eq!(hosts["host"][0]["resourcestate"], "ErrorInMaintenance");
    let cancelled = emulator.ok("cancelHostMaintenance", &[("id", &h1)]).await;
    emulator
        .wait_job(cancelled["jobid"].as_str().unwrap())
        .await;

    let stop = emulator.ok("stopVirtualMachine", &[("id", &notools)]).await;
    let job = emulator.wait_job(stop["jobid"].as_str().unwrap()).await;
    assert_eq!(
        job["jobresult"]["virtualmachine"]["state"], "Stopped",
        "{job}"
    );
    let start = emulator
        .ok("startVirtualMachine", &[("id", &notools), ("hostid", &h2)])
        .await;
    let job = emulator.wait_job(start["jobid"].as_str().unwrap()).await;
    assert_eq!(
        job["jobresult"]["virtualmachine"]["hostname"], "h2",
        "{job}"
    );

    let (status, _) = emulator
        .call(
            "migrateVirtualMachine",
            &[("virtualmachineid", &router), ("hostid", &h2)],
        )
        .await;
    assert_eq!(status, 431, "a router moves with migrateSystemVm");
    let moved = emulator
        .ok(
            "migrateSystemVm",
            &[("virtualmachineid", &router), ("hostid", &h2)],
        )
        .await;
    let job = emulator.wait_job(moved["jobid"].as_str().unwrap()).await;
    assert_eq!(job["jobresult"]["systemvm"]["hostname"], "h2", "{job}");
    let moved = emulator
        .ok(
            "migrateVirtualMachine",
            &[("virtualmachineid", &web), ("hostid", &h2)],
        )
        .await;
    emulator.wait_job(moved["jobid"].as_str().unwrap()).await;

    let started = emulator
        .ok("prepareHostForMaintenance", &[("id", &h1)])
        .await;
    let job = emulator.wait_job(started["jobid"].as_str().unwrap()).await;
    assert_eq!(job["jobstatus"], 1, "{job}");
    assert_eq!(job["jobresult"]["host"]["resourcestate"], "Maintenance");
    let cancelled = emulator.ok("cancelHostMaintenance", &[("id", &h1)]).await;
    let job = emulator
        .wait_job(cancelled["jobid"].as_str().unwrap())
        .await;
    assert_eq!(
        job["jobresult"]["host"]["resourcestate"], "Enabled",
        "{job}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_form_post_is_answered_and_an_unknown_job_is_a_parameter_error() {
    let emulator = Emulator::start().await;
    let parameters = emulator.signed("listZones", &[("name", "west zone")], SECRET);
    let response = emulator
        .client
        .post(&emulator.url)
        .form(&parameters)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["listzonesresponse"], serde_json::json!({}));
    let (status, body) = emulator
        .call("queryAsyncJobResult", &[("jobid", "nope")])
        .await;
    assert_eq!(status, 431, "{body}");
    let (status, _) = emulator.call("deployVirtualMachine", &[]).await;
    assert_eq!(status, 432);
}
