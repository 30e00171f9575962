//! Serving an axum router on a local address: the simulators, the metrics
//! endpoint.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Serves a router at `addr` (port 0 for any free port) until the
/// returned task is aborted: both simulators and the metrics endpoint.
pub async fn serve_at(
    app: Router,
    addr: impl tokio::net::ToSocketAddrs,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}
