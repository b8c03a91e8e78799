//! The one error type of this crate: why an inventory was refused, and where.
//!
//! It carries a file name, a position, a field path and a message, and prints them as one line
//! (`pool.yaml:14:7: vms[3].host: unknown host "xs09" ...`). It knows no YAML parser and no
//! cluster model, and does not decide exit codes: that is the CLI's business.

/// An inventory that could not be turned into a cluster.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be read: missing, unreadable, or not UTF-8.
    #[error("{source_name}: cannot read the inventory: {cause}")]
    Unreadable {
        source_name: String,
        #[source]
        cause: std::io::Error,
    },
    /// The file was read, but its content is not a valid inventory.
    #[error("{}", render_invalid(.source_name, *.line, *.column, .field_path.as_deref(), .message))]
    Invalid {
        source_name: String,
        /// 1-based line of the offending node.
        line: usize,
        /// 1-based column of the offending node, when the parser reported one.
        column: Option<usize>,
        /// Where in the document, in `vms[3].host` notation; `None` for the document as a whole.
        field_path: Option<String>,
        message: String,
    },
}

impl InventoryError {
    /// Whether the operator's input is at fault rather than Drover. True for every variant:
    /// an unreadable file is a path the operator gave, so it is bad input too.
    pub fn is_bad_input(&self) -> bool {
        match self {
            InventoryError::Unreadable { .. } | InventoryError::Invalid { .. } => true,
        }
    }

    /// The file name (or other source name) the error is about.
    pub fn source_name(&self) -> &str {
        match self {
            InventoryError::Unreadable { source_name, .. }
            | InventoryError::Invalid { source_name, .. } => source_name,
        }
    }

    /// The 1-based line of the problem; `None` when the file could not be read at all.
    pub fn line(&self) -> Option<usize> {
        match self {
            InventoryError::Unreadable { .. } => None,
            InventoryError::Invalid { line, .. } => Some(*line),
        }
    }

    /// The 1-based column of the problem, when known.
    pub fn column(&self) -> Option<usize> {
        match self {
            InventoryError::Unreadable { .. } => None,
            InventoryError::Invalid { column, .. } => *column,
        }
    }

    /// The field path of the problem (`vms[3].host`), when it concerns one field or entry.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            InventoryError::Unreadable { .. } => None,
            InventoryError::Invalid { field_path, .. } => field_path.as_deref(),
        }
    }
}

/// `file:line[:column]: [path: ]message`, the shape compilers use, so editors can jump to it.
fn render_invalid(
    source_name: &str,
    line: usize,
    column: Option<usize>,
    field_path: Option<&str>,
    message: &str,
) -> String {
    let column_text = column
        .map(|column| format!(":{column}"))
        .unwrap_or_default();
    let path_text = field_path
        .map(|path| format!("{path}: "))
        .unwrap_or_default();
    format!("{source_name}:{line}{column_text}: {path_text}{message}")
}
