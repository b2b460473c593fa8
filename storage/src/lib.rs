//! The node's only database: one redb file, `node.redb`, in the data directory.
//!
//! `Store` is the narrow handle the rest of the node uses. Its methods are typed operations on
//! records; each runs on the blocking thread pool (redb is synchronous) and every write commits
//! with redb's immediate durability before it returns, so whatever the caller acknowledges is on
//! disk. Values holding personal content arrive here already sealed by `crypto`; this module
//! never sees a plaintext phone number or profile.
//!
//! **Invariant:** only this module (and its children) names redb types.

mod accounts;
mod audit;
mod avatars;
mod backup;
mod batch;
mod behaviour;
mod bench_seed;
mod catalog;
mod codec;
mod community;
mod community_calls;
mod discovery;
mod erasure;
mod federation;
mod fedmedia;
mod friends;
mod invites;
pub mod kv;
mod messaging;
mod nearby;
mod privacy;
mod reach;
mod reading;
mod remote_communities;
mod replica;
mod requests;
mod retention;
mod search;
mod sentlog;
mod writer;

/// The database's file name in the node's data directory.
pub const DB_FILE: &str = "node.redb";

pub use accounts::{AccountRecord, ConsentEvent, HandleBook, NewAccount, SessionRecord};
pub use audit::append_audit;
pub use audit::{AuditCheck, AuditEntry, AuditRecord, ERASED as ERASED_PSEUDONYM};
pub use avatars::RemoteAvatar;
pub use backup::{
    ArchiveKind, ArchiveReader, BackupError, FORMAT_VERSION as BACKUP_FORMAT,
    Header as BackupHeader, Summary as BackupSummary, compact as compact_database, load_archive,
};
pub use bench_seed::BenchSeed;
pub use catalog::REMOTE_USER_BIT;
pub use codec::{Dec, Enc};
pub use discovery::{UploadOutcome, UploadRefusal};
pub use erasure::{ERASURE_REASON, ErasureRecord, HOLD_BASIS, Phase, Step};
pub use federation::{
    Disclosure, Fanout, FanoutView, NewRemoteUser, NodeKeyRecord, OutboundRecord, Outgoing,
    Refusal, RemoteUserRecord,
};
pub use fedmedia::{FetchJob, IncomingMedia};
pub use invites::{InviteRecord, InviteRefusal, JoinAction, JoinRecord};
#[cfg(any(test, feature = "test-support"))]
pub use messaging::MemberRecord;
pub use messaging::{
    ConvKind, ConversationRecord, ConversationState, EventRecord, MediaRecord, MemberAction,
    MessageRecord, Mutation, NewConversation, NewMessage, NoticeContent, NoticeKind, Notify, Page,
    Recalled, Role, Sent,
};
pub use nearby::CellRecord;
pub use privacy::{
    GuardianRecord, NOTICE_BATCH, PolicyVersionRecord, PrivacyRefusal, PurposeStatus,
};
pub use reach::ReachRow;
pub use reading::Activity;
pub use remote_communities::{MAX_PER_USER as MAX_REMOTE_COMMUNITIES, RemoteMembership};
pub use replica::{Inbound, ReplicaState, Submission};
pub use requests::RequestRecord;
// Friends (issue 22).
pub use friends::{
    FriendAction, FriendNotify, FriendRequestRecord, NewFriendRequest, RequestLimits,
    RequestOutcome, RequestState, StepOutcome,
};
pub use retention::{Counts, Cutoffs, Resume};
// Communities (community helper).
pub use community::{
    CommentRecord, CommunityEdit, CommunityFacts, CommunityRefusal, CommunityRole, Joined,
    MemberRow, ModAction, ModLogRecord, Moderation, PostEdit, PostRecord, PostVisibility,
};
// Communities across nodes and a bounded fan-out of post events (issue 23).
pub use community::{Announced, FANOUT_BATCH, Tell};
pub use community_calls::{CallKind, CallOutcome, CommunityCall, RemoteCall};
// Search over communities and posts (issue 23).
pub use community::{CommunityRecord, Facts as PostFacts, may_see};
pub use search::{SearchChange, Seen, SocialView};

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use catalog::*;

/// The schema version this build writes. Raise it with a new entry in [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 16;

/// redb's page cache. Its default (1 GiB) lets a busy node grow to hundreds of MiB for a
/// database of a few; 32 MiB keeps hot pages of a large node while bounding memory.
const CACHE_BYTES: usize = 32 << 20;

/// Steps from version N to N+1, applied in order inside one write transaction each.
/// `MIGRATIONS[i]` upgrades from version `i + 1`.
type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;
const MIGRATIONS: &[Migration] = &[
    transaction_answers_get_a_time,
    received_ids_get_a_time_index,
    sends_get_a_log,
    disclosures_count_outcomes,
    handles_are_sealed,
    remote_addresses_are_sealed,
    tables_move_behind_the_key_value_seam,
    derived_rows_replace_scans,
    more_tables_move_behind_the_seam,
    discovery_and_avatar_tables_move_behind_the_seam,
    community_tables_move_behind_the_seam,
    privacy_and_audit_tables_move_behind_the_seam,
    search_log_holds_fetches_and_keys_move_behind_the_seam,
    fetches_by_author_offers_owed_tells_and_call_digests,
    cleared_history_and_peer_erasures_move_behind_the_seam,
];

/// 1 → 2: transaction answers move to `origin_txnid_answer`, which records when each was
/// received so retention can prune them; the old rows' time is unknown and recorded as 0.
fn transaction_answers_get_a_time(tx: &WriteTransaction) -> Result<(), StoreError> {
    {
        let old = tx.open_table(ORIGIN_TXNID_TXN_V1)?;
        let mut new = tx.open_table(ORIGIN_TXNID_ANSWER)?;
        for row in old.iter()? {
            let (k, v) = row?;
            new.insert(k.value(), (0, v.value()))?;
        }
    }
    tx.delete_table(ORIGIN_TXNID_TXN_V1)?;
    Ok(())
}

/// 2 → 3: the time indexes of received envelope ids and transaction answers, built from the
/// rows already there.
fn received_ids_get_a_time_index(tx: &WriteTransaction) -> Result<(), StoreError> {
    let seen = tx.open_table(ORIGIN_ENVID_SEEN)?;
    let mut seen_by_time = tx.open_table(MS_ORIGIN_ENVID_SEEN)?;
    for row in seen.iter()? {
        let (k, v) = row?;
        let (origin, id) = k.value();
        seen_by_time.insert((v.value(), origin, id), ())?;
    }
    let answers = tx.open_table(ORIGIN_TXNID_ANSWER)?;
    let mut answers_by_time = tx.open_table(MS_ORIGIN_TXNID_ANSWERED)?;
    for row in answers.iter()? {
        let (k, v) = row?;
        let (origin, id) = k.value();
        answers_by_time.insert((v.value().0, origin, id), ())?;
    }
    Ok(())
}

/// 3 → 4: sends record their txn id in `sentno_sent` first (`storage/sentlog.rs`). Nothing
/// moves; the version is raised so that an older build, which would not look in the log,
/// refuses the file instead of storing a client's retried message twice.
fn sends_get_a_log(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(SENTNO_SENT)?;
    Ok(())
}

/// 4 → 5: queued envelopes carry the (user, kind) pairs of their data, counted in
/// `userid_peer_kind_outcome_disclosure` once delivered, refused or dropped; erasure requests
/// record the acknowledgement they expect. Rows of `userid_peer_kind_transfer` (counted at
/// queueing) stay as they are. The version is raised so an older build, which cannot read the
/// new queue rows, refuses the file.
fn disclosures_count_outcomes(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(USERID_PEER_KIND_OUTCOME_DISCLOSURE)?;
    tx.open_table(USERID_PEER_ERASUREACK_V15)?;
    Ok(())
}

/// 5 → 6: handles leave clear text (`handleindex_userid` by keyed hash; the record holds the
/// handle sealed under the user's key). Both need keys a migration step is not given, and no
/// node holding accounts of schema 4 was ever deployed (the project is unreleased), so a file
/// of an older schema with accounts is refused rather than converted; one without is upgraded.
fn handles_are_sealed(tx: &WriteTransaction) -> Result<(), StoreError> {
    let old = tx.open_table(HANDLE_USERID_V4)?;
    if old.iter()?.next().is_some() {
        return Err(StoreError::Db(
            "this database holds accounts written before schema 6, whose handles are stored in clear; \
             this build seals them and cannot convert them (no release ever wrote them): \
             start from a new data directory"
                .into(),
        ));
    }
    drop(old);
    tx.delete_table(HANDLE_USERID_V4)?;
    Ok(())
}

/// 6 → 7: remote users' addresses leave clear text (`remoteindex_userid` by keyed hash; the
/// record holds the address sealed under that user's key, which their erasure destroys).
/// Sealing needs the master key, which a migration step is not given: this step makes the
/// index table, and `federate::load_addresses` converts every schema 6 row (and
/// empties `remoteaddr_userid`) when the node starts, before it serves. The version is raised
/// so an older build, which cannot read the new records, refuses the file.
fn remote_addresses_are_sealed(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(REMOTEINDEX_USERID)?;
    Ok(())
}

/// The parked name of a table of an older schema while its rows are copied.
fn parked<'n, K: redb::Key + 'static, V: redb::Value + 'static>(
    _old: redb::TableDefinition<'static, K, V>,
    name: &'n str,
) -> redb::TableDefinition<'n, K, V> {
    redb::TableDefinition::new(name)
}

