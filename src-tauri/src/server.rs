//! The embedded homeserver: one task owns the `Running` handle and takes commands (pause,
//! resume, stop), applies restarts the dashboard asks for, and publishes its phase on a watch
//! channel that the tray and the window follow. No Tauri types here.

use std::path::PathBuf;

use hearth_server::{Config, Homeserver, Running};
use tokio::sync::{mpsc, oneshot, watch};

/// What the server is doing, for the tray's status line and the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Starting,
    Running(Info),
    /// Stopped from the tray; `Resume` starts it again.
    Paused,
    /// Could not start (or a listener died); the message says what to do.
    Failed(String),
    /// Stopping for good (quit).
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The dashboard, with the admin token in the fragment.
    pub admin_url: String,
    /// The address people type into Element (`public_baseurl`).
    pub client_url: String,
    /// Where the secrets are kept (the keychain probe's result).
    pub secret_store: String,
}

enum Command {
    /// Stops the server; the sender, when there is one, hears when it has stopped.
    Pause(Option<oneshot::Sender<()>>),
    Resume,
    Stop(oneshot::Sender<()>),
}

/// A handle on the server task; cheap to clone.
#[derive(Clone)]
pub struct DesktopServer {
    commands: mpsc::UnboundedSender<Command>,
    phase: watch::Receiver<Phase>,
    pub log_dir: Option<PathBuf>,
}

impl DesktopServer {
    /// Spawns the server task on the current tokio runtime and starts the server.
    pub fn spawn(config: Config, log_dir: Option<PathBuf>) -> DesktopServer {
        let (commands, rx) = mpsc::unbounded_channel();
        let (phase_tx, phase) = watch::channel(Phase::Starting);
        tokio::spawn(serve(config, rx, phase_tx));
        DesktopServer { commands, phase, log_dir }
    }

    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    /// Follows phase changes.
    pub fn watch(&self) -> watch::Receiver<Phase> {
        self.phase.clone()
    }

    pub fn pause(&self) {
        let _ = self.commands.send(Command::Pause(None));
    }

    /// Pauses and returns once the server has stopped gracefully (requests finished, the
    /// database closed). Commands are taken only between starts, so this never interrupts a
    /// start, and so never a database migration, which runs during one.
    pub async fn pause_and_wait(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Pause(Some(done))).is_ok() {
            let _ = wait.await;
        }
    }

    pub fn resume(&self) {
        let _ = self.commands.send(Command::Resume);
    }

    /// Stops the server gracefully (requests finish, the database is closed) and returns when
    /// it has. Later commands are ignored.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn start(config: &Config, phase: &watch::Sender<Phase>) -> Option<Running> {
    phase.send_replace(Phase::Starting);
    match Homeserver::start(config.clone()).await {
        Ok(running) => {
            phase.send_replace(Phase::Running(info(&running)));
            Some(running)
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the homeserver could not start");
            phase.send_replace(Phase::Failed(format!("{e:#}")));
            None
        }
    }
}

fn info(running: &Running) -> Info {
    Info { admin_url: running.admin_url(), client_url: running.public_baseurl(), secret_store: running.secret_store() }
}

async fn serve(config: Config, mut commands: mpsc::UnboundedReceiver<Command>, phase: watch::Sender<Phase>) {
    let mut running = start(&config, &phase).await;
    loop {
        // Both futures own what they need, so `running` is free again in the branches.
        let restart = running.as_ref().map(|r| r.restart_requested());
        let restart = async move {
            match restart {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        let died = async {
            match running.as_mut() {
                Some(r) => r.stopped_unexpectedly().await,
                None => std::future::pending().await,
            }
        };
        enum Event {
            Command(Option<Command>),
            Restart,
            Died,
        }
        let event = tokio::select! {
            c = commands.recv() => Event::Command(c),
            () = restart => Event::Restart,
            () = died => Event::Died,
        };
        match event {
            Event::Command(Some(Command::Pause(done))) => {
                if let Some(r) = running.take() {
                    r.stop().await;
                }
                phase.send_replace(Phase::Paused);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Event::Command(Some(Command::Resume)) => {
                if running.is_none() {
                    running = start(&config, &phase).await;
                }
            }
            Event::Command(c) => {
                // Stop, or every handle dropped.
                phase.send_replace(Phase::Stopping);
                if let Some(r) = running.take() {
                    r.stop().await;
                }
                phase.send_replace(Phase::Stopped);
                if let Some(Command::Stop(done)) = c {
                    let _ = done.send(());
                }
                // Later Stop requests find the channel closed and return at once.
                return;
            }
            Event::Restart => {
                if let Some(r) = running.take() {
                    match r.restart().await {
                        Ok(r) => {
                            phase.send_replace(Phase::Running(info(&r)));
                            running = Some(r);
                        }
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "the homeserver could not restart");
                            phase.send_replace(Phase::Failed(format!("{e:#}")));
                        }
                    }
                }
            }
            Event::Died => {
                if let Some(r) = running.take() {
                    r.stop().await;
                }
                phase.send_replace(Phase::Failed("A listener stopped unexpectedly; see the log.".to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hearth_server::config::SecretStoreChoice;
    use sqlx::Connection as _;

    use super::*;

    /// An update stops the server with `pause_and_wait`. Asked while the server is still
    /// starting (creating or migrating its database), it waits for the start to finish: the
    /// database it leaves has every migration applied, none half-done.
    #[tokio::test]
    async fn a_stop_asked_during_the_start_waits_for_the_start_and_its_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: Some(dir.path().to_path_buf()),
            secret_store: SecretStoreChoice::File,
            ..Config::default()
        };
        config.listeners[0].port = 0;
        config.admin.port = 0;
        let server = DesktopServer::spawn(config, None);
        assert_eq!(server.phase(), Phase::Starting, "asked before the start is done");
        server.pause_and_wait().await;
        assert_eq!(server.phase(), Phase::Paused);

        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
            .count();
        let url = format!("sqlite://{}", dir.path().join("hearth.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let (applied, failed): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT success) FROM _sqlx_migrations")
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!((applied, failed), (migrations as i64, 0), "every migration applied before the stop");
        server.stop().await;
    }
}
