//! Package update checks: `apt list --upgradable` (real captures from this project's Debian 12
//! build machine, taken after `apt-get update`), `dnf`/`yum check-update` (hand-made fixtures,
//! see below), and watch lists.
//!
//! The apt captures in testdata/ are unedited:
//! - `apt-list-upgradable-debian12.txt`: `apt list --upgradable 2>/dev/null`;
//! - `apt-list-upgradable-debian12-stderr-merged.txt`: the same with `2>&1`, so apt's warning
//!   about its unstable CLI is in it, as a command driver that merges streams would see it;
//! - `apt-list-upgradable-all-versions-debian12.txt`: `apt list --upgradable -a`, which also
//!   lists installed and other candidate versions.
//!
//! No RPM system was at hand, so the dnf/yum fixtures are hand-made in dnf's exact format: the
//! columns were laid out with the algorithm of dnf/cli/output.py (`fmtColumns`: a field longer
//! than its column is followed by a line break and indentation up to the next column; piped
//! output uses full-width columns and never wraps), including the "Obsoleting Packages" section
//! with the replaced package indented by four spaces, and the chatter dnf, yum and
//! subscription-manager print around the rows.

use drover_catalog::{
    parse_apt_upgradable, parse_dnf_check_update, updates_available, watched_updates, CatalogError,
    PackageUpdate, WatchList, DEFAULT_SYSTEM_WATCH_PATTERNS,
};

const APT_DEBIAN12: &str = include_str!("../testdata/apt-list-upgradable-debian12.txt");
const APT_DEBIAN12_MERGED: &str =
    include_str!("../testdata/apt-list-upgradable-debian12-stderr-merged.txt");
const APT_DEBIAN12_ALL_VERSIONS: &str =
    include_str!("../testdata/apt-list-upgradable-all-versions-debian12.txt");
const DNF_EL9_PIPED: &str = include_str!("../testdata/dnf-check-update-el9-piped.txt");
const DNF_EL8_NARROW: &str = include_str!("../testdata/dnf-check-update-el8-60-columns.txt");
const YUM_EL7_80_COLUMNS: &str = include_str!("../testdata/yum-check-update-el7-80-columns.txt");

fn find<'a>(updates: &'a [PackageUpdate], name: &str) -> &'a PackageUpdate {
    updates
        .iter()
        .find(|update| update.name == name)
        .unwrap_or_else(|| panic!("{name} is not among the updates"))
}

fn names(updates: &[&PackageUpdate]) -> Vec<String> {
    updates.iter().map(|update| update.name.clone()).collect()
}

#[test]
fn the_real_apt_capture_yields_every_upgradable_package() {
    let updates = parse_apt_upgradable(APT_DEBIAN12).unwrap();
    let listed = APT_DEBIAN12.matches("[upgradable from: ").count();
    assert_eq!(updates.len(), listed);
    assert_eq!(updates.len(), 124);
    assert_eq!(
        find(&updates, "libcap2"),
        &PackageUpdate {
            name: "libcap2".to_string(),
            arch: "amd64".to_string(),
            available_version: "1:2.66-4+deb12u3+b1".to_string(),
            current_version: Some("1:2.66-4+deb12u2+b2".to_string()),
            source: "oldstable".to_string(),
            obsoletes: Vec::new(),
        }
    );
    let from_two_suites = find(&updates, "krb5-locales");
    assert_eq!(from_two_suites.source, "oldstable,oldstable-security");
    assert_eq!(from_two_suites.arch, "all");
}

#[test]
fn merged_stderr_and_all_versions_give_the_same_updates() {
    let plain = parse_apt_upgradable(APT_DEBIAN12).unwrap();
    assert!(APT_DEBIAN12_MERGED.contains("WARNING: apt does not have a stable CLI interface"));
    assert_eq!(parse_apt_upgradable(APT_DEBIAN12_MERGED).unwrap(), plain);
    // `-a` adds the installed versions ("[installed,upgradable to: ...]") and older candidates.
    assert!(APT_DEBIAN12_ALL_VERSIONS.contains("[installed,upgradable to: "));
    assert_eq!(
        parse_apt_upgradable(APT_DEBIAN12_ALL_VERSIONS).unwrap(),
        plain
    );
}

