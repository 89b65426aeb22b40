//! Logging: `tracing` to stderr and to daily rolling files in the OS log folder. Shared by the
//! `hearth` binary and the desktop app.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Log lines waiting for the file writer thread, at most.
const LOG_QUEUE_LINES: usize = 8192;

/// Keeps the file writer alive; logs are flushed when it is dropped.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
    /// Where the log files go, if file logging could start.
    pub dir: Option<PathBuf>,
}

/// The file's field formatter. tracing-subscriber keeps a span's formatted fields per formatter
/// type, so with the terminal's formatter the file showed the terminal's colour codes in every
/// request's span; this type makes the file format them itself, without colours.
#[derive(Default)]
struct PlainFields(fmt::format::DefaultFields);

impl<'w> fmt::FormatFields<'w> for PlainFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// Starts logging at `level` (a `tracing` filter), overridden by `RUST_LOG`. File logging is
/// skipped, with a warning, when the folder cannot be created.
pub fn init(level: &str, dir: Option<&Path>) -> LogGuard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = fmt::layer().with_writer(std::io::stderr).with_filter(filter());
    let mut guard = LogGuard { _file: None, dir: None };
    let file_layer = dir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("hearth")
            .filename_suffix("log")
            .max_log_files(14)
            .build(dir)
            .ok()?;
        // The default queue holds 128,000 lines: crossbeam allocates and touches all of its
        // slots up front, 4 MiB of the idle server's ~20 MiB. 8,192 lines (256 KiB) absorb any
        // burst the writer thread cannot keep up with; beyond that lines are dropped (and
        // counted by tracing-appender), never blocking a request.
        let (writer, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(LOG_QUEUE_LINES)
            .lossy(true)
            .finish(appender);
        guard._file = Some(g);
        guard.dir = Some(dir.to_path_buf());
        Some(fmt::layer().with_ansi(false).fmt_fields(PlainFields::default()).with_writer(writer).with_filter(filter()))
    });
    let _ = tracing_subscriber::registry().with(stderr).with(file_layer).try_init();
    if dir.is_some() && guard.dir.is_none() {
        tracing::warn!(dir = ?dir, "cannot write log files there; logging to stderr only");
    }
    guard
}
