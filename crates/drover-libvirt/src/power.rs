//! Stopping and starting VMs.
//!
//! - `shutdown_vm`: a domain already shut off is done (not forced); otherwise an ACPI shutdown
//!   request, the state polled every `STATE_POLL_INTERVAL` until the domain is off or the
//!   graceful timeout has passed, then `virDomainDestroy` (reported as forced). A transient
//!   domain vanishes when it stops; that counts as stopped.
//! - `start_vm`: a domain already active on the host is done; one defined (shut off) there is
//!   started. One defined on another host only (a VM restarted elsewhere) has its definition
//!   moved first: defined here from the holder's inactive XML, then undefined on the holder (if
//!   that fails, the new definition is removed again and the call fails, leaving things as they
//!   were), so a persistent domain stays persistent and defined once. A domain active on
//!   another host, or with local disks on another host, is refused; so is a host in Drover's
//!   maintenance. Before any start the other hosts are asked, so a copy running elsewhere (a
//!   definition left behind) never gets a twin on the same disks; a host that does not answer
//!   cannot be asked, which is logged.
//!
//! This module knows nothing of migrations or host commands.

use std::time::Duration;

use drover_driver::ShutdownObserved;
use tokio::time::Instant;
use virt::connect::Connect;

use crate::domain_xml::DomainXml;
use crate::driver::Inner;
use crate::error::LibvirtError;
use crate::migration::DomainPresence;

const STATE_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A domain's definition as its holder has it.
struct Definition {
    holder: String,
    inactive_xml: String,
}

/// What the other hosts know of a domain.
#[derive(Default)]
struct Elsewhere {
    definitions: Vec<(DomainPresence, Definition)>,
    silent_hosts: Vec<String>,
}

impl Elsewhere {
    fn running_on(&self) -> Option<&str> {
        self.definitions
            .iter()
            .find(|(presence, _)| presence.active)
            .map(|(_, definition)| definition.holder.as_str())
    }

    /// The first holder's definition; not found names the hosts that did not answer.
    fn into_first_definition(self, vm: &str) -> Result<Definition, LibvirtError> {
        if let Some((_, definition)) = self.definitions.into_iter().next() {
            return Ok(definition);
        }
        let unanswered = match self.silent_hosts.is_empty() {
            true => String::new(),
            false => format!(" (no answer from {})", self.silent_hosts.join(", ")),
        };
        Err(LibvirtError::NotFound(format!(
            "VM {vm} is defined on no host{unanswered}"
        )))
    }
}

impl Inner {
    pub(crate) async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, LibvirtError> {
        self.require_host(host)?;
        match self.presence_on(host, vm).await? {
            None => return Err(not_on_host(vm, host)),
            Some(presence) if !presence.active => return Ok(ShutdownObserved { forced: false }),
            Some(_) => {}
        }
        let deadline = Instant::now() + graceful_timeout;
        self.on_domain(host, vm, "request an ACPI shutdown", |domain| {
            domain.shutdown()
        })
        .await?;
        while Instant::now() < deadline {
            if !self.is_active_on(host, vm).await? {
                tracing::info!(vm, host, "VM shut down gracefully");
                return Ok(ShutdownObserved { forced: false });
            }
            let time_left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(STATE_POLL_INTERVAL.min(time_left)).await;
        }
        if !self.is_active_on(host, vm).await? {
            return Ok(ShutdownObserved { forced: false });
        }
        self.on_domain(host, vm, "power the domain off", |domain| domain.destroy())
            .await?;
        tracing::info!(
            vm,
            host,
            graceful_timeout_ms = graceful_timeout.as_millis() as u64,
            "VM ignored the shutdown request and was powered off"
        );
        Ok(ShutdownObserved { forced: true })
    }

    pub(crate) async fn start_vm(&self, vm: &str, host: &str) -> Result<(), LibvirtError> {
        self.require_host(host)?;
        let here = self.presence_on(host, vm).await?;
        if here.is_some_and(|presence| presence.active) {
            return Ok(());
        }
        self.refuse_if_in_maintenance(host, vm)?;
        // Even with a definition here, a copy running elsewhere (a definition left behind by
        // an interrupted move) must not get a twin on the same disks.
        let elsewhere = self.definitions_elsewhere(vm, host).await;
        if let Some(running) = elsewhere.running_on() {
            return Err(LibvirtError::Refused(format!(
                "VM {vm} already runs on {running}"
            )));
        }
        if here.is_none() {
            self.move_definition_here(vm, host, elsewhere).await?;
        }
        self.on_domain(host, vm, "start the domain", |domain| domain.create())
            .await?;
        tracing::info!(vm, host, "VM started");
        Ok(())
    }

    /// Active on `host`; a domain that vanished (transient, stopped) is not.
    async fn is_active_on(&self, host: &str, vm: &str) -> Result<bool, LibvirtError> {
        Ok(self
            .presence_on(host, vm)
            .await?
            .is_some_and(|presence| presence.active))
    }