/// Moves the typed table `$old` behind the seam as `$new` (same name): renamed to
/// `<name>$suffix`, its rows copied with keys in the order-preserving encoding (`|k, v|` turns
/// a typed row into the seam's key and value), then deleted. Opening it typed makes an empty
/// one where there was none, and tells a seam table (a newer file told it is older, as the
/// tests of earlier steps do: nothing to move) by its type mismatch.
macro_rules! move_table {
    ($tx:expr, $suffix:expr, $old:expr, $new:expr, |$k:ident, $v:ident| ($key:expr, $value:expr)) => {{
        let tx = $tx;
        let name = format!("{}{}", $new.name(), $suffix);
        let at = parked($old, &name);
        let there = match tx.open_table($old) {
            Ok(_) => true,
            Err(redb::TableError::TableTypeMismatch { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if there {
            tx.rename_table($old, at)?;
            for row in tx.open_table(at)?.iter()? {
                let (k, v) = row?;
                let ($k, $v) = (k.value(), v.value());
                $new.insert(tx, &$key, &$value)?;
            }
            tx.delete_table(at)?;
        }
        tx.open_table(kv::redb_def($new.name()))?;
    }};
}

/// 7 → 8: the first tables move behind the key-value seam (`kv`): the behaviour log, the
/// nearby cells and the peers' reachability. Each schema 7 table is renamed `<name>_v7`, its
/// rows are copied into the seam table of the same name with keys in the order-preserving
/// encoding, and it is deleted. This is the one step that reads those tables whole: they are
/// small (bounded per user, per partner), and it runs once, before the node serves.
fn tables_move_behind_the_key_value_seam(tx: &WriteTransaction) -> Result<(), StoreError> {
    move_table!(
        tx,
        "_v7",
        PSEUDONYM_MS_N_BEHAVIOUR_V7,
        PSEUDONYM_MS_N_BEHAVIOUR,
        |k, v| (k, v.to_vec())
    );
    move_table!(
        tx,
        "_v7",
        MS_PSEUDONYM_N_BEHAVIOUR_V7,
        MS_PSEUDONYM_N_BEHAVIOUR,
        |k, v| (k, v)
    );
    move_table!(tx, "_v7", CELLINDEX_USERID_V7, CELLINDEX_USERID, |k, v| (
        (*k.0, k.1),
        v
    ));
    move_table!(tx, "_v7", USERID_CELL_V7, USERID_CELL, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(
        tx,
        "_v7",
        EXPIRY_USERID_CELL_V7,
        EXPIRY_USERID_CELL,
        |k, v| (k, v)
    );
    move_table!(tx, "_v7", PEER_REACH_V7, PEER_REACH, |k, v| (
        k.to_string(),
        (v.0, v.1, v.2, v.3.to_string())
    ));
    Ok(())
}

/// 8 → 9: rows that let writes find by key what they looked for by scanning (issue 20): the
/// per-peer queue depths (`dest_outboundcount`), counted from the queue's rows, and each
/// account's phone-index key (`userid_phoneindex`), from `phoneindex_userid`, and each remote
/// user's (`userid_remoteindex`), from `remoteindex_userid`. Like 7 → 8 it
/// reads those tables whole, once, before the node serves.
fn derived_rows_replace_scans(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for row in tx.open_table(DEST_SEQ_OUTBOUND)?.iter()? {
        let (k, _) = row?;
        let dest = k.value().0;
        match counts.last_mut() {
            Some((d, n)) if d == dest => *n += 1,
            _ => counts.push((dest.to_string(), 1)),
        }
    }
    for (dest, n) in &counts {
        DEST_OUTBOUNDCOUNT.insert(tx, dest, n)?;
    }
    for row in tx.open_table(PHONEINDEX_USERID)?.iter()? {
        let (k, v) = row?;
        USERID_PHONEINDEX.insert(tx, &v.value(), &k.value().to_vec())?;
    }
    for row in tx.open_table(REMOTEINDEX_USERID)?.iter()? {
        let (k, v) = row?;
        USERID_REMOTEINDEX.insert(tx, &v.value(), &k.value().to_vec())?;
    }
    Ok(())
}

/// 9 → 10: the tables of `requests.rs`, `friends.rs`, `reading.rs`, `invites.rs` and
/// `community_calls.rs` move behind the key-value seam, as 7 → 8 moved the first ones (each
/// parked as `<name>_v9` while its rows are copied). Like that step it reads them whole, once,
/// in the transaction that opens the file, before the node serves.
fn more_tables_move_behind_the_seam(tx: &WriteTransaction) -> Result<(), StoreError> {
    let s = "_v9";
    move_table!(tx, s, REQUESTID_REQUEST_V9, REQUESTID_REQUEST, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(tx, s, USERID_REQUESTID_V9, USERID_REQUESTID, |k, v| (k, v));
    move_table!(
        tx,
        s,
        FRIENDREQID_REQUEST_V9,
        FRIENDREQID_REQUEST,
        |k, v| (k, v.to_vec())
    );
    move_table!(tx, s, USERID_FRIENDREQID_V9, USERID_FRIENDREQID, |k, v| (
        k, v
    ));
    move_table!(
        tx,
        s,
        USERPAIR_FRIENDREQID_V9,
        USERPAIR_FRIENDREQID,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        MS_FRIENDREQID_CLOSED_V9,
        MS_FRIENDREQID_CLOSED,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_USERID_FRIEND_V9,
        USERID_USERID_FRIEND,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_USERID_BLOCK_V9,
        USERID_USERID_BLOCK,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_USERID_BLOCKEDBY_V9,
        USERID_USERID_BLOCKEDBY,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_DIRECTMESSAGES_V9,
        USERID_DIRECTMESSAGES,
        |k, v| (k, v)
    );
    move_table!(tx, s, USERID_FRIENDQUOTA_V9, USERID_FRIENDQUOTA, |k, v| (
        k, v
    ));
    move_table!(tx, s, USERID_CONVNO_READ_V9, USERID_CONVNO_READ, |k, v| (
        k, v
    ));
    move_table!(tx, s, INVITENO_INVITE_V9, INVITENO_INVITE, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(
        tx,
        s,
        INVITEHASH_INVITENO_V9,
        INVITEHASH_INVITENO,
        |k, v| (*k, v)
    );
    move_table!(tx, s, USERID_INVITENO_V9, USERID_INVITENO, |k, v| (k, v));
    move_table!(tx, s, USERID_JOINNO_JOIN_V9, USERID_JOINNO_JOIN, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(
        tx,
        s,
        REQUESTER_USERID_JOINNO_V9,
        REQUESTER_USERID_JOINNO,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        ORIGIN_ENVID_COMMUNITYCALL_V9,
        ORIGIN_ENVID_COMMUNITYCALL,
        |k, v| ((k.0.to_string(), k.1.to_string()), v)
    );
    move_table!(
        tx,
        s,
        EXPIRY_ORIGIN_ENVID_COMMUNITYCALL_V9,
        EXPIRY_ORIGIN_ENVID_COMMUNITYCALL,
        |k, v| ((k.0, k.1.to_string(), k.2.to_string()), v)
    );
    Ok(())
}

/// 10 → 11: the tables of `discovery.rs` (findable-by-phone settings and contact index,
/// contact matches and the daily quota, the education index, dismissals) and of `avatars.rs`
/// move behind the key-value seam, as 9 → 10 moved others (each parked as `<name>_v10` while
/// its rows are copied). Like that step it reads them whole, once, in the transaction that
/// opens the file, before the node serves.
fn discovery_and_avatar_tables_move_behind_the_seam(
    tx: &WriteTransaction,
) -> Result<(), StoreError> {
    let s = "_v10";
    move_table!(tx, s, USERID_AVATAR_V10, USERID_AVATAR, |k, v| (
        k,
        v.to_string()
    ));
    move_table!(tx, s, MEDIAID_AVATAR_V10, MEDIAID_AVATAR, |k, v| (
        k.to_string(),
        v
    ));
    move_table!(
        tx,
        s,
        CONTACTINDEX_USERID_V10,
        CONTACTINDEX_USERID,
        |k, v| (*k, v)
    );
    move_table!(tx, s, USERID_DISCOVERY_V10, USERID_DISCOVERY, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(
        tx,
        s,
        USERID_MATCHED_EXPIRY_V10,
        USERID_MATCHED_EXPIRY,
        |k, v| (k, v)
    );
    move_table!(tx, s, MATCHED_USERID_V10, MATCHED_USERID, |k, v| (k, v));
    move_table!(
        tx,
        s,
        USERID_DAY_CONTACTS_V10,
        USERID_DAY_CONTACTS,
        |k, v| (k, v)
    );
    move_table!(tx, s, EDUINDEX_USERID_V10, EDUINDEX_USERID, |k, v| (
        (*k.0, k.1),
        v
    ));
    move_table!(tx, s, USERID_EDUINDEX_V10, USERID_EDUINDEX, |k, v| (k, *v));
    move_table!(tx, s, USERID_DISMISSED_V10, USERID_DISMISSED, |k, v| (k, v));
    move_table!(tx, s, DISMISSED_USERID_V10, DISMISSED_USERID, |k, v| (k, v));
    Ok(())
}

/// 11 → 12: the tables of communities (`storage/community/`: communities, members, requests,
/// bans, moderation logs, posts, comments, favourites, media references and fan-out jobs)
/// move behind the key-value seam, as 10 → 11 moved those of discovery and avatars (each
/// parked as `<name>_v11` while its rows are copied). Like that step it reads them whole,
/// once, in the transaction that opens the file, before the node serves.
fn community_tables_move_behind_the_seam(tx: &WriteTransaction) -> Result<(), StoreError> {
    let s = "_v11";
    move_table!(
        tx,
        s,
        COMMUNITYNO_COMMUNITY_V11,
        COMMUNITYNO_COMMUNITY,
        |k, v| (k, v.to_vec())
    );
    move_table!(
        tx,
        s,
        COMMUNITYNO_USERID_MEMBER_V11,
        COMMUNITYNO_USERID_MEMBER,
        |k, v| (k, v)
    );
    move_table!(tx, s, USERID_COMMUNITYNO_V11, USERID_COMMUNITYNO, |k, v| (
        k, v
    ));
    move_table!(
        tx,
        s,
        COMMUNITYNO_USERID_PENDING_V11,
        COMMUNITYNO_USERID_PENDING,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        COMMUNITYNO_USERID_BAN_V11,
        COMMUNITYNO_USERID_BAN,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        COMMUNITYNO_SEQ_MODLOG_V11,
        COMMUNITYNO_SEQ_MODLOG,
        |k, v| (k, v.to_vec())
    );
    move_table!(tx, s, POSTNO_POST_V11, POSTNO_POST, |k, v| (k, v.to_vec()));
    move_table!(tx, s, COMMUNITYNO_POSTNO_V11, COMMUNITYNO_POSTNO, |k, v| (
        k, v
    ));
    move_table!(tx, s, USERID_POSTNO_V11, USERID_POSTNO, |k, v| (k, v));
    move_table!(
        tx,
        s,
        POSTNO_COMMENTNO_COMMENT_V11,
        POSTNO_COMMENTNO_COMMENT,
        |k, v| (k, v.to_vec())
    );
    move_table!(tx, s, USERID_COMMENTNO_V11, USERID_COMMENTNO, |k, v| (k, v));
    move_table!(
        tx,
        s,
        USERID_POSTNO_FAVOURITE_V11,
        USERID_POSTNO_FAVOURITE,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        POSTNO_USERID_FAVOURITE_V11,
        POSTNO_USERID_FAVOURITE,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        MEDIAID_COMMUNITYNO_POSTNO_V11,
        MEDIAID_COMMUNITYNO_POSTNO,
        |k, v| ((k.0.to_string(), k.1, k.2), v)
    );
    move_table!(tx, s, FANOUTNO_JOB_V11, FANOUTNO_JOB, |k, v| (k, v));
    Ok(())
}

/// 12 → 13: the audit log (`audit.rs`), the policy versions, narrowing versions and users'
/// acceptances, the privacy centre's per-user rows (guardian consent, real name, public page,
/// export time; `privacy.rs`), admin notes about users (`erasure.rs`) and the consent history
/// (`accounts.rs`), the erasure records and erased handles (`erasure.rs`) move behind the
/// key-value seam, as 11 → 12 moved the community tables (each parked as `<name>_v12` while
/// its rows are copied). Like that step it reads them whole, once, in the transaction that
/// opens the file, before the node serves.
fn privacy_and_audit_tables_move_behind_the_seam(tx: &WriteTransaction) -> Result<(), StoreError> {
    let s = "_v12";
    move_table!(tx, s, SEQ_AUDITENTRY_V12, SEQ_AUDITENTRY, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(tx, s, POLICYSEQ_VERSION_V12, POLICYSEQ_VERSION, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(
        tx,
        s,
        POLICYSEQ_NARROWING_V12,
        POLICYSEQ_NARROWING,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_POLICYSEQ_ACCEPTED_V12,
        USERID_POLICYSEQ_ACCEPTED,
        |k, v| (k, v)
    );
    move_table!(tx, s, USERID_GUARDIAN_V12, USERID_GUARDIAN, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(tx, s, USERID_REALNAME_V12, USERID_REALNAME, |k, v| (
        k,
        (v.0, kv::Var(v.1.to_vec()))
    ));
    move_table!(tx, s, USERID_PUBLICPAGE_V12, USERID_PUBLICPAGE, |k, v| (
        k, v
    ));
    move_table!(tx, s, USERID_EXPORT_V12, USERID_EXPORT, |k, v| (k, v));
    move_table!(
        tx,
        s,
        USERID_NOTE_ADMINNOTE_V12,
        USERID_NOTE_ADMINNOTE,
        |k, v| ((k.0, k.1.to_string()), v.to_vec())
    );
    move_table!(
        tx,
        s,
        USERID_SEQ_CONSENTEVENT_V12,
        USERID_SEQ_CONSENTEVENT,
        |k, v| (k, v.to_vec())
    );
    move_table!(tx, s, USERID_ERASURE_V12, USERID_ERASURE, |k, v| (
        k,
        v.to_vec()
    ));
    move_table!(tx, s, HANDLEHASH_ERASED_V12, HANDLEHASH_ERASED, |k, v| (
        *k, v
    ));
    Ok(())
}

/// 13 → 14: the search log and its time index (`search.rs`), the users' pseudonym keys
/// (`audit.rs`, `search.rs`, `behaviour.rs`), the legal holds (`erasure.rs`, `retention.rs`,
/// `community/retention.rs`), the fetches of other nodes' media (`fedmedia.rs`,
/// `avatars.rs`) and the node's signing keys (`federation.rs`) move behind the key-value seam,
/// as 12 → 13 moved the audit and privacy tables (each parked as `<name>_v13` while its rows
/// are copied). Like that step it reads them whole, once, in the transaction that opens the
/// file, before the node serves.
fn search_log_holds_fetches_and_keys_move_behind_the_seam(
    tx: &WriteTransaction,
) -> Result<(), StoreError> {
    let s = "_v13";
    move_table!(
        tx,
        s,
        PSEUDONYM_MS_SEARCHLOG_V13,
        PSEUDONYM_MS_SEARCHLOG,
        |k, v| (k, v.to_vec())
    );
    move_table!(
        tx,
        s,
        MS_PSEUDONYM_SEARCHLOG_V13,
        MS_PSEUDONYM_SEARCHLOG,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_PSEUDONYMKEY_V13,
        USERID_PSEUDONYMKEY,
        |k, v| (k, *v)
    );
    move_table!(tx, s, USERID_LEGALHOLD_V13, USERID_LEGALHOLD, |k, v| (
        k,
        (v.0, v.1.to_string())
    ));
    move_table!(tx, s, MEDIAID_FETCH_V13, MEDIAID_FETCH, |k, v| (
        k.to_string(),
        v.to_vec()
    ));
    move_table!(tx, s, KEYID_NODEKEY_V13, KEYID_NODEKEY, |k, v| (
        k.to_string(),
        v.to_vec()
    ));
    Ok(())
}

/// 14 → 15: `author_mediaid_fetch` indexes the fetches under way by author, and three tables
/// appear, empty in a file of schema 14: `mediaid_peer_offered`
/// (which local files a peer may fetch because their owner posted them in a community that
/// peer hosts; before, such posts held text only), `fanoutno_from_tell` (the nodes a fan-out
/// step found still to be told of a post; before, they were told after the step, unrecorded)
/// and `origin_envid_calldigest` (the content digest of each remembered community call; the
/// calls remembered before have none, and their repeats are not compared).
fn fetches_by_author_offers_owed_tells_and_call_digests(
    tx: &WriteTransaction,
) -> Result<(), StoreError> {
    tx.open_table(kv::redb_def(MEDIAID_PEER_OFFERED.name()))?;
    tx.open_table(kv::redb_def(FANOUTNO_FROM_TELL.name()))?;
    tx.open_table(kv::redb_def(ORIGIN_ENVID_CALLDIGEST.name()))?;
    tx.open_table(kv::redb_def(AUTHOR_MEDIAID_FETCH.name()))?;
    // The fetches under way, indexed by author (read once, a page at a time, before the node
    // serves, as earlier steps read their tables).
    let mut after: Option<String> = None;
    loop {
        let rows = MEDIAID_FETCH.page(tx, after.as_ref(), 256)?;
        for (id, v) in &rows {
            let job = FetchJob::decode(v)?;
            AUTHOR_MEDIAID_FETCH.insert(tx, &(job.author, id.clone()), &())?;
        }
        if rows.len() < 256 {
            return Ok(());
        }
        after = rows.last().map(|(k, _)| k.clone());
    }
}

/// 15 → 16: what users cleared or hid of their history — their floors, the conversations
/// they cleared up to a position and the single messages they hid (`messaging/`,
/// `reading.rs`, `search.rs`, `erasure.rs`) — and the erasure requests to peers with the
/// acknowledgements they expect (`federation.rs`, `replica.rs`) move behind the key-value
/// seam, as 13 → 14 moved the search log and legal holds (each parked as `<name>_v15` while
/// its rows are copied). Like that step it reads them whole, once, in the transaction that
/// opens the file, before the node serves.
fn cleared_history_and_peer_erasures_move_behind_the_seam(
    tx: &WriteTransaction,
) -> Result<(), StoreError> {
    let s = "_v15";
    move_table!(tx, s, USERID_FLOOR_V15, USERID_FLOOR, |k, v| (k, v));
    move_table!(
        tx,
        s,
        USERID_CONVNO_CLEARED_V15,
        USERID_CONVNO_CLEARED,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_CONVNO_SEQ_HIDDEN_V15,
        USERID_CONVNO_SEQ_HIDDEN,
        |k, v| (k, v)
    );
    move_table!(
        tx,
        s,
        USERID_PEER_ERASURE_V15,
        USERID_PEER_ERASURE,
        |k, v| ((k.0, k.1.to_string()), v)
    );
    move_table!(
        tx,
        s,
        USERID_PEER_ERASUREACK_V15,
        USERID_PEER_ERASUREACK,
        |k, v| ((k.0, k.1.to_string()), *v)
    );
    Ok(())
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Db(String),
    #[error("a stored {0} record is damaged")]
    Corrupt(&'static str),
    #[error("{0} is already taken")]
    Conflict(Conflict),
    #[error(
        "the database was written by a newer version (schema {found}, this build knows {known})"
    )]
    TooNew { found: u32, known: u32 },
    #[error("the storage worker stopped unexpectedly")]
    Worker,
    #[error("{0} is in use by a running node")]
    InUse(String),
    #[error("no database at {0}")]
    Missing(String),
    /// A fan-out refused to let data leave; the whole write was rolled back. Store methods
    /// turn this into their own "refused" answer.
    #[error("refused: {0:?}")]
    Refused(Refusal),
}

/// Takes `count` numbers from the META counter `name` (numbering starts at 1) and returns
/// the first: event positions, outbound queue numbers and request numbers all come from here.
pub fn take_numbers(tx: &WriteTransaction, name: &str, count: u64) -> Result<u64, StoreError> {
    let mut meta = tx.open_table(META)?;
    let first = read_number(&meta, name)?;
    meta.insert(name, (first + count).to_be_bytes().as_slice())?;
    Ok(first)
}

/// The next number of META counter `name` (1 if none was taken yet).
pub fn read_number(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<u64, StoreError> {
    Ok(match meta.get(name)? {
        Some(v) => u64::from_be_bytes(
            v.value()
                .try_into()
                .map_err(|_| StoreError::Corrupt("meta"))?,
        ),
        None => 1,
    })
}

/// Turns a rolled-back refusal into the method's own answer.
pub fn or_refused<T>(
    r: Result<T, StoreError>,
    f: impl FnOnce(Refusal) -> T,
) -> Result<T, StoreError> {
    match r {
        Err(StoreError::Refused(x)) => Ok(f(x)),
        other => other,
    }
}

/// Which unique value a write collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Handle,
    Phone,
    UserId,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conflict::Handle => "handle",
            Conflict::Phone => "phone number",
            Conflict::UserId => "user id",
        })
    }
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Handle to the node's database. Cheap to clone. Reads run on the blocking pool; writes go
/// to the single writer thread, which batches them into group commits.
#[derive(Debug, Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: Arc<writer::Writer>,
    /// Reads started (each one a blocking-pool job), for [`Store::read_count`].
    reads: Arc<std::sync::atomic::AtomicU64>,
    handles: Arc<HandleBook>,
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Created,
    Existing,
}

impl Store {
    /// Opens an existing database (never creates one), for tools that work on a stopped node.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Ok(Store::open(path, |_| Ok(None))?.0)
    }

    /// Whether a database file already exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// Opens or creates the database file, brings its schema to [`SCHEMA_VERSION`] and checks
    /// (or on creation records) the master key's check value. Blocking: call before serving.
    pub fn open(
        path: &Path,
        key_check: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<(Store, Opened), StoreError> {
        let opened = if path.exists() {
            Opened::Existing
        } else {
            Opened::Created
        };
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::InUse(path.display().to_string())
                }
                other => other.into(),
            })?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let version = match meta.get("schema_version")? {
                Some(v) => {
                    let b: [u8; 4] = v
                        .value()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("meta"))?;
                    u32::from_be_bytes(b)
                }
                None => SCHEMA_VERSION,
            };
            if version > SCHEMA_VERSION {
                return Err(StoreError::TooNew {
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            let existing_check = meta.get("master_key_check")?.map(|v| v.value().to_vec());
            if let Some(new_check) = key_check(existing_check.as_deref())? {
                meta.insert("master_key_check", new_check.as_slice())?;
            }
            drop(meta);
            if version == 0 {
                return Err(StoreError::Corrupt("meta"));
            }
            for step in MIGRATIONS.iter().skip(version as usize - 1) {
                step(&tx)?;
            }
            let mut meta = tx.open_table(META)?;
            meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
        }
        create_tables(&tx)?;
        tx.commit()?;
        let db = Arc::new(db);
        let writer = Arc::new(writer::Writer::start(
            db.clone(),
            sentlog::FLUSH_AT,
            writer::FLUSH_DEFERRED,
        )?);
        let reads = Arc::default();
        Ok((
            Store {
                db,
                writer,
                reads,
                handles: Arc::default(),
            },
            opened,
        ))
    }

    /// Read transactions started since the store was opened (each runs on the blocking pool):
    /// lets tests hold a path to the reads it should cost.
    pub fn read_count(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the database's last commit failed (a full disk, an I/O error): readiness.
    pub fn commits_failing(&self) -> bool {
        self.writer.failing()
    }

    /// Has `observe` told the duration of each commit from now on (metrics).
    pub fn observe_commits(&self, observe: impl Fn(std::time::Duration) + Send + Sync + 'static) {
        self.writer
            .observe_commits(writer::CommitObserver(Box::new(observe)));
    }

    /// A receiver that changes after every commit (the search indexer's wake-up).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writer.commits()
    }

    /// (write jobs committed, durable commits made) since the store was opened.
    pub fn write_stats(&self) -> (u64, u64) {
        self.writer.stats()
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(move || f(&db.begin_read()?))
            .await
            .map_err(|_| StoreError::Worker)?
    }

    /// Runs `f` in a write transaction on the writer thread, possibly together with other
    /// jobs, and returns once that transaction is durably committed. If `f` returns `Err`
    /// nothing of it is kept. `f` may run more than once (see `writer`), so it must only
    /// depend on its captures and the database.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(move |b| f(b.tx()?), writer::Durability::Immediate)
            .await
    }

    /// [`Store::write`] for bookkeeping that may be lost in a crash because losing it only
    /// repeats idempotent work: it returns once committed and visible to reads, and reaches
    /// the disk with the next durable commit, at most [`writer::FLUSH_DEFERRED`] later. Never
    /// for anything acknowledged to a client or a peer.
    async fn write_deferred<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(move |b| f(b.tx()?), writer::Durability::Deferred)
            .await
    }

    /// [`Store::write`] for a message write: `f` gets the transaction and the message tables
    /// the transaction's previous message job left open ([`batch::Messages`]), and opens none
    /// of those itself.
    async fn write_message<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction, &mut batch::Messages<'_>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.submit(
            move |b| {
                let (tx, w) = b.messages()?;
                f(tx, w)
            },
            writer::Durability::Immediate,
        )
        .await
    }

    /// Hands `f` to the writer as a job and waits for its result, committed as `durability`
    /// says.
    async fn submit<T, F>(&self, f: F, durability: writer::Durability) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut batch::Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let job: writer::Job =
            Box::new(move |b| f(b).map(|v| Box::new(v) as Box<dyn std::any::Any + Send>));
        let out = self.writer.submit(job, durability).await?;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Worker)
    }
}

