//! What every bench shares: waiting on its log, and the one TLS crypto provider.

use std::sync::Arc;

/// Waits until `found` picks something out of a log's `snapshot` (looked at again whenever
/// the log notifies a change), or the deadline passes: then Err(the snapshot as it stands).
pub async fn wait_for<E, T>(
    notify: &tokio::sync::Notify,
    deadline: std::time::Instant,
    snapshot: impl Fn() -> Vec<E>,
    mut found: impl FnMut(&[E]) -> Option<T>,
) -> Result<T, Vec<E>> {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let all = snapshot();
        if let Some(t) = found(&all) {
            return Ok(t);
        }
        if std::time::Instant::now() >= deadline {
            return Err(all);
        }
        let _ = tokio::time::timeout(deadline.saturating_duration_since(std::time::Instant::now()), notified).await;
    }
}

/// The one crypto provider certbench uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
