//! `trustledger serve`: open the log (a data directory's, or a PostgreSQL store as the leader
//! or a follower, see [`crate::cluster`]), fold it, and serve the API and the pages.

use crate::{commands, data_dir};

/// Opens a data directory's log and folds it into the governance service; a node that does not
/// lead (another holds the database's leader lock) opens it as a follower.
///
/// # Errors
/// If the log cannot be opened, its key is not the one in force, or it cannot be folded.
pub fn open_service(
    dir: &std::path::Path,
    options: &data_dir::ServeOptions,
    leading: bool,
) -> anyhow::Result<crate::governance::Governance> {
    let opening = std::time::Instant::now();
    let log = data_dir::open_for_serving(dir, options)?;
    crate::key_rotation::check_key_in_force(dir, &log)?;
    tracing::debug!(
        ms = opening.elapsed().as_millis(),
        "log opened; folding the state"
    );
    let open = if leading {
        crate::governance::Governance::open
    } else {
        crate::governance::Governance::open_following
    };
    Ok(open(
        log,
        std::sync::Arc::new(events::SystemClock),
        crate::governance::IdSource::Random,
    )?)
}

/// `trustledger serve`: holds the data directory's log (or leads or follows on a PostgreSQL
/// store) and serves the API and the pages until a shutdown signal.
///
/// # Errors
/// If the log cannot be opened, the address bound, or the server fails.
pub fn serve(
    dir: &std::path::Path,
    options: data_dir::ServeOptions,
    (listen, web_origin, advertise): (std::net::SocketAddr, String, String),
    (cadence_hours, strict): (u32, bool),
    (limits, server_limits): (crate::api::Limits, crate::api::server::ServerLimits),
    (witnesses, required): (Vec<crate::witnessing::WitnessEndpoint>, usize),
) -> anyhow::Result<()> {
    let opening = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let postgres = match data_dir::log_location(dir, options.store.as_ref()) {
        events::StoreLocation::Postgres(url) => Some(url),
        events::StoreLocation::Directory(_) => None,
    };
    let lock = match &postgres {
        Some(url) => runtime.block_on(crate::cluster::try_lead(url))?,
        None => None,
    };
    let leading = postgres.is_none() || lock.is_some();
    let gov = std::sync::Arc::new(open_service(dir, &options, leading)?);
    tracing::info!(
        role = if leading { "leader" } else { "follower" },
        "node role"
    );
    if !leading {
        // A follower decides nothing, the first admin token included.
    } else if let Some(token) = commands::first_admin_token(&gov)? {
        // A new log has no principal at all: the operator gets one admin token, shown once.
        eprintln!("a new log: an admin token for principal \"admin\" (shown once; only its SHA-256 is recorded):");
        println!("{token}");
    }
    let log = gov.log();
    let open_ms = opening.elapsed().as_millis();
    tracing::info!(origin = log.origin(), data = %dir.display(), entries = log.head().size, opened_from = ?gov.opened_from(), open_ms, "log open");
    if let Some(key) = log.verifier() {
        tracing::info!(%key, "checkpoint verifier key");
    }
    let witnessing = if witnesses.is_empty() {
        None
    } else {
        anyhow::ensure!(
            log.verifier().is_some(),
            "--witness needs a log that signs checkpoints"
        );
        let count = witnesses.len();
        let witnessing = std::sync::Arc::new(crate::witnessing::Witnessing::new(
            log.clone(),
            witnesses,
            required,
        )?);
        std::sync::Arc::clone(&witnessing).spawn();
        tracing::info!(
            witnesses = count,
            required,
            "checkpoints are published once cosigned"
        );
        Some(witnessing)
    };
    // Known once the log's indexes are rebuilt (in the background, so the API is up first).
    let watching = log.clone();
    std::thread::spawn(move || {
        if let Some(refusal) = watching.refusal() {
            tracing::warn!(%refusal, "the log refuses writes");
        }
    });
    gov.with_state(|s| {
        tracing::info!(
            model = s.active_model.as_deref().unwrap_or("none"),
            level = s.level,
            tokens = s.access.len(),
            "governance state"
        )
    });
    runtime.block_on(async {
        let node = postgres.map(|url| {
            let node = crate::cluster::Node {
                url,
                advertise,
                gov: std::sync::Arc::clone(&gov),
            };
            tokio::spawn(node.run(lock))
        });
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(%listen, "serving the API");
        let scheduler = {
            let gov = std::sync::Arc::clone(&gov);
            tokio::spawn(async move {
                let cadence = i64::from(cadence_hours) * 3_600_000_000;
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    if !gov.role().leading() {
                        continue; // The leader evaluates; a follower records nothing.
                    }
                    let gov = std::sync::Arc::clone(&gov);
                    match tokio::task::spawn_blocking(move || gov.evaluate_if_due(cadence, strict))
                        .await
                    {
                        Ok(Ok(true)) => tracing::info!("scheduled maturity evaluation recorded"),
                        Ok(Ok(false)) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "scheduled evaluation failed"),
                        Err(e) => tracing::warn!(error = %e, "scheduled evaluation panicked"),
                    }
                }
            })
        };
        let state =
            crate::api::AppState::with_witnessing(std::sync::Arc::clone(&gov), limits, witnessing);
        state.set_web_origin(&web_origin);
        state.set_evaluation_cadence(cadence_hours);
        tracing::info!(%web_origin, "pages and passkeys");
        let app = crate::api::app(state);
        crate::api::server::serve(
            listener,
            app,
            server_limits,
            crate::api::server::shutdown_signal(),
        )
        .await?;
        scheduler.abort();
        if let Some(node) = node {
            node.abort();
        }
        anyhow::Ok(())
    })?;
    // In-flight requests have finished; record where the projections stand for a fast restart.
    gov.save_snapshot()?;
    tracing::info!("stopped");
    Ok(())
}
