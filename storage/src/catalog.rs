//! The table catalog: every redb table the node has, its key encoding, and what its values hold.
//! Names follow `key_value`. Every table with personal data has a row in `docs/DATA.md`.

use redb::TableDefinition;

use super::kv;

/// `meta`: name → bytes.
/// Keys: `schema_version` (u32 big-endian), `master_key_check` (a value sealed with the master
/// key, to detect a wrong key file at start), the counters `next_*` (u64 big-endian, see
/// `take_numbers`), `purge_cursor` (where the background purge of delivered messages goes on:
/// conversation and event position, u64 big-endian each; `messaging/purge.rs`).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// `userid_account`: user id (random u64) → encoded [`super::AccountRecord`] (handle index,
/// handle and phone sealed, argon2id PHC string, wrapped data key, accepted policy). No
/// identifier in clear.
pub const USERID_ACCOUNT: TableDefinition<u64, &[u8]> = TableDefinition::new("userid_account");

/// `handleindex_userid`: HMAC-SHA256(handle key, handle) → user id. The handle itself is only
/// in `userid_account`, sealed (schema 5; schema 4's `handle_userid` was keyed by the handle).
pub const HANDLEINDEX_USERID: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("handleindex_userid");

/// Schema 4's `handle_userid` (handle in clear → user id), read only by the migration.
pub const HANDLE_USERID_V4: TableDefinition<&str, u64> = TableDefinition::new("handle_userid");

/// `phoneindex_userid`: HMAC-SHA256(phone index key, E.164 phone) → user id. The phone itself
/// is only in `userid_account`, sealed.
pub const PHONEINDEX_USERID: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("phoneindex_userid");

/// `userid_phoneindex` (behind the key-value seam, schema 9): user id → their row's key in
/// `phoneindex_userid` (32 bytes), so the erasure removes that row by key even when the phone
/// can no longer be opened. Written and removed together with it.
pub const USERID_PHONEINDEX: kv::Table<u64, Vec<u8>> = kv::Table::new("userid_phoneindex");

/// `userid_profile`: user id → profile (nickname, avatar, optional fields and their
/// visibility), sealed under the user's data key.
pub const USERID_PROFILE: TableDefinition<u64, &[u8]> = TableDefinition::new("userid_profile");

/// `tokenhash_session`: SHA-256 of a bearer token → encoded [`super::SessionRecord`]
/// (user, device id, times, sealed device description).
pub const TOKENHASH_SESSION: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("tokenhash_session");

/// `userid_deviceid_tokenhash`: (user id, device id) → token hash; lists a user's sessions.
pub const USERID_DEVICEID_TOKENHASH: TableDefinition<(u64, &str), &[u8; 32]> =
    TableDefinition::new("userid_deviceid_tokenhash");

/// `userid_purpose_consent`: (user id, purpose name) → encoded [`super::ConsentEvent`]: the
/// latest decision for that purpose. Absent means never granted.
pub const USERID_PURPOSE_CONSENT: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("userid_purpose_consent");

/// `userid_seq_consentevent`: (user id, sequence from 0) → encoded [`super::ConsentEvent`]:
/// every grant and revocation, kept for the user's history. Behind the key-value seam since
/// schema 13, like the audit log and the policy and privacy-centre tables below.
pub const USERID_SEQ_CONSENTEVENT: kv::Table<(u64, u64), Vec<u8>> =
    kv::Table::new("userid_seq_consentevent");

// ---- Conversations and messages ----------------------------------------------------------
// `conv` below is a conversation's internal number (random u64); its public id is a string
// `<random>:<domain>`. `pos` is the node-wide event position (META `next_pos`), the cursor
// clients sync from.

/// `convno_conversation`: conv → encoded [`super::ConversationRecord`].
pub const CONVNO_CONVERSATION: TableDefinition<u64, &[u8]> =
    TableDefinition::new("convno_conversation");

/// `convid_convno`: public conversation id → conv.
pub const CONVID_CONVNO: TableDefinition<&str, u64> = TableDefinition::new("convid_convno");

/// `convno_userid_member`: (conv, user id) → encoded [`super::MemberRecord`] (role, joined).
pub const CONVNO_USERID_MEMBER: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("convno_userid_member");

/// `userid_convno`: (user id, conv) → pos at which the user joined. The user's conversations.
pub const USERID_CONVNO: TableDefinition<(u64, u64), u64> = TableDefinition::new("userid_convno");

/// `userpair_convno`: (lower user id, higher user id) → conv of their direct conversation.
pub const USERPAIR_CONVNO: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userpair_convno");

/// `convno_seq_message`: (conv, seq from 1) → encoded [`super::MessageRecord`]; the body is
/// sealed under the author's data key.
pub const CONVNO_SEQ_MESSAGE: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("convno_seq_message");

/// `convno_pos_event`: (conv, pos) → encoded [`super::EventRecord`]: what happened in the
/// conversation, in order.
pub const CONVNO_POS_EVENT: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("convno_pos_event");

/// `userid_pos_event`: (user id, pos) → encoded [`super::EventRecord`]: events for one user
/// only (removal from a conversation, system notices).
pub const USERID_POS_EVENT: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("userid_pos_event");

/// `userid_deviceid_cursor`: (user id, device id) → (pos at login, pos acknowledged).
pub const USERID_DEVICEID_CURSOR: TableDefinition<(u64, &str), (u64, u64)> =
    TableDefinition::new("userid_deviceid_cursor");

/// `userid_floor`: user id → pos at or below which the user's history is gone from their view.
/// Behind the key-value seam since schema 16, like the two tables below.
pub const USERID_FLOOR: kv::Table<u64, u64> = kv::Table::new("userid_floor");

/// `userid_convno_cleared`: (user id, conv) → pos up to which the user deleted the
/// conversation's messages from their own view.
pub const USERID_CONVNO_CLEARED: kv::Table<(u64, u64), u64> =
    kv::Table::new("userid_convno_cleared");

/// `userid_convno_seq_hidden`: (user id, conv, seq) → (): single messages the user deleted
/// from their own view.
pub const USERID_CONVNO_SEQ_HIDDEN: kv::Table<(u64, u64, u64), ()> =
    kv::Table::new("userid_convno_seq_hidden");

/// `userid_deviceid_txnid_sent`: (user id, device id, client txn id) → (conv, seq, ts ms,
/// pos): makes sending idempotent. A send's row reaches it in bulk from `sentno_sent`
/// (`storage/sentlog.rs`); a send's row is in exactly one of the two.
pub const USERID_DEVICEID_TXNID_SENT: TableDefinition<SentKey<'static>, SentValue> =
    TableDefinition::new("userid_deviceid_txnid_sent");

