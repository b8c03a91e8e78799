//! `drover completions SHELL` and `drover man [--dir DIR]`: shell completion scripts
//! (clap_complete) and man pages (clap_mangen) generated from the same argument definitions the
//! binary parses, so they never drift from it. Knows nothing of what the commands do.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::exit::Failure;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    shell: Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write drover.1 and drover-COMMAND.1 for every command here (created if missing);
    /// without it, drover.1 goes to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn completions<C: CommandFactory>(args: &CompletionsArgs) -> Result<(), Failure> {
    let mut command = C::command();
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "drover", &mut stdout);
    stdout.flush()?;
    Ok(())
}

pub fn man<C: CommandFactory>(args: &ManArgs) -> Result<(), Failure> {
    let command = C::command();
    let Some(directory) = &args.dir else {
        let mut stdout = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut stdout)?;
        return Ok(stdout.flush()?);
    };
    std::fs::create_dir_all(directory)
        .map_err(|error| Failure::bad_input(format!("--dir {}: {error}", directory.display())))?;
    let mut written = 0usize;
    for page in pages(command) {
        let path = directory.join(format!("{}.1", page.get_name()));
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(&path, text).map_err(|error| {
            Failure::bad_input(format!("{}: cannot write: {error}", path.display()))
        })?;
        written += 1;
    }
    eprintln!("{written} man page(s) written to {}", directory.display());
    Ok(())
}

/// The top page, then one page per command named `drover-COMMAND` (as git does).
fn pages(command: clap::Command) -> Vec<clap::Command> {
    let command = command.name("drover");
    let mut pages = vec![command.clone()];
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("drover-{}", sub.get_name());
        pages.push(sub.clone().name(name));
    }
    pages
}
