//! Builds the node's services from its opened parts (database, master key, configuration,
//! clock), once, in one place: the running node (`server.rs`) and `node-admin` on a stopped
//! node (`admin::Context::offline`) get the same graph. Each service receives only the narrow
//! handles it needs; [`Services`] exists only to hand them out and is never passed around.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::accounts::Accounts;
use crate::admin::Retention;
use crate::community::Communities;
use crate::config::Config;
use crate::consents::Consents;
use crate::crypto::MasterKey;
use crate::discovery::Discovery;
use crate::erasure::Erasure;
use crate::federate::{Directory, Outbox, OutboxLimits, Peers, Reachability};
use crate::hash_pool::HashPool;
use crate::http::Exporter;
use crate::hub::Hub;
use crate::media::{Media, MediaLimits};
use crate::messaging::{self, Messaging};
use crate::policy::{Policy, PolicyBook};
use crate::privacy::{Minors, PublicPage, RealName};
use crate::ratelimit::LoginLimiter;
use crate::requests::Requests;
use crate::search::{self, Search};
use crate::signing::NodeKeys;
use crate::time::SharedClock;
use storage::{Store, StoreError};

/// The wired services.
#[derive(Debug)]
pub(crate) struct Services {
    pub hub: Arc<Hub>,
    pub node_keys: Arc<NodeKeys>,
    pub peers: Arc<Peers>,
    /// Peers' reachability, seeded from what the node saved.
    pub reach: Arc<Reachability>,
    pub outbox: Outbox,
    pub directory: Directory,
    pub accounts: Accounts,
    pub consents: Consents,
    pub messaging: Messaging,
    pub media: Media,
    pub erasure: Erasure,
    pub retention: Retention,
    pub requests: Requests,
    pub policy: PolicyBook,
    pub minors: Minors,
    pub real_name: RealName,
    pub page: PublicPage,
    pub exporter: Exporter,
    pub friends: crate::friends::Friends,
    /// Communities (小组).
    pub communities: Communities,
    pub search: Search,
    /// The behaviour log and suggested communities (issue 23).
    pub behaviour: crate::behaviour::Behaviour,
    /// The search indexer, joined by the node at shutdown.
    pub search_task: Option<tokio::task::JoinHandle<()>>,
    /// Suggestions, nearby people and invites (issue 22).
    pub discovery: Discovery,
}

/// Why wiring failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WiringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error("{0}")]
    Federation(String),
    #[error("starting the password hashing threads: {0}")]
    HashThreads(std::io::Error),
    #[error("loading the accounts' handles: {0}")]
    Handles(String),
}

