//! The `hearth` command line: parse arguments, start logging, run the homeserver headless until
//! a signal, stop it gracefully; also the admin commands that work without a running server.
//! A library module so the desktop app's `--headless` mode runs exactly this.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use crate::{Config, Homeserver, config};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hearth", version = crate::VERSION, about = "Hearth: a personal Matrix homeserver")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the homeserver (the default). Without --config, uses homeserver.toml in the OS
    /// config folder, writing a commented default there on first run.
    Serve {
        /// Path to homeserver.toml.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Create an account directly in the database, like Synapse's register_new_matrix_user.
    /// Works whether or not the server is running.
    RegisterUser {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Local part of the new user ID (alice for @alice:example.org).
        #[arg(long, short = 'u')]
        user: String,
        /// Password; read from the terminal (or one line of stdin) when omitted.
        #[arg(long, short = 'p')]
        password: Option<String>,
        /// Make the user a server admin.
        #[arg(long, short = 'a')]
        admin: bool,
    },
    /// Print the registration shared secret, for `register_new_matrix_user -k`.
    ShowRegistrationSecret {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Print the link to the setup page and dashboard, with the admin key. Keep it private:
    /// whoever has it controls the server.
    AdminUrl {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Replace the admin key: the old link stops working at once, also on a running server.
    /// Prints the new link.
    RotateAdminKey {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Back up the database (a consistent snapshot, also while the server runs), the media, the
    /// secrets (wherever they are kept, the OS keychain included) and the config file. Prints
    /// the backup's folder as its last line.
    Backup {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Folder to write the backup into (an external disk, a synced folder); media files are
        /// shared by all backups in it. Default: `backups` in the data folder.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Encrypt the backup with the passphrase in this file (its first line). Every backup in
        /// the output folder then needs it: a lost passphrase is a lost backup.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Compact the database (SQLite's VACUUM: space freed by deleted rows goes back to the
    /// disk). The server must be stopped.
    Compact {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Restore a backup folder into a data folder that has no database yet (never overwrites
    /// one). Checks every file's hash and the schema before writing anything.
    Restore {
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// The backup's folder (`hearth-<server name>-<time>`, as `hearth backup` printed it).
        #[arg(long)]
        from: PathBuf,
        /// The passphrase of an encrypted backup, in this file (its first line).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

fn read_passphrase(path: &std::path::Path) -> anyhow::Result<age::secrecy::SecretString> {
    crate::service::backup::read_passphrase(path).map_err(|e| anyhow::anyhow!("--passphrase-file: {e:#}"))
}

/// Runs the command line given by `args` (the program name first, as in `std::env::args_os`).
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hearth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve { config: None }) {
            Command::Serve { config } => serve(config).await,
            Command::RegisterUser { config, user, password, admin } => {
                register_user(config, user, password, admin).await
            }
            Command::ShowRegistrationSecret { config } => {
                let (config, _) = load(config, false)?;
                println!("{}", crate::registration_shared_secret(config).await?);
                Ok(())
            }
            Command::AdminUrl { config } => {
                let (config, _) = load(config, false)?;
                println!("{}", crate::admin_url_offline(config).await?);
                Ok(())
            }
            Command::RotateAdminKey { config } => {
                let (config, _) = load(config, false)?;
                println!("{}", crate::rotate_admin_key_offline(config).await?);
                Ok(())
            }
            Command::Backup { config, output, passphrase_file } => {
                let (config, path) = load(config, false)?;
                let config = config.validate()?;
                let out = output.unwrap_or_else(|| config.data_dir().join("backups"));
                let passphrase = passphrase_file.as_deref().map(read_passphrase).transpose()?;
                let done = crate::service::backup::backup(&config, Some(&path), &out, passphrase.as_ref()).await?;
                println!("{}", done.display());
                Ok(())
            }
            Command::Compact { config } => {
                let (config, _) = load(config, false)?;
                let config = config.validate()?;
                let (before, after) = crate::compact_offline(config).await?;
                let mb = |b: u64| b as f64 / 1_048_576.0;
                println!("Compacted the database: {:.1} MB before, {:.1} MB now.", mb(before), mb(after));
                Ok(())
            }
            Command::Restore { config, from, passphrase_file } => {
                let (config, _) = load(config, true)?;
                let config = config.validate()?;
                let passphrase = passphrase_file.as_deref().map(read_passphrase).transpose()?;
                let restored = crate::service::backup::restore(&config, &from, passphrase.as_ref()).await?;
                println!(
                    "Restored the backup of {} ({} media files) into {}. Start Hearth to serve it.",
                    restored.server_name,
                    restored.media,
                    config.data_dir().display()
                );
                if restored.name_from_backup {
                    println!(
                        "Its server name {} is kept in the database and goes over server_name = \"{}\" in the config (people's addresses end with it).",
                        restored.server_name, config.server_name
                    );
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config from `path`, or from the default location (written with every key commented
/// on first run when `create`). Warnings about the file go to stderr.
pub fn load(path: Option<PathBuf>, create: bool) -> anyhow::Result<(Config, PathBuf)> {
    let (path, create) = match path {
        Some(p) => (p, false),
        None => (config::default_config_path()?, create),
    };
    let (config, warnings) = Config::load(&path, create)?;
    for w in warnings {
        eprintln!("hearth: warning: {w}");
    }
    Ok((config, path))
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, path) = load(config_path, true)?;
    let config = config.validate()?;
    let log_dir = config.log_dir.clone().or_else(config::default_log_dir);
    let logs = crate::logging::init(&config.log_level, log_dir.as_deref());
    let data_dir = config.data_dir().to_path_buf();

    let mut running = Homeserver::start(config).await?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Hearth {} is running.", crate::VERSION);
    let _ = writeln!(out, "  Client URL:   {}", running.public_baseurl());
    for a in running.local_addrs() {
        let _ = writeln!(out, "  Listening on: http://{a}/");
    }
    let _ = writeln!(out, "  Config file:  {}", path.display());
    let _ = writeln!(out, "  Data folder:  {}", data_dir.display());
    if let Some(d) = &logs.dir {
        let _ = writeln!(out, "  Log folder:   {}", d.display());
    }
    let _ = writeln!(out, "  Secrets:      {}", running.secret_store());
    if running.admin_key_is_new() {
        // Shown once, at the first start: journald and terminals keep what is printed.
        let _ = writeln!(
            out,
            "Open the setup page and dashboard (on this computer; the link holds the admin key, keep it private):"
        );
        let _ = writeln!(out, "  {}", running.admin_url());
    } else {
        let _ = writeln!(out, "Setup page and dashboard (on this computer): {}", running.admin_page());
        let _ = writeln!(out, "  For the link with the admin key: hearth admin-url --config {}", path.display());
    }
    let _ = writeln!(
        out,
        "Or create an account with: hearth register-user --config {} --user NAME --admin",
        path.display()
    );
    let _ = writeln!(out, "Press Ctrl+C to stop.");
    drop(out);

    loop {
        let restart = running.restart_requested();
        tokio::select! {
            () = shutdown_signal() => break,
            () = running.stopped_unexpectedly() => {
                anyhow::bail!("a listener stopped unexpectedly; see the log");
            }
            () = restart => {
                // A change made in the dashboard: same addresses, settings read afresh.
                running = running.restart().await?;
                println!("Hearth restarted with the new settings.");
            }
        }
    }
    running.stop().await;
    Ok(())
}

/// Ctrl+C, or SIGTERM on Unix (what service managers and logout send).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn register_user(
    config: Option<PathBuf>,
    user: String,
    password: Option<String>,
    admin: bool,
) -> anyhow::Result<()> {
    let (config, _) = load(config, true)?;
    let password = match password {
        Some(p) => p,
        None => read_password()?,
    };
    if password.is_empty() {
        anyhow::bail!("the password must not be empty");
    }
    let user_id = crate::register_user_offline(config, &user, password, admin).await?;
    println!("Created {user_id}{}", if admin { " (server admin)" } else { "" });
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Confirm password: ")?;
        if first != second {
            anyhow::bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}
