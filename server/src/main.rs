//! The `hearth` binary: the headless homeserver and its admin commands (`cli`).

fn main() -> std::process::ExitCode {
    // Before any thread exists: this may start the program over (see `allocator`).
    hearth_server::allocator::tune();
    hearth_server::cli::main_from(std::env::args_os())
}
