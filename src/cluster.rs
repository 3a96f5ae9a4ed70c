//! Several `serve` nodes on one PostgreSQL database. The node holding PostgreSQL's advisory lock
//! [`LEADER_LOCK`] (a session lock: it is released the moment the holder's connection ends, a
//! killed process included) leads: its sequencer decides every command and its writer commits.
//! The others follow: woken by the commit's `NOTIFY` (or every [`TICK`]), they take in what was
//! committed, checked entry by entry ([`crate::governance::Governance::catch_up`]), and serve
//! every read, proof, tile and stream; they answer commands with the leader's advertised URL.
//! Every tick a follower tries the lock: when the leader dies, one follower takes it, catches up
//! and leads. A leader that lost its lock without noticing cannot fork the log: its commits
//! move the head row only from the head it last saw (see `events::StoreLocation`).

use crate::governance::Governance;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The advisory lock key the leader holds.
pub const LEADER_LOCK: i64 = 7_355_608_002;
/// How often a follower tries the lock (and catches up without a notification), and a leader
/// checks that its lock's connection is alive.
pub const TICK: Duration = Duration::from_millis(500);
/// How long a lock check may take before the leader steps down.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection that holds the leader lock (dropping it releases the lock).
pub struct LeaderLock {
    client: Client,
}

async fn connect(
    url: &str,
) -> Result<(Client, mpsc::UnboundedReceiver<()>), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (notify, notified) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    let _ = notify.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok((client, notified))
}

/// Tries once to take the leader lock.
///
/// # Errors
/// When PostgreSQL cannot be reached.
pub async fn try_lead(url: &str) -> Result<Option<LeaderLock>, tokio_postgres::Error> {
    let (client, _) = connect(url).await?;
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
        .await?;
    Ok(row.get::<_, bool>(0).then_some(LeaderLock { client }))
}

impl LeaderLock {
    /// Publishes this node's URL as the leader's (followers hand it to clients).
    async fn announce(&self, advertise: &str) -> Result<(), tokio_postgres::Error> {
        self.client
            .execute(
                "INSERT INTO tl_meta (name, value) VALUES ('leader', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&advertise],
            )
            .await
            .map(drop)
    }

    async fn alive(&self) -> bool {
        tokio::time::timeout(LOCK_CHECK_TIMEOUT, self.client.simple_query("SELECT 1"))
            .await
            .is_ok_and(|answer| answer.is_ok())
    }
}

/// One node's part in the cluster.
pub struct Node {
    /// The database's URL.
    pub url: String,
    /// This node's URL, as followers hand it to clients while it leads.
    pub advertise: String,
    /// The service the node runs.
    pub gov: Arc<Governance>,
}

impl Node {
    /// Leads or follows until the task is dropped. `lock` is the lock taken at start, if any.
    pub async fn run(self, mut lock: Option<LeaderLock>) {
        if let Some(held) = &lock {
            if let Err(e) = held.announce(&self.advertise).await {
                tracing::warn!(error = %e, "announcing this node as the leader");
            }
        }
        let mut listener: Option<(Client, mpsc::UnboundedReceiver<()>)> = None;
        loop {
            lock = match lock {
                Some(held) if held.alive().await => Some(held),
                Some(_) => {
                    tracing::error!("lost the leader lock's connection: stepping down");
                    self.gov.demote();
                    None
                }
                None => {
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                    self.follow(listener.as_ref().map(|(client, _)| client))
                        .await;
                    self.try_to_lead().await
                }
            };
            let connected = match listener.as_mut() {
                Some((_, notified)) => tokio::select! {
                    n = notified.recv() => n.is_some(),
                    () = tokio::time::sleep(TICK) => true,
                },
                None => {
                    tokio::time::sleep(TICK).await;
                    true
                }
            };
            if !connected {
                listener = None; // The connection ended; it is made again above.
            }
        }
    }

    async fn listen(&self) -> Option<(Client, mpsc::UnboundedReceiver<()>)> {
        let (client, notified) = connect(&self.url).await.ok()?;
        let channel = events::POSTGRES_HEAD_CHANNEL;
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .ok()?;
        Some((client, notified))
    }

    /// Takes in what the leader committed, and records the lag and the leader's URL.
    async fn follow(&self, client: Option<&Client>) {
        let gov = Arc::clone(&self.gov);
        match tokio::task::spawn_blocking(move || gov.catch_up()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "following the leader"),
            Err(e) => tracing::warn!(error = %e, "following the leader panicked"),
        }
        let Some(client) = client else { return };
        if let Ok(row) = client.query_one("SELECT size FROM tl_head", &[]).await {
            let head = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            self.gov
                .set_lag(head.saturating_sub(self.gov.log().head().size));
        }
        if let Ok(row) = client
            .query_opt("SELECT value FROM tl_meta WHERE name = 'leader'", &[])
            .await
        {
            self.gov.set_leader(row.map(|r| r.get(0)));
        }
    }

    async fn try_to_lead(&self) -> Option<LeaderLock> {
        let held = try_lead(&self.url).await.ok()??;
        let gov = Arc::clone(&self.gov);
        match tokio::task::spawn_blocking(move || gov.promote()).await {
            Ok(Ok(size)) => {
                tracing::info!(entries = size, "took the leader lock: leading");
                self.gov.set_lag(0);
                if let Err(e) = held.announce(&self.advertise).await {
                    tracing::warn!(error = %e, "announcing this node as the leader");
                }
                Some(held)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not catch up to lead; releasing the lock");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "promotion panicked; releasing the lock");
                None
            }
        }
    }
}
