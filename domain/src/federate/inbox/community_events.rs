//! `Inbox::community_event`: applies a `community-event` envelope (issue 23) — the host of a
//! community tells this node that a post or comment was made there that some of this node's
//! users, members of it, may see. Each named user who still has the community among theirs
//! (`storage/remote_communities.rs`) gets a live event with its address, `<id>@<origin>`;
//! the others are passed over (they left, or were erased). Repeats are harmless: an event
//! only makes a client read the feed again.

use federation::{CommunityEventContent, Envelope, MAX_EVENT_MEMBERS, address_domain};

use super::{Inbox, Rejection, reject};

impl Inbox {
    pub(super) async fn community_event(
        &self,
        env: &Envelope,
        c: CommunityEventContent,
    ) -> Result<(), Rejection> {
        if crate::community::parse_community_id(&c.community).is_none()
            || c.post == 0
            || c.comment == Some(0)
            || c.members.is_empty()
            || c.members.len() > MAX_EVENT_MEMBERS
        {
            return Err(reject(
                "malformed",
                "a community event names a community, a post and 1 to 256 members",
            ));
        }
        let own = self.peers.own_domain();
        let mut users = Vec::with_capacity(c.members.len());
        for m in &c.members {
            if !federation::valid_address(m) || address_domain(m) != Some(own) {
                return Err(reject("not_local", "a member named is not of this node"));
            }
            let handle = m.rsplit_once('@').map_or("", |(h, _)| h);
            if let Some(u) = self.store.user_by_handle(handle.to_string()).await? {
                users.push(u);
            }
        }
        let address = format!("{}@{}", c.community, env.origin);
        let (users, pos) = self
            .store
            .remote_community_event(address, c.post, c.comment.unwrap_or(0), users)
            .await?;
        if !users.is_empty() {
            self.hub.publish(&users, pos);
        }
        Ok(())
    }
}