/// `sentno_sent`: log number (a counter of the writer's, increasing) → (user id, device id,
/// client txn id, conv, seq, ts ms, pos): sends not yet moved into
/// `userid_deviceid_txnid_sent`, appended in the send's own commit so that the rows of one
/// group commit share a leaf. Bounded: moved in bulk once [`super::sentlog::FLUSH_AT`] gather,
/// and before sign-out, erasure or retention touch sent rows.
pub const SENTNO_SENT: TableDefinition<u64, SentLogged<'static>> =
    TableDefinition::new("sentno_sent");

/// (user id, device id, txn id).
pub type SentKey<'a> = (u64, &'a str, &'a str);
/// (conv, seq, ts ms, pos).
pub type SentValue = (u64, u64, u64, u64);
/// A `sentno_sent` row: (user id, device id, txn id, conv, seq, ts ms, pos).
pub type SentLogged<'a> = (u64, &'a str, &'a str, u64, u64, u64, u64);

// ---- Media --------------------------------------------------------------------------------

/// `mediaid_media`: media id → encoded [`super::MediaRecord`] (owner, type, size, created).
pub const MEDIAID_MEDIA: TableDefinition<&str, &[u8]> = TableDefinition::new("mediaid_media");

/// `mediaid_chunkno_chunk`: (media id, chunk number) → chunk sealed under the owner's key.
pub const MEDIAID_CHUNKNO_CHUNK: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("mediaid_chunkno_chunk");

/// `userid_mediaid`: (owner user id, media id) → size in bytes; the owner's quota use.
pub const USERID_MEDIAID: TableDefinition<(u64, &str), u64> =
    TableDefinition::new("userid_mediaid");

/// `mediaid_convno`: (media id, conv) → (): conversations the media was sent in, whose
/// members may fetch it.
pub const MEDIAID_CONVNO: TableDefinition<(&str, u64), ()> = TableDefinition::new("mediaid_convno");

// ---- Federation -------------------------------------------------------------------------

/// `keyid_nodekey`: node signing key id (`ed25519:…`) → encoded [`super::NodeKeyRecord`]: the
/// seed sealed with the master key, creation time and end of validity. Expired keys stay, so
/// what they signed can still be checked. Behind the key-value seam since schema 14.
pub const KEYID_NODEKEY: kv::Table<String, Vec<u8>> = kv::Table::new("keyid_nodekey");

// User ids: a local account's id has the top bit clear; a user of another node gets a local
// id with the top bit set ([`REMOTE_USER_BIT`]) when this node first meets them, so member
// tables, events and messages treat both alike and "is this user remote?" costs nothing.

/// Set in the id of every user of another node.
pub const REMOTE_USER_BIT: u64 = 1 << 63;

/// Schema 6's `remoteaddr_userid` (address `handle@domain` in clear → local id): emptied by
/// the start-up conversion (`federate::load_addresses`), never written.
pub const REMOTEADDR_USERID: TableDefinition<&str, u64> = TableDefinition::new("remoteaddr_userid");

/// `remoteindex_userid`: HMAC-SHA256(handle key, address `handle@domain`) → local id of a user
/// of another node (schema 7). The address itself is only in `userid_remoteuser`, sealed under
/// that user's data key; clear addresses live in memory ([`super::HandleBook`]). A handle has
/// no `@`, so an address never shares an index with a local handle.
pub const REMOTEINDEX_USERID: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("remoteindex_userid");

/// `userid_remoteindex` (behind the key-value seam, schema 9): local id of a remote user →
/// their row's key in `remoteindex_userid` (32 bytes), so erasing them by id (a restore
/// re-applying their node's request) removes that row by key. Written and removed together
/// with it.
pub const USERID_REMOTEINDEX: kv::Table<u64, Vec<u8>> = kv::Table::new("userid_remoteindex");

/// `userid_remoteuser`: local id of a remote user → encoded [`super::RemoteUserRecord`]
/// (a data key wrapped by the master key that seals what they wrote here, their address and
/// their nickname and avatar sealed under it). Removing the row shreds everything of theirs
/// this node holds, address included.
pub const USERID_REMOTEUSER: TableDefinition<u64, &[u8]> =
    TableDefinition::new("userid_remoteuser");

/// `dest_seq_outbound`: (peer domain, queue number from META `next_outbound`) → encoded
/// [`super::OutboundRecord`]: one signed envelope waiting for delivery, sealed under the data
/// key of the user whose data it carries.
pub const DEST_SEQ_OUTBOUND: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("dest_seq_outbound");

/// `dest_outboundcount` (behind the key-value seam, schema 9): peer domain → how many rows of
/// `dest_seq_outbound` wait for it (no row: none). Written in the same transactions that queue
/// and remove envelopes, so the queue depths (the outbox's start, `node-admin status`, the
/// metrics) are read without visiting the queue. Partner nodes only: no user.
pub const DEST_OUTBOUNDCOUNT: kv::Table<String, u64> = kv::Table::new("dest_outboundcount");

/// `origin_envid_seen`: (origin domain, envelope id) → time received (ms): every envelope
/// applied, so a repeat is never applied twice.
pub const ORIGIN_ENVID_SEEN: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("origin_envid_seen");

/// `origin_txnid_answer`: (origin domain, transaction id) → (time received in ms, SHA-256 of
/// the body (32 bytes) then the JSON answer given): a repeated transaction gets the same
/// answer; another body, 409. Pruned with `origin_envid_seen` after
/// `retention.federation_seen_days`. Rows carried over from schema 1 have time 0.
pub const ORIGIN_TXNID_ANSWER: TableDefinition<(&str, &str), (u64, &[u8])> =
    TableDefinition::new("origin_txnid_answer");

/// `ms_origin_envid_seen`: (time received in ms, origin domain, envelope id) → (): the same
/// rows as `origin_envid_seen` in time order, so retention finds what is due without reading
/// the rest. Written and removed together with it.
pub const MS_ORIGIN_ENVID_SEEN: TableDefinition<(u64, &str, &str), ()> =
    TableDefinition::new("ms_origin_envid_seen");

/// `ms_origin_txnid_answered`: (time received in ms, origin domain, transaction id) → (): the
/// same rows as `origin_txnid_answer` in time order, for retention.
pub const MS_ORIGIN_TXNID_ANSWERED: TableDefinition<(u64, &str, &str), ()> =
    TableDefinition::new("ms_origin_txnid_answered");

/// Schema 1's `origin_txnid_txn` (the same without the time), read only by the migration.
pub const ORIGIN_TXNID_TXN_V1: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("origin_txnid_txn");

