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

/// Waits for SIGINT (Ctrl-C) or SIGTERM: how every long-running command
/// (a run, the daemon, the lookup) learns it should stop.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