    /// Runs `change` on the domain; when it fails but the domain already is as wanted (a race
    /// with the guest or another caller), that is not an error: `change` is only ever a state
    /// change the caller checks afterwards.
    async fn on_domain(
        &self,
        host: &str,
        vm: &str,
        operation: &'static str,
        change: fn(&virt::domain::Domain) -> Result<(), virt::error::Error>,
    ) -> Result<(), LibvirtError> {
        let (host_name, vm_name) = (host.to_string(), vm.to_string());
        self.connections
            .call(host, operation, self.call_timeout, move |connect| {
                let failed = |e: virt::error::Error| {
                    LibvirtError::from_libvirt(&host_name, &format!("{operation} of {vm_name}"), &e)
                };
                let domain = connect.lookup_domain_by_name(&vm_name).map_err(failed)?;
                let was_active = domain.is_active().map_err(failed)?;
                match change(&domain) {
                    Ok(()) => Ok(()),
                    Err(error) if domain.is_active().ok() != Some(was_active) => {
                        tracing::debug!(vm = %vm_name, %error, "{operation}: the domain changed state meanwhile");
                        Ok(())
                    }
                    Err(error) => Err(failed(error)),
                }
            })
            .await
    }

    async fn move_definition_here(
        &self,
        vm: &str,
        host: &str,
        elsewhere: Elsewhere,
    ) -> Result<(), LibvirtError> {
        let definition = elsewhere.into_first_definition(vm)?;
        let holder = definition.holder.as_str();
        let parsed = DomainXml::parse(&definition.inactive_xml).map_err(|problem| {
            LibvirtError::BadDomain {
                vm: vm.to_string(),
                host: holder.to_string(),
                problem,
            }
        })?;
        if let Some(disk) = self.storage_rule.first_local_disk(&parsed.disks) {
            return Err(LibvirtError::Refused(format!(
                "VM {vm} has local disks on {holder} ({}): it can only start there",
                disk.target
            )));
        }
        self.define_here(host, vm, definition.inactive_xml.clone())
            .await?;
        if let Err(error) = self.undefine_on(holder, vm).await {
            // Defined once is the rule: take the new definition back and report.
            if let Err(rollback) = self.undefine_on(host, vm).await {
                tracing::warn!(vm, host, %rollback, "could not remove the new definition after a failed move");
            }
            return Err(error);
        }
        tracing::info!(vm, from = holder, to = host, "VM definition moved");
        Ok(())
    }

    /// Every other host's definition of the domain, in host order, and the hosts that did not
    /// answer.
    async fn definitions_elsewhere(&self, vm: &str, host: &str) -> Elsewhere {
        let mut elsewhere = Elsewhere::default();
        for other in self.host_order.iter().filter(|other| *other != host) {
            match self.definition_on(other, vm).await {
                Ok(None) => {}
                Ok(Some((presence, inactive_xml))) => elsewhere.definitions.push((
                    presence,
                    Definition {
                        holder: other.clone(),
                        inactive_xml,
                    },
                )),
                Err(error) => {
                    tracing::debug!(vm, host = %other, %error, "host did not answer while looking for a VM");
                    elsewhere.silent_hosts.push(other.clone());
                }
            }
        }
        elsewhere
    }

    async fn definition_on(
        &self,
        host: &str,
        vm: &str,
    ) -> Result<Option<(DomainPresence, String)>, LibvirtError> {
        let (host_name, vm_name) = (host.to_string(), vm.to_string());
        self.connections
            .call(
                host,
                "read a domain definition",
                self.call_timeout,
                move |connect| {
                    definition(connect, &vm_name).map_err(|e| {
                        LibvirtError::from_libvirt(
                            &host_name,
                            &format!("read domain {vm_name}"),
                            &e,
                        )
                    })
                },
            )
            .await
    }

    async fn define_here(&self, host: &str, vm: &str, xml: String) -> Result<(), LibvirtError> {
        let (host_name, vm_name) = (host.to_string(), vm.to_string());
        self.connections
            .call(host, "define a domain", self.call_timeout, move |connect| {
                connect.define_domain_xml(&xml).map(drop).map_err(|e| {
                    LibvirtError::from_libvirt(&host_name, &format!("define domain {vm_name}"), &e)
                })
            })
            .await
    }

    async fn undefine_on(&self, host: &str, vm: &str) -> Result<(), LibvirtError> {
        let (host_name, vm_name) = (host.to_string(), vm.to_string());
        self.connections
            .call(
                host,
                "undefine a domain",
                self.call_timeout,
                move |connect| {
                    let failed = |e: virt::error::Error| {
                        LibvirtError::from_libvirt(
                            &host_name,
                            &format!("undefine domain {vm_name}"),
                            &e,
                        )
                    };
                    match connect.lookup_domain_by_name(&vm_name) {
                        Ok(domain) => domain.undefine().map_err(failed),
                        Err(error) if LibvirtError::is_no_such_domain(&error) => Ok(()),
                        Err(error) => Err(failed(error)),
                    }
                },
            )
            .await
    }
}

fn not_on_host(vm: &str, host: &str) -> LibvirtError {
    LibvirtError::NotFound(format!("VM {vm} is not on host {host}"))
}

/// Runs on a blocking thread: the domain's presence and inactive XML (with secrets, so the
/// copy is complete), or `None`.
fn definition(
    connect: &Connect,
    vm: &str,
) -> Result<Option<(DomainPresence, String)>, virt::error::Error> {
    let domain = match connect.lookup_domain_by_name(vm) {
        Ok(domain) => domain,
        Err(error) if LibvirtError::is_no_such_domain(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    let presence = DomainPresence {
        active: domain.is_active()?,
        persistent: domain.is_persistent()?,
    };
    let flags = virt::sys::VIR_DOMAIN_XML_INACTIVE | virt::sys::VIR_DOMAIN_XML_SECURE;
    Ok(Some((presence, domain.xml_desc(flags)?)))
}
