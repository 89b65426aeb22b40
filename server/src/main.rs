//! The `hearth` binary: the headless homeserver and its admin commands (`cli`).

fn main() -> std::process::ExitCode {
    hearth_server::cli::main_from(std::env::args_os())
}