#[test]
fn an_apt_line_of_another_shape_is_refused_with_its_number() {
    let text = "Listing...\nlibvirt0/stable-security 9.0.0-4+deb12u2 amd64 [upgradable from: 9.0.0-4+deb12u1]\nE: Could not open lock file\n";
    assert_eq!(
        parse_apt_upgradable(text).unwrap_err().to_string(),
        "apt list --upgradable output, line 3: expected `name/suites version arch [flags]`: \"E: Could not open lock file\""
    );
    let unclosed = "libvirt0/stable 9.0 amd64 [upgradable from: 8.0\n";
    assert!(parse_apt_upgradable(unclosed)
        .unwrap_err()
        .to_string()
        .contains("line 1: the bracketed flags are not closed"));
    assert_eq!(parse_apt_upgradable("Listing...\n").unwrap(), []);
}

#[test]
fn piped_dnf_output_with_obsoletes_is_read() {
    let updates = parse_dnf_check_update(DNF_EL9_PIPED).unwrap();
    assert_eq!(updates.len(), 11);
    let qemu = find(&updates, "qemu-kvm-core");
    assert_eq!(
        (
            qemu.arch.as_str(),
            qemu.available_version.as_str(),
            qemu.source.as_str()
        ),
        ("x86_64", "17:9.0.0-10.el9_5.2", "appstream")
    );
    assert_eq!(qemu.current_version, None);
    // grub2-tools is listed as an update and again as obsoleting grub2-tools-efi: one entry.
    assert_eq!(
        updates.iter().filter(|u| u.name == "grub2-tools").count(),
        1
    );
    assert_eq!(
        find(&updates, "grub2-tools").obsoletes,
        ["grub2-tools-efi.x86_64"]
    );
    // ovirt-openvswitch only appears as obsoleting, and becomes an update of its own.
    let openvswitch = find(&updates, "ovirt-openvswitch");
    assert_eq!(openvswitch.source, "ovirt-45-centos-stream-openstack-yoga");
    assert_eq!(openvswitch.obsoletes, ["openvswitch2.15.x86_64"]);
    assert_eq!(find(&updates, "tzdata").arch, "noarch");
}

#[test]
fn yum_rows_wrapped_at_80_columns_are_joined() {
    let updates = parse_dnf_check_update(YUM_EL7_80_COLUMNS).unwrap();
    let wrapped = find(&updates, "libvirt-daemon-driver-storage-core");
    assert_eq!(
        (wrapped.available_version.as_str(), wrapped.source.as_str()),
        ("4.5.0-36.el7_9.5", "updates")
    );
    assert_eq!(find(&updates, "qemu-img-ev").obsoletes, ["qemu-img.x86_64"]);
    assert_eq!(updates.len(), 6);
}

#[test]
fn dnf_rows_whose_name_and_version_both_overflow_are_joined() {
    let updates = parse_dnf_check_update(DNF_EL8_NARROW).unwrap();
    let names: Vec<&str> = updates.iter().map(|update| update.name.as_str()).collect();
    assert_eq!(
        names,
        ["kernel-core", "libvirt-daemon-driver-nodedev", "ovirt-host"]
    );
    let twice_wrapped = &updates[1];
    assert_eq!(
        twice_wrapped.available_version,
        "8.0.0-23.2.module+el8.10.0+21842+2a8b8d1b"
    );
    assert_eq!(twice_wrapped.source, "rhel-8-appstream");
    assert_eq!(updates[0].source, "rhel-8-baseos");
}

#[test]
fn no_updates_is_an_empty_list() {
    let text = "Last metadata expiration check: 0:00:12 ago on Sun 22 Nov 2026 05:00:00 AM UTC.\n";
    assert_eq!(parse_dnf_check_update(text).unwrap(), []);
    assert_eq!(parse_dnf_check_update("").unwrap(), []);
}

