//! The emulator's object references and uuids (`OpaqueRef:` + a uuid whose first group names the
//! class and whose last group numbers the object), and records as XAPI structs.
//!
//! This module must not know the pool, the world, sessions or HTTP.

use super::wire::XapiValue;

/// The kinds of object, for refs and uuids (the first group of each).
#[derive(Clone, Copy)]
pub(super) enum Class {
    Pool = 1,
    Host = 2,
    Vm = 3,
    HostMetrics = 4,
    ControlDomain = 5,
    Template = 6,
    Session = 7,
    Task = 8,
    Sr = 9,
    Vdi = 10,
    Vbd = 11,
    GuestMetrics = 12,
    VmGroup = 13,
}

pub(super) fn reference(class: Class, index: u64) -> String {
    format!("OpaqueRef:{}", uuid(class, index))
}

pub(super) fn uuid(class: Class, index: u64) -> String {
    format!("{:08x}-0000-4000-8000-{index:012x}", class as u32)
}

pub(super) fn record(fields: Vec<(&str, XapiValue)>) -> XapiValue {
    XapiValue::Struct(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}