/// Wires every service. `limiter` is the login limiter (the admin tool passes a trivial one);
/// `stopped` tells the outbox's delivery workers to stop.
pub(crate) async fn wire(
    config: &Config,
    store: &Store,
    master: &MasterKey,
    clock: &SharedClock,
    policy: &Policy,
    limiter: Arc<LoginLimiter>,
    stopped: watch::Receiver<bool>,
) -> Result<Services, WiringError> {
    let stopped_search = stopped.clone();
    let domain = config.server.domain.as_str().to_string();
    let hub = Arc::new(Hub::default());
    let consents = Consents::new(store.clone(), clock.clone());
    let node_keys = Arc::new(NodeKeys::load_or_create(store, master, clock.now()).await?);
    let reach = Arc::new(Reachability::seeded(store.peer_reach().await?));
    let peers = Arc::new(
        Peers::new(
            &domain,
            config.residency.region.as_str(),
            &config.federation,
            node_keys.clone(),
            reach.clone(),
            clock.clone(),
        )
        .map_err(WiringError::Federation)?,
    );
    let outbox = Outbox::start(
        store.clone(),
        master.clone(),
        peers.clone(),
        consents.clone(),
        clock.clone(),
        OutboxLimits {
            retry_max: Duration::from_secs(config.federation.retry_max_secs.get()),
            queue_max: config.federation.queue_max.get(),
            pace_depth: config.federation.pace_depth.get(),
            pace_wait: Duration::from_millis(config.federation.pace_wait_ms.get()),
        },
        stopped,
    )
    .await
    .map_err(|e| WiringError::Federation(e.to_string()))?;
    let policy = PolicyBook::load(store.clone(), clock.clone(), hub.clone(), policy).await?;
    let hashing = HashPool::start(
        config.security.hash_concurrency(),
        config.security.password_hash_queue_max.get() as usize,
    )
    .map_err(WiringError::HashThreads)?;
    let accounts = Accounts::new(
        store.clone(),
        master.clone(),
        clock.clone(),
        limiter,
        Arc::new(hashing),
        policy.clone(),
        hub.clone(),
    );
    // Handles are stored sealed; the clear ones live in memory, loaded before any lookup.
    accounts
        .load_handles()
        .await
        .map_err(|e| WiringError::Handles(e.to_string()))?;
    // So are remote users' addresses (schema 7; rows of schema 6 are converted here).
    crate::federate::load_addresses(store, master)
        .await
        .map_err(|e| WiringError::Handles(e.to_string()))?;
    let directory = Directory::new(
        store.clone(),
        master.clone(),
        peers.clone(),
        outbox.clone(),
        accounts.clone(),
        consents.clone(),
        clock.clone(),
        config.media.max_bytes.get(),
    );
    let messaging = Messaging::new(
        store.clone(),
        master.clone(),
        consents.clone(),
        hub.clone(),
        clock.clone(),
        domain.clone(),
        messaging::Limits {
            recall_window_ms: config.messaging.recall_window_secs.get() * 1000,
            max_group_members: config.messaging.max_group_members.get() as usize,
        },
        outbox.clone(),
        directory.clone(),
    );
    let media = Media::new(
        store.clone(),
        master.clone(),
        clock.clone(),
        MediaLimits {
            max_bytes: config.media.max_bytes.get(),
            quota_bytes: config.media.quota_bytes.get(),
            max_concurrent_uploads: config.media.max_concurrent_uploads.get() as usize,
        },
    );
    let erasure = Erasure::new(
        store.clone(),
        accounts.clone(),
        outbox.clone(),
        clock.clone(),
        domain.clone(),
        config.accounts.deletion_cooling_off_days.get() * 24 * 3600 * 1000,
    );
    let retention = Retention::new(
        store.clone(),
        Some(accounts.clone()),
        clock.clone(),
        config.retention.clone(),
    )
    .with_friend_requests(config.friends.closed_requests_days.get());
    let requests = Requests::new(store.clone(), master.clone(), hub.clone(), clock.clone());
    let friends = crate::friends::Friends::new(
        store.clone(),
        master.clone(),
        accounts.clone(),
        hub.clone(),
        clock.clone(),
        domain.clone(),
        crate::friends::FriendLimits {
            max_pending: config.friends.max_pending_outgoing.get(),
            per_day: config.friends.requests_per_day.get(),
            declined_cooldown_ms: config.friends.declined_resend_days.get() * 86_400_000,
        },
        outbox.clone(),
        directory.clone(),
    );
    let minors = Minors::new(
        store.clone(),
        accounts.clone(),
        consents.clone(),
        clock.clone(),
        config.privacy.adult_age.get() as u16,
    );
    let real_name = RealName::new(
        store.clone(),
        accounts.clone(),
        consents.clone(),
        clock.clone(),
    );
    let page = PublicPage::new(
        store.clone(),
        accounts.clone(),
        consents.clone(),
        clock.clone(),
    );
    let communities = Communities::new(
        store.clone(),
        master.clone(),
        consents.clone(),
        hub.clone(),
        clock.clone(),
        domain.clone(),
        crate::federate::CommunityClient::new(
            peers.clone(),
            outbox.clone(),
            store.clone(),
            clock.clone(),
            Duration::from_millis(config.federation.community_call_timeout_ms.get()),
        ),
    );
    // Events of posts and comments a stop cut short are written before anything new.
    communities.resume_fan_out().await?;
    let behaviour = crate::behaviour::Behaviour::new(
        store.clone(),
        accounts.clone(),
        consents.clone(),
        clock.clone(),
        crate::behaviour::Settings {
            days: config.retention.behaviour_log_days.get(),
        },
    );
    let search = Search::new(
        store.clone(),
        master.clone(),
        accounts.clone(),
        consents.clone(),
        messaging.clone(),
        clock.clone(),
        search::Settings {
            log_days: config.retention.search_log_days.get(),
        },
        behaviour.clone(),
    );
    let search_task = search.start(stopped_search);
    let discovery = Discovery::new(
        store.clone(),
        master.clone(),
        accounts.clone(),
        consents.clone(),
        messaging.clone(),
        friends.clone(),
        hub.clone(),
        directory.clone(),
        clock.clone(),
        domain.clone(),
    );
    let exporter = Exporter {
        store: store.clone(),
        accounts: accounts.clone(),
        consents: consents.clone(),
        messaging: messaging.clone(),
        media: media.clone(),
        requests: requests.clone(),
        friends: friends.clone(),
        minors: minors.clone(),
        real_name: real_name.clone(),
        page: page.clone(),
        discovery: discovery.clone(),
        policy: policy.clone(),
        communities: communities.clone(),
        search: search.clone(),
        behaviour: behaviour.clone(),
        clock: clock.clone(),
        domain,
        interval_ms: config.privacy.export_interval_hours.get() * 3_600_000,
    };
    Ok(Services {
        hub,
        node_keys,
        peers,
        reach,
        outbox,
        directory,
        accounts,
        consents,
        messaging,
        media,
        erasure,
        retention,
        requests,
        policy,
        minors,
        real_name,
        page,
        exporter,
        friends,
        communities,
        search,
        behaviour,
        search_task,
        discovery,
    })
}
