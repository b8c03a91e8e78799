//! The fast way to read a YAML inventory, tried before serde_yaml_ng: `drover_yaml`'s fast reader
//! streams the text into the inventory's own serde types, and a large file is cut at the items of
//! `hosts:` and `vms:` so that its parts are read on every core.
//!
//! It answers only "here is the document" or "no": a file it declines (unusual YAML, or any value
//! the types refuse) is read again by serde_yaml_ng, which gives the same document or the
//! positioned error, so no message depends on this module. The parts go through the same
//! `Deserialize` impls as the whole file (`Vec<HostEntry>`, `Vec<VmEntry>`, and the document for
//! the rest), which is why a field added to a section needs no change here; what this module
//! assumes is that `hosts` and `vms` are plain lists read item by item. It knows nothing of
//! positions, validation or the cluster model.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use drover_yaml::{
    from_str_fast, from_str_fast_witnessed, split_top_level_sequences, SequencePart, SplitDocument,
};
use serde::de::DeserializeOwned;

use super::schema::{HostEntry, InventoryDocument, VmEntry};
use super::MAX_INVENTORY_NESTING_DEPTH;

/// The top-level lists cut into parts, in the order `SplitDocument::sequences` answers.
const CUT_KEYS: [&str; 2] = ["hosts", "vms"];

/// Below this a text is read whole on one thread: starting threads costs more than it saves.
const SMALLEST_CUT_TEXT_BYTES: usize = 512 * 1024;

/// Parts per thread: enough that a thread slowed by other work on the machine is helped out.
const PARTS_PER_THREAD: usize = 4;

/// The document in `text` if the fast reader takes it, read on up to `threads` threads (the
/// machine's cores when `None`); `None` sends the caller to serde_yaml_ng.
pub(crate) fn read_yaml_fast(text: &str, threads: Option<usize>) -> Option<InventoryDocument> {
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
    if threads > 1 && text.len() >= SMALLEST_CUT_TEXT_BYTES {
        let part_bytes = text.len() / (threads * PARTS_PER_THREAD);
        if let Some(split) = split_top_level_sequences(text, &CUT_KEYS, part_bytes) {
            // The parts said no for a reason the whole text shares: go straight to the plain
            // reader rather than read the text a second time here.
            return read_split(&split, threads);
        }
    }
    from_str_fast(text, MAX_INVENTORY_NESTING_DEPTH).ok()
}

/// Reads a cut text on `threads` threads; `None` when any part is declined or the parser did not
/// see the cut's lines as key and item starts.
pub(crate) fn read_split(split: &SplitDocument, threads: usize) -> Option<InventoryDocument> {
    let mut jobs = vec![Job::Head];
    jobs.extend(split.sequences[0].iter().map(Job::Hosts));
    jobs.extend(split.sequences[1].iter().map(Job::Vms));
    let results: Vec<Mutex<Option<Done>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let next_job = AtomicUsize::new(0);
    let declined = AtomicBool::new(false);
    let work = || loop {
        let index = next_job.fetch_add(1, Ordering::Relaxed);
        if index >= jobs.len() || declined.load(Ordering::Relaxed) {
            return;
        }
        match jobs[index].run(split) {
            Some(done) => *results[index].lock().expect("no job panics") = Some(done),
            None => declined.store(true, Ordering::Relaxed),
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.min(jobs.len()) {
            scope.spawn(work);
        }
        work();
    });
    if declined.load(Ordering::Relaxed) {
        return None;
    }
    let mut done = results
        .into_iter()
        .map(|result| result.into_inner().expect("no job panics"));
    let Some(Some(Done::Head(document))) = done.next() else {
        return None;
    };
    let mut document = *document;
    let cut_hosts = !split.sequences[0].is_empty();
    let cut_vms = !split.sequences[1].is_empty();
    // A cut key is left empty in the head; anything there means the cut misread the text.
    if (cut_hosts && !document.hosts.is_empty()) || (cut_vms && !document.vms.is_empty()) {
        return None;
    }
    // One allocation for each whole list, instead of growing it part by part.
    let items = |parts: &[SequencePart]| parts.iter().map(|part| part.item_lines.len()).sum();
    document.hosts.reserve_exact(items(&split.sequences[0]));
    document.vms.reserve_exact(items(&split.sequences[1]));
    for result in done {
        match result? {
            Done::Hosts(hosts) => document.hosts.extend(hosts),
            Done::Vms(vms) => document.vms.extend(vms),
            Done::Head(_) => return None,
        }
    }
    Some(document)
}

enum Job<'a> {
    Head,
    Hosts(&'a SequencePart<'a>),
    Vms(&'a SequencePart<'a>),
}

enum Done {
    /// Boxed: the document is large, and there is one head among many parts.
    Head(Box<InventoryDocument>),
    Hosts(Vec<HostEntry>),
    Vms(Vec<VmEntry>),
}

impl Job<'_> {
    fn run(&self, split: &SplitDocument) -> Option<Done> {
        match self {
            Job::Head => {
                let (document, witness) = from_str_fast_witnessed::<InventoryDocument>(
                    &split.head,
                    MAX_INVENTORY_NESTING_DEPTH,
                )
                .ok()?;
                split
                    .head_confirmed(&witness)
                    .then(|| Done::Head(Box::new(document)))
            }
            Job::Hosts(part) => read_part(part).map(Done::Hosts),
            Job::Vms(part) => read_part(part).map(Done::Vms),
        }
    }
}

fn read_part<T: DeserializeOwned>(part: &SequencePart) -> Option<Vec<T>> {
    // A part's items sit one level higher than in the whole text, under no root mapping.
    let (items, witness) =
        from_str_fast_witnessed::<Vec<T>>(part.text, MAX_INVENTORY_NESTING_DEPTH - 1).ok()?;
    part.confirmed(&witness).then_some(items)
}
