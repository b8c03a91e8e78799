//! A closed stdout (`drover plan … | head -1`) ends drover quietly, as other Unix tools end:
//! killed by SIGPIPE, which a shell reports as exit status 141. Rust ignores SIGPIPE, so every
//! `println!` to a closed pipe would panic with "Broken pipe" (exit 101) instead.
//!
//! Commands that only read and print get the default SIGPIPE back. Commands that drive a
//! platform keep it ignored (libvirt and sockets expect that, and a dead reader must not kill a
//! run between a driver call and its journal entry); for them a closed stdout while printing
//! the report exits 141 without a panic message. Knows nothing of the commands themselves.

/// What a shell shows for a process killed by SIGPIPE (128 + 13).
pub const EXIT_CLOSED_PIPE: i32 = 141;

/// For commands that only read and print: die by SIGPIPE like `cat` does.
pub fn die_on_closed_pipe() {
    // SAFETY: called once in `main` before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE and no Rust code depends on it being ignored in these commands.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// For every command: a panic from printing to a closed stdout exits 141 quietly; any other
/// panic is reported as before.
pub fn exit_quietly_on_broken_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(EXIT_CLOSED_PIPE);
        }
        default_hook(info);
    }));
}