/// `userid_peer_kind_transfer`: (local user id, peer domain, envelope kind) → (first ms, last
/// ms, count): what of a user's data was *queued* for which peer, written before schema 5
/// (which counted at queueing, delivered or not). No longer written; read for the export
/// (as `queued_before_v5`) and erasure.
pub const USERID_PEER_KIND_TRANSFER: TableDefinition<(u64, &str, &str), (u64, u64, u64)> =
    TableDefinition::new("userid_peer_kind_transfer");

/// `userid_peer_kind_outcome_disclosure`: (local user id, peer domain, envelope kind, outcome)
/// → (first ms, last ms, count): what became of envelopes carrying a user's data, counted when
/// it is known. Outcome `delivered` (the peer acknowledged it as applied), `refused` (it reached
/// the peer, which refused it for good), `dropped` (queued, never sent: consent revoked or too
/// old). For the user's export and erasure.
pub const USERID_PEER_KIND_OUTCOME_DISCLOSURE: TableDefinition<DisclosureKey, (u64, u64, u64)> =
    TableDefinition::new("userid_peer_kind_outcome_disclosure");

/// The key of `userid_peer_kind_outcome_disclosure`: (user id, peer, kind, outcome).
pub type DisclosureKey = (u64, &'static str, &'static str, &'static str);

/// `userid_peer_erasure`: (local user id, peer domain) → (requested ms, acknowledged ms or 0):
/// erasure requests sent to peers and their acknowledgements. Behind the key-value seam since
/// schema 16, like `userid_peer_erasureack`.
pub const USERID_PEER_ERASURE: kv::Table<(u64, String), (u64, u64)> =
    kv::Table::new("userid_peer_erasure");

/// `userid_peer_erasureack`: (local user id, peer domain) → SHA-256 of the canonical JSON of
/// the acknowledgement that peer must send (`user`, `reference`, `erasure` envelope id): every
/// field of an acknowledgement is checked against it. Written with the request; absent for
/// requests made before schema 5.
pub const USERID_PEER_ERASUREACK: kv::Table<(u64, String), [u8; 32]> =
    kv::Table::new("userid_peer_erasureack");

// ---- Erasure and legal hold ----------------------------------------------------------------
// `userid_erasure` and `handlehash_erased` are behind the key-value seam since schema 13.

/// `userid_erasure`: user id → encoded [`super::ErasureRecord`]: a scheduled, running or
/// finished account erasure (when due, who asked and why, how far it got). Kept after the
/// account is gone as the record that it was erased (it holds no personal data).
pub const USERID_ERASURE: kv::Table<u64, Vec<u8>> = kv::Table::new("userid_erasure");

/// `handlehash_erased`: HMAC(handle key, handle) → (time erased, the random user id): handles
/// of erased accounts, kept only as a keyed hash so they cannot be registered again to
/// impersonate (and so an admin can still ask how the erasure went).
pub const HANDLEHASH_ERASED: kv::Table<[u8; 32], (u64, u64)> = kv::Table::new("handlehash_erased");

/// `userid_legalhold`: user id → (set ms, basis text): while present, neither retention nor
/// erasure removes the user's data. Since schema 7 the text is empty and the basis is in
/// `userid_note_adminnote`, sealed; holds set before keep their basis here in clear. Behind
/// the key-value seam since schema 14.
pub const USERID_LEGALHOLD: kv::Table<u64, (u64, String)> = kv::Table::new("userid_legalhold");

/// `userid_note_adminnote` (harden): (user id, note name) → an admin's free text about the
/// user, sealed under the user's data key: `erasure_reason` (`users erase --reason`), removed
/// in the erasure's first step (which destroys the key anyway), and `hold_basis` (`hold set
/// --basis`), removed when the hold is cleared. The records they belong to hold no free text.
/// Behind the key-value seam since schema 13.
pub const USERID_NOTE_ADMINNOTE: kv::Table<(u64, String), Vec<u8>> =
    kv::Table::new("userid_note_adminnote");

// ---- Requests and complaints ---------------------------------------------------------------
// Behind the key-value seam since schema 10 (`requests.rs`).

/// `requestid_request`: request number (META `next_request`, from 1) → encoded
/// [`super::RequestRecord`]: a user's request or complaint to the admin (kind, text and answer
/// sealed under the user's data key, times, status).
pub const REQUESTID_REQUEST: kv::Table<u64, Vec<u8>> = kv::Table::new("requestid_request");

/// `userid_requestid`: (user id, request number) → (): a user's requests.
pub const USERID_REQUESTID: kv::Table<(u64, u64), ()> = kv::Table::new("userid_requestid");

// ---- Audit --------------------------------------------------------------------------------

/// `userid_pseudonymkey`: local user id → the user's own pseudonym key (32 random bytes): the
/// audit log names the user by HMAC(this key, user id). Made with the user's first audit entry
/// and removed in the first step of their erasure, so entries written before it can no longer
/// be linked to them, not even by someone holding the master key. Behind the key-value seam
/// since schema 14.
pub const USERID_PSEUDONYMKEY: kv::Table<u64, [u8; 32]> = kv::Table::new("userid_pseudonymkey");

/// `seq_auditentry`: entry number from 0 → encoded [`super::AuditRecord`]: time, actor, action,
/// pseudonymous target, detail, and the hash chaining it to the entry before. META
/// `audit_head` holds (count, last hash), written in the same transaction. Behind the key-value
/// seam since schema 13.
pub const SEQ_AUDITENTRY: kv::Table<u64, Vec<u8>> = kv::Table::new("seq_auditentry");

// ---- Policy versions, guardians, real name, public page --------------------------------------
// Behind the key-value seam since schema 13 (`privacy.rs`), with the audit log (`audit.rs`).

/// `policyseq_version`: publication number (from 1, META `next_policy`) → encoded
/// [`super::PolicyVersionRecord`] (version name, published ms, effective date, whether it
/// narrows users' rights, zh and en text). Number 0 is the configured policy, not stored here.
pub const POLICYSEQ_VERSION: kv::Table<u64, Vec<u8>> = kv::Table::new("policyseq_version");

/// `policyseq_narrowing`: publication number → start of its effective date (ms): the versions
/// that narrow users' rights, kept apart so the check at every optional use reads no text.
pub const POLICYSEQ_NARROWING: kv::Table<u64, u64> = kv::Table::new("policyseq_narrowing");

/// `userid_policyseq_accepted`: (user id, publication number) → time accepted (ms): every
/// version a user accepted (0 = the configured one), registration included. The highest
/// number is what the user has agreed to.
pub const USERID_POLICYSEQ_ACCEPTED: kv::Table<(u64, u64), u64> =
    kv::Table::new("userid_policyseq_accepted");

/// `noticeno_job` (behind the key-value seam, schema 9): job number (META `next_notice_job`)
/// → a notice being left for every live account a batch at a time (the encoded notice, the
/// publication time — accounts created after it are left out —, and the last user id done):
/// a policy version's publication or an admin's notice to all. Removed when the last batch
/// is done; one left over (a stop) is finished at the next start. No user's data.
pub const NOTICENO_JOB: kv::Table<u64, Vec<u8>> = kv::Table::new("noticeno_job");

/// `userid_guardian`: user id → encoded [`super::GuardianRecord`]: a minor's guardian consent
/// (time, the purposes it covers, guardian name and contact sealed under the user's key).
pub const USERID_GUARDIAN: kv::Table<u64, Vec<u8>> = kv::Table::new("userid_guardian");

/// `userid_realname`: user id → (verified ms, name and resident ID number sealed under the
/// user's key). Present only while `real_name` is granted.
pub const USERID_REALNAME: kv::Table<u64, (u64, kv::Var)> = kv::Table::new("userid_realname");

/// `userid_publicpage`: user id → time the public page was enabled (ms). Present only while
/// `public_page` is granted and the user confirmed their phone number and password.
pub const USERID_PUBLICPAGE: kv::Table<u64, u64> = kv::Table::new("userid_publicpage");

/// `userid_export`: user id → time of the user's last export request (ms), for the rate limit.
pub const USERID_EXPORT: kv::Table<u64, u64> = kv::Table::new("userid_export");

// ---- Friends (issue 22) ------------------------------------------------------------------------
// Behind the key-value seam since schema 10 (`friends.rs`), like the read positions below.
// `user` ids below are local ids (remote users' with the top bit set). Friendships and blocks
// are stored from both ends so each side's list, and every row naming an erased user, is one
// range read.

/// `friendreqid_request`: request id (random u64) → encoded [`super::FriendRequestRecord`]:
/// sender, recipient, note sealed under the sender's data key, times, state.
pub const FRIENDREQID_REQUEST: kv::Table<u64, Vec<u8>> = kv::Table::new("friendreqid_request");

/// `userid_friendreqid`: (user id, request id) → (): the requests a user sent or received.
pub const USERID_FRIENDREQID: kv::Table<(u64, u64), ()> = kv::Table::new("userid_friendreqid");

/// `userpair_friendreqid`: (sender, recipient) → the latest request between them in that
/// direction (pending, or answered: for "one pending per pair" and the decline cool-down).
pub const USERPAIR_FRIENDREQID: kv::Table<(u64, u64), u64> = kv::Table::new("userpair_friendreqid");

/// `ms_friendreqid_closed`: (time answered or cancelled, request id) → (): closed requests in
/// time order, for retention.
pub const MS_FRIENDREQID_CLOSED: kv::Table<(u64, u64), ()> =
    kv::Table::new("ms_friendreqid_closed");

/// `userid_userid_friend`: (user, friend) → (since ms, friendship id): written in both
/// directions in one transaction. The friendship id is the accepted request's id.
pub const USERID_USERID_FRIEND: kv::Table<(u64, u64), (u64, u64)> =
    kv::Table::new("userid_userid_friend");

/// `userid_userid_block`: (blocker, blocked) → (since ms, block id).
pub const USERID_USERID_BLOCK: kv::Table<(u64, u64), (u64, u64)> =
    kv::Table::new("userid_userid_block");

/// `userid_userid_blockedby`: (blocked, blocker) → (): the same rows from the blocked end, so
/// erasing either user finds them. Never shown to the blocked user.
pub const USERID_USERID_BLOCKEDBY: kv::Table<(u64, u64), ()> =
    kv::Table::new("userid_userid_blockedby");

/// `userid_directmessages`: user id → 1 when only friends may open a direct conversation with
/// them (absent: anyone).
pub const USERID_DIRECTMESSAGES: kv::Table<u64, u8> = kv::Table::new("userid_directmessages");

/// `userid_friendquota`: user id → (UTC day number, friend requests sent that day).
pub const USERID_FRIENDQUOTA: kv::Table<u64, (u64, u64)> = kv::Table::new("userid_friendquota");
// --- web client (issue 21): read positions ---

/// `userid_convno_read`: (user id, conv) → seq of the newest message the user has read in the
/// conversation (their "mark read"); unread counts are the visible messages of others above it.
pub const USERID_CONVNO_READ: kv::Table<(u64, u64), u64> = kv::Table::new("userid_convno_read");
// ---- Communities (小组; `storage/community/`) --------------------------------------------------------------------------------
// Behind the key-value seam since schema 12 (`storage/community/`).

/// `communityno_community`: community number → encoded [`super::community::CommunityRecord`] (name, description,
/// avatar media id, public or private, owner, created).
pub const COMMUNITYNO_COMMUNITY: kv::Table<u64, Vec<u8>> = kv::Table::new("communityno_community");

/// `communityno_userid_member`: (community, user) → (role code, joined ms).
pub const COMMUNITYNO_USERID_MEMBER: kv::Table<(u64, u64), (u64, u64)> =
    kv::Table::new("communityno_userid_member");

/// `userid_communityno`: (user, community) → role code: a user's communities.
pub const USERID_COMMUNITYNO: kv::Table<(u64, u64), u64> = kv::Table::new("userid_communityno");

/// `communityno_userid_pending`: (community, user) → (kind: 0 asked to join, 1 invited; ms;
/// the moderator who invited, or 0).
pub const COMMUNITYNO_USERID_PENDING: kv::Table<(u64, u64), (u64, u64, u64)> =
    kv::Table::new("communityno_userid_pending");

/// `communityno_userid_ban`: (community, user) → (ms, moderator who banned).
pub const COMMUNITYNO_USERID_BAN: kv::Table<(u64, u64), (u64, u64)> =
    kv::Table::new("communityno_userid_ban");

/// `communityno_seq_modlog`: (community, seq from 1) → encoded [`super::community::ModLogRecord`]: the
/// community's moderation log (who did what to whom, by ids; no text).
pub const COMMUNITYNO_SEQ_MODLOG: kv::Table<(u64, u64), Vec<u8>> =
    kv::Table::new("communityno_seq_modlog");

/// `postno_post`: post number → encoded [`super::community::PostRecord`] (body and place sealed under the
/// author's key).
pub const POSTNO_POST: kv::Table<u64, Vec<u8>> = kv::Table::new("postno_post");

/// `communityno_postno`: (community, post) → (): a community's posts.
pub const COMMUNITYNO_POSTNO: kv::Table<(u64, u64), ()> = kv::Table::new("communityno_postno");

/// `userid_postno`: (author, post) → (): a user's posts (erasure, export).
pub const USERID_POSTNO: kv::Table<(u64, u64), ()> = kv::Table::new("userid_postno");

/// `postno_commentno_comment`: (post, comment) → encoded [`super::community::CommentRecord`] (text sealed under
/// the author's key).
pub const POSTNO_COMMENTNO_COMMENT: kv::Table<(u64, u64), Vec<u8>> =
    kv::Table::new("postno_commentno_comment");

/// `userid_commentno`: (author, comment) → post: a user's comments.
pub const USERID_COMMENTNO: kv::Table<(u64, u64), u64> = kv::Table::new("userid_commentno");

/// `userid_postno_favourite`: (user, post) → ms: a user's private list of favourites.
pub const USERID_POSTNO_FAVOURITE: kv::Table<(u64, u64), u64> =
    kv::Table::new("userid_postno_favourite");

/// `postno_userid_favourite`: (post, user) → (): who favoured a post, so a removed post leaves
/// no favourite behind.
pub const POSTNO_USERID_FAVOURITE: kv::Table<(u64, u64), ()> =
    kv::Table::new("postno_userid_favourite");

/// `mediaid_communityno_postno`: (media id, community, post or 0 for the avatar) → (): where
/// a media object is shown, for who may fetch it.
pub const MEDIAID_COMMUNITYNO_POSTNO: kv::Table<(String, u64, u64), ()> =
    kv::Table::new("mediaid_communityno_postno");
/// `fanoutno_job`: fan-out job → (community, post, comment or 0, next member id): a new post's
/// or comment's events still to be written, a bounded batch of members per transaction.
pub const FANOUTNO_JOB: kv::Table<u64, (u64, u64, u64, u64)> = kv::Table::new("fanoutno_job");
/// `fanoutno_from_tell`: (fan-out job, first member of its batch) → encoded
/// [`super::community::Tell`] (community, post, comment or 0, author, and the members of other
/// nodes the batch found): the nodes still to be told of a new post or comment (`community-event`). Written by the
/// fan-out step that found them and removed by the write that queues the envelopes, so a stop
/// in between tells them at the next start. Numbers only. Since schema 15.
pub const FANOUTNO_FROM_TELL: kv::Table<(u64, u64), Vec<u8>> = kv::Table::new("fanoutno_from_tell");
// ---- Search (issue 23) -----------------------------------------------------------------
// The search index itself is never stored: it lives in memory and is rebuilt at start.

/// `pseudonym_ms_searchlog`: (search pseudonym, time ms) → the query text sealed under the
/// user's data key. The pseudonym is the first 8 bytes of HMAC(the user's pseudonym key from
/// `userid_pseudonymkey`, "search-log" ‖ user id): no row names the user, and once erasure
/// destroys the key nothing links them. Written only while `personalisation` is granted;
/// removed in the transaction that revokes it, by erasure, and after
/// `retention.search_log_days`.
/// Behind the key-value seam since schema 14, like the time index below.
pub const PSEUDONYM_MS_SEARCHLOG: kv::Table<(u64, u64), Vec<u8>> =
    kv::Table::new("pseudonym_ms_searchlog");

/// `ms_pseudonym_searchlog`: (time ms, search pseudonym) → (): the same rows in time order,
/// for retention. Written and removed together with `pseudonym_ms_searchlog`.
pub const MS_PSEUDONYM_SEARCHLOG: kv::Table<(u64, u64), ()> =
    kv::Table::new("ms_pseudonym_searchlog");

// ---- Behaviour log (issue 23, policy 1.4.1) ----------------------------------------------

/// `pseudonym_ms_n_behaviour`: (behaviour pseudonym, time ms, number within that ms) → one
/// behaviour event (kind, community, post) sealed under the user's data key. The pseudonym is
/// the first 8 bytes of HMAC(the user's pseudonym key from `userid_pseudonymkey`,
/// "behaviour-log" ‖ user id): no row names the user, and once erasure destroys the key
/// nothing links them. Written only while `personalisation` is granted; removed in the
/// transaction that revokes it, by erasure, and after `retention.behaviour_log_days`.
pub const PSEUDONYM_MS_N_BEHAVIOUR: kv::Table<(u64, u64, u64), Vec<u8>> =
    kv::Table::new("pseudonym_ms_n_behaviour");

/// `ms_pseudonym_n_behaviour`: (time ms, behaviour pseudonym, number) → (): the same rows in
/// time order, for retention. Written and removed together with `pseudonym_ms_n_behaviour`.
pub const MS_PSEUDONYM_N_BEHAVIOUR: kv::Table<(u64, u64, u64), ()> =
    kv::Table::new("ms_pseudonym_n_behaviour");

/// `pos_kind_id_searchchange`: (event position, kind: 1 person, 2 community, 3 post, the
/// user, community or post number) → (): what a write changed that search shows, recorded in
/// the same transaction at a new event position, so the in-memory index follows commits from
/// the position it reached and a search waits for the position the store had. Numbers only, no
/// text; rows at or below the index's position are removed by the indexer (a restart rebuilds
/// from the tables themselves).
pub const POS_KIND_ID_SEARCHCHANGE: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("pos_kind_id_searchchange");
// ---- Media across nodes (issue 25) ---------------------------------------------------------

/// `mediaid_fetch`: local media id → encoded [`super::FetchJob`]: media a message from another
/// node refers to, still being fetched from its origin (the parts fetched so far are in
/// `mediaid_chunkno_chunk`, sealed under the author's key here). Behind the key-value seam
/// since schema 14.
pub const MEDIAID_FETCH: kv::Table<String, Vec<u8>> = kv::Table::new("mediaid_fetch");

/// `author_mediaid_fetch`: (remote author, local media id) → (): the fetches of one author's
/// media, so their erasure finds them by key instead of reading every fetch. Written and
/// removed together with `mediaid_fetch`. Since schema 15 (its migration indexes the fetches
/// a file of schema 14 holds).
pub const AUTHOR_MEDIAID_FETCH: kv::Table<(u64, String), ()> =
    kv::Table::new("author_mediaid_fetch");

/// `mediaid_peer_offered`: (local media id, peer domain) → ms: a local user's file that a
/// peer may fetch because the user posted it in a community that peer hosts (the post goes
/// there as a reference; the host fetches the bytes). Written before the post call is sent;
/// removed with the media (retention, erasure). Since schema 15.
pub const MEDIAID_PEER_OFFERED: kv::Table<(String, String), u64> =
    kv::Table::new("mediaid_peer_offered");

// Avatars (`avatars.rs`) and the discovery tables below (`discovery.rs`) are behind the
// key-value seam since schema 11.

/// `userid_avatar`: user id (local, or remote with the top bit) → media id of the image their
/// profile shows now (for a remote user, the local copy's id, fetched or being fetched). A
/// profile whose avatar is an old free-form reference has no row.
pub const USERID_AVATAR: kv::Table<u64, String> = kv::Table::new("userid_avatar");

/// `mediaid_avatar`: media id → the user whose avatar it is now: who may see it (anyone with
/// an account here, as for the profile) and which peers may fetch it. Written and removed
/// together with `userid_avatar`.
pub const MEDIAID_AVATAR: kv::Table<String, u64> = kv::Table::new("mediaid_avatar");
// ---- Discovery: suggestions, nearby people, invites (issue 22) ------------------------------

/// `contactindex_userid`: HMAC-SHA256(contacts key, the client's contact hash of the user's
/// own phone) → user id. Present only while the user chooses to be findable by phone number;
/// an uploaded contact is looked up here and never written anywhere.
pub const CONTACTINDEX_USERID: kv::Table<[u8; 32], u64> = kv::Table::new("contactindex_userid");

/// `userid_discovery`: user id → encoded discovery settings (findable by phone number, and the
/// contact index written for it, so turning it off or erasure removes exactly that row).
pub const USERID_DISCOVERY: kv::Table<u64, Vec<u8>> = kv::Table::new("userid_discovery");

/// `userid_matched_expiry`: (user, matched user) → expiry (ms): a contact match from the
/// user's upload. Only while `contacts_matching` is granted.
pub const USERID_MATCHED_EXPIRY: kv::Table<(u64, u64), u64> =
    kv::Table::new("userid_matched_expiry");

/// `matched_userid`: (matched user, user) → (): the reverse of `userid_matched_expiry`, so the
/// matched user's erasure finds every match naming them.
pub const MATCHED_USERID: kv::Table<(u64, u64), ()> = kv::Table::new("matched_userid");

/// `userid_day_contacts`: (user, day number since 1970) → distinct numbers checked that day,
/// for the daily quota.
pub const USERID_DAY_CONTACTS: kv::Table<(u64, u64), u64> = kv::Table::new("userid_day_contacts");

/// `eduindex_userid`: (HMAC-SHA256(education key, normalised education), user) → (): users
/// whose education is set with public visibility. Nothing else makes it a source.
pub const EDUINDEX_USERID: kv::Table<([u8; 32], u64), ()> = kv::Table::new("eduindex_userid");

/// `userid_eduindex`: user → their row's index in `eduindex_userid`.
pub const USERID_EDUINDEX: kv::Table<u64, [u8; 32]> = kv::Table::new("userid_eduindex");

/// `userid_dismissed`: (user, dismissed user) → time (ms): suggestions the user dismissed.
pub const USERID_DISMISSED: kv::Table<(u64, u64), u64> = kv::Table::new("userid_dismissed");

/// `dismissed_userid`: (dismissed user, user) → (): the reverse, for the dismissed user's
/// erasure.
pub const DISMISSED_USERID: kv::Table<(u64, u64), ()> = kv::Table::new("dismissed_userid");

/// `cellindex_userid`: (HMAC-SHA256(cell key, H3 cell), user) → expiry (ms): who is visible
/// in a cell. Only while `precise_location` is granted; the cell is never stored in clear.
pub const CELLINDEX_USERID: kv::Table<([u8; 32], u64), u64> = kv::Table::new("cellindex_userid");

/// `userid_cell`: user → encoded location record (cell sealed under the user's key, its index,
/// time set, expiry): the user's last cell.
pub const USERID_CELL: kv::Table<u64, Vec<u8>> = kv::Table::new("userid_cell");

// The invites' five tables are behind the key-value seam since schema 10 (`invites.rs`).

/// `inviteno_invite`: invite number (META `next_invite`) → encoded invite record (owner,
/// friend or group, conversation id, token sealed under the owner's key, expiry, uses).
pub const INVITENO_INVITE: kv::Table<u64, Vec<u8>> = kv::Table::new("inviteno_invite");

/// `invitehash_inviteno`: SHA-256 of the invite's token → invite number.
pub const INVITEHASH_INVITENO: kv::Table<[u8; 32], u64> = kv::Table::new("invitehash_inviteno");

/// `userid_inviteno`: (owner, invite number) → (): a user's invites.
pub const USERID_INVITENO: kv::Table<(u64, u64), ()> = kv::Table::new("userid_inviteno");

/// `userid_joinno_join`: (group invite's owner, join request number, META `next_join`) →
/// encoded join request (requester, invite number, conversation id, time).
pub const USERID_JOINNO_JOIN: kv::Table<(u64, u64), Vec<u8>> = kv::Table::new("userid_joinno_join");

/// `requester_userid_joinno`: (requester, owner, join request number) → (): the reverse, for
/// the requester's erasure and for refusing a second pending request.
pub const REQUESTER_USERID_JOINNO: kv::Table<(u64, u64, u64), ()> =
    kv::Table::new("requester_userid_joinno");

/// `expiry_userid_cell`: (expiry ms, user) → (): cells in the order they expire, so expired
/// ones are deleted in bounded batches.
pub const EXPIRY_USERID_CELL: kv::Table<(u64, u64), ()> = kv::Table::new("expiry_userid_cell");

// ---- Operations (issue 24) -----------------------------------------------------------------

/// `remoteid_erased`: the local id of a remote user whose node asked this one to erase them →
/// when it was done (ms). Only the random id this node gave them — no address, no key, nothing
/// that names the person — so a restore of an older backup (which still holds their record
/// under that id) erases them again. Carried by erasure ledgers; kept for good (16 bytes).
pub const REMOTEID_ERASED: TableDefinition<u64, u64> = TableDefinition::new("remoteid_erased");

/// `peer_reach`: peer domain → (last successful request ms, last failed request ms,
/// consecutive failures, kind of the last failure such as `connect` or `status_503`; 0 and ""
/// for never). Partner nodes' state only: no user, no address, no error text.
pub const PEER_REACH: kv::Table<String, (u64, u64, u64, String)> = kv::Table::new("peer_reach");

// ---- Communities across nodes: calls remembered by the host (issue 23) ---------------------
// Behind the key-value seam since schema 10 (`community_calls.rs`).

/// `origin_envid_communitycall`: (origin domain, envelope id) → (expiry ms, kind of call, outcome
/// code, first number, second number): a remote user's write call to a community hosted here
/// (`storage/community_calls.rs`), claimed before it is applied and settled with what it
/// became (the post's or comment's number, a join's result, or done), so a repeated envelope is
/// answered again, never applied again. Ids and numbers only: no user, no address, no text.
/// Kept until the envelope's `ts` plus `federation::MAX_ENVELOPE_AGE_MS` (the expiry).
pub const ORIGIN_ENVID_COMMUNITYCALL: kv::Table<(String, String), CallRow> =
    kv::Table::new("origin_envid_communitycall");

/// An `origin_envid_communitycall` value: (expiry ms, kind code, outcome code, first number,
/// second number).
pub type CallRow = (u64, u8, u8, u64, u64);

/// `origin_envid_calldigest`: (origin domain, envelope id) → SHA-256 of the call's content (its
/// canonical JSON): a repeat of an envelope id must be the same call, else it is refused as a
/// reuse. Written and removed together with `origin_envid_communitycall`; calls recorded before
/// schema 15 have none.
pub const ORIGIN_ENVID_CALLDIGEST: kv::Table<(String, String), Vec<u8>> =
    kv::Table::new("origin_envid_calldigest");

/// `expiry_origin_envid_communitycall`: (expiry ms, origin domain, envelope id) → (): the same
/// rows in the order they expire (the key encoding orders the tuple field by field, the
/// number numerically), so pruning reads only what is due. Written and removed together with
/// `origin_envid_communitycall`.
pub const EXPIRY_ORIGIN_ENVID_COMMUNITYCALL: kv::Table<(u64, String, String), ()> =
    kv::Table::new("expiry_origin_envid_communitycall");

// ---- Communities of other nodes, as their members' node keeps them (issue 23) -------------

/// `userid_remotecommunity`: (user, community address `<16 hex>@<host>`) → (when they joined
/// or asked to join, ms; the community's name as its host last told it): the communities of
/// other nodes a user of this node belongs to, so "my communities" can list them. At most
/// `remote_communities::MAX_PER_USER` per user. Removed when they leave, and by their erasure.
pub const USERID_REMOTECOMMUNITY: kv::Table<(u64, String), (u64, String)> =
    kv::Table::new("userid_remotecommunity");

// ---- Schema 7's typed tables now behind the key-value seam -------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 7 → 8); renamed to `<name>_v7` while it copies.

pub const PSEUDONYM_MS_N_BEHAVIOUR_V7: TableDefinition<(u64, u64, u64), &[u8]> =
    TableDefinition::new("pseudonym_ms_n_behaviour");
pub const MS_PSEUDONYM_N_BEHAVIOUR_V7: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("ms_pseudonym_n_behaviour");
pub const CELLINDEX_USERID_V7: TableDefinition<(&[u8; 32], u64), u64> =
    TableDefinition::new("cellindex_userid");
pub const USERID_CELL_V7: TableDefinition<u64, &[u8]> = TableDefinition::new("userid_cell");
pub const EXPIRY_USERID_CELL_V7: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("expiry_userid_cell");
pub const PEER_REACH_V7: TableDefinition<&str, (u64, u64, u64, &str)> =
    TableDefinition::new("peer_reach");

// ---- Schema 9's typed tables now behind the key-value seam -------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 9 → 10; renamed to `<name>_v9` while it copies) and by the restore
// of an archive of schema 9 or older (`backup.rs`): the tables of `requests.rs`,
// `friends.rs`, `reading.rs`, `invites.rs` and `community_calls.rs`.

pub const REQUESTID_REQUEST_V9: TableDefinition<u64, &[u8]> =
    TableDefinition::new("requestid_request");
pub const USERID_REQUESTID_V9: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("userid_requestid");
pub const FRIENDREQID_REQUEST_V9: TableDefinition<u64, &[u8]> =
    TableDefinition::new("friendreqid_request");
pub const USERID_FRIENDREQID_V9: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("userid_friendreqid");
pub const USERPAIR_FRIENDREQID_V9: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userpair_friendreqid");
pub const MS_FRIENDREQID_CLOSED_V9: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("ms_friendreqid_closed");
pub const USERID_USERID_FRIEND_V9: TableDefinition<(u64, u64), (u64, u64)> =
    TableDefinition::new("userid_userid_friend");
pub const USERID_USERID_BLOCK_V9: TableDefinition<(u64, u64), (u64, u64)> =
    TableDefinition::new("userid_userid_block");
pub const USERID_USERID_BLOCKEDBY_V9: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("userid_userid_blockedby");
pub const USERID_DIRECTMESSAGES_V9: TableDefinition<u64, u8> =
    TableDefinition::new("userid_directmessages");
pub const USERID_FRIENDQUOTA_V9: TableDefinition<u64, (u64, u64)> =
    TableDefinition::new("userid_friendquota");
pub const USERID_CONVNO_READ_V9: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_convno_read");
pub const INVITENO_INVITE_V9: TableDefinition<u64, &[u8]> = TableDefinition::new("inviteno_invite");
pub const INVITEHASH_INVITENO_V9: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("invitehash_inviteno");
pub const USERID_INVITENO_V9: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("userid_inviteno");
pub const USERID_JOINNO_JOIN_V9: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("userid_joinno_join");
pub const REQUESTER_USERID_JOINNO_V9: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("requester_userid_joinno");
pub const ORIGIN_ENVID_COMMUNITYCALL_V9: TableDefinition<(&str, &str), CallRow> =
    TableDefinition::new("origin_envid_communitycall");
pub const EXPIRY_ORIGIN_ENVID_COMMUNITYCALL_V9: TableDefinition<(u64, &str, &str), ()> =
    TableDefinition::new("expiry_origin_envid_communitycall");

// ---- Schema 10's typed tables now behind the key-value seam ------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 10 → 11; renamed to `<name>_v10` while it copies) and by the restore
// of an archive of schema 10 or older (`backup.rs`): the tables of `discovery.rs` and
// `avatars.rs`.

pub const USERID_AVATAR_V10: TableDefinition<u64, &str> = TableDefinition::new("userid_avatar");
pub const MEDIAID_AVATAR_V10: TableDefinition<&str, u64> = TableDefinition::new("mediaid_avatar");
pub const CONTACTINDEX_USERID_V10: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("contactindex_userid");
pub const USERID_DISCOVERY_V10: TableDefinition<u64, &[u8]> =
    TableDefinition::new("userid_discovery");
pub const USERID_MATCHED_EXPIRY_V10: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_matched_expiry");
pub const MATCHED_USERID_V10: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("matched_userid");
pub const USERID_DAY_CONTACTS_V10: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_day_contacts");
pub const EDUINDEX_USERID_V10: TableDefinition<(&[u8; 32], u64), ()> =
    TableDefinition::new("eduindex_userid");
pub const USERID_EDUINDEX_V10: TableDefinition<u64, &[u8; 32]> =
    TableDefinition::new("userid_eduindex");
pub const USERID_DISMISSED_V10: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_dismissed");
pub const DISMISSED_USERID_V10: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("dismissed_userid");

// ---- Schema 11's typed tables now behind the key-value seam ------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 11 → 12; renamed to `<name>_v11` while it copies) and by the restore
// of an archive of schema 11 or older (`backup.rs`): the tables of `storage/community/`.

pub const COMMUNITYNO_COMMUNITY_V11: TableDefinition<u64, &[u8]> =
    TableDefinition::new("communityno_community");
pub const COMMUNITYNO_USERID_MEMBER_V11: TableDefinition<(u64, u64), (u64, u64)> =
    TableDefinition::new("communityno_userid_member");
pub const USERID_COMMUNITYNO_V11: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_communityno");
pub const COMMUNITYNO_USERID_PENDING_V11: TableDefinition<(u64, u64), (u64, u64, u64)> =
    TableDefinition::new("communityno_userid_pending");
pub const COMMUNITYNO_USERID_BAN_V11: TableDefinition<(u64, u64), (u64, u64)> =
    TableDefinition::new("communityno_userid_ban");
pub const COMMUNITYNO_SEQ_MODLOG_V11: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("communityno_seq_modlog");
pub const POSTNO_POST_V11: TableDefinition<u64, &[u8]> = TableDefinition::new("postno_post");
pub const COMMUNITYNO_POSTNO_V11: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("communityno_postno");
pub const USERID_POSTNO_V11: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("userid_postno");
pub const POSTNO_COMMENTNO_COMMENT_V11: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("postno_commentno_comment");
pub const USERID_COMMENTNO_V11: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_commentno");
pub const USERID_POSTNO_FAVOURITE_V11: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_postno_favourite");
pub const POSTNO_USERID_FAVOURITE_V11: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("postno_userid_favourite");
pub const MEDIAID_COMMUNITYNO_POSTNO_V11: TableDefinition<(&str, u64, u64), ()> =
    TableDefinition::new("mediaid_communityno_postno");
pub const FANOUTNO_JOB_V11: TableDefinition<u64, (u64, u64, u64, u64)> =
    TableDefinition::new("fanoutno_job");

// ---- Schema 12's typed tables now behind the key-value seam ------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 12 → 13; renamed to `<name>_v12` while it copies) and by the restore
// of an archive of schema 12 or older (`backup.rs`): the audit log, the policy versions and
// acceptances, the privacy centre's per-user rows, admin notes, the consent history, and the
// erasure records and erased handles.

pub const SEQ_AUDITENTRY_V12: TableDefinition<u64, &[u8]> = TableDefinition::new("seq_auditentry");
pub const POLICYSEQ_VERSION_V12: TableDefinition<u64, &[u8]> =
    TableDefinition::new("policyseq_version");
pub const POLICYSEQ_NARROWING_V12: TableDefinition<u64, u64> =
    TableDefinition::new("policyseq_narrowing");
pub const USERID_POLICYSEQ_ACCEPTED_V12: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_policyseq_accepted");
pub const USERID_GUARDIAN_V12: TableDefinition<u64, &[u8]> =
    TableDefinition::new("userid_guardian");
pub const USERID_REALNAME_V12: TableDefinition<u64, (u64, &[u8])> =
    TableDefinition::new("userid_realname");
pub const USERID_PUBLICPAGE_V12: TableDefinition<u64, u64> =
    TableDefinition::new("userid_publicpage");
pub const USERID_EXPORT_V12: TableDefinition<u64, u64> = TableDefinition::new("userid_export");
pub const USERID_NOTE_ADMINNOTE_V12: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("userid_note_adminnote");
pub const USERID_SEQ_CONSENTEVENT_V12: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("userid_seq_consentevent");
pub const USERID_ERASURE_V12: TableDefinition<u64, &[u8]> = TableDefinition::new("userid_erasure");
pub const HANDLEHASH_ERASED_V12: TableDefinition<&[u8; 32], (u64, u64)> =
    TableDefinition::new("handlehash_erased");

// ---- Schema 13's typed tables now behind the key-value seam ------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 13 → 14; renamed to `<name>_v13` while it copies) and by the restore
// of an archive of schema 13 or older (`backup.rs`): the search log and its time index, the
// pseudonym keys, legal holds, the fetches of other nodes' media and the node's signing keys.

pub const PSEUDONYM_MS_SEARCHLOG_V13: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("pseudonym_ms_searchlog");
pub const MS_PSEUDONYM_SEARCHLOG_V13: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("ms_pseudonym_searchlog");
pub const USERID_PSEUDONYMKEY_V13: TableDefinition<u64, &[u8; 32]> =
    TableDefinition::new("userid_pseudonymkey");
pub const USERID_LEGALHOLD_V13: TableDefinition<u64, (u64, &str)> =
    TableDefinition::new("userid_legalhold");
pub const MEDIAID_FETCH_V13: TableDefinition<&str, &[u8]> = TableDefinition::new("mediaid_fetch");
pub const KEYID_NODEKEY_V13: TableDefinition<&str, &[u8]> = TableDefinition::new("keyid_nodekey");

// ---- Schema 15's typed tables now behind the key-value seam ------------------------------
// Read only by the migration that moves their rows into the seam's tables of the same name
// (`storage/src/lib.rs`, 15 → 16; renamed to `<name>_v15` while it copies), by the 4 → 5 step
// that made `userid_peer_erasureack`, and by the restore of an archive of schema 15 or older
// (`backup.rs`): what users cleared or hid of their history, and the erasure requests to
// peers with the acknowledgements they expect.

pub const USERID_FLOOR_V15: TableDefinition<u64, u64> = TableDefinition::new("userid_floor");
pub const USERID_CONVNO_CLEARED_V15: TableDefinition<(u64, u64), u64> =
    TableDefinition::new("userid_convno_cleared");
pub const USERID_CONVNO_SEQ_HIDDEN_V15: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("userid_convno_seq_hidden");
pub const USERID_PEER_ERASURE_V15: TableDefinition<(u64, &str), (u64, u64)> =
    TableDefinition::new("userid_peer_erasure");
pub const USERID_PEER_ERASUREACK_V15: TableDefinition<(u64, &str), &[u8; 32]> =
    TableDefinition::new("userid_peer_erasureack");
