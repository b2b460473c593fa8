//! Backup archives: a logical, table-by-table dump of the database, encrypted and framed, and
//! its loading into a new database file (see `docs/OPERATIONS.md` "Backup and restore").
//!
//! The dump copies every row's key and value as redb stores them (personal fields are already
//! sealed under per-user keys, so the archive inherits that), from one read transaction: a
//! consistent snapshot that never blocks writers. It knows tables only by name and by their
//! key/value types; it never decodes a record, so it does not change when a table's contents do.
//! Because it is logical, it carries none of redb's freed pages, and the same stream can later
//! load into another storage backend.
//!
//! File layout:
//! ```text
//! "SHANLIAO-BACKUP\n"            16 bytes, in clear
//! header length (u32 BE) ‖ header JSON   in clear, authenticated: format, kind, schema, domain, created
//! chunk*: length (u32 BE) ‖ SecretKey::seal(aad, plaintext ≤ 64 KiB)
//!         aad = SHA-256(header JSON) ‖ chunk index (u64 BE) ‖ last (1 byte: 1 on the last chunk)
//! ```
//! The chunks' plaintexts, joined, are records:
//! `T` name length (u16 BE) ‖ name — a table begins; `R` key length (u32 BE) ‖ key ‖ value length
//! (u32 BE) ‖ value — one row; `E` count (u64 BE) — the table ends with that many rows;
//! `Z` tables (u32 BE) ‖ SHA-256 of every record byte before the `Z` — the end.
//! A chunk moved, dropped, repeated or altered, a header changed, or an archive cut short all
//! fail to open; the counts and the hash check the framing inside.

use std::io::Read;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, Value, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::*;
use super::erasure::{ErasureRecord, Phase};
use super::{SCHEMA_VERSION, StoreError, kv};
use primitives::crypto::SecretKey;

/// The archive's first bytes.
pub const MAGIC: &[u8; 16] = b"SHANLIAO-BACKUP\n";
/// The archive format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest plaintext per chunk.
const CHUNK: usize = 64 * 1024;
/// A sealed chunk's overhead (version, nonce, tag; see `crypto`).
const SEAL_OVERHEAD: usize = 1 + 24 + 16;
/// Largest header.
const MAX_HEADER: usize = 64 * 1024;
/// Rows inserted per write batch while loading (bounds memory).
const LOAD_BATCH: usize = 4096;

/// What an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// Every table: a whole node.
    Backup,
    /// Only the erasure records (`userid_erasure`, `handlehash_erased`): which users were
    /// erased, and when; nothing that identifies anyone.
    ErasureLedger,
}

/// The archive's header, in clear (and authenticated by every chunk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub kind: ArchiveKind,
    /// The database schema the rows are in.
    pub schema: u32,
    pub domain: String,
    /// When the snapshot was taken (ms since the epoch).
    pub created_ms: u64,
}

/// What an archive held, table by table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub tables: Vec<(String, u64)>,
}

impl Summary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Why an archive could not be written, read or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not an archive, damaged, cut short, or sealed under another key.
    #[error("{0}")]
    Damaged(String),
    #[error("the archive has format {0}; this build reads format {FORMAT_VERSION}")]
    Format(u32),
    #[error(
        "the archive holds schema {found}; this build knows up to {SCHEMA_VERSION} (restore with a newer build)"
    )]
    TooNew { found: u32 },
    /// The database holds a table this build's backup does not know, or the archive one this
    /// build cannot load.
    #[error("table `{0}` is not known to this build")]
    UnknownTable(String),
    #[error("the reader went away")]
    Closed,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for BackupError {
            fn from(e: $t) -> Self { BackupError::Store(e.into()) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

/// Rows as stored: (key bytes, value bytes).
type Rows = [(Vec<u8>, Vec<u8>)];

type RowSink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), BackupError> + 'a;

/// One table the archive knows: how to dump and load its rows without decoding them.
struct Kind {
    name: &'static str,
    len: fn(&ReadTransaction) -> Result<u64, BackupError>,
    dump: fn(&ReadTransaction, &mut RowSink<'_>) -> Result<u64, BackupError>,
    load: fn(&WriteTransaction, &Rows) -> Result<(), BackupError>,
}

fn len_of<K: Key + 'static, V: Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<'static, K, V>,
) -> Result<u64, BackupError> {
    Ok(tx.open_table(def)?.len()?)
}

fn dump_rows<K: Key + 'static, V: Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<'static, K, V>,
    sink: &mut RowSink<'_>,
) -> Result<u64, BackupError> {
    let table = tx.open_table(def)?;
    let mut n = 0;
    for row in table.iter()? {
        let (k, v) = row?;
        let (k, v) = (k.value(), v.value());
        sink(K::as_bytes(&k).as_ref(), V::as_bytes(&v).as_ref())?;
        n += 1;
    }
    Ok(n)
}

/// The stored bytes of a fixed-width type must have its width (redb's decoders assume it).
fn fits<T: Value>(bytes: &[u8], table: &str) -> Result<(), BackupError> {
    match T::fixed_width() {
        Some(w) if w != bytes.len() => Err(BackupError::Damaged(format!(
            "a row of `{table}` has a field of {} bytes where {w} belong",
            bytes.len()
        ))),
        _ => Ok(()),
    }
}

fn load_rows<K: Key + 'static, V: Value + 'static>(
    tx: &WriteTransaction,
    def: TableDefinition<'static, K, V>,
    rows: &Rows,
) -> Result<(), BackupError> {
    let mut table = tx.open_table(def)?;
    for (k, v) in rows {
        fits::<K>(k, def.name())?;
        fits::<V>(v, def.name())?;
        table.insert(K::from_bytes(k), V::from_bytes(v))?;
    }
    Ok(())
}

macro_rules! kind {
    ($def:expr) => {
        Kind {
            name: $def.name(),
            len: |tx| len_of(tx, $def),
            dump: |tx, sink| dump_rows(tx, $def, sink),
            load: |tx, rows| load_rows(tx, $def, rows),
        }
    };
    (seam $t:ident) => {
        Kind {
            name: $t.name(),
            len: |tx| len_of(tx, kv::redb_def($t.name())),
            dump: |tx, sink| dump_rows(tx, kv::redb_def($t.name()), sink),
            load: |tx, rows| load_rows(tx, kv::redb_def($t.name()), rows),
        }
    };
}

macro_rules! kinds {
    ($($t:ident),* $(,)?) => {
        /// Every table of the catalog, for rows in `schema`. A table missing here makes a
        /// backup refuse to run (see `backup_refuses_a_table_it_does_not_know`), so none is
        /// ever left out silently.
        fn kinds(schema: u32) -> Vec<Kind> {
            let mut kinds = vec![$(kind!($t)),*];
            kinds.extend(seam_kinds());
            kinds.extend(moved_kinds().into_iter().map(|m| m.in_schema(schema)));
            kinds
        }
    };
}

/// The tables made behind the key-value seam (`kv`): byte keys and values, copied as they are.
fn seam_kinds() -> Vec<Kind> {
    vec![
        kind!(seam USERID_REMOTECOMMUNITY),
        // Schema 9's (an archive of schema 8 has none: the migration builds them).
        kind!(seam DEST_OUTBOUNDCOUNT),
        kind!(seam USERID_PHONEINDEX),
        kind!(seam USERID_REMOTEINDEX),
        kind!(seam NOTICENO_JOB),
        // Schema 15's (an archive of 14 or before has none; loading it leaves them empty).
        kind!(seam MEDIAID_PEER_OFFERED),
        kind!(seam FANOUTNO_FROM_TELL),
        kind!(seam ORIGIN_ENVID_CALLDIGEST),
        kind!(seam AUTHOR_MEDIAID_FETCH),
    ]
}

