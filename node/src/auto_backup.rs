//! Automatic backups, as Fiber takes them: about a second after start, after channel changes
//! (coalesced: at most one per `backup.coalesce_secs`), and every `backup.interval_hours`.
//! Off unless `backup.auto = true`. Each backup is an ordinary hot backup in
//! `<base>/fiber/backups/<unix_ms>/`, announced by a `BackupWritten` event marked `automatic`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::events::EventKind;
use crate::node::NodeContext;

/// Delay of the first backup after start (Fiber: about one second).
pub(crate) const STARTUP_DELAY: Duration = Duration::from_secs(1);

/// The running scheduler.
#[derive(Debug)]
pub(crate) struct AutoBackup {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl AutoBackup {
    /// Stop scheduling and wait for a backup in progress to finish (so the node never releases
    /// its lock while a backup is still being written).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Spawn the backup scheduler for a started node.
pub(crate) fn spawn(ctx: Arc<NodeContext>) -> AutoBackup {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
        let config = ctx.config().backup.clone();
        let window = Duration::from_secs(config.coalesce_secs);
        let interval = config
            .interval_hours
            .map(|h| Duration::from_secs(h.saturating_mul(3600)));
        let mut events = ctx.events().subscribe();
        let mut last: Option<Instant> = None;
        // A change waiting for its window; the first backup is "due" shortly after start.
        let mut due: Option<Instant> = Some(Instant::now() + STARTUP_DELAY);
        let mut next_periodic = interval.map(|i| Instant::now() + i);
        loop {
            let wake = [due, next_periodic].into_iter().flatten().min();
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stopped => return,
                event = events.recv() => match event {
                    Ok(event) => {
                        if matches!(event.kind, EventKind::Persisted { .. } | EventKind::StateChanged { .. })
                            && due.is_none()
                        {
                            let earliest = last.map_or_else(Instant::now, |t| t + window);
                            due = Some(earliest.max(Instant::now()));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        if due.is_none() {
                            due = Some(Instant::now());
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                () = timer => {
                    let now = Instant::now();
                    if next_periodic.is_some_and(|t| t <= now) {
                        next_periodic = interval.map(|i| now + i);
                        due = Some(now);
                    }
                    if due.is_some_and(|t| t <= now) {
                        due = None;
                        last = Some(now);
                        let ctx = ctx.clone();
                        match tokio::task::spawn_blocking(move || ctx.backup_automatic()).await {
                            Ok(Ok(info)) => tracing::info!(dir = %info.dir.display(), "automatic backup written"),
                            Ok(Err(e)) => tracing::error!(error = %e, "automatic backup failed"),
                            Err(e) => tracing::error!(error = %e, "automatic backup task failed"),
                        }
                    }
                }
            }
        }
    }));
    AutoBackup { stop, task }
}