/// Opens every catalog table once so read transactions never meet a missing table.
fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(META)?;
    tx.open_table(USERID_ACCOUNT)?;
    tx.open_table(HANDLEINDEX_USERID)?;
    tx.open_table(PHONEINDEX_USERID)?;
    tx.open_table(kv::redb_def(USERID_PHONEINDEX.name()))?;
    tx.open_table(USERID_PROFILE)?;
    tx.open_table(TOKENHASH_SESSION)?;
    tx.open_table(USERID_DEVICEID_TOKENHASH)?;
    tx.open_table(USERID_PURPOSE_CONSENT)?;
    tx.open_table(kv::redb_def(USERID_SEQ_CONSENTEVENT.name()))?;
    tx.open_table(CONVNO_CONVERSATION)?;
    tx.open_table(CONVID_CONVNO)?;
    tx.open_table(CONVNO_USERID_MEMBER)?;
    tx.open_table(USERID_CONVNO)?;
    tx.open_table(USERPAIR_CONVNO)?;
    tx.open_table(CONVNO_SEQ_MESSAGE)?;
    tx.open_table(CONVNO_POS_EVENT)?;
    tx.open_table(USERID_POS_EVENT)?;
    tx.open_table(USERID_DEVICEID_CURSOR)?;
    tx.open_table(kv::redb_def(USERID_FLOOR.name()))?;
    tx.open_table(kv::redb_def(USERID_CONVNO_CLEARED.name()))?;
    tx.open_table(kv::redb_def(USERID_CONVNO_SEQ_HIDDEN.name()))?;
    tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
    tx.open_table(SENTNO_SENT)?;
    tx.open_table(MEDIAID_MEDIA)?;
    tx.open_table(MEDIAID_CHUNKNO_CHUNK)?;
    tx.open_table(USERID_MEDIAID)?;
    tx.open_table(MEDIAID_CONVNO)?;
    tx.open_table(kv::redb_def(MEDIAID_FETCH.name()))?;
    tx.open_table(kv::redb_def(MEDIAID_PEER_OFFERED.name()))?;
    tx.open_table(kv::redb_def(FANOUTNO_FROM_TELL.name()))?;
    tx.open_table(kv::redb_def(ORIGIN_ENVID_CALLDIGEST.name()))?;
    tx.open_table(kv::redb_def(AUTHOR_MEDIAID_FETCH.name()))?;
    tx.open_table(kv::redb_def(USERID_AVATAR.name()))?;
    tx.open_table(kv::redb_def(MEDIAID_AVATAR.name()))?;
    tx.open_table(kv::redb_def(KEYID_NODEKEY.name()))?;
    tx.open_table(kv::redb_def(SEQ_AUDITENTRY.name()))?;
    tx.open_table(kv::redb_def(USERID_PSEUDONYMKEY.name()))?;
    tx.open_table(REMOTEADDR_USERID)?;
    tx.open_table(REMOTEINDEX_USERID)?;
    tx.open_table(kv::redb_def(USERID_REMOTEINDEX.name()))?;
    tx.open_table(USERID_REMOTEUSER)?;
    tx.open_table(DEST_SEQ_OUTBOUND)?;
    tx.open_table(kv::redb_def(DEST_OUTBOUNDCOUNT.name()))?;
    tx.open_table(ORIGIN_ENVID_SEEN)?;
    tx.open_table(ORIGIN_TXNID_ANSWER)?;
    tx.open_table(MS_ORIGIN_ENVID_SEEN)?;
    tx.open_table(MS_ORIGIN_TXNID_ANSWERED)?;
    tx.open_table(USERID_PEER_KIND_TRANSFER)?;
    tx.open_table(kv::redb_def(USERID_PEER_ERASURE.name()))?;
    tx.open_table(kv::redb_def(USERID_PEER_ERASUREACK.name()))?;
    tx.open_table(USERID_PEER_KIND_OUTCOME_DISCLOSURE)?;
    tx.open_table(kv::redb_def(USERID_ERASURE.name()))?;
    tx.open_table(kv::redb_def(HANDLEHASH_ERASED.name()))?;
    tx.open_table(kv::redb_def(USERID_LEGALHOLD.name()))?;
    tx.open_table(kv::redb_def(USERID_NOTE_ADMINNOTE.name()))?;
    tx.open_table(kv::redb_def(REQUESTID_REQUEST.name()))?;
    tx.open_table(kv::redb_def(USERID_REQUESTID.name()))?;
    tx.open_table(kv::redb_def(POLICYSEQ_VERSION.name()))?;
    tx.open_table(kv::redb_def(POLICYSEQ_NARROWING.name()))?;
    tx.open_table(kv::redb_def(NOTICENO_JOB.name()))?;
    tx.open_table(kv::redb_def(USERID_POLICYSEQ_ACCEPTED.name()))?;
    tx.open_table(kv::redb_def(USERID_GUARDIAN.name()))?;
    tx.open_table(kv::redb_def(USERID_REALNAME.name()))?;
    tx.open_table(kv::redb_def(USERID_PUBLICPAGE.name()))?;
    tx.open_table(kv::redb_def(USERID_EXPORT.name()))?;
    // Friends (issue 22).
    tx.open_table(kv::redb_def(FRIENDREQID_REQUEST.name()))?;
    tx.open_table(kv::redb_def(USERID_FRIENDREQID.name()))?;
    tx.open_table(kv::redb_def(USERPAIR_FRIENDREQID.name()))?;
    tx.open_table(kv::redb_def(MS_FRIENDREQID_CLOSED.name()))?;
    tx.open_table(kv::redb_def(USERID_USERID_FRIEND.name()))?;
    tx.open_table(kv::redb_def(USERID_USERID_BLOCK.name()))?;
    tx.open_table(kv::redb_def(USERID_USERID_BLOCKEDBY.name()))?;
    tx.open_table(kv::redb_def(USERID_DIRECTMESSAGES.name()))?;
    tx.open_table(kv::redb_def(USERID_FRIENDQUOTA.name()))?;
    tx.open_table(kv::redb_def(USERID_CONVNO_READ.name()))?;
    community::create_tables(tx)?;
    tx.open_table(kv::redb_def(PSEUDONYM_MS_SEARCHLOG.name()))?;
    tx.open_table(kv::redb_def(MS_PSEUDONYM_SEARCHLOG.name()))?;
    tx.open_table(POS_KIND_ID_SEARCHCHANGE)?;
    // Behaviour log (issue 23).
    tx.open_table(kv::redb_def(PSEUDONYM_MS_N_BEHAVIOUR.name()))?;
    tx.open_table(kv::redb_def(MS_PSEUDONYM_N_BEHAVIOUR.name()))?;
    // Discovery (issue 22).
    tx.open_table(kv::redb_def(CONTACTINDEX_USERID.name()))?;
    tx.open_table(kv::redb_def(USERID_DISCOVERY.name()))?;
    tx.open_table(kv::redb_def(USERID_MATCHED_EXPIRY.name()))?;
    tx.open_table(kv::redb_def(MATCHED_USERID.name()))?;
    tx.open_table(kv::redb_def(USERID_DAY_CONTACTS.name()))?;
    tx.open_table(kv::redb_def(EDUINDEX_USERID.name()))?;
    tx.open_table(kv::redb_def(USERID_EDUINDEX.name()))?;
    tx.open_table(kv::redb_def(USERID_DISMISSED.name()))?;
    tx.open_table(kv::redb_def(DISMISSED_USERID.name()))?;
    tx.open_table(kv::redb_def(CELLINDEX_USERID.name()))?;
    tx.open_table(kv::redb_def(USERID_CELL.name()))?;
    tx.open_table(kv::redb_def(EXPIRY_USERID_CELL.name()))?;
    tx.open_table(kv::redb_def(INVITENO_INVITE.name()))?;
    tx.open_table(kv::redb_def(INVITEHASH_INVITENO.name()))?;
    tx.open_table(kv::redb_def(USERID_INVITENO.name()))?;
    tx.open_table(kv::redb_def(USERID_JOINNO_JOIN.name()))?;
    tx.open_table(kv::redb_def(REQUESTER_USERID_JOINNO.name()))?;
    // Operations (issue 24).
    tx.open_table(REMOTEID_ERASED)?;
    tx.open_table(kv::redb_def(PEER_REACH.name()))?;
    tx.open_table(kv::redb_def(USERID_REMOTECOMMUNITY.name()))?;
    // Calls to communities hosted here (issue 23).
    tx.open_table(kv::redb_def(ORIGIN_ENVID_COMMUNITYCALL.name()))?;
    tx.open_table(kv::redb_def(EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.name()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::time::Millis;

    fn open(dir: &Path) -> Store {
        Store::open(&dir.join("node.redb"), |_| Ok(None)).unwrap().0
    }

    /// Turns the file at `path` into what schema `version` wrote: its version number, the
    /// tables 10 → 11, 11 → 12, 12 → 13, 13 → 14 and 15 → 16 moved as the typed (empty)
    /// tables they were before each, and whatever `f` changes (tables that version lacked or
    /// held in another form).
    pub(crate) fn as_schema(path: &Path, version: u32, f: impl FnOnce(&WriteTransaction)) {
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", version.to_be_bytes().as_slice())
            .unwrap();
        if version < 11 {
            typed_before_11(&tx);
        }
        if version < 12 {
            typed_before_12(&tx);
        }
        if version < 13 {
            typed_before_13(&tx);
        }
        if version < 14 {
            typed_before_14(&tx);
        }
        if version < 16 {
            typed_before_16(&tx);
        }
        f(&tx);
        tx.commit().unwrap();
    }

    pub fn account(id: u64, handle: &str) -> NewAccount {
        NewAccount {
            account: AccountRecord {
                id,
                handle: handle.into(),
                handle_index: [0; 32],
                handle_sealed: vec![],
                phone_sealed: vec![1, 2, 3],
                password_phc: "phc".into(),
                wrapped_key: vec![4, 5],
                created: Millis(1),
                policy_version: "v1".into(),
                policy_accepted: Millis(1),
            },
            phone_index: [id as u8; 32],
            profile_sealed: vec![9],
            policy_seq: 0,
        }
    }

    /// Schedules user `user`'s erasure (asked at 1, due at 5) and runs its first step at 10,
    /// the one that removes what goes before the user's keys do.
    pub async fn begin_erasure(s: &Store, user: u64) {
        let audit = AuditEntry {
            at: Millis(1),
            actor: "node".into(),
            action: "erasure.done".into(),
            target: String::new(),
            subject: None,
            detail: String::new(),
        };
        let rec = ErasureRecord {
            requested: Millis(1),
            due: Millis(5),
            by: "admin".into(),
            reason: "test".into(),
            phase: Phase::Scheduled,
            cursor: (0, 0),
            finished: None,
        };
        assert!(
            s.schedule_erasure(user, rec, audit.clone(), None)
                .await
                .unwrap()
        );
        let step = s
            .erasure_step(user, Millis(10), 100, None, audit)
            .await
            .unwrap();
        assert_eq!(step, Step::Progress(Phase::Begun));
    }

    /// Conversation `id` (number `no`) created at time 1 by user 1 with `others`.
    pub fn conversation(id: &str, no: u64, kind: ConvKind, others: Vec<u64>) -> NewConversation {
        NewConversation {
            id: id.into(),
            no,
            kind,
            name: String::new(),
            public: false,
            creator: 1,
            others,
            now: Millis(1),
            fanout: None,
        }
    }

    #[tokio::test]
    async fn a_password_hash_is_replaced_only_while_it_is_still_the_expected_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(account(1, "alice")).await.unwrap();
        let replace =
            |expected: &str, new: &str| s.replace_password_hash(1, expected.into(), new.into());
        assert!(!replace("other", "x").await.unwrap(), "changed meanwhile");
        assert!(replace("phc", "phc2").await.unwrap());
        assert!(!replace("phc", "phc3").await.unwrap(), "no longer expected");
        let stored = s.account(1).await.unwrap().unwrap();
        assert_eq!(stored.password_phc, "phc2");
        assert_eq!(stored.handle, "alice", "the rest of the record is kept");
        assert!(
            !s.replace_password_hash(9, "phc".into(), "x".into())
                .await
                .unwrap(),
            "no such account"
        );
    }

    #[test]
    fn a_file_with_clear_handles_is_refused_and_one_without_accounts_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let as_schema_4 = |with_handle: bool| {
            as_schema(&path, 4, |tx| {
                let mut old = tx.open_table(HANDLE_USERID_V4).unwrap();
                if with_handle {
                    old.insert("alice", 1).unwrap();
                }
                drop(old);
            });
        };
        drop(open(dir.path()));
        as_schema_4(true);
        let e = Store::open(&path, |_| Ok(None)).unwrap_err().to_string();
        assert!(
            e.contains("before schema 6") && e.contains("new data directory"),
            "{e}"
        );
        let raw = std::fs::read(&path).unwrap();
        assert!(
            raw.windows(5).any(|w| w == b"alice"),
            "refused, not half-converted"
        );
        drop(std::fs::remove_file(&path));
        drop(open(dir.path()));
        as_schema_4(false);
        let s = open(dir.path());
        let old_left =
            s.db.begin_read()
                .unwrap()
                .list_tables()
                .unwrap()
                .any(|t| redb::TableHandle::name(&t) == "handle_userid");
        assert!(!old_left, "the clear-text table is gone");
    }

    #[tokio::test]
    async fn schema_1_transaction_answers_carry_over_with_time_0_and_go_at_the_next_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        let mut old_value = [7u8; 32].to_vec();
        old_value.extend_from_slice(br#"{"results":{}}"#);
        {
            // Turn the new file into what schema 1 wrote.
            as_schema(&path, 1, |tx| {
                tx.delete_table(ORIGIN_TXNID_ANSWER).unwrap();
                tx.open_table(ORIGIN_TXNID_TXN_V1)
                    .unwrap()
                    .insert(("b.test", "t1"), old_value.as_slice())
                    .unwrap();
            });
        }
        let s = open(dir.path());
        assert_eq!(
            s.transaction_answer("b.test".into(), "t1".into())
                .await
                .unwrap(),
            Some(([7u8; 32], br#"{"results":{}}"#.to_vec())),
            "the answer survives the migration"
        );
        let (version, old_table_left) = s
            .read(|tx| {
                let v = tx
                    .open_table(META)?
                    .get("schema_version")?
                    .map(|v| v.value().to_vec());
                use redb::TableHandle;
                let old = tx.list_tables()?.any(|t| t.name() == "origin_txnid_txn");
                Ok((v, old))
            })
            .await
            .unwrap();
        assert_eq!(version, Some(SCHEMA_VERSION.to_be_bytes().to_vec()));
        assert!(!old_table_left);
        let cut = Cutoffs {
            federation_seen: Some(Millis(1)),
            ..Cutoffs::default()
        };
        assert_eq!(s.retention_count(cut).await.unwrap().federation_seen, 1);
    }

    #[tokio::test]
    async fn schema_2_received_ids_and_answers_get_their_time_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        {
            // What schema 2 wrote: the rows without their time indexes.
            as_schema(&path, 2, |tx| {
                tx.delete_table(MS_ORIGIN_ENVID_SEEN).unwrap();
                tx.delete_table(MS_ORIGIN_TXNID_ANSWERED).unwrap();
                let mut seen = tx.open_table(ORIGIN_ENVID_SEEN).unwrap();
                seen.insert(("b.test", "old"), 1_000).unwrap();
                seen.insert(("b.test", "new"), 9_000).unwrap();
                drop(seen);
                let mut answers = tx.open_table(ORIGIN_TXNID_ANSWER).unwrap();
                let v = [0u8; 32];
                answers
                    .insert(("b.test", "t-old"), (1_000, v.as_slice()))
                    .unwrap();
                answers
                    .insert(("b.test", "t-new"), (9_000, v.as_slice()))
                    .unwrap();
                drop(answers);
            });
        }
        let s = open(dir.path());
        let cut = Cutoffs {
            federation_seen: Some(Millis(5_000)),
            ..Cutoffs::default()
        };
        assert_eq!(s.retention_count(cut).await.unwrap().federation_seen, 2);
        let (c, _, _) = s.retention_batch(cut, Resume::start(), 500).await.unwrap();
        assert_eq!(c.federation_seen, 2, "the old id and the old answer");
        assert_eq!(
            s.transaction_answer("b.test".into(), "t-new".into())
                .await
                .unwrap()
                .map(|(d, _)| d),
            Some([0u8; 32])
        );
        assert_eq!(s.retention_count(cut).await.unwrap().federation_seen, 0);
    }

    /// What schema 9 wrote, as typed redb tables: a row in each table that 9 → 10 moves, and
    /// (as every older schema) the tables 10 → 11, 11 → 12 and 12 → 13 move, with their rows.
    pub(crate) fn write_schema_9_rows(db: &Database) {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 9u32.to_be_bytes().as_slice())
            .unwrap();
        for name in MOVED_AT_10 {
            tx.delete_table(kv::redb_def(name)).unwrap();
        }
        // Schema 9 held the tables 10 → 11, 11 → 12, 12 → 13, 13 → 14 and 15 → 16 move as
        // typed tables too.
        put_schema_10_rows(&tx);
        put_schema_11_rows(&tx);
        put_schema_12_rows(&tx);
        put_schema_13_rows(&tx);
        put_schema_15_rows(&tx);
        macro_rules! put {
            ($t:expr, $k:expr, $v:expr) => {
                tx.open_table($t).unwrap().insert($k, $v).unwrap();
            };
        }
        put!(REQUESTID_REQUEST_V9, 4, b"request".as_slice());
        put!(USERID_REQUESTID_V9, (1, 4), ());
        put!(FRIENDREQID_REQUEST_V9, 100, b"friend request".as_slice());
        put!(USERID_FRIENDREQID_V9, (1, 100), ());
        put!(USERID_FRIENDREQID_V9, (2, 100), ());
        put!(USERPAIR_FRIENDREQID_V9, (1, 2), 100);
        put!(MS_FRIENDREQID_CLOSED_V9, (11, 100), ());
        put!(USERID_USERID_FRIEND_V9, (1, 2), (11, 100));
        put!(USERID_USERID_FRIEND_V9, (2, 1), (11, 100));
        put!(USERID_USERID_BLOCK_V9, (1, 5), (12, 200));
        put!(USERID_USERID_BLOCKEDBY_V9, (5, 1), ());
        put!(USERID_DIRECTMESSAGES_V9, 1, 1u8);
        put!(USERID_FRIENDQUOTA_V9, 1, (3, 1));
        put!(USERID_CONVNO_READ_V9, (1, 77), 9);
        put!(INVITENO_INVITE_V9, 6, b"invite".as_slice());
        put!(INVITEHASH_INVITENO_V9, &[8u8; 32], 6);
        put!(USERID_INVITENO_V9, (1, 6), ());
        put!(USERID_JOINNO_JOIN_V9, (1, 3), b"join".as_slice());
        put!(REQUESTER_USERID_JOINNO_V9, (2, 1, 3), ());
        put!(
            ORIGIN_ENVID_COMMUNITYCALL_V9,
            ("b.test", "e1"),
            (500, 3, 4, 7, 0)
        );
        put!(
            EXPIRY_ORIGIN_ENVID_COMMUNITYCALL_V9,
            (500, "b.test", "e1"),
            ()
        );
        tx.commit().unwrap();
    }

    /// The tables schema 10 moved behind the seam.
    const MOVED_AT_10: [&str; 19] = [
        REQUESTID_REQUEST.name(),
        USERID_REQUESTID.name(),
        FRIENDREQID_REQUEST.name(),
        USERID_FRIENDREQID.name(),
        USERPAIR_FRIENDREQID.name(),
        MS_FRIENDREQID_CLOSED.name(),
        USERID_USERID_FRIEND.name(),
        USERID_USERID_BLOCK.name(),
        USERID_USERID_BLOCKEDBY.name(),
        USERID_DIRECTMESSAGES.name(),
        USERID_FRIENDQUOTA.name(),
        USERID_CONVNO_READ.name(),
        INVITENO_INVITE.name(),
        INVITEHASH_INVITENO.name(),
        USERID_INVITENO.name(),
        USERID_JOINNO_JOIN.name(),
        REQUESTER_USERID_JOINNO.name(),
        ORIGIN_ENVID_COMMUNITYCALL.name(),
        EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.name(),
    ];

    /// Checks that each step from `schema` on (9 to 13, and 15) moved the rows its test file
    /// holds behind the seam (14 → 15 moved none: it made two tables).
    pub(crate) async fn assert_rows_moved_from(s: &Store, schema: u32) {
        if schema <= 9 {
            assert_schema_9_rows_moved(s).await;
        }
        if schema <= 10 {
            assert_schema_10_rows_moved(s).await;
        }
        if schema <= 11 {
            assert_schema_11_rows_moved(s).await;
        }
        if schema <= 12 {
            assert_schema_12_rows_moved(s).await;
        }
        if schema <= 13 {
            assert_schema_13_rows_moved(s).await;
        }
        assert_schema_15_rows_moved(s).await;
    }

    /// Checks, through the seam and the store, that `s` holds the rows of
    /// [`write_schema_9_rows`] and no parked table.
    pub(crate) async fn assert_schema_9_rows_moved(s: &Store) {
        assert_eq!(s.friends_of(2).await.unwrap(), vec![(1, Millis(11), 100)]);
        assert_eq!(s.blocks_of(1).await.unwrap(), vec![(5, Millis(12), 200)]);
        assert!(s.direct_messages_friends_only(1).await.unwrap());
        assert!(s.direct_refused(3, 1).await.unwrap(), "friends only");
        assert!(s.blocked_either(5, 1).await.unwrap());
        let call = s
            .community_call("b.test".into(), "e1".into())
            .await
            .unwrap();
        assert_eq!(
            call.map(|c| (c.expires, c.kind, c.outcome)),
            Some((Millis(500), CallKind::Post, CallOutcome::Post(7)))
        );
        let rows = s
            .read(|tx| {
                use redb::TableHandle;
                let parked: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v9"))
                    .collect();
                let n = |name| kv::rows_in(tx, name);
                let mut counts = Vec::new();
                for name in MOVED_AT_10 {
                    counts.push(n(name)?);
                }
                Ok((
                    parked,
                    counts,
                    REQUESTID_REQUEST.get(tx, &4)?,
                    USERID_REQUESTID.page(tx, None, 10)?,
                    FRIENDREQID_REQUEST.get(tx, &100)?,
                    USERID_FRIENDREQID.prefixed(tx, &2u64, kv::Order::Ascending, 10)?,
                    USERPAIR_FRIENDREQID.get(tx, &(1, 2))?,
                    MS_FRIENDREQID_CLOSED.page(tx, None, 10)?,
                    USERID_USERID_BLOCKEDBY.get(tx, &(5, 1))?,
                    USERID_FRIENDQUOTA.get(tx, &1)?,
                    USERID_CONVNO_READ.get(tx, &(1, 77))?,
                    (
                        INVITENO_INVITE.get(tx, &6)?,
                        INVITEHASH_INVITENO.get(tx, &[8u8; 32])?,
                        USERID_INVITENO.page(tx, None, 10)?,
                        USERID_JOINNO_JOIN.get(tx, &(1, 3))?,
                        REQUESTER_USERID_JOINNO.prefixed(
                            tx,
                            &(2u64, 1u64),
                            kv::Order::Ascending,
                            10,
                        )?,
                        EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.page(tx, None, 10)?,
                    ),
                ))
            })
            .await
            .unwrap();
        let (parked, counts, req, my_reqs, freq, his, pair, closed, by, quota, read, inv) = rows;
        assert!(parked.is_empty(), "no parked table is left: {parked:?}");
        assert_eq!(
            counts,
            [1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            "every row, none twice"
        );
        assert_eq!(req, Some(b"request".to_vec()));
        assert_eq!(my_reqs, vec![((1, 4), ())]);
        assert_eq!(freq, Some(b"friend request".to_vec()));
        assert_eq!(his, vec![((2, 100), ())]);
        assert_eq!(pair, Some(100));
        assert_eq!(closed, vec![((11, 100), ())]);
        assert_eq!(by, Some(()));
        assert_eq!(quota, Some((3, 1)));
        assert_eq!(read, Some(9));
        let (invite, hash, mine, join, joins, expiry) = inv;
        assert_eq!(invite, Some(b"invite".to_vec()));
        assert_eq!(hash, Some(6));
        assert_eq!(mine, vec![((1, 6), ())]);
        assert_eq!(join, Some(b"join".to_vec()));
        assert_eq!(joins, vec![((2, 1, 3), ())]);
        assert_eq!(
            expiry,
            vec![((500, "b.test".to_string(), "e1".to_string()), ())]
        );
    }

    #[tokio::test]
    async fn schema_9_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        write_schema_9_rows(&Database::create(&path).unwrap());
        let s = open(dir.path());
        assert_rows_moved_from(&s, 9).await;
        drop(s);
        let again = open(dir.path());
        assert_rows_moved_from(&again, 9).await;
    }

    /// The tables 10 → 11 moves behind the seam (`discovery.rs`, `avatars.rs`).
    const MOVED_AT_11: [&str; 11] = [
        USERID_AVATAR.name(),
        MEDIAID_AVATAR.name(),
        CONTACTINDEX_USERID.name(),
        USERID_DISCOVERY.name(),
        USERID_MATCHED_EXPIRY.name(),
        MATCHED_USERID.name(),
        USERID_DAY_CONTACTS.name(),
        EDUINDEX_USERID.name(),
        USERID_EDUINDEX.name(),
        USERID_DISMISSED.name(),
        DISMISSED_USERID.name(),
    ];

    /// The tables 10 → 11 moves as every schema before it held them: typed (and empty).
    fn typed_before_11(tx: &WriteTransaction) {
        for name in MOVED_AT_11 {
            tx.delete_table(kv::redb_def(name)).unwrap();
        }
        tx.open_table(USERID_AVATAR_V10).unwrap();
        tx.open_table(MEDIAID_AVATAR_V10).unwrap();
        tx.open_table(CONTACTINDEX_USERID_V10).unwrap();
        tx.open_table(USERID_DISCOVERY_V10).unwrap();
        tx.open_table(USERID_MATCHED_EXPIRY_V10).unwrap();
        tx.open_table(MATCHED_USERID_V10).unwrap();
        tx.open_table(USERID_DAY_CONTACTS_V10).unwrap();
        tx.open_table(EDUINDEX_USERID_V10).unwrap();
        tx.open_table(USERID_EDUINDEX_V10).unwrap();
        tx.open_table(USERID_DISMISSED_V10).unwrap();
        tx.open_table(DISMISSED_USERID_V10).unwrap();
    }

    /// The tables 10 → 11 moves, typed, with a row in each (two in the education index):
    /// user 1 shows avatar `m1`, matched user 2 (findable by phone) and dismissed user 3;
    /// both share an education.
    fn put_schema_10_rows(tx: &WriteTransaction) {
        typed_before_11(tx);
        macro_rules! put {
            ($t:expr, $k:expr, $v:expr) => {
                tx.open_table($t).unwrap().insert($k, $v).unwrap();
            };
        }
        put!(USERID_AVATAR_V10, 1, "m1");
        put!(MEDIAID_AVATAR_V10, "m1", 1);
        put!(CONTACTINDEX_USERID_V10, &[5u8; 32], 2);
        let settings = Enc::new(1).bool(true).bytes(&[5u8; 32]).finish();
        put!(USERID_DISCOVERY_V10, 2, settings.as_slice());
        put!(USERID_MATCHED_EXPIRY_V10, (1, 2), 900);
        put!(MATCHED_USERID_V10, (2, 1), ());
        put!(USERID_DAY_CONTACTS_V10, (1, 3), 4);
        put!(EDUINDEX_USERID_V10, (&[6u8; 32], 1), ());
        put!(EDUINDEX_USERID_V10, (&[6u8; 32], 2), ());
        put!(USERID_EDUINDEX_V10, 1, &[6u8; 32]);
        put!(USERID_EDUINDEX_V10, 2, &[6u8; 32]);
        put!(USERID_DISMISSED_V10, (1, 3), 700);
        put!(DISMISSED_USERID_V10, (3, 1), ());
    }

    /// What schema 10 wrote, as typed redb tables: a row in each table that 10 → 11 moves, and
    /// the tables later steps move with [`write_schema_11_rows`]'s and
    /// [`write_schema_12_rows`]'s rows.
    pub(crate) fn write_schema_10_rows(db: &Database) {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 10u32.to_be_bytes().as_slice())
            .unwrap();
        put_schema_10_rows(&tx);
        // Schema 10 held the tables 11 → 12, 12 → 13, 13 → 14 and 15 → 16 move as typed
        // tables too.
        put_schema_11_rows(&tx);
        put_schema_12_rows(&tx);
        put_schema_13_rows(&tx);
        put_schema_15_rows(&tx);
        tx.commit().unwrap();
    }

    /// Checks, through the seam and the store, that `s` holds the rows of
    /// [`write_schema_10_rows`] and no parked table.
    pub(crate) async fn assert_schema_10_rows_moved(s: &Store) {
        assert!(s.discovery_settings(2).await.unwrap().findable_by_phone);
        assert!(!s.discovery_settings(1).await.unwrap().findable_by_phone);
        assert_eq!(s.match_count(1, Millis(899)).await.unwrap(), 1);
        assert_eq!(s.match_count(1, Millis(900)).await.unwrap(), 0, "expired");
        assert_eq!(s.dismissed_count(1).await.unwrap(), 1);
        let rows = s
            .read(|tx| {
                use redb::TableHandle;
                let parked: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v10"))
                    .collect();
                let mut counts = Vec::new();
                for name in MOVED_AT_11 {
                    counts.push(kv::rows_in(tx, name)?);
                }
                Ok((
                    parked,
                    counts,
                    (
                        USERID_AVATAR.get(tx, &1)?,
                        MEDIAID_AVATAR.get(tx, &"m1".to_string())?,
                        CONTACTINDEX_USERID.get(tx, &[5u8; 32])?,
                    ),
                    (
                        USERID_MATCHED_EXPIRY.get(tx, &(1, 2))?,
                        MATCHED_USERID.prefixed(tx, &2u64, kv::Order::Ascending, 10)?,
                        USERID_DAY_CONTACTS.get(tx, &(1, 3))?,
                    ),
                    (
                        EDUINDEX_USERID.prefixed(tx, &[6u8; 32], kv::Order::Ascending, 10)?,
                        USERID_EDUINDEX.get(tx, &2)?,
                    ),
                    (
                        USERID_DISMISSED.get(tx, &(1, 3))?,
                        DISMISSED_USERID.page(tx, None, 10)?,
                    ),
                ))
            })
            .await
            .unwrap();
        let (parked, counts, avatar, matches, education, dismissals) = rows;
        assert!(parked.is_empty(), "no parked table is left: {parked:?}");
        assert_eq!(
            counts,
            [1, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1],
            "every row, none twice"
        );
        assert_eq!(avatar, (Some("m1".to_string()), Some(1), Some(2)));
        assert_eq!(matches, (Some(900), vec![((2, 1), ())], Some(4)));
        assert_eq!(
            education,
            (
                vec![(([6u8; 32], 1), ()), (([6u8; 32], 2), ())],
                Some([6u8; 32])
            )
        );
        assert_eq!(dismissals, (Some(700), vec![((3, 1), ())]));
    }

    #[tokio::test]
    async fn schema_10_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        write_schema_10_rows(&Database::create(&path).unwrap());
        let s = open(dir.path());
        assert_rows_moved_from(&s, 10).await;
        drop(s);
        let again = open(dir.path());
        assert_rows_moved_from(&again, 10).await;
    }

    /// The tables 11 → 12 moves behind the seam (`community/`).
    const MOVED_AT_12: [&str; 15] = [
        COMMUNITYNO_COMMUNITY.name(),
        COMMUNITYNO_USERID_MEMBER.name(),
        USERID_COMMUNITYNO.name(),
        COMMUNITYNO_USERID_PENDING.name(),
        COMMUNITYNO_USERID_BAN.name(),
        COMMUNITYNO_SEQ_MODLOG.name(),
        POSTNO_POST.name(),
        COMMUNITYNO_POSTNO.name(),
        USERID_POSTNO.name(),
        POSTNO_COMMENTNO_COMMENT.name(),
        USERID_COMMENTNO.name(),
        USERID_POSTNO_FAVOURITE.name(),
        POSTNO_USERID_FAVOURITE.name(),
        MEDIAID_COMMUNITYNO_POSTNO.name(),
        FANOUTNO_JOB.name(),
    ];

    /// The tables 11 → 12 moves as every schema before it held them: typed (and empty).
    fn typed_before_12(tx: &WriteTransaction) {
        for name in MOVED_AT_12 {
            tx.delete_table(kv::redb_def(name)).unwrap();
        }
        tx.open_table(COMMUNITYNO_COMMUNITY_V11).unwrap();
        tx.open_table(COMMUNITYNO_USERID_MEMBER_V11).unwrap();
        tx.open_table(USERID_COMMUNITYNO_V11).unwrap();
        tx.open_table(COMMUNITYNO_USERID_PENDING_V11).unwrap();
        tx.open_table(COMMUNITYNO_USERID_BAN_V11).unwrap();
        tx.open_table(COMMUNITYNO_SEQ_MODLOG_V11).unwrap();
        tx.open_table(POSTNO_POST_V11).unwrap();
        tx.open_table(COMMUNITYNO_POSTNO_V11).unwrap();
        tx.open_table(USERID_POSTNO_V11).unwrap();
        tx.open_table(POSTNO_COMMENTNO_COMMENT_V11).unwrap();
        tx.open_table(USERID_COMMENTNO_V11).unwrap();
        tx.open_table(USERID_POSTNO_FAVOURITE_V11).unwrap();
        tx.open_table(POSTNO_USERID_FAVOURITE_V11).unwrap();
        tx.open_table(MEDIAID_COMMUNITYNO_POSTNO_V11).unwrap();
        tx.open_table(FANOUTNO_JOB_V11).unwrap();
    }

    /// The tables 11 → 12 moves, typed, with a row in each (two in the member tables and the
    /// media references): community 7 of owner 1 with member 2, who posted post 20 that user 1
    /// commented on and favoured, a pending user 3, a banned user 4 and a fan-out job.
    fn put_schema_11_rows(tx: &WriteTransaction) {
        typed_before_12(tx);
        macro_rules! put {
            ($t:expr, $k:expr, $v:expr) => {
                tx.open_table($t).unwrap().insert($k, $v).unwrap();
            };
        }
        let community = CommunityRecord {
            id: 7,
            name: "读书会".into(),
            description: String::new(),
            avatar: Some("m1".into()),
            public: true,
            owner: 1,
            created: Millis(5),
        };
        put!(COMMUNITYNO_COMMUNITY_V11, 7, community.encode().as_slice());
        put!(COMMUNITYNO_USERID_MEMBER_V11, (7, 1), (2, 5));
        put!(COMMUNITYNO_USERID_MEMBER_V11, (7, 2), (0, 6));
        put!(USERID_COMMUNITYNO_V11, (1, 7), 2);
        put!(USERID_COMMUNITYNO_V11, (2, 7), 0);
        put!(COMMUNITYNO_USERID_PENDING_V11, (7, 3), (0, 8, 0));
        put!(COMMUNITYNO_USERID_BAN_V11, (7, 4), (9, 1));
        put!(COMMUNITYNO_SEQ_MODLOG_V11, (7, 1), b"log entry".as_slice());
        let post = PostRecord {
            id: 20,
            community: 7,
            author: 2,
            created: Millis(10),
            edited: None,
            visibility: PostVisibility::Public,
            body_sealed: b"body".to_vec(),
            place_sealed: Vec::new(),
            media: vec!["m2".into()],
        };
        put!(POSTNO_POST_V11, 20, post.encode().as_slice());
        put!(COMMUNITYNO_POSTNO_V11, (7, 20), ());
        put!(USERID_POSTNO_V11, (2, 20), ());
        put!(
            POSTNO_COMMENTNO_COMMENT_V11,
            (20, 30),
            b"comment".as_slice()
        );
        put!(USERID_COMMENTNO_V11, (1, 30), 20);
        put!(USERID_POSTNO_FAVOURITE_V11, (1, 20), 11);
        put!(POSTNO_USERID_FAVOURITE_V11, (20, 1), ());
        put!(MEDIAID_COMMUNITYNO_POSTNO_V11, ("m1", 7, 0), ());
        put!(MEDIAID_COMMUNITYNO_POSTNO_V11, ("m2", 7, 20), ());
        put!(FANOUTNO_JOB_V11, 40, (7, 20, 0, 3));
    }

    /// What schema 11 wrote, as typed redb tables: a row in each table that 11 → 12 moves, and
    /// the tables 12 → 13 moves with [`write_schema_12_rows`]'s rows (the tables 10 → 11 moved
    /// are behind the seam, as a file of schema 11 holds them).
    pub(crate) fn write_schema_11_rows(db: &Database) {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 11u32.to_be_bytes().as_slice())
            .unwrap();
        put_schema_11_rows(&tx);
        // Schema 11 held the tables 12 → 13, 13 → 14 and 15 → 16 move as typed tables too.
        put_schema_12_rows(&tx);
        put_schema_13_rows(&tx);
        put_schema_15_rows(&tx);
        tx.commit().unwrap();
    }

    /// Checks, through the seam and the store, that `s` holds the rows of
    /// [`write_schema_11_rows`] and no parked table.
    pub(crate) async fn assert_schema_11_rows_moved(s: &Store) {
        let facts = s.community_for(7, 2).await.unwrap().unwrap();
        assert_eq!(
            (facts.community.name.as_str(), facts.members, facts.role),
            ("读书会", 2, Some(CommunityRole::Member))
        );
        let mine = s.communities_of(1).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].role, Some(CommunityRole::Owner));
        let (post, comments) = s.post_for(7, 20, 3).await.unwrap().unwrap();
        assert_eq!(
            (post.body_sealed.as_slice(), comments),
            (b"body".as_slice(), 1)
        );
        let feed = s
            .community_posts(7, 2, u64::MAX, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(feed.len(), 1, "the community's post index");
        assert_eq!(s.favoured(1, vec![20, 21]).await.unwrap(), [20]);
        assert_eq!(s.fan_out_jobs().await.unwrap(), [40]);
        let rows = s
            .read(|tx| {
                use redb::TableHandle;
                let parked: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v11"))
                    .collect();
                let mut counts = Vec::new();
                for name in MOVED_AT_12 {
                    counts.push(kv::rows_in(tx, name)?);
                }
                Ok((
                    parked,
                    counts,
                    COMMUNITYNO_USERID_PENDING.get(tx, &(7, 3))?,
                    COMMUNITYNO_USERID_BAN.get(tx, &(7, 4))?,
                    COMMUNITYNO_SEQ_MODLOG.get(tx, &(7, 1))?,
                    USERID_POSTNO.prefixed(tx, &2u64, kv::Order::Ascending, 10)?,
                    POSTNO_COMMENTNO_COMMENT.get(tx, &(20, 30))?,
                    USERID_COMMENTNO.get(tx, &(1, 30))?,
                    (
                        USERID_POSTNO_FAVOURITE.get(tx, &(1, 20))?,
                        POSTNO_USERID_FAVOURITE.get(tx, &(20, 1))?,
                        MEDIAID_COMMUNITYNO_POSTNO.page(tx, None, 10)?,
                        FANOUTNO_JOB.get(tx, &40)?,
                    ),
                ))
            })
            .await
            .unwrap();
        let (parked, counts, pending, ban, log, posts, comment, by_author, rest) = rows;
        assert!(parked.is_empty(), "no parked table is left: {parked:?}");
        assert_eq!(
            counts,
            [1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1],
            "every row, none twice"
        );
        assert_eq!(pending, Some((0, 8, 0)));
        assert_eq!(ban, Some((9, 1)));
        assert_eq!(log, Some(b"log entry".to_vec()));
        assert_eq!(posts, vec![((2, 20), ())]);
        assert_eq!(comment, Some(b"comment".to_vec()));
        assert_eq!(by_author, Some(20));
        let (fav, fan, media, job) = rest;
        assert_eq!(fav, Some(11));
        assert_eq!(fan, Some(()));
        assert_eq!(
            media,
            vec![
                (("m1".to_string(), 7, 0), ()),
                (("m2".to_string(), 7, 20), ())
            ],
            "in key order, as typed keys were"
        );
        assert_eq!(job, Some((7, 20, 0, 3)));
    }

    #[tokio::test]
    async fn schema_11_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        write_schema_11_rows(&Database::create(&path).unwrap());
        let s = open(dir.path());
        assert_rows_moved_from(&s, 11).await;
        drop(s);
        let again = open(dir.path());
        assert_rows_moved_from(&again, 11).await;
    }

    /// The tables 12 → 13 moves behind the seam (`audit.rs`, `privacy.rs`, admin notes, the
    /// consent history, erasure records and erased handles).
    const MOVED_AT_13: [&str; 12] = [
        SEQ_AUDITENTRY.name(),
        POLICYSEQ_VERSION.name(),
        POLICYSEQ_NARROWING.name(),
        USERID_POLICYSEQ_ACCEPTED.name(),
        USERID_GUARDIAN.name(),
        USERID_REALNAME.name(),
        USERID_PUBLICPAGE.name(),
        USERID_EXPORT.name(),
        USERID_NOTE_ADMINNOTE.name(),
        USERID_SEQ_CONSENTEVENT.name(),
        USERID_ERASURE.name(),
        HANDLEHASH_ERASED.name(),
    ];

    /// The tables 12 → 13 moves as every schema before it held them: typed (and empty).
    fn typed_before_13(tx: &WriteTransaction) {
        for name in MOVED_AT_13 {
            tx.delete_table(kv::redb_def(name)).unwrap();
        }
        tx.open_table(SEQ_AUDITENTRY_V12).unwrap();
        tx.open_table(POLICYSEQ_VERSION_V12).unwrap();
        tx.open_table(POLICYSEQ_NARROWING_V12).unwrap();
        tx.open_table(USERID_POLICYSEQ_ACCEPTED_V12).unwrap();
        tx.open_table(USERID_GUARDIAN_V12).unwrap();
        tx.open_table(USERID_REALNAME_V12).unwrap();
        tx.open_table(USERID_PUBLICPAGE_V12).unwrap();
        tx.open_table(USERID_EXPORT_V12).unwrap();
        tx.open_table(USERID_NOTE_ADMINNOTE_V12).unwrap();
        tx.open_table(USERID_SEQ_CONSENTEVENT_V12).unwrap();
        tx.open_table(USERID_ERASURE_V12).unwrap();
        tx.open_table(HANDLEHASH_ERASED_V12).unwrap();
    }

    /// The erasure record [`put_schema_12_rows`] writes for user 9 (scheduled, not begun).
    fn schema_12_erasure() -> ErasureRecord {
        ErasureRecord {
            requested: Millis(1),
            due: Millis(2),
            by: "admin".into(),
            reason: String::new(),
            phase: Phase::Scheduled,
            cursor: (0, 0),
            finished: None,
        }
    }

    /// The consent history [`put_schema_12_rows`] writes for user 1: a grant, then its
    /// revocation.
    fn schema_12_consents() -> [ConsentEvent; 2] {
        let event = |granted, at| ConsentEvent {
            purpose: "real_name".into(),
            granted,
            at: Millis(at),
            policy_version: "v1".into(),
            device_id: "d1".into(),
        };
        [event(true, 3), event(false, 4)]
    }

    /// The tables 12 → 13 moves, typed, with a row in each (two audit entries, two
    /// acceptances, two consent events): user 1 accepted only the configured policy, which
    /// narrowing version 3 (in effect from 50) pauses; user 2 accepted version 3; user 9's
    /// erasure is scheduled, and the handle hash `[4; 32]` is of an erased account.
    fn put_schema_12_rows(tx: &WriteTransaction) {
        typed_before_13(tx);
        macro_rules! put {
            ($t:expr, $k:expr, $v:expr) => {
                tx.open_table($t).unwrap().insert($k, $v).unwrap();
            };
        }
        put!(SEQ_AUDITENTRY_V12, 0, b"entry 0".as_slice());
        put!(SEQ_AUDITENTRY_V12, 1, b"entry 1".as_slice());
        put!(POLICYSEQ_VERSION_V12, 3, b"version 3".as_slice());
        put!(POLICYSEQ_NARROWING_V12, 3, 50);
        put!(USERID_POLICYSEQ_ACCEPTED_V12, (1, 0), 5);
        put!(USERID_POLICYSEQ_ACCEPTED_V12, (2, 3), 60);
        put!(USERID_GUARDIAN_V12, 1, b"guardian".as_slice());
        put!(USERID_REALNAME_V12, 1, (7, b"sealed name".as_slice()));
        put!(USERID_PUBLICPAGE_V12, 1, 8);
        put!(USERID_EXPORT_V12, 1, 9);
        put!(
            USERID_NOTE_ADMINNOTE_V12,
            (1, ERASURE_REASON),
            b"reason".as_slice()
        );
        for (seq, event) in schema_12_consents().iter().enumerate() {
            put!(
                USERID_SEQ_CONSENTEVENT_V12,
                (1, seq as u64),
                event.encode().as_slice()
            );
        }
        put!(
            USERID_ERASURE_V12,
            9,
            schema_12_erasure().encode().as_slice()
        );
        put!(HANDLEHASH_ERASED_V12, &[4u8; 32], (3, 8));
    }

    /// What schema 12 wrote, as typed redb tables: a row in each table that 12 → 13 moves, and
    /// the tables 13 → 14 moves with [`write_schema_13_rows`]'s rows (the tables earlier steps
    /// moved are behind the seam, as a file of schema 12 holds them).
    pub(crate) fn write_schema_12_rows(db: &Database) {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 12u32.to_be_bytes().as_slice())
            .unwrap();
        put_schema_12_rows(&tx);
        // Schema 12 held the tables 13 → 14 and 15 → 16 move as typed tables too.
        put_schema_13_rows(&tx);
        put_schema_15_rows(&tx);
        tx.commit().unwrap();
    }

    /// Checks, through the seam and the store, that `s` holds the rows of
    /// [`write_schema_12_rows`] and no parked table.
    pub(crate) async fn assert_schema_12_rows_moved(s: &Store) {
        assert_eq!(s.processing_paused(1, Millis(49)).await.unwrap(), None);
        assert_eq!(s.processing_paused(1, Millis(50)).await.unwrap(), Some(3));
        assert_eq!(s.processing_paused(2, Millis(50)).await.unwrap(), None);
        assert_eq!(
            s.policy_acceptances(2).await.unwrap(),
            vec![(3, Millis(60))]
        );
        assert_eq!(
            s.real_name_of(1).await.unwrap(),
            Some((Millis(7), b"sealed name".to_vec()))
        );
        assert_eq!(s.public_page_of(1).await.unwrap(), Some(Millis(8)));
        assert_eq!(s.last_export(1).await.unwrap(), Some(Millis(9)));
        assert_eq!(
            s.admin_note(1, ERASURE_REASON).await.unwrap(),
            Some(b"reason".to_vec())
        );
        assert_eq!(
            s.consents_of(1).await.unwrap().1,
            schema_12_consents().to_vec()
        );
        assert_eq!(s.erasure_of(9).await.unwrap(), Some(schema_12_erasure()));
        assert_eq!(s.due_erasures(Millis(2)).await.unwrap(), [9]);
        assert_eq!(s.erased_user([4u8; 32]).await.unwrap(), Some(8));
        let rows = s
            .read(|tx| {
                use redb::TableHandle;
                let parked: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v12"))
                    .collect();
                let mut counts = Vec::new();
                for name in MOVED_AT_13 {
                    counts.push(kv::rows_in(tx, name)?);
                }
                Ok((
                    parked,
                    counts,
                    SEQ_AUDITENTRY.page(tx, None, 10)?,
                    POLICYSEQ_VERSION.get(tx, &3)?,
                    USERID_GUARDIAN.get(tx, &1)?,
                ))
            })
            .await
            .unwrap();
        let (parked, counts, audit, version, guardian) = rows;
        assert!(parked.is_empty(), "no parked table is left: {parked:?}");
        assert_eq!(
            counts,
            [2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1],
            "every row, none twice"
        );
        assert_eq!(
            audit,
            vec![(0, b"entry 0".to_vec()), (1, b"entry 1".to_vec())],
            "in key order, as typed keys were"
        );
        assert_eq!(version, Some(b"version 3".to_vec()));
        assert_eq!(guardian, Some(b"guardian".to_vec()));
    }

    #[tokio::test]
    async fn schema_12_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        write_schema_12_rows(&Database::create(&path).unwrap());
        let s = open(dir.path());
        assert_rows_moved_from(&s, 12).await;
        drop(s);
        let again = open(dir.path());
        assert_rows_moved_from(&again, 12).await;
    }

    /// The tables 13 → 14 moves behind the seam (`search.rs`, `audit.rs`, `behaviour.rs`,
    /// `erasure.rs`, `retention.rs`, `fedmedia.rs`, `avatars.rs`, `federation.rs`).
    const MOVED_AT_14: [&str; 6] = [
        PSEUDONYM_MS_SEARCHLOG.name(),
        MS_PSEUDONYM_SEARCHLOG.name(),
        USERID_PSEUDONYMKEY.name(),
        USERID_LEGALHOLD.name(),
        MEDIAID_FETCH.name(),
        KEYID_NODEKEY.name(),
    ];

    /// The tables 13 → 14 moves as every schema before it held them: typed (and empty).
    fn typed_before_14(tx: &WriteTransaction) {
        for name in MOVED_AT_14 {
            tx.delete_table(kv::redb_def(name)).unwrap();
        }
        tx.open_table(PSEUDONYM_MS_SEARCHLOG_V13).unwrap();
        tx.open_table(MS_PSEUDONYM_SEARCHLOG_V13).unwrap();
        tx.open_table(USERID_PSEUDONYMKEY_V13).unwrap();
        tx.open_table(USERID_LEGALHOLD_V13).unwrap();
        tx.open_table(MEDIAID_FETCH_V13).unwrap();
        tx.open_table(KEYID_NODEKEY_V13).unwrap();
    }

    /// The pseudonym key [`put_schema_13_rows`] writes for user 1.
    const SCHEMA_13_KEY: [u8; 32] = [5u8; 32];

    /// The fetch job [`put_schema_13_rows`] writes under `"m13"`.
    fn schema_13_fetch() -> FetchJob {
        FetchJob {
            origin: "b.example".into(),
            remote_id: "r13".into(),
            size: 10,
            content_type: "image/png".into(),
            sha256: [6u8; 32],
            author: REMOTE_USER_BIT | 3,
            next: 1,
            created: Millis(70),
        }
    }

    /// The node key [`put_schema_13_rows`] writes.
    fn schema_13_node_key() -> NodeKeyRecord {
        NodeKeyRecord {
            id: "ed25519:k13".into(),
            seed_sealed: b"sealed seed".to_vec(),
            created: Millis(1),
            valid_until: Millis(2),
        }
    }

    /// The tables 13 → 14 moves, typed, with rows: user 1's pseudonym key and two logged
    /// searches (with their time index), a legal hold on user 3 set before schema 7 (its
    /// basis in clear), a fetch job and a node key.
    fn put_schema_13_rows(tx: &WriteTransaction) {
        typed_before_14(tx);
        macro_rules! put {
            ($t:expr, $k:expr, $v:expr) => {
                tx.open_table($t).unwrap().insert($k, $v).unwrap();
            };
        }
        let p = search::log_pseudonym(&SCHEMA_13_KEY, 1);
        put!(USERID_PSEUDONYMKEY_V13, 1, &SCHEMA_13_KEY);
        for (at, q) in [(10u64, b"q1".as_slice()), (20, b"q2".as_slice())] {
            put!(PSEUDONYM_MS_SEARCHLOG_V13, (p, at), q);
            put!(MS_PSEUDONYM_SEARCHLOG_V13, (at, p), ());
        }
        put!(USERID_LEGALHOLD_V13, 3, (30, "court order"));
        put!(
            MEDIAID_FETCH_V13,
            "m13",
            schema_13_fetch().encode().as_slice()
        );
        let key = schema_13_node_key();
        put!(KEYID_NODEKEY_V13, key.id.as_str(), key.encode().as_slice());
    }

    /// What schema 13 wrote, as typed redb tables: a row in each table that 13 → 14 moves, and
    /// the tables 15 → 16 moves with [`write_schema_15_rows`]'s rows (the tables earlier steps
    /// moved are behind the seam, as a file of schema 13 holds them).
    pub(crate) fn write_schema_13_rows(db: &Database) {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 13u32.to_be_bytes().as_slice())
            .unwrap();
        put_schema_13_rows(&tx);
        // Schema 13 held the tables 15 → 16 moves as typed tables too.
        put_schema_15_rows(&tx);
        tx.commit().unwrap();
    }

    /// Checks, through the seam and the store, that `s` holds the rows of
    /// [`write_schema_13_rows`] and no parked table.
    pub(crate) async fn assert_schema_13_rows_moved(s: &Store) {
        assert_eq!(
            s.search_log(1, Millis(0)).await.unwrap(),
            vec![(Millis(20), b"q2".to_vec()), (Millis(10), b"q1".to_vec())],
            "newest first"
        );
        assert!(s.pseudonym_of(1).await.unwrap().is_some());
        assert_eq!(
            s.legal_holds().await.unwrap(),
            vec![(3, Millis(30), "court order".to_string())]
        );
        assert_eq!(
            s.fetch_jobs().await.unwrap(),
            vec![("m13".to_string(), schema_13_fetch())]
        );
        assert_eq!(
            s.fetch_job("m13".into()).await.unwrap(),
            Some(schema_13_fetch())
        );
        // Indexed by its author by 14 → 15.
        let by_author = s
            .read(|tx| AUTHOR_MEDIAID_FETCH.page(tx, None, 10))
            .await
            .unwrap();
        assert_eq!(
            by_author,
            vec![((schema_13_fetch().author, "m13".to_string()), ())]
        );
        assert_eq!(s.node_keys().await.unwrap(), vec![schema_13_node_key()]);
        let rows = s
            .read(|tx| {
                use redb::TableHandle;
                let parked: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v13"))
                    .collect();
                let mut counts = Vec::new();
                for name in MOVED_AT_14 {
                    counts.push(kv::rows_in(tx, name)?);
                }
                Ok((
                    parked,
                    counts,
                    USERID_PSEUDONYMKEY.get(tx, &1)?,
                    MS_PSEUDONYM_SEARCHLOG.page(tx, None, 10)?,
                ))
            })
            .await
            .unwrap();
        let (parked, counts, key, by_time) = rows;
        assert!(parked.is_empty(), "no parked table is left: {parked:?}");
        assert_eq!(counts, [2, 2, 1, 1, 1, 1], "every row, none twice");
        assert_eq!(key, Some(SCHEMA_13_KEY));
        let p = search::log_pseudonym(&SCHEMA_13_KEY, 1);
        assert_eq!(
            by_time,
            vec![((10, p), ()), ((20, p), ())],
            "in key order, as typed keys were"
        );
    }

    #[tokio::test]
    async fn schema_13_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        write_schema_13_rows(&Database::create(&path).unwrap());
        let s = open(dir.path());
        assert_rows_moved_from(&s, 13).await;
        drop(s);
        let again = open(dir.path());
        assert_rows_moved_from(&again, 13).await;
    }

    /// The tables 15 → 16 moves behind the seam (`messaging/`, `reading.rs`, `search.rs`,
    /// `erasure.rs`, `federation.rs`, `replica.rs`).
    const MOVED_AT_16: [&str; 5] = [
        USERID_FLOOR.name(),
        USERID_CONVNO_CLEARED.name(),
        USERID_CONVNO_SEQ_HIDDEN.name(),
        USERID_PEER_ERASURE.name(),
        USERID_PEER_ERASUREACK.name(),
    ];

    /// The tables 15 → 16 moves as every schema before it held them: typed (and empty).
    pub(crate) fn typed_before_16(tx: &WriteTransaction) {
        for name in MOVED_AT_16 {
            tx.delete_table(kv::redb_def(name)).unwrap();
        }
        tx.open_table(USERID_FLOOR_V15).unwrap();
        tx.open_table(USERID_CONVNO_CLEARED_V15).unwrap();
        tx.open_table(USERID_CONVNO_SEQ_HIDDEN_V15).unwrap();
        tx.open_table(USERID_PEER_ERASURE_V15).unwrap();
        tx.open_table(USERID_PEER_ERASUREACK_V15).unwrap();
    }

    /// The acknowledgement digest [`put_schema_15_rows`] expects from `b.example`.
    const SCHEMA_15_ACK: [u8; 32] = [9u8; 32];

    /// The tables 15 → 16 moves, typed, with rows: user 1's floor (40), conversation 77
    /// cleared up to 30 and two messages of it hidden (seqs 5 and 300, so the order of the
    /// keys' bytes is tested), and erasure requests of user 1 to two peers (one acknowledged),
    /// one with the digest it expects.
    fn put_schema_15_rows(tx: &WriteTransaction) {
        typed_before_16(tx);
        macro_rules! put {
            ($t:expr, $k:expr, $v:expr) => {
                tx.open_table($t).unwrap().insert($k, $v).unwrap();
            };
        }
        put!(USERID_FLOOR_V15, 1, 40);
        put!(USERID_CONVNO_CLEARED_V15, (1, 77), 30);
        put!(USERID_CONVNO_SEQ_HIDDEN_V15, (1, 77, 300), ());
        put!(USERID_CONVNO_SEQ_HIDDEN_V15, (1, 77, 5), ());
        put!(USERID_PEER_ERASURE_V15, (1, "c.example"), (100, 200));
        put!(USERID_PEER_ERASURE_V15, (1, "b.example"), (100, 0));
        put!(USERID_PEER_ERASUREACK_V15, (1, "b.example"), &SCHEMA_15_ACK);
    }

    /// What schema 15 wrote, as typed redb tables: a row in each table that 15 → 16 moves (the
    /// tables earlier steps moved are behind the seam, and the two 14 → 15 made are there, as
    /// a file of schema 15 holds them).
    pub(crate) fn write_schema_15_rows(db: &Database) {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 15u32.to_be_bytes().as_slice())
            .unwrap();
        put_schema_15_rows(&tx);
        tx.commit().unwrap();
    }

    /// Checks, through the seam and the store, that `s` holds the rows of
    /// [`write_schema_15_rows`] and no parked table.
    pub(crate) async fn assert_schema_15_rows_moved(s: &Store) {
        assert_eq!(
            s.erasure_status(1).await.unwrap(),
            vec![
                ("b.example".to_string(), Millis(100), None),
                ("c.example".to_string(), Millis(100), Some(Millis(200))),
            ],
            "in peer order"
        );
        let view = s.search_view(1, "d1".into(), Millis(0)).await.unwrap();
        assert_eq!(view.hidden, [(77, 5), (77, 300)].into_iter().collect());
        let rows = s
            .read(|tx| {
                use redb::TableHandle;
                let parked: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v15"))
                    .collect();
                let mut counts = Vec::new();
                for name in MOVED_AT_16 {
                    counts.push(kv::rows_in(tx, name)?);
                }
                let floor = messaging::view_floor(tx, 1, None, Millis(0))?;
                Ok((
                    parked,
                    counts,
                    floor,
                    messaging::history_lower(tx, 1, 77, 0)?,
                    USERID_CONVNO_SEQ_HIDDEN.prefixed(tx, &1u64, kv::Order::Ascending, 10)?,
                    USERID_PEER_ERASUREACK.get(tx, &(1, "b.example".to_string()))?,
                    USERID_PEER_ERASUREACK.get(tx, &(1, "c.example".to_string()))?,
                ))
            })
            .await
            .unwrap();
        let (parked, counts, floor, cleared, hidden, ack, none) = rows;
        assert!(parked.is_empty(), "no parked table is left: {parked:?}");
        assert_eq!(counts, [1, 1, 2, 2, 1], "every row, none twice");
        assert_eq!(floor, 40, "the user's floor");
        assert_eq!(cleared, 30, "what they cleared of conversation 77");
        assert_eq!(
            hidden,
            vec![((1, 77, 5), ()), ((1, 77, 300), ())],
            "in key order, as typed keys were"
        );
        assert_eq!(ack, Some(SCHEMA_15_ACK));
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn schema_15_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        write_schema_15_rows(&Database::create(&path).unwrap());
        let s = open(dir.path());
        assert_rows_moved_from(&s, 15).await;
        drop(s);
        let again = open(dir.path());
        assert_rows_moved_from(&again, 15).await;
    }

    #[tokio::test]
    async fn schema_7_tables_move_behind_the_seam_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        {
            // What schema 7 wrote: these six as typed redb tables.
            as_schema(&path, 7, |tx| {
                for name in [
                    PEER_REACH.name(),
                    CELLINDEX_USERID.name(),
                    USERID_CELL.name(),
                    EXPIRY_USERID_CELL.name(),
                    PSEUDONYM_MS_N_BEHAVIOUR.name(),
                    MS_PSEUDONYM_N_BEHAVIOUR.name(),
                ] {
                    tx.delete_table(kv::redb_def(name)).unwrap();
                }
                let mut reach = tx.open_table(PEER_REACH_V7).unwrap();
                reach.insert("b.test", (1, 2, 3, "connect")).unwrap();
                reach.insert("a.test", (4, 0, 0, "")).unwrap();
                drop(reach);
                let cell = [9u8; 32];
                let mut idx = tx.open_table(CELLINDEX_USERID_V7).unwrap();
                idx.insert((&cell, 5), 77).unwrap();
                drop(idx);
                let mut last = tx.open_table(USERID_CELL_V7).unwrap();
                last.insert(5, b"record".as_slice()).unwrap();
                drop(last);
                let mut exp = tx.open_table(EXPIRY_USERID_CELL_V7).unwrap();
                exp.insert((77, 5), ()).unwrap();
                drop(exp);
                let mut by_user = tx.open_table(PSEUDONYM_MS_N_BEHAVIOUR_V7).unwrap();
                by_user.insert((3, 1_000, 1), b"sealed".as_slice()).unwrap();
                drop(by_user);
                let mut by_time = tx.open_table(MS_PSEUDONYM_N_BEHAVIOUR_V7).unwrap();
                by_time.insert((1_000, 3, 1), ()).unwrap();
                drop(by_time);
            });
        }
        let s = open(dir.path());
        assert_eq!(
            s.peer_reach().await.unwrap(),
            vec![
                ("a.test".to_string(), (4, 0, 0, String::new())),
                ("b.test".to_string(), (1, 2, 3, "connect".to_string())),
            ],
            "in key order, as typed keys were"
        );
        assert_eq!(s.behaviour_rows().await.unwrap(), (1, 1));
        let (idx, last, exp, left) = s
            .read(|tx| {
                use redb::TableHandle;
                let left: Vec<String> = tx
                    .list_tables()?
                    .map(|t| t.name().to_string())
                    .filter(|n| n.ends_with("_v7"))
                    .collect();
                Ok((
                    CELLINDEX_USERID.get(tx, &([9u8; 32], 5))?,
                    USERID_CELL.get(tx, &5)?,
                    EXPIRY_USERID_CELL.page(tx, None, 10)?,
                    left,
                ))
            })
            .await
            .unwrap();
        assert_eq!(idx, Some(77));
        assert_eq!(last, Some(b"record".to_vec()));
        assert_eq!(exp, vec![((77, 5), ())]);
        assert!(left.is_empty(), "no parked table is left: {left:?}");
        drop(s);
        let again = open(dir.path());
        assert_eq!(again.behaviour_rows().await.unwrap(), (1, 1), "opens again");
    }

    #[tokio::test]
    async fn schema_8_gets_queue_depths_and_index_keys_from_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(open(dir.path()));
        {
            // What schema 8 wrote: queue rows and no count table.
            as_schema(&path, 8, |tx| {
                tx.delete_table(kv::redb_def(DEST_OUTBOUNDCOUNT.name()))
                    .unwrap();
                tx.delete_table(kv::redb_def(USERID_PHONEINDEX.name()))
                    .unwrap();
                tx.open_table(PHONEINDEX_USERID)
                    .unwrap()
                    .insert(&[7u8; 32], 70)
                    .unwrap();
                tx.delete_table(kv::redb_def(USERID_REMOTEINDEX.name()))
                    .unwrap();
                tx.open_table(REMOTEINDEX_USERID)
                    .unwrap()
                    .insert(&[8u8; 32], REMOTE_USER_BIT | 80)
                    .unwrap();
                let mut q = tx.open_table(DEST_SEQ_OUTBOUND).unwrap();
                for (dest, n) in [("b.test", 1), ("a.test", 2), ("b.test", 3), ("b.test", 4)] {
                    q.insert((dest, n), b"row".as_slice()).unwrap();
                }
                drop(q);
            });
        }
        let s = open(dir.path());
        assert_eq!(
            s.outbound_counts().await.unwrap(),
            vec![("a.test".to_string(), 1), ("b.test".to_string(), 3)]
        );
        assert_eq!(
            s.read(|tx| USERID_PHONEINDEX.get(tx, &70)).await.unwrap(),
            Some(vec![7; 32]),
            "each account's phone-index key, for its erasure"
        );
        assert_eq!(
            s.read(|tx| USERID_REMOTEINDEX.get(tx, &(REMOTE_USER_BIT | 80)))
                .await
                .unwrap(),
            Some(vec![8; 32]),
            "each remote user's index key"
        );
        drop(s);
        assert_eq!(
            open(dir.path()).outbound_counts().await.unwrap().len(),
            2,
            "opens again, counted once"
        );
    }

    #[tokio::test]
    async fn unique_handle_phone_and_id_are_enforced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(account(1, "alice")).await.unwrap();
        let e = s.insert_account(account(2, "alice")).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::Handle)));
        let mut same_phone = account(3, "bob");
        same_phone.phone_index = [1; 32];
        let e = s.insert_account(same_phone).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::Phone)));
        assert_eq!(
            s.user_by_handle("bob".into()).await.unwrap(),
            None,
            "nothing half-written"
        );
        let mut same_id = account(1, "carol");
        same_id.phone_index = [42; 32];
        let e = s.insert_account(same_id).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::UserId)));
        assert_eq!(s.account(1).await.unwrap().unwrap().handle, "alice");
    }

    #[tokio::test]
    async fn consent_history_records_only_changes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let ev = |granted, at| ConsentEvent {
            purpose: "photos".into(),
            granted,
            at: Millis(at),
            policy_version: "v1".into(),
            device_id: "d".into(),
        };
        assert_eq!(
            s.purpose_status(7, "photos", Millis(1)).await.unwrap(),
            PurposeStatus::NotGranted
        );
        assert!(
            !s.record_consent(7, ev(false, 1), None).await.unwrap(),
            "revoking the never-granted"
        );
        assert!(s.record_consent(7, ev(true, 2), None).await.unwrap());
        assert!(!s.record_consent(7, ev(true, 3), None).await.unwrap());
        assert!(s.record_consent(7, ev(false, 4), None).await.unwrap());
        let (latest, history) = s.consents_of(7).await.unwrap();
        assert_eq!(latest, vec![ev(false, 4)]);
        assert_eq!(history, vec![ev(true, 2), ev(false, 4)]);
        assert!(
            s.consents_of(8).await.unwrap().1.is_empty(),
            "other users unaffected"
        );
    }

    /// A consent history longer than a page reads whole, in order, and the erasure removes it
    /// at most a budget's rows per step, only the user's.
    #[tokio::test]
    async fn a_long_consent_history_reads_whole_and_goes_a_budget_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let ev = |at| ConsentEvent {
            purpose: "photos".into(),
            granted: at % 2 == 0,
            at: Millis(at),
            policy_version: "v1".into(),
            device_id: "d".into(),
        };
        let n = 300u64;
        s.write(move |tx| {
            for at in 0..n {
                USERID_SEQ_CONSENTEVENT.insert(tx, &(7, at), &ev(at).encode())?;
            }
            USERID_SEQ_CONSENTEVENT.insert(tx, &(8, 0), &ev(0).encode())?;
            Ok(())
        })
        .await
        .unwrap();
        let history = s.consents_of(7).await.unwrap().1;
        assert_eq!(history, (0..n).map(ev).collect::<Vec<_>>());
        let mut steps = 0;
        loop {
            steps += 1;
            let (done, left) = s
                .write(|tx| {
                    let mut budget = 128;
                    let done = accounts::erase_consent_history(tx, 7, &mut budget)?;
                    Ok((done, budget))
                })
                .await
                .unwrap();
            if done {
                assert!(left > 0, "the last step had budget to spare");
                break;
            }
            assert_eq!(left, 0, "a step that is not done spent its budget");
        }
        assert_eq!(steps, 3);
        assert!(s.consents_of(7).await.unwrap().1.is_empty());
        assert_eq!(s.consents_of(8).await.unwrap().1.len(), 1, "not another's");
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        // The node loads the same handle index key at every start.
        let key = primitives::crypto::SecretKey::generate().unwrap();
        {
            let s = open(dir.path());
            s.handles().load(key.clone(), Vec::new());
            s.insert_account(account(5, "eve")).await.unwrap();
        }
        let (s, opened) = Store::open(&dir.path().join("node.redb"), |_| Ok(None)).unwrap();
        s.handles().load(key, Vec::new());
        assert_eq!(opened, Opened::Existing);
        assert_eq!(s.user_by_handle("eve".into()).await.unwrap(), Some(5));
        drop(s);
        {
            let db = Database::create(dir.path().join("node.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert(
                    "schema_version",
                    (SCHEMA_VERSION + 1).to_be_bytes().as_slice(),
                )
                .unwrap();
            tx.commit().unwrap();
        }
        let e = Store::open(&dir.path().join("node.redb"), |_| Ok(None)).unwrap_err();
        assert!(matches!(e, StoreError::TooNew { .. }), "{e}");
    }
}