/// A table that was a typed redb table until schema `at` moved it behind the seam.
struct Moved {
    at: u32,
    seam: Kind,
    typed: Kind,
}

impl Moved {
    /// How its rows are in an archive of `schema`: as the seam's bytes from `at` on; before,
    /// as the typed table, restored as such and moved by the migration when the node opens
    /// the file.
    fn in_schema(self, schema: u32) -> Kind {
        if schema >= self.at {
            self.seam
        } else {
            self.typed
        }
    }
}

macro_rules! moved {
    ($at:expr, $t:ident, $typed:ident) => {
        Moved {
            at: $at,
            seam: kind!(seam $t),
            typed: kind!($typed),
        }
    };
}

/// Every table moved behind the seam, with the schema that moved it.
fn moved_kinds() -> Vec<Moved> {
    vec![
        // Schema 8 (`tables_move_behind_the_key_value_seam`).
        moved!(8, CELLINDEX_USERID, CELLINDEX_USERID_V7),
        moved!(8, USERID_CELL, USERID_CELL_V7),
        moved!(8, EXPIRY_USERID_CELL, EXPIRY_USERID_CELL_V7),
        moved!(8, PEER_REACH, PEER_REACH_V7),
        moved!(8, PSEUDONYM_MS_N_BEHAVIOUR, PSEUDONYM_MS_N_BEHAVIOUR_V7),
        moved!(8, MS_PSEUDONYM_N_BEHAVIOUR, MS_PSEUDONYM_N_BEHAVIOUR_V7),
        // Schema 10 (`more_tables_move_behind_the_seam`).
        moved!(10, REQUESTID_REQUEST, REQUESTID_REQUEST_V9),
        moved!(10, USERID_REQUESTID, USERID_REQUESTID_V9),
        moved!(10, FRIENDREQID_REQUEST, FRIENDREQID_REQUEST_V9),
        moved!(10, USERID_FRIENDREQID, USERID_FRIENDREQID_V9),
        moved!(10, USERPAIR_FRIENDREQID, USERPAIR_FRIENDREQID_V9),
        moved!(10, MS_FRIENDREQID_CLOSED, MS_FRIENDREQID_CLOSED_V9),
        moved!(10, USERID_USERID_FRIEND, USERID_USERID_FRIEND_V9),
        moved!(10, USERID_USERID_BLOCK, USERID_USERID_BLOCK_V9),
        moved!(10, USERID_USERID_BLOCKEDBY, USERID_USERID_BLOCKEDBY_V9),
        moved!(10, USERID_DIRECTMESSAGES, USERID_DIRECTMESSAGES_V9),
        moved!(10, USERID_FRIENDQUOTA, USERID_FRIENDQUOTA_V9),
        moved!(10, USERID_CONVNO_READ, USERID_CONVNO_READ_V9),
        moved!(10, INVITENO_INVITE, INVITENO_INVITE_V9),
        moved!(10, INVITEHASH_INVITENO, INVITEHASH_INVITENO_V9),
        moved!(10, USERID_INVITENO, USERID_INVITENO_V9),
        moved!(10, USERID_JOINNO_JOIN, USERID_JOINNO_JOIN_V9),
        moved!(10, REQUESTER_USERID_JOINNO, REQUESTER_USERID_JOINNO_V9),
        moved!(
            10,
            ORIGIN_ENVID_COMMUNITYCALL,
            ORIGIN_ENVID_COMMUNITYCALL_V9
        ),
        moved!(
            10,
            EXPIRY_ORIGIN_ENVID_COMMUNITYCALL,
            EXPIRY_ORIGIN_ENVID_COMMUNITYCALL_V9
        ),
        // Schema 11 (`discovery_and_avatar_tables_move_behind_the_seam`).
        moved!(11, USERID_AVATAR, USERID_AVATAR_V10),
        moved!(11, MEDIAID_AVATAR, MEDIAID_AVATAR_V10),
        moved!(11, CONTACTINDEX_USERID, CONTACTINDEX_USERID_V10),
        moved!(11, USERID_DISCOVERY, USERID_DISCOVERY_V10),
        moved!(11, USERID_MATCHED_EXPIRY, USERID_MATCHED_EXPIRY_V10),
        moved!(11, MATCHED_USERID, MATCHED_USERID_V10),
        moved!(11, USERID_DAY_CONTACTS, USERID_DAY_CONTACTS_V10),
        moved!(11, EDUINDEX_USERID, EDUINDEX_USERID_V10),
        moved!(11, USERID_EDUINDEX, USERID_EDUINDEX_V10),
        moved!(11, USERID_DISMISSED, USERID_DISMISSED_V10),
        moved!(11, DISMISSED_USERID, DISMISSED_USERID_V10),
        // Schema 12 (`community_tables_move_behind_the_seam`): communities, and the fan-out
        // jobs of new posts' events.
        moved!(12, COMMUNITYNO_COMMUNITY, COMMUNITYNO_COMMUNITY_V11),
        moved!(12, COMMUNITYNO_USERID_MEMBER, COMMUNITYNO_USERID_MEMBER_V11),
        moved!(12, USERID_COMMUNITYNO, USERID_COMMUNITYNO_V11),
        moved!(
            12,
            COMMUNITYNO_USERID_PENDING,
            COMMUNITYNO_USERID_PENDING_V11
        ),
        moved!(12, COMMUNITYNO_USERID_BAN, COMMUNITYNO_USERID_BAN_V11),
        moved!(12, COMMUNITYNO_SEQ_MODLOG, COMMUNITYNO_SEQ_MODLOG_V11),
        moved!(12, POSTNO_POST, POSTNO_POST_V11),
        moved!(12, COMMUNITYNO_POSTNO, COMMUNITYNO_POSTNO_V11),
        moved!(12, USERID_POSTNO, USERID_POSTNO_V11),
        moved!(12, POSTNO_COMMENTNO_COMMENT, POSTNO_COMMENTNO_COMMENT_V11),
        moved!(12, USERID_COMMENTNO, USERID_COMMENTNO_V11),
        moved!(12, USERID_POSTNO_FAVOURITE, USERID_POSTNO_FAVOURITE_V11),
        moved!(12, POSTNO_USERID_FAVOURITE, POSTNO_USERID_FAVOURITE_V11),
        moved!(
            12,
            MEDIAID_COMMUNITYNO_POSTNO,
            MEDIAID_COMMUNITYNO_POSTNO_V11
        ),
        moved!(12, FANOUTNO_JOB, FANOUTNO_JOB_V11),
        // Schema 13 (`privacy_and_audit_tables_move_behind_the_seam`).
        moved!(13, SEQ_AUDITENTRY, SEQ_AUDITENTRY_V12),
        moved!(13, POLICYSEQ_VERSION, POLICYSEQ_VERSION_V12),
        moved!(13, POLICYSEQ_NARROWING, POLICYSEQ_NARROWING_V12),
        moved!(13, USERID_POLICYSEQ_ACCEPTED, USERID_POLICYSEQ_ACCEPTED_V12),
        moved!(13, USERID_GUARDIAN, USERID_GUARDIAN_V12),
        moved!(13, USERID_REALNAME, USERID_REALNAME_V12),
        moved!(13, USERID_PUBLICPAGE, USERID_PUBLICPAGE_V12),
        moved!(13, USERID_EXPORT, USERID_EXPORT_V12),
        moved!(13, USERID_NOTE_ADMINNOTE, USERID_NOTE_ADMINNOTE_V12),
        moved!(13, USERID_SEQ_CONSENTEVENT, USERID_SEQ_CONSENTEVENT_V12),
        moved!(13, USERID_ERASURE, USERID_ERASURE_V12),
        moved!(13, HANDLEHASH_ERASED, HANDLEHASH_ERASED_V12),
        // Schema 14 (`search_log_holds_fetches_and_keys_move_behind_the_seam`).
        moved!(14, PSEUDONYM_MS_SEARCHLOG, PSEUDONYM_MS_SEARCHLOG_V13),
        moved!(14, MS_PSEUDONYM_SEARCHLOG, MS_PSEUDONYM_SEARCHLOG_V13),
        moved!(14, USERID_PSEUDONYMKEY, USERID_PSEUDONYMKEY_V13),
        moved!(14, USERID_LEGALHOLD, USERID_LEGALHOLD_V13),
        moved!(14, MEDIAID_FETCH, MEDIAID_FETCH_V13),
        moved!(14, KEYID_NODEKEY, KEYID_NODEKEY_V13),
        // Schema 16 (`cleared_history_and_peer_erasures_move_behind_the_seam`).
        moved!(16, USERID_FLOOR, USERID_FLOOR_V15),
        moved!(16, USERID_CONVNO_CLEARED, USERID_CONVNO_CLEARED_V15),
        moved!(16, USERID_CONVNO_SEQ_HIDDEN, USERID_CONVNO_SEQ_HIDDEN_V15),
        moved!(16, USERID_PEER_ERASURE, USERID_PEER_ERASURE_V15),
        moved!(16, USERID_PEER_ERASUREACK, USERID_PEER_ERASUREACK_V15),
    ]
}

