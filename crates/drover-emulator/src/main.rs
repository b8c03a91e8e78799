//! `drover-emulator PLATFORM --inventory FILE --listen 127.0.0.1:PORT`: serves an emulated
//! platform on loopback until killed. Prints one line `listening on http://ADDRESS` once it
//! accepts connections (tests read it to learn the port when PORT is 0).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drover_emulator::{cloudstack, kubevirt, ovirt, world, xapi, EmulatorError};

#[derive(Parser)]
#[command(
    name = "drover-emulator",
    about = "Platform emulators for Drover's driver tests (loopback only)"
)]
struct Arguments {
    #[command(subcommand)]
    platform: Platform,
}

#[derive(Subcommand)]
enum Platform {
    /// XenServer / XCP-ng: XAPI over XML-RPC (`/`) and JSON-RPC (`/jsonrpc`).
    Xapi {
        #[arg(long)]
        inventory: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Platform time runs this many times faster than the wall clock (default: the
        /// inventory's simulator `time_scale`, else 1).
        #[arg(long)]
        time_scale: Option<f64>,
        #[arg(long, default_value = "root")]
        username: String,
        /// The environment variable holding the password.
        #[arg(long, default_value = "DROVER_EMULATOR_PASSWORD")]
        password_env: String,
        /// A file holding the password (first line); wins over the environment variable.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Serve XML-RPC only, answering `/jsonrpc` with 404, as a server without JSON-RPC.
        #[arg(long)]
        no_jsonrpc: bool,
    },
    /// oVirt / OLVM: the engine's SSO and REST API v4 (`/ovirt-engine/api`), XML and JSON.
    Ovirt(OvirtArguments),
    /// Apache CloudStack: the signed API at `/client/api` (JSON), with asynchronous jobs.
    Cloudstack(CloudstackArguments),
    /// KubeVirt / OpenShift Virtualization: the Kubernetes API subset (nodes, pods, evictions,
    /// VMs, VMIs, migrations, HyperConverged) with bearer-token auth, JSON and watches.
    Kubevirt(KubevirtArguments),
}

#[derive(clap::Args)]
struct CloudstackArguments {
    #[arg(long)]
    inventory: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Platform time runs this many times faster than the wall clock (default: the inventory's
    /// simulator `time_scale`, else 1).
    #[arg(long)]
    time_scale: Option<f64>,
    /// The API key clients sign with.
    #[arg(long, default_value = "drover-emulator-key")]
    api_key: String,
    /// The environment variable holding the secret key.
    #[arg(long, default_value = "DROVER_EMULATOR_SECRET_KEY")]
    secret_key_env: String,
    /// A file holding the secret key (first line); wins over the environment variable.
    #[arg(long)]
    secret_key_file: Option<PathBuf>,
    /// CloudStack's `migratewait` global setting (platform seconds): a migration still running
    /// after it is given up, the VM staying on its source.
    #[arg(long, default_value_t = 3_600)]
    migrate_wait_secs: u64,
}

#[derive(clap::Args)]
struct KubevirtArguments {
    #[arg(long)]
    inventory: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Platform time runs this many times faster than the wall clock (default: the inventory's
    /// simulator `time_scale`, else 1).
    #[arg(long)]
    time_scale: Option<f64>,
    /// The environment variable holding the bearer token clients must send.
    #[arg(long, default_value = "DROVER_EMULATOR_TOKEN")]
    token_env: String,
    /// A file holding the bearer token (first line); wins over the environment variable.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Where to write the self-signed certificate served (PEM): clients trust it as their CA.
    #[arg(long)]
    certificate_out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct OvirtArguments {
    /// One inventory per cluster of the engine (repeat `--inventory` for an engine of several;
    /// host and VM names must differ between them, as in one engine).
    #[arg(long, required = true)]
    inventory: Vec<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Platform time runs this many times faster than the wall clock (default: the inventory's
    /// simulator `time_scale`, else 1).
    #[arg(long)]
    time_scale: Option<f64>,
    #[arg(long, default_value = "admin@internal")]
    username: String,
    /// The environment variable holding the password.
    #[arg(long, default_value = "DROVER_EMULATOR_PASSWORD")]
    password_env: String,
    /// A file holding the password (first line); wins over the environment variable.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// How long an SSO token lives; a request with an expired one is answered 401.
    #[arg(long, default_value_t = 1800)]
    token_ttl_secs: u64,
    /// The built-in scheduling policy the cluster starts on (`none`, the engine's default, or
    /// `cluster_maintenance`, `evenly_distributed`, `power_saving`, `vm_evenly_distributed`).
    #[arg(long, default_value = "none")]
    scheduling_policy: String,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let arguments = Arguments::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("drover-emulator: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(arguments)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("drover-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(arguments: Arguments) -> Result<(), EmulatorError> {
    let (inventory, listen, time_scale, username, password_env, password_file, no_jsonrpc) =
        match arguments.platform {
            Platform::Xapi {
                inventory,
                listen,
                time_scale,
                username,
                password_env,
                password_file,
                no_jsonrpc,
            } => (
                inventory,
                listen,
                time_scale,
                username,
                password_env,
                password_file,
                no_jsonrpc,
            ),
            Platform::Ovirt(arguments) => return run_ovirt(arguments).await,
            Platform::Cloudstack(arguments) => return run_cloudstack(arguments).await,
            Platform::Kubevirt(arguments) => return run_kubevirt(arguments).await,
        };
    xapi::check_loopback(&listen)?;
    let password = read_password(password_file, password_env)?;
    let world = world::open(&inventory, time_scale)?;
    let pool = xapi::XapiPool::new(
        world.driver,
        world.cluster,
        xapi::Credentials { username, password },
    );
    // The catalog's hotfixes, uploaded to the pool as pool_update objects.
    pool.introduce_updates(xapi::pool::updates::uploaded_updates(&inventory)?);
    let listener = bind(listen).await?;
    let encodings = xapi::Encodings {
        json_rpc: !no_jsonrpc,
    };
    xapi::serve_encodings(listener, pool, encodings).await
}

async fn run_ovirt(arguments: OvirtArguments) -> Result<(), EmulatorError> {
    xapi::check_loopback(&arguments.listen)?;
    let password = read_password(arguments.password_file, arguments.password_env)?;
    let events = std::sync::Arc::new(std::sync::Mutex::new(ovirt::events::EventLog::default()));
    let mut parts = Vec::new();
    for (part, inventory) in arguments.inventory.iter().enumerate() {
        let world = world::open(inventory, arguments.time_scale)?;
        let engine = ovirt::Engine::new_part(
            world.driver,
            world.cluster,
            ovirt::Credentials {
                username: arguments.username.clone(),
                password: password.clone(),
            },
            std::time::Duration::from_secs(arguments.token_ttl_secs),
            u16::try_from(part)
                .map_err(|_| EmulatorError::Inventory("more than 65,535 clusters".to_string()))?,
            events.clone(),
        );
        if !engine.set_scheduling_policy(&arguments.scheduling_policy, &[]) {
            return Err(EmulatorError::Inventory(format!(
                "--scheduling-policy {}: not one of {}",
                arguments.scheduling_policy,
                ovirt::engine::SCHEDULING_POLICIES.join(", ")
            )));
        }
        parts.push(engine);
    }
    let listener = bind(arguments.listen).await?;
    ovirt::serve_parts(listener, parts).await
}

async fn run_cloudstack(arguments: CloudstackArguments) -> Result<(), EmulatorError> {
    xapi::check_loopback(&arguments.listen)?;
    let secret_key = read_password(arguments.secret_key_file, arguments.secret_key_env.clone())
        .map_err(|error| match error {
            EmulatorError::NoPassword(variable) => EmulatorError::NoSecretKey(variable),
            other => other,
        })?;
    let world = world::open(&arguments.inventory, arguments.time_scale)?;
    let management = cloudstack::Management::new(
        world.driver,
        world.cluster,
        cloudstack::Credentials {
            api_key: arguments.api_key,
            secret_key,
        },
    );
    management.set_migrate_wait(std::time::Duration::from_secs(arguments.migrate_wait_secs));
    let listener = bind(arguments.listen).await?;
    cloudstack::serve(listener, management).await
}

async fn run_kubevirt(arguments: KubevirtArguments) -> Result<(), EmulatorError> {
    xapi::check_loopback(&arguments.listen)?;
    let token =
        read_password(arguments.token_file, arguments.token_env).map_err(|error| match error {
            EmulatorError::NoPassword(variable) => EmulatorError::NoToken(variable),
            other => other,
        })?;
    let world = world::open(&arguments.inventory, arguments.time_scale)?;
    let control_plane = kubevirt::ControlPlane::new(world.driver, world.cluster, world.time_scale);
    let (certificate, key) = kubevirt::self_signed_certificate()?;
    if let Some(path) = &arguments.certificate_out {
        std::fs::write(path, &certificate).map_err(|error| EmulatorError::Read {
            path: path.clone(),
            message: error.to_string(),
        })?;
    }
    let listen_error = |message: String| EmulatorError::Listen {
        address: arguments.listen,
        message,
    };
    let listener = std::net::TcpListener::bind(arguments.listen)
        .map_err(|error| listen_error(error.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|error| listen_error(error.to_string()))?;
    println!("listening on https://{bound}");
    let _ = std::io::stdout().flush();
    kubevirt::serve(listener, control_plane, token, &certificate, &key).await
}

fn read_password(
    password_file: Option<PathBuf>,
    password_env: String,
) -> Result<String, EmulatorError> {
    Ok(match password_file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|error| EmulatorError::Read {
                path: path.clone(),
                message: error.to_string(),
            })?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        None => {
            std::env::var(&password_env).map_err(|_| EmulatorError::NoPassword(password_env))?
        }
    })
}

/// Binds `listen` and prints the line tests read the port from.
async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, EmulatorError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| EmulatorError::Listen {
            address: listen,
            message: error.to_string(),
        })?;
    let bound = listener
        .local_addr()
        .map_err(|error| EmulatorError::Listen {
            address: listen,
            message: error.to_string(),
        })?;
    println!("listening on http://{bound}");
    let _ = std::io::stdout().flush();
    Ok(listener)
}
