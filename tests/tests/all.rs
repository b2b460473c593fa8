//! The black-box suite as one test binary. Each module is one surface of the node (accounts,
//! messaging, federation, …), tested over HTTPS against real nodes from `tests::TestNode`; run
//! one surface with `cargo test -p tests -- messaging::`.

mod accounts;
mod bounds;
mod communities;
mod consents;
mod deletion;
mod discovery;
mod events;
mod federation;
mod federation_chat;
mod federation_media;
mod federation_pacing;
mod federation_profiles;
mod federation_residency;
mod federation_security;
mod hardening;
mod http_edge;
mod media;
mod messaging;
mod operations;
mod privacy;
mod profile;
mod public;
mod query;
mod search;
// Search over communities and posts (issue 23).
mod search_posts;
mod server;
mod storage;
// Friends (issue 22).
mod federation_friends;
mod friends;
mod unread;
// Media across nodes: limits and retention (issue 25).
mod federation_media_rules;
// Node-written notices as code + parameters in the asker's language; policy Accept-Language (issue 21).
mod notices;
// Avatars as media across nodes (issue 25).
mod federation_avatars;
// Communities across nodes (issue 23).
mod federation_communities;
// Calls to a community's host applied once, retried on a lost answer (issue 23).
mod federation_community_calls;
// Behaviour log and suggested communities (issue 23).
mod behaviour;
// The host re-checks residency and media limits when it relays (issue 25).
mod federation_relay;