kinds!(
    META,
    USERID_ACCOUNT,
    HANDLEINDEX_USERID,
    // The pseudonym keys, legal holds, search log, media fetches and node keys: in
    // `moved_kinds` (schema 14).
    PHONEINDEX_USERID,
    USERID_PROFILE,
    TOKENHASH_SESSION,
    USERID_DEVICEID_TOKENHASH,
    USERID_PURPOSE_CONSENT,
    // The consent history, audit log, admin notes, policy and privacy-centre tables, erasure
    // records and erased handles: in `moved_kinds` (schema 13).
    CONVNO_CONVERSATION,
    CONVID_CONVNO,
    CONVNO_USERID_MEMBER,
    USERID_CONVNO,
    USERPAIR_CONVNO,
    CONVNO_SEQ_MESSAGE,
    CONVNO_POS_EVENT,
    USERID_POS_EVENT,
    USERID_DEVICEID_CURSOR,
    // The floors, cleared conversations and hidden messages: in `moved_kinds` (schema 16).
    USERID_DEVICEID_TXNID_SENT,
    SENTNO_SENT,
    MEDIAID_MEDIA,
    MEDIAID_CHUNKNO_CHUNK,
    USERID_MEDIAID,
    MEDIAID_CONVNO,
    REMOTEADDR_USERID,
    REMOTEINDEX_USERID,
    USERID_REMOTEUSER,
    DEST_SEQ_OUTBOUND,
    ORIGIN_ENVID_SEEN,
    ORIGIN_TXNID_ANSWER,
    MS_ORIGIN_ENVID_SEEN,
    MS_ORIGIN_TXNID_ANSWERED,
    ORIGIN_TXNID_TXN_V1,
    USERID_PEER_KIND_TRANSFER,
    USERID_PEER_KIND_OUTCOME_DISCLOSURE,
    // The erasure requests to peers and their expected acknowledgements: in `moved_kinds`
    // (schema 16).
    // Search changes (issue 23).
    POS_KIND_ID_SEARCHCHANGE,
    // Avatars as media (issue 25) and discovery (issue 22): in `moved_kinds` (schema 11).
    // Operations (issue 24).
    REMOTEID_ERASED,
);

/// The tables an erasure ledger carries: local users' erasures, their handles' keyed hashes,
/// and the ids of remote users erased at their node's request.
fn ledger_tables() -> [&'static str; 3] {
    [
        USERID_ERASURE.name(),
        HANDLEHASH_ERASED.name(),
        REMOTEID_ERASED.name(),
    ]
}

fn kind_of<'k>(kinds: &'k [Kind], name: &str) -> Result<&'k Kind, BackupError> {
    kinds
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| BackupError::UnknownTable(name.to_string()))
}

fn aad(header_hash: &[u8; 32], index: u64, last: bool) -> Vec<u8> {
    let mut a = header_hash.to_vec();
    a.extend_from_slice(&index.to_be_bytes());
    a.push(u8::from(last));
    a
}

/// Seals the record stream into chunks and hands each framed chunk to `out`.
struct Sealer<'a> {
    key: &'a SecretKey,
    header_hash: [u8; 32],
    buf: Vec<u8>,
    index: u64,
    hash: Sha256,
    out: &'a mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
}

impl Sealer<'_> {
    fn record(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.hash.update(bytes);
        self.raw(bytes)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.buf.extend_from_slice(bytes);
        while self.buf.len() > CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.emit(&chunk, false)?;
        }
        Ok(())
    }

    fn emit(&mut self, plain: &[u8], last: bool) -> Result<(), BackupError> {
        let sealed = self
            .key
            .seal(&aad(&self.header_hash, self.index, last), plain)
            .map_err(|e| BackupError::Damaged(e.to_string()))?;
        self.index += 1;
        let mut framed = Vec::with_capacity(4 + sealed.len());
        framed.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        framed.extend_from_slice(&sealed);
        (self.out)(framed)
    }

    fn finish(mut self, tables: u32) -> Result<(), BackupError> {
        let digest: [u8; 32] = std::mem::take(&mut self.hash).finalize().into();
        let mut z = vec![b'Z'];
        z.extend_from_slice(&tables.to_be_bytes());
        z.extend_from_slice(&digest);
        self.raw(&z)?;
        let last = std::mem::take(&mut self.buf);
        self.emit(&last, true)
    }
}

