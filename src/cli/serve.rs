//! `guardflow serve`: a local, read-only web view of a run store.

use std::net::{IpAddr, SocketAddr};

use super::{EXIT_OK, EXIT_USAGE};
use crate::cli::output::outln;
use crate::serve;
use crate::store::Store;

/// Serve a run store as web pages on this machine: the runs (filtered by
/// workflow, status and bench), each run's report, each bench's page,
/// running runs and benches followed live
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow serve\n  guardflow serve --store examples/ --port 8080\n  guardflow serve --port 0   (any free port; the address is printed)\n\n\
Pages: / (the runs; ?workflow=, ?status=, ?bench=), /runs/RUN_ID (a run's report), /bench/NAME \
(a bench's results and charts, as `guardflow report --bench` writes them).\n\n\
Read-only: only GET requests, and the store is opened read-only for each. It binds 127.0.0.1 \
unless --bind says otherwise; an address other machines can reach is refused without \
--allow-remote, and without it only requests to a loopback name are answered. Ctrl-C stops it.\n\n\
Exit status: 0 stopped, 2 no store, a refused address or a port in use."
)]
pub struct Args {
    #[command(flatten)]
    store: super::store_arg::StoreArg,
    /// The port (0: any free one, printed)
    #[arg(long, default_value_t = 7474)]
    port: u16,
    /// The address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Listen on an address other machines can reach (the pages show every
    /// prompt and output of the store)
    #[arg(long)]
    allow_remote: bool,
}

pub fn run(args: Args) -> u8 {
    if let Err(e) = serve::check_bind(args.bind, args.allow_remote) {
        return super::fail(e);
    }
    let path = match args.store.locate(None) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    // a store that cannot be read is said now, not on the first request
    if let Err(e) = Store::open_read(&path).and_then(|s| s.runs()) {
        return super::fail(e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return super::fail(format!("cannot start the server: {e}")),
    };
    runtime.block_on(async move {
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => return super::fail(format!("cannot listen on {addr}: {e}")),
        };
        let local = listener.local_addr().unwrap_or(addr);
        outln!(
            "serving {} at http://{local}/ (read-only; Ctrl-C stops)",
            path.display()
        );
        let config = serve::Config {
            store: path,
            allow_remote: args.allow_remote,
        };
        let shutdown = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        match serve::serve(listener, config, shutdown).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("error: the server stopped: {e}");
                EXIT_USAGE
            }
        }
    })
}
