//! The `kind: kubevirt` driver: a KubeVirt / OpenShift Virtualization cluster through the
//! Kubernetes API with kube-rs (`kube` client, `k8s-openapi` for the core types it evicts with;
//! KubeVirt's and the HyperConverged operator's resources as `kube::api::DynamicObject`, no code
//! generator). Every field, condition, phase and error it reads is named as kubevirt/api
//! (`core/v1/types.go`), kubevirt/hyperconverged-cluster-operator (`api/v1beta1`) and
//! k8s.io/api name them (and OpenShift's MachineConfigPools as openshift/api
//! `machineconfiguration/v1` does, `machineconfig`); `driver` maps Drover's calls onto nodes, VMIs, migrations, evictions and
//! KubeVirt's `start`/`stop` subresources, `discovery` reads the cluster into Drover's model.
//!
//! This crate must not know the engine, stores, the registry or the command line.

pub mod discovery;
pub mod driver;
pub mod hyperconverged;
pub mod machineconfig;

pub use driver::{KubevirtConnection, KubevirtDriver, KubevirtSettings};

/// What opening a connection to the cluster can end in (calls end in `DriverError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KubevirtError {
    /// The kubeconfig (or the in-cluster service account) cannot be read or used.
    #[error("kubevirt driver configuration: {0}")]
    Config(String),
}