#[test]
fn unexpected_dnf_lines_are_refused_not_skipped() {
    let error = |text: &str| parse_dnf_check_update(text).unwrap_err().to_string();
    assert_eq!(
        error("\nkernel.x86_64  5.14.0-503.el9  baseos\nError: Failed to download metadata for repo 'appstream'\n"),
        "dnf check-update output, line 3: expected `name.arch  version  repository`, found more fields: \"Error: Failed to download metadata for repo 'appstream'\""
    );
    assert!(error("libvirt-daemon-driver-qemu.x86_64\n")
        .contains("line 1: a package row ends before its version and repository"));
    assert!(error("kernel  5.14.0-503.el9  baseos\n").contains("not written as `name.arch`"));
    assert!(error("kernel.x86_64  baseos  5.14\n").contains("not a version"));
    assert!(
        error("Obsoleting Packages\n    grub2-tools.x86_64  1:2.06-80.el9  @anaconda\n")
            .contains("no obsoleting package above it")
    );
    assert!(error("  kernel.x86_64  5.14.0  baseos\n")
        .contains("outside the Obsoleting Packages section"));
}

#[test]
fn oversized_output_is_refused() {
    let huge = "x".repeat(drover_catalog::limits::MAX_UPDATE_OUTPUT_BYTES + 1);
    assert!(matches!(
        parse_apt_upgradable(&huge),
        Err(CatalogError::InputTooLarge { .. })
    ));
    assert!(matches!(
        parse_dnf_check_update(&huge),
        Err(CatalogError::InputTooLarge { .. })
    ));
}

#[test]
fn the_default_list_watches_the_virtualization_stack() {
    let watch = WatchList::with_default_system(&[]).unwrap();
    let updates = parse_dnf_check_update(DNF_EL9_PIPED).unwrap();
    assert_eq!(
        names(&watched_updates(&updates, &watch)),
        [
            "kernel",
            "kernel-core",
            "kernel-modules",
            "libvirt-daemon-driver-storage-core",
            "qemu-kvm-core",
            "vdsm",
            "ovirt-openvswitch",
        ]
    );
    assert_eq!(watch.matching_pattern("qemu-kvm-core"), Some("qemu-kvm*"));
    assert_eq!(watch.patterns().len(), DEFAULT_SYSTEM_WATCH_PATTERNS.len());
}

#[test]
fn the_real_debian_capture_has_nothing_on_the_default_list() {
    // linux-libc-dev and linux-perf are headers and tools, not a kernel to boot.
    let updates = parse_apt_upgradable(APT_DEBIAN12).unwrap();
    let watch = WatchList::with_default_system(&[]).unwrap();
    assert!(!updates_available(&updates, &watch));
    let with_user =
        WatchList::with_default_system(&["openssl".to_string(), "libssl?".to_string()]).unwrap();
    assert_eq!(
        names(&watched_updates(&updates, &with_user)),
        ["libssl3", "openssl"]
    );
    assert!(updates_available(&updates, &with_user));
}

#[test]
fn an_update_counts_when_it_obsoletes_a_watched_package() {
    let updates = parse_dnf_check_update(YUM_EL7_80_COLUMNS).unwrap();
    let watch = WatchList::new(&["qemu-img"], &[]).unwrap();
    assert_eq!(names(&watched_updates(&updates, &watch)), ["qemu-img-ev"]);
}

#[test]
fn watch_patterns_match_with_stars_and_question_marks() {
    let watch = WatchList::new(&["qemu-*", "lib?irt"], &["*-firmware".to_string()]).unwrap();
    assert!(watch.matches("qemu-system-x86"));
    assert!(watch.matches("qemu-"));
    assert!(!watch.matches("qemu"));
    assert!(watch.matches("libvirt"));
    assert!(!watch.matches("libvirt-daemon"));
    assert!(watch.matches("linux-firmware"));
    assert!(!watch.matches("firmware"));
}

#[test]
fn unusable_watch_patterns_are_refused() {
    let refused = |pattern: &str| {
        WatchList::new(&[], &[pattern.to_string()])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(refused(""), "watch pattern \"\": is empty");
    assert!(refused("qemu kvm").contains("contains a space"));
    assert!(refused(&"q".repeat(300)).contains("longer than 256 characters"));
    let too_many: Vec<String> = (0..=drover_catalog::limits::MAX_WATCH_PATTERNS)
        .map(|i| format!("p{i}"))
        .collect();
    assert!(matches!(
        WatchList::new(&[], &too_many),
        Err(CatalogError::InputTooLarge {
            what: "watch patterns",
            ..
        })
    ));
}
