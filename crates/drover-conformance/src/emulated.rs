//! What every emulator-backed [`crate::Stage`] does the same way: write the scenario's world where
//! the emulator reads it, serve the emulated platform on a free loopback port from the test's
//! runtime (stopped when the scenario drops it), write the credentials the driver section names,
//! and keep the world's hosts and VMs for the driver's own inventory.
//!
//! Plain helpers: this module must not know any emulator, driver or inventory section.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `world` as `world.yaml` in `directory` (the emulator opens that file) and returns its path.
pub fn write_world(directory: &Path, world: &str) -> Result<PathBuf, String> {
    let world_path = directory.join("world.yaml");
    std::fs::write(&world_path, world).map_err(|error| error.to_string())?;
    Ok(world_path)
}

/// Writes one secret (a password, an API key) as a one-line file in `directory`, the file a
/// driver section's `*_file` field names relative to the inventory.
pub fn write_secret(directory: &Path, file_name: &str, secret: &str) -> Result<(), String> {
    let mut file =
        std::fs::File::create(directory.join(file_name)).map_err(|error| error.to_string())?;
    writeln!(file, "{secret}").map_err(|error| error.to_string())
}

/// The world's text before its `driver:` section: the cluster, policy, hosts and VMs, to which a
/// stage appends its own driver section.
pub fn hosts_and_vms(world: &str) -> &str {
    world.split("driver:").next().unwrap_or(world)
}

/// A served emulator: the task is aborted (the port closed) when this is dropped, so a
/// scenario's platform lives exactly as long as its [`crate::Staged::keep_alive`].
pub struct Served(tokio::task::JoinHandle<()>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds a free port on 127.0.0.1, hands the listener to `serve` on the current runtime, and
/// returns the base URL (`http://127.0.0.1:PORT`) with the task's guard.
pub async fn serve_on_loopback<Serve, Serving, Outcome>(
    serve: Serve,
) -> Result<(String, Served), String>
where
    Serve: FnOnce(tokio::net::TcpListener) -> Serving,
    Serving: Future<Output = Outcome> + Send + 'static,
    Outcome: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| error.to_string())?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|error| error.to_string())?
    );
    let serving = serve(listener);
    let task = tokio::spawn(async move {
        // The serve loop's own outcome (an error when the port fails) ends the scenario's
        // platform; the driver then sees refused connections, which the run reports.
        let _outcome = serving.await;
    });
    Ok((url, Served(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_section_is_cut_from_the_world() {
        let world = "cluster: {name: x}\nhosts: []\ndriver: {kind: simulator}\n";
        assert_eq!(hosts_and_vms(world), "cluster: {name: x}\nhosts: []\n");
    }

    #[tokio::test]
    async fn a_served_platform_stops_when_dropped() {
        let (url, served) = serve_on_loopback(|listener| async move {
            loop {
                let _ = listener.accept().await;
            }
        })
        .await
        .unwrap();
        let address = url.trim_start_matches("http://").to_string();
        assert!(tokio::net::TcpStream::connect(&address).await.is_ok());
        drop(served);
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(&address).await.is_err());
    }

    #[test]
    fn secrets_and_the_world_are_written_where_the_inventory_names_them() {
        let directory = tempfile::tempdir().unwrap();
        let world_path = write_world(directory.path(), "hosts: []\n").unwrap();
        assert_eq!(std::fs::read_to_string(world_path).unwrap(), "hosts: []\n");
        write_secret(directory.path(), "password", "s3cret").unwrap();
        assert_eq!(
            std::fs::read_to_string(directory.path().join("password")).unwrap(),
            "s3cret\n"
        );
    }
}