/// Writes an archive of `db` as it is now (one read transaction) to `out`, chunk by chunk;
/// `progress` gets (rows written, rows in all) now and then. Blocking.
pub(super) fn write_archive(
    db: &Database,
    key: &SecretKey,
    mut header: Header,
    out: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary, BackupError> {
    let tx = db.begin_read()?;
    if tx.list_multimap_tables()?.next().is_some() {
        return Err(BackupError::UnknownTable("(a multimap table)".into()));
    }
    // The file's own schema says which tables are behind the seam (a node's file is always
    // at this build's, but a tool may archive one it has not opened).
    header.schema = stored_schema(&tx)?;
    let kinds = kinds(header.schema);
    let mut names: Vec<String> = tx
        .list_tables()?
        .map(|t| t.name().to_string())
        .filter(|n| match header.kind {
            ArchiveKind::Backup => true,
            ArchiveKind::ErasureLedger => ledger_tables().contains(&n.as_str()),
        })
        .collect();
    names.sort();
    for n in &names {
        kind_of(&kinds, n)?;
    }
    let header_json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let mut start = MAGIC.to_vec();
    start.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    start.extend_from_slice(&header_json);
    out(start)?;
    let mut total = 0;
    for n in &names {
        total += (kind_of(&kinds, n)?.len)(&tx)?;
    }
    let mut sealer = Sealer {
        key,
        header_hash: Sha256::digest(&header_json).into(),
        buf: Vec::with_capacity(CHUNK * 2),
        index: 0,
        hash: Sha256::new(),
        out,
    };
    let mut summary = Summary::default();
    let mut done = 0u64;
    progress(0, total);
    for n in &names {
        let mut t = vec![b'T'];
        t.extend_from_slice(&(n.len() as u16).to_be_bytes());
        t.extend_from_slice(n.as_bytes());
        sealer.record(&t)?;
        let count = (kind_of(&kinds, n)?.dump)(&tx, &mut |k, v| {
            let mut r = Vec::with_capacity(9 + k.len() + v.len());
            r.push(b'R');
            r.extend_from_slice(&(k.len() as u32).to_be_bytes());
            r.extend_from_slice(k);
            r.extend_from_slice(&(v.len() as u32).to_be_bytes());
            r.extend_from_slice(v);
            done += 1;
            if done.is_multiple_of(1024) {
                progress(done, total);
            }
            sealer.record(&r)
        })?;
        let mut e = vec![b'E'];
        e.extend_from_slice(&count.to_be_bytes());
        sealer.record(&e)?;
        summary.tables.push((n.clone(), count));
    }
    sealer.finish(names.len() as u32)?;
    progress(done, total);
    Ok(summary)
}

fn stored_schema(tx: &ReadTransaction) -> Result<u32, BackupError> {
    let meta = tx.open_table(META)?;
    let v = meta
        .get("schema_version")?
        .ok_or(StoreError::Corrupt("meta"))?;
    let b: [u8; 4] = v
        .value()
        .try_into()
        .map_err(|_| StoreError::Corrupt("meta"))?;
    Ok(u32::from_be_bytes(b))
}

/// Decrypts an archive chunk by chunk and reads its records.
pub struct ArchiveReader<R: Read> {
    input: R,
    key: SecretKey,
    header: Header,
    header_hash: [u8; 32],
    index: u64,
    plain: Vec<u8>,
    at: usize,
    ended: bool,
    hash: Sha256,
}

impl<R: Read> std::fmt::Debug for ArchiveReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of it.
        f.debug_struct("ArchiveReader")
            .field("chunk", &self.index)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

fn damaged(what: &str) -> BackupError {
    BackupError::Damaged(format!(
        "not a complete shanliao backup sealed under this node's master key ({what})"
    ))
}

impl<R: Read> ArchiveReader<R> {
    /// Opens an archive: checks its magic and header, ready to read records.
    pub fn open(mut input: R, key: SecretKey) -> Result<Self, BackupError> {
        let (header, json) = read_header(&mut input)?;
        Ok(ArchiveReader {
            input,
            key,
            header,
            header_hash: Sha256::digest(&json).into(),
            index: 0,
            plain: Vec::new(),
            at: 0,
            ended: false,
            hash: Sha256::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next chunk's plaintext into `plain`; false after the last chunk.
    fn next_chunk(&mut self) -> Result<bool, BackupError> {
        if self.ended {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| damaged("cut short"))?;
        let len = u32::from_be_bytes(len) as usize;
        if len > CHUNK + SEAL_OVERHEAD + 64 {
            return Err(damaged("a chunk is too large"));
        }
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .map_err(|_| damaged("cut short"))?;
        let (plain, last) = match self
            .key
            .open(&aad(&self.header_hash, self.index, false), &sealed)
        {
            Ok(p) => (p, false),
            Err(_) => (
                self.key
                    .open(&aad(&self.header_hash, self.index, true), &sealed)
                    .map_err(|_| {
                        damaged("a chunk does not open: altered, out of order or another key")
                    })?,
                true,
            ),
        };
        self.index += 1;
        self.plain = plain;
        self.at = 0;
        if last {
            self.ended = true;
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra)? != 0 {
                return Err(damaged("bytes after the last chunk"));
            }
        }
        Ok(true)
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.at == self.plain.len() && !self.next_chunk()? {
                return Err(damaged("records end early"));
            }
            let k = (n - out.len()).min(self.plain.len() - self.at);
            out.extend_from_slice(&self.plain[self.at..self.at + k]);
            self.at += k;
        }
        Ok(out)
    }

    fn hashed(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
        let b = self.take(n)?;
        self.hash.update(&b);
        Ok(b)
    }

    fn u32_field(&mut self) -> Result<u32, BackupError> {
        let b = self.hashed(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads every record, handing each table's rows to `rows` (name, batch) in batches, and
    /// checks the counts, the final hash and that nothing follows. Returns what it held.
    pub fn read_all(
        &mut self,
        rows: &mut dyn FnMut(&str, &Rows) -> Result<(), BackupError>,
    ) -> Result<Summary, BackupError> {
        let mut summary = Summary::default();
        let mut current: Option<(String, u64)> = None;
        let mut batch = Vec::new();
        loop {
            let tag = self.take(1)?[0];
            if tag != b'Z' {
                self.hash.update([tag]);
            }
            match (tag, &mut current) {
                (b'T', None) => {
                    let b = self.hashed(2)?;
                    let n = u16::from_be_bytes([b[0], b[1]]) as usize;
                    let name = String::from_utf8(self.hashed(n)?)
                        .map_err(|_| damaged("a table name is not UTF-8"))?;
                    if summary.tables.iter().any(|(t, _)| *t == name) {
                        return Err(damaged("a table appears twice"));
                    }
                    current = Some((name, 0));
                }
                (b'R', Some((name, count))) => {
                    let kl = self.u32_field()? as usize;
                    let k = self.hashed(kl)?;
                    let vl = self.u32_field()? as usize;
                    let v = self.hashed(vl)?;
                    *count += 1;
                    batch.push((k, v));
                    if batch.len() >= LOAD_BATCH {
                        rows(name, &batch)?;
                        batch.clear();
                    }
                }
                (b'E', Some((name, count))) => {
                    let b = self.hashed(8)?;
                    let said = u64::from_be_bytes(b.try_into().map_err(|_| damaged("count"))?);
                    if said != *count {
                        return Err(damaged("a table's row count does not match"));
                    }
                    if !batch.is_empty() {
                        rows(name, &batch)?;
                        batch.clear();
                    }
                    summary.tables.push((name.clone(), *count));
                    current = None;
                }
                (b'Z', None) => {
                    let digest: [u8; 32] = std::mem::take(&mut self.hash).finalize().into();
                    let b = self.take(4)?;
                    let tables = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    let said = self.take(32)?;
                    if tables as usize != summary.tables.len() || said != digest {
                        return Err(damaged("the final hash does not match"));
                    }
                    if self.at != self.plain.len() || self.next_chunk()? {
                        return Err(damaged("records after the end"));
                    }
                    if !self.ended {
                        return Err(damaged("cut short"));
                    }
                    return Ok(summary);
                }
                _ => return Err(damaged("a record is out of place")),
            }
        }
    }
}

fn read_header(input: &mut impl Read) -> Result<(Header, Vec<u8>), BackupError> {
    let mut magic = [0u8; 16];
    input
        .read_exact(&mut magic)
        .map_err(|_| BackupError::Damaged("not a shanliao backup (too short)".into()))?;
    if &magic != MAGIC {
        return Err(BackupError::Damaged(
            "not a shanliao backup (wrong first bytes)".into(),
        ));
    }
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|_| damaged("cut short"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HEADER {
        return Err(damaged("header too large"));
    }
    let mut json = vec![0u8; len];
    input
        .read_exact(&mut json)
        .map_err(|_| damaged("cut short"))?;
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let f: Format = serde_json::from_slice(&json).map_err(|_| damaged("header"))?;
    if f.format != FORMAT_VERSION {
        return Err(BackupError::Format(f.format));
    }
    let header: Header = serde_json::from_slice(&json).map_err(|_| damaged("header"))?;
    if header.schema > SCHEMA_VERSION {
        return Err(BackupError::TooNew {
            found: header.schema,
        });
    }
    Ok((header, json))
}

/// The schema that moved `userid_erasure` and `handlehash_erased` behind the seam: an archive
/// of it or later holds their rows in the seam's encoding, an older one as typed redb rows.
const ERASURE_SEAM: u32 = 13;

/// The schema that moved the legal holds behind the key-value seam.
const HOLD_SEAM: u32 = 14;

/// The user of an erasure ledger's `userid_erasure` row, as its schema encoded the key.
fn ledger_user(seam: bool, k: &[u8]) -> Result<u64, BackupError> {
    if seam {
        <u64 as kv::Key>::decode(k).map_err(|_| damaged("userid_erasure"))
    } else {
        fits::<u64>(k, "userid_erasure")?;
        Ok(u64::from_bytes(k))
    }
}

/// The hash and (time, user) of an erasure ledger's `handlehash_erased` row, as its schema
/// encoded them.
fn ledger_hash(seam: bool, k: &[u8], v: &[u8]) -> Result<([u8; 32], (u64, u64)), BackupError> {
    if seam {
        let hash = <[u8; 32] as kv::Key>::decode(k).map_err(|_| damaged("hash"))?;
        let row = <(u64, u64) as kv::Value>::from_bytes(v).map_err(|_| damaged("hash"))?;
        Ok((hash, row))
    } else {
        fits::<&[u8; 32]>(k, "handlehash_erased")?;
        fits::<(u64, u64)>(v, "handlehash_erased")?;
        let hash: [u8; 32] = k.try_into().map_err(|_| damaged("hash"))?;
        Ok((hash, <(u64, u64)>::from_bytes(v)))
    }
}

/// What [`load_archive`] did with an erasure ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerApplied {
    /// Users erased (per the ledger) whose data the backup still holds: the caller must run
    /// their erasure before the node serves.
    pub to_erase: Vec<u64>,
    /// Ledger records copied in for users the backup did not hold.
    pub recorded: usize,
    /// Remote users erased here at their node's request (per the ledger) whose record the
    /// backup still holds: the caller must erase them again before the node serves.
    pub remote_to_erase: Vec<u64>,
}

/// Loads a verified `archive` into a new database file at `path` (which must not exist), then
/// merges the erasure records of `ledger`: a legal hold on a user the ledger says was erased is
/// lifted (it was lifted before that erasure), erased handles' hashes are added, and the users
/// whose data came back are returned to be erased again. Blocking.
pub fn load_archive<R: Read, L: Read>(
    path: &std::path::Path,
    archive: &mut ArchiveReader<R>,
    ledger: Option<&mut ArchiveReader<L>>,
    progress: &mut dyn FnMut(u64),
) -> Result<(Summary, LedgerApplied), BackupError> {
    if path.exists() {
        return Err(BackupError::Damaged(format!(
            "{} exists already",
            path.display()
        )));
    }
    if archive.header().kind != ArchiveKind::Backup {
        return Err(BackupError::Damaged(
            "this archive is an erasure ledger, not a backup".into(),
        ));
    }
    let db = redb::Builder::new().create(path)?;
    let kinds = kinds(archive.header().schema);
    let mut loaded = 0u64;
    let summary = archive.read_all(&mut |name, rows| {
        let kind = kind_of(&kinds, name)?;
        let tx = db.begin_write()?;
        (kind.load)(&tx, rows)?;
        tx.commit()?;
        loaded += rows.len() as u64;
        progress(loaded);
        Ok(())
    })?;
    let mut applied = LedgerApplied::default();
    if let Some(ledger) = ledger {
        let mut erasures: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut hashes: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut remote: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        ledger.read_all(&mut |name, rows| {
            if name == USERID_ERASURE.name() {
                erasures.extend_from_slice(rows);
            } else if name == HANDLEHASH_ERASED.name() {
                hashes.extend_from_slice(rows);
            } else if name == REMOTEID_ERASED.name() {
                remote.extend_from_slice(rows);
            }
            Ok(())
        })?;
        // Both tables are as the ledger's schema wrote them, and go into the restored file as
        // the backup's schema holds them (typed before 13, behind the seam from it on); the
        // migration moves typed ones when the node opens the file.
        let from_seam = ledger.header().schema >= ERASURE_SEAM;
        let to_seam = archive.header().schema >= ERASURE_SEAM;
        // The legal holds moved a schema later: the hold of a user the ledger erased goes from
        // the table as the backup's schema holds it.
        let holds_on_seam = archive.header().schema >= HOLD_SEAM;
        let hashes = hashes
            .iter()
            .map(|(k, v)| ledger_hash(from_seam, k, v))
            .collect::<Result<Vec<_>, _>>()?;
        let erasures = erasures
            .iter()
            .map(|(k, v)| ledger_user(from_seam, k).map(|user| (user, v)))
            .collect::<Result<Vec<_>, _>>()?;
        let tx = db.begin_write()?;
        {
            for (hash, row) in &hashes {
                if to_seam {
                    if HANDLEHASH_ERASED.get(&tx, hash)?.is_none() {
                        HANDLEHASH_ERASED.insert(&tx, hash, row)?;
                    }
                } else {
                    let mut table = tx.open_table(HANDLEHASH_ERASED_V12)?;
                    if table.get(hash)?.is_none() {
                        table.insert(hash, *row)?;
                    }
                }
            }
            let remote_users = tx.open_table(USERID_REMOTEUSER)?;
            let mut remote_erased = tx.open_table(REMOTEID_ERASED)?;
            for (k, v) in &remote {
                fits::<u64>(k, "remoteid_erased")?;
                fits::<u64>(v, "remoteid_erased")?;
                let id = u64::from_bytes(k);
                if remote_users.get(id)?.is_some() {
                    applied.remote_to_erase.push(id);
                }
                if remote_erased.get(id)?.is_none() {
                    remote_erased.insert(id, u64::from_bytes(v))?;
                }
            }
            let accounts = tx.open_table(USERID_ACCOUNT)?;
            for &(user, v) in &erasures {
                let rec = ErasureRecord::decode(v)?;
                if rec.phase != Phase::Done {
                    continue;
                }
                let here = if to_seam {
                    USERID_ERASURE.get(&tx, &user)?
                } else {
                    tx.open_table(USERID_ERASURE_V12)?
                        .get(user)?
                        .map(|r| r.value().to_vec())
                };
                let here_done = here
                    .map(|r| ErasureRecord::decode(&r))
                    .transpose()?
                    .is_some_and(|r| r.phase == Phase::Done);
                if here_done {
                    continue;
                }
                if accounts.get(user)?.is_some() {
                    if holds_on_seam {
                        USERID_LEGALHOLD.remove(&tx, &user)?;
                    } else {
                        tx.open_table(USERID_LEGALHOLD_V13)?.remove(user)?;
                    }
                    applied.to_erase.push(user);
                } else {
                    if to_seam {
                        USERID_ERASURE.insert(&tx, &user, v)?;
                    } else {
                        tx.open_table(USERID_ERASURE_V12)?
                            .insert(user, v.as_slice())?;
                    }
                    applied.recorded += 1;
                }
            }
        }
        tx.commit()?;
    }
    Ok((summary, applied))
}

/// Rewrites the database file at `path` without its free pages, so nothing a restore-time
/// erasure removed lingers in it. Blocking; the file must not be open.
pub fn compact(path: &std::path::Path) -> Result<(), BackupError> {
    let mut db = redb::Builder::new().create(path)?;
    db.compact()
        .map_err(|e| BackupError::Store(StoreError::Db(e.to_string())))?;
    Ok(())
}

impl super::Store {
    /// Writes an archive of the database as it is now to `out` (see the module's text);
    /// `progress` gets (rows written, rows in all). Runs on the blocking pool; writers go on.
    pub async fn backup(
        &self,
        key: SecretKey,
        header: Header,
        out: tokio::sync::mpsc::Sender<Vec<u8>>,
        progress: tokio::sync::watch::Sender<(u64, u64)>,
    ) -> Result<Summary, BackupError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            write_archive(
                &db,
                &key,
                header,
                &mut |chunk| out.blocking_send(chunk).map_err(|_| BackupError::Closed),
                &mut |done, total| {
                    let _ = progress.send((done, total));
                },
            )
        })
        .await
        .map_err(|_| BackupError::Store(StoreError::Worker))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: ArchiveKind) -> Header {
        Header {
            format: FORMAT_VERSION,
            kind,
            schema: 0,
            domain: "a.test".into(),
            created_ms: 5,
        }
    }

    fn archive_of(db: &Database, key: &SecretKey, kind: ArchiveKind) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_archive(
            db,
            key,
            header(kind),
            &mut |c| {
                bytes.extend_from_slice(&c);
                Ok(())
            },
            &mut |_, _| {},
        )
        .unwrap();
        bytes
    }

    fn store_with_rows(dir: &std::path::Path, messages: u64) -> std::path::PathBuf {
        let path = dir.join("node.redb");
        let store = super::super::Store::open(&path, |_| Ok(None)).unwrap().0;
        drop(store);
        let db = redb::Builder::new().create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(CONVNO_SEQ_MESSAGE).unwrap();
            for i in 0..messages {
                t.insert((7, i), vec![i as u8; 300].as_slice()).unwrap();
            }
            tx.open_table(HANDLEINDEX_USERID)
                .unwrap()
                .insert(&[7u8; 32], 42)
                .unwrap();
        }
        tx.commit().unwrap();
        path
    }

    fn verify(bytes: &[u8], key: &SecretKey) -> Result<Summary, BackupError> {
        ArchiveReader::open(bytes, key.clone())?.read_all(&mut |_, _| Ok(()))
    }

    #[test]
    fn an_archive_loads_into_a_database_with_every_row_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_rows(dir.path(), 1000);
        let key = SecretKey::generate().unwrap();
        let db = redb::Builder::new().create(&path).unwrap();
        let bytes = archive_of(&db, &key, ArchiveKind::Backup);
        assert!(bytes.len() > 2 * CHUNK, "several chunks");
        let to = dir.path().join("restored.redb");
        let mut r = ArchiveReader::open(bytes.as_slice(), key).unwrap();
        let (summary, _) = load_archive::<_, &[u8]>(&to, &mut r, None, &mut |_| {}).unwrap();
        assert!(
            summary
                .tables
                .contains(&("convno_seq_message".into(), 1000))
        );
        let back = redb::Builder::new().create(&to).unwrap();
        let tx = back.begin_read().unwrap();
        let t = tx.open_table(CONVNO_SEQ_MESSAGE).unwrap();
        assert_eq!(t.len().unwrap(), 1000);
        assert_eq!(t.get((7, 999)).unwrap().unwrap().value(), vec![231u8; 300]);
        let h = tx.open_table(HANDLEINDEX_USERID).unwrap();
        assert_eq!(h.get(&[7u8; 32]).unwrap().unwrap().value(), 42);
        assert_eq!(stored_schema(&tx).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn every_altered_dropped_or_cut_chunk_and_another_key_fail_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_rows(dir.path(), 600);
        let key = SecretKey::generate().unwrap();
        let db = redb::Builder::new().create(&path).unwrap();
        let bytes = archive_of(&db, &key, ArchiveKind::Backup);
        assert!(verify(&bytes, &key).is_ok());
        // Cut short anywhere after the header, or at a chunk boundary.
        for cut in [bytes.len() - 1, bytes.len() / 2, 100] {
            assert!(verify(&bytes[..cut], &key).is_err(), "cut at {cut}");
        }
        // One bit flipped.
        let mut flipped = bytes.clone();
        let at = bytes.len() - 40;
        flipped[at] ^= 1;
        assert!(verify(&flipped, &key).is_err());
        // The first chunk dropped (the next one moves up).
        let hlen = u32::from_be_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let first = 20 + hlen;
        let clen = u32::from_be_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
        let mut dropped = bytes[..first].to_vec();
        dropped.extend_from_slice(&bytes[first + 4 + clen..]);
        assert!(verify(&dropped, &key).is_err());
        // The header changed (another domain).
        let mut renamed = bytes.clone();
        let pos = renamed.windows(6).position(|w| w == b"a.test").unwrap();
        renamed[pos] = b'b';
        assert!(verify(&renamed, &key).is_err());
        // Bytes appended after the end.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(verify(&longer, &key).is_err());
        assert!(verify(&bytes, &SecretKey::generate().unwrap()).is_err());
    }

    #[test]
    fn backup_refuses_a_table_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_rows(dir.path(), 1);
        let db = redb::Builder::new().create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(TableDefinition::<u64, u64>::new("new_table"))
            .unwrap();
        tx.commit().unwrap();
        let err = write_archive(
            &db,
            &SecretKey::generate().unwrap(),
            header(ArchiveKind::Backup),
            &mut |_| Ok(()),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(matches!(err, BackupError::UnknownTable(t) if t == "new_table"));
    }

    #[test]
    fn a_ledger_holds_only_erasure_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_rows(dir.path(), 10);
        let key = SecretKey::generate().unwrap();
        let db = redb::Builder::new().create(&path).unwrap();
        let bytes = archive_of(&db, &key, ArchiveKind::ErasureLedger);
        let s = verify(&bytes, &key).unwrap();
        let names: Vec<&str> = s.tables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["handlehash_erased", "remoteid_erased", "userid_erasure"]
        );
    }

    #[test]
    fn a_remote_user_erased_after_the_backup_is_named_for_erasure_by_the_ledger() {
        const ALICE: u64 = (1 << 63) | 5;
        const OTHER: u64 = (1 << 63) | 6;
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_rows(dir.path(), 1);
        let key = SecretKey::generate().unwrap();
        let db = redb::Builder::new().create(&path).unwrap();
        let put = |id: u64| {
            let tx = db.begin_write().unwrap();
            tx.open_table(USERID_REMOTEUSER)
                .unwrap()
                .insert(id, [1u8, 2, 3].as_slice())
                .unwrap();
            tx.commit().unwrap();
        };
        put(ALICE);
        put(OTHER);
        let backup = archive_of(&db, &key, ArchiveKind::Backup);
        // After the backup, ALICE's node asks for her erasure (and one never in the backup).
        let tx = db.begin_write().unwrap();
        tx.open_table(USERID_REMOTEUSER)
            .unwrap()
            .remove(ALICE)
            .unwrap();
        let mut erased = tx.open_table(REMOTEID_ERASED).unwrap();
        erased.insert(ALICE, 77).unwrap();
        erased.insert((1 << 63) | 9, 78).unwrap();
        drop(erased);
        tx.commit().unwrap();
        let ledger = archive_of(&db, &key, ArchiveKind::ErasureLedger);
        let to = dir.path().join("restored.redb");
        let mut a = ArchiveReader::open(backup.as_slice(), key.clone()).unwrap();
        let mut l = ArchiveReader::open(ledger.as_slice(), key).unwrap();
        let (_, applied) = load_archive(&to, &mut a, Some(&mut l), &mut |_| {}).unwrap();
        assert_eq!(
            applied.remote_to_erase,
            [ALICE],
            "OTHER stays, the third was never here"
        );
        let back = redb::Builder::new().create(&to).unwrap();
        let tx = back.begin_read().unwrap();
        let t = tx.open_table(REMOTEID_ERASED).unwrap();
        assert_eq!(t.len().unwrap(), 2, "both records carried into the restore");
    }

    /// Writes `write`'s rows (those of a file of `schema`) into a fresh file, archives it (the
    /// archive says `schema`) and restores the archive in `dir`: the restored file and what the
    /// restore counted.
    fn restored(
        dir: &std::path::Path,
        schema: u32,
        write: fn(&Database),
    ) -> (std::path::PathBuf, Summary) {
        let path = dir.join("node.redb");
        drop(super::super::Store::open(&path, |_| Ok(None)).unwrap());
        let key = SecretKey::generate().unwrap();
        let bytes = {
            let db = redb::Builder::new().create(&path).unwrap();
            write(&db);
            archive_of(&db, &key, ArchiveKind::Backup)
        };
        let mut r = ArchiveReader::open(bytes.as_slice(), key).unwrap();
        assert_eq!(r.header().schema, schema);
        let to = dir.join("restored.redb");
        let (summary, _) = load_archive::<_, &[u8]>(&to, &mut r, None, &mut |_| {}).unwrap();
        (to, summary)
    }

    /// Rows of the typed table `def` in the file at `path`, before the node opens it.
    fn typed_rows<K: Key + 'static, V: Value + 'static>(
        path: &std::path::Path,
        def: TableDefinition<'static, K, V>,
    ) -> u64 {
        let back = redb::Builder::new().create(path).unwrap();
        let tx = back.begin_read().unwrap();
        tx.open_table(def).unwrap().len().unwrap()
    }

    /// Opens the file at `path` as the node does and checks that each step from `schema` on
    /// moved the rows its test file holds behind the seam.
    async fn assert_moved_from(path: &std::path::Path, schema: u32) {
        let s = super::super::Store::open(path, |_| Ok(None)).unwrap().0;
        crate::tests::assert_rows_moved_from(&s, schema).await;
    }

    const TYPED: &str = "restored as the typed table it was";

    /// An archive of schema 9 holds the tables 9 → 10 moved as typed tables: they restore as
    /// such, and the migration moves their rows behind the seam when the node opens the file.
    #[tokio::test]
    async fn a_schema_9_archive_restores_typed_tables_that_the_migration_then_moves() {
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 9, crate::tests::write_schema_9_rows);
        assert!(
            summary
                .tables
                .contains(&(USERID_USERID_FRIEND.name().into(), 2))
        );
        assert_eq!(typed_rows(&to, USERID_USERID_FRIEND_V9), 2, "{TYPED}");
        assert_moved_from(&to, 9).await;
    }

    /// An archive of schema 10 holds the tables 10 → 11 moved (discovery, avatars), and those
    /// later steps moved (communities; the audit log, policy and privacy-centre tables), as
    /// typed tables: they restore as such, and the migrations move their rows behind the seam
    /// when the node opens the file.
    #[tokio::test]
    async fn a_schema_10_archive_restores_typed_tables_that_the_migration_then_moves() {
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 10, crate::tests::write_schema_10_rows);
        assert!(summary.tables.contains(&(EDUINDEX_USERID.name().into(), 2)));
        assert_eq!(typed_rows(&to, EDUINDEX_USERID_V10), 2, "{TYPED}");
        assert_moved_from(&to, 10).await;
    }

    /// A new file holds every table of the catalog, each as the backup knows it: no read
    /// meets a missing table, and no table is known to the backup but never made.
    #[test]
    fn a_new_file_holds_every_table_the_backup_knows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        drop(super::super::Store::open(&path, |_| Ok(None)).unwrap());
        let db = redb::Builder::new().create(&path).unwrap();
        let tx = db.begin_read().unwrap();
        let names: Vec<String> = tx
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        let missing: Vec<&str> = kinds(SCHEMA_VERSION)
            .iter()
            .map(|k| k.name)
            .filter(|n| !names.iter().any(|m| m == n))
            // Schema 1's transaction answers: known only to restore the oldest archives.
            .filter(|n| *n != "origin_txnid_txn")
            .collect();
        assert!(missing.is_empty(), "not made by a new file: {missing:?}");
    }

    /// Which files a peer may fetch (schema 15) go into a backup and come back from it; an
    /// archive of schema 14, which has none of schema 15's tables, restores and opens with
    /// them empty.
    #[tokio::test]
    async fn the_files_offered_to_hosts_are_backed_up_and_an_older_archive_restores_without_them() {
        fn offered(db: &Database) {
            let tx = db.begin_write().unwrap();
            MEDIAID_PEER_OFFERED
                .insert(&tx, &("f1".into(), "h.test".into()), &5)
                .unwrap();
            tx.commit().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), SCHEMA_VERSION, offered);
        assert!(
            summary
                .tables
                .contains(&(MEDIAID_PEER_OFFERED.name().into(), 1))
        );
        let s = super::super::Store::open(&to, |_| Ok(None)).unwrap().0;
        assert_eq!(s.media_offers("f1".into()).await.unwrap(), vec!["h.test"]);

        fn schema_14(db: &Database) {
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("schema_version", 14u32.to_be_bytes().as_slice())
                .unwrap();
            for name in [
                MEDIAID_PEER_OFFERED.name(),
                FANOUTNO_FROM_TELL.name(),
                ORIGIN_ENVID_CALLDIGEST.name(),
                AUTHOR_MEDIAID_FETCH.name(),
            ] {
                tx.delete_table(kv::redb_def(name)).unwrap();
            }
            // Schema 14 held the tables 15 → 16 moves as typed tables.
            crate::tests::typed_before_16(&tx);
            tx.commit().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 14, schema_14);
        assert!(
            !summary
                .tables
                .iter()
                .any(|(t, _)| t == MEDIAID_PEER_OFFERED.name())
        );
        let s = super::super::Store::open(&to, |_| Ok(None)).unwrap().0;
        assert!(s.media_offers("f1".into()).await.unwrap().is_empty());
    }

    /// An archive of schema 11 holds the tables of communities, which 11 → 12 moved (and those
    /// 12 → 13 moved), as typed tables: they restore as such, and the migrations move them
    /// behind the seam.
    #[tokio::test]
    async fn a_schema_11_archive_restores_community_tables_that_the_migration_then_moves() {
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 11, crate::tests::write_schema_11_rows);
        assert!(
            summary
                .tables
                .contains(&(COMMUNITYNO_USERID_MEMBER.name().into(), 2))
        );
        assert_eq!(typed_rows(&to, COMMUNITYNO_USERID_MEMBER_V11), 2, "{TYPED}");
        assert_moved_from(&to, 11).await;
    }

    /// An archive of schema 12 holds the audit log, policy and privacy-centre tables, admin
    /// notes and consent history, which 12 → 13 moved, as typed tables: they restore as such,
    /// and the migration moves them behind the seam.
    #[tokio::test]
    async fn a_schema_12_archive_restores_privacy_and_audit_tables_that_the_migration_then_moves() {
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 12, crate::tests::write_schema_12_rows);
        assert!(
            summary
                .tables
                .contains(&(USERID_POLICYSEQ_ACCEPTED.name().into(), 2))
        );
        assert_eq!(typed_rows(&to, USERID_POLICYSEQ_ACCEPTED_V12), 2, "{TYPED}");
        assert_moved_from(&to, 12).await;
    }

    /// An archive of schema 13 holds the search log, pseudonym keys, legal holds, media
    /// fetches and node keys, which 13 → 14 moved, as typed tables: they restore as such, and
    /// the migration moves them behind the seam.
    #[tokio::test]
    async fn a_schema_13_archive_restores_search_log_holds_fetches_and_keys_that_the_migration_then_moves()
     {
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 13, crate::tests::write_schema_13_rows);
        assert!(
            summary
                .tables
                .contains(&(PSEUDONYM_MS_SEARCHLOG.name().into(), 2))
        );
        assert_eq!(typed_rows(&to, PSEUDONYM_MS_SEARCHLOG_V13), 2, "{TYPED}");
        assert_eq!(typed_rows(&to, USERID_LEGALHOLD_V13), 1, "{TYPED}");
        assert_moved_from(&to, 13).await;
    }

    /// An archive of schema 15 holds the floors, cleared conversations, hidden messages and
    /// the erasure requests to peers with their expected acknowledgements, which 15 → 16
    /// moved, as typed tables: they restore as such, and the migration moves them behind the
    /// seam.
    #[tokio::test]
    async fn a_schema_15_archive_restores_cleared_history_and_peer_erasures_that_the_migration_then_moves()
     {
        let dir = tempfile::tempdir().unwrap();
        let (to, summary) = restored(dir.path(), 15, crate::tests::write_schema_15_rows);
        assert!(
            summary
                .tables
                .contains(&(USERID_CONVNO_SEQ_HIDDEN.name().into(), 2))
        );
        assert!(
            summary
                .tables
                .contains(&(USERID_PEER_ERASURE.name().into(), 2))
        );
        assert_eq!(typed_rows(&to, USERID_CONVNO_SEQ_HIDDEN_V15), 2, "{TYPED}");
        assert_eq!(typed_rows(&to, USERID_PEER_ERASURE_V15), 2, "{TYPED}");
        assert_eq!(typed_rows(&to, USERID_PEER_ERASUREACK_V15), 1, "{TYPED}");
        assert_moved_from(&to, 15).await;
    }

    /// An erasure record and an erased handle as a ledger of `schema` holds them: typed
    /// before 13, behind the seam from it on. The file at `path` is made for the schema.
    fn ledger_of(path: &std::path::Path, schema: u32, key: &SecretKey) -> Vec<u8> {
        use primitives::time::Millis;
        let done = ErasureRecord {
            requested: Millis(1),
            due: Millis(2),
            by: "user".into(),
            reason: String::new(),
            phase: Phase::Done,
            cursor: (0, 0),
            finished: Some(Millis(3)),
        };
        drop(super::super::Store::open(path, |_| Ok(None)).unwrap());
        let db = redb::Builder::new().create(path).unwrap();
        if schema < ERASURE_SEAM {
            crate::tests::write_schema_12_rows(&db);
        }
        let tx = db.begin_write().unwrap();
        if schema < ERASURE_SEAM {
            tx.open_table(USERID_ERASURE_V12)
                .unwrap()
                .insert(11, done.encode().as_slice())
                .unwrap();
            tx.open_table(HANDLEHASH_ERASED_V12)
                .unwrap()
                .insert(&[7u8; 32], (10, 11))
                .unwrap();
        } else {
            USERID_ERASURE.insert(&tx, &11, &done.encode()).unwrap();
            HANDLEHASH_ERASED
                .insert(&tx, &[7u8; 32], &(10, 11))
                .unwrap();
        }
        tx.commit().unwrap();
        let ledger = archive_of(&db, key, ArchiveKind::ErasureLedger);
        assert_eq!(
            ArchiveReader::open(ledger.as_slice(), key.clone())
                .unwrap()
                .header()
                .schema,
            schema
        );
        ledger
    }

    /// A ledger's erasure records and erased handles are read as its schema wrote them and
    /// written as the backup's schema holds them, whichever of the two is older: the user
    /// erased after the backup is recorded as erased and their handle stays taken.
    #[tokio::test]
    async fn a_ledger_applies_across_the_schema_that_moved_its_tables() {
        for (backup_schema, ledger_schema) in [(12, SCHEMA_VERSION), (SCHEMA_VERSION, 12)] {
            let dir = tempfile::tempdir().unwrap();
            let key = SecretKey::generate().unwrap();
            let path = dir.path().join("node.redb");
            drop(super::super::Store::open(&path, |_| Ok(None)).unwrap());
            let backup = {
                let db = redb::Builder::new().create(&path).unwrap();
                if backup_schema < ERASURE_SEAM {
                    crate::tests::write_schema_12_rows(&db);
                }
                archive_of(&db, &key, ArchiveKind::Backup)
            };
            let ledger = ledger_of(&dir.path().join("later.redb"), ledger_schema, &key);
            let to = dir.path().join("restored.redb");
            let mut a = ArchiveReader::open(backup.as_slice(), key.clone()).unwrap();
            assert_eq!(a.header().schema, backup_schema);
            let mut l = ArchiveReader::open(ledger.as_slice(), key).unwrap();
            let (_, applied) = load_archive(&to, &mut a, Some(&mut l), &mut |_| {}).unwrap();
            assert_eq!(applied.recorded, 1, "{backup_schema} from {ledger_schema}");
            let s = super::super::Store::open(&to, |_| Ok(None)).unwrap().0;
            let rec = s.erasure_of(11).await.unwrap().unwrap();
            assert_eq!(
                rec.phase,
                Phase::Done,
                "{backup_schema} from {ledger_schema}"
            );
            assert_eq!(s.erased_user([7u8; 32]).await.unwrap(), Some(11));
        }
    }

    /// A ledger that says a user of the backup was erased lifts their legal hold, in the table
    /// as the backup's schema holds it: typed in a backup of schema 13, behind the seam in one
    /// of 14. (Removing it from the other form leaves the hold, and the erasure stops at it.)
    #[tokio::test]
    async fn a_ledger_lifts_a_hold_as_the_backup_schema_holds_it() {
        for backup_schema in [13, SCHEMA_VERSION] {
            let dir = tempfile::tempdir().unwrap();
            let key = SecretKey::generate().unwrap();
            let path = dir.path().join("node.redb");
            {
                let s = super::super::Store::open(&path, |_| Ok(None)).unwrap().0;
                s.insert_account(crate::tests::account(11, "held"))
                    .await
                    .unwrap();
                s.write(|tx| USERID_LEGALHOLD.insert(tx, &11, &(5, String::new())))
                    .await
                    .unwrap();
            }
            if backup_schema < HOLD_SEAM {
                crate::tests::as_schema(&path, backup_schema, |tx| {
                    tx.open_table(USERID_LEGALHOLD_V13)
                        .unwrap()
                        .insert(11, (5, ""))
                        .unwrap();
                });
            }
            let backup = {
                let db = redb::Builder::new().create(&path).unwrap();
                archive_of(&db, &key, ArchiveKind::Backup)
            };
            let ledger = ledger_of(&dir.path().join("later.redb"), SCHEMA_VERSION, &key);
            let to = dir.path().join("restored.redb");
            let mut a = ArchiveReader::open(backup.as_slice(), key.clone()).unwrap();
            assert_eq!(a.header().schema, backup_schema);
            let mut l = ArchiveReader::open(ledger.as_slice(), key).unwrap();
            let (_, applied) = load_archive(&to, &mut a, Some(&mut l), &mut |_| {}).unwrap();
            assert_eq!(applied.to_erase, [11], "{backup_schema}");
            let s = super::super::Store::open(&to, |_| Ok(None)).unwrap().0;
            assert!(
                s.legal_holds().await.unwrap().is_empty(),
                "the hold is lifted ({backup_schema})"
            );
        }
    }

    /// What restore promises about freed pages: after a restore-time erasure removed rows,
    /// `compact` leaves no page of the file holding them (redb does not zero freed pages, so
    /// without it the removed rows stay readable in the file).
    #[test]
    fn compaction_leaves_no_removed_row_readable_in_the_file() {
        const T: TableDefinition<u64, &[u8]> = TableDefinition::new("harden_compaction");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let marker = b"RemovedRowMarker4471";
        {
            let db = redb::Builder::new().create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(T).unwrap();
                for i in 0..2000u64 {
                    t.insert(i, marker.as_slice()).unwrap();
                }
                t.insert(u64::MAX, b"kept".as_slice()).unwrap();
            }
            tx.commit().unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(T)
                .unwrap()
                .retain(|k, _| k == u64::MAX)
                .unwrap();
            tx.commit().unwrap();
        }
        let found = |p: &std::path::Path| {
            let raw = std::fs::read(p).unwrap();
            raw.windows(marker.len()).any(|w| w == marker)
        };
        assert!(
            found(&path),
            "the removed rows linger in freed pages (the control)"
        );
        compact(&path).unwrap();
        assert!(!found(&path), "a removed row is readable after compaction");
        let db = redb::Builder::new().create(&path).unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(T).unwrap();
        assert_eq!(t.get(u64::MAX).unwrap().unwrap().value(), b"kept");
        assert!(t.get(0).unwrap().is_none());
    }
}
