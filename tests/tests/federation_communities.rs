//! Communities across nodes (issue 23): a community is hosted by its node; a user of a
//! partner node names it `<id>@<host>` and reads, joins, posts, comments and favourites
//! through the host, under the residency rule; the host's bans apply to them, and their
//! erasure removes what they wrote there.

use std::sync::Arc;

use http::StatusCode;
use node::AdminRequest;
use serde_json::{Value, json};
use tests::node::{ManualClock, Millis};
use tests::{Client, eventually, federation, phone};

fn body(r: &tests::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

async fn community(c: &Client, t: &str, name: &str, visibility: &str) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/communities",
            Some(t),
            Some(&json!({"name": name, "visibility": visibility})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["id"].as_str().unwrap().to_string()
}

async fn join(c: &Client, t: &str, id: &str) -> tests::Reply {
    c.call(
        "POST",
        &format!("/api/v1/communities/{id}/join"),
        Some(t),
        None,
    )
    .await
}

async fn post(c: &Client, t: &str, id: &str, text: &str) -> tests::Reply {
    c.call(
        "POST",
        &format!("/api/v1/communities/{id}/posts"),
        Some(t),
        Some(&json!({"text": text})),
    )
    .await
}

async fn moderate(c: &Client, t: &str, id: &str, address: &str, action: &str) {
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/moderation"),
            Some(t),
            Some(&json!({"address": address, "action": action})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
}

/// (author, text) of the first page of `id`'s feed as `t` sees it.
async fn feed(c: &Client, t: &str, id: &str) -> Vec<(String, String)> {
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts"), Some(t))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    r.json()["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["author"].as_str().unwrap().to_string(),
                p["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn pair(author: &str, text: &str) -> (String, String) {
    (author.to_string(), text.to_string())
}

#[tokio::test]
async fn a_remote_member_joins_posts_comments_and_reads_the_feed_through_the_host() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann, "南京读书会", "public").await;
    let remote = format!("{id}@a.test");

    // Found on the host by its address.
    let r = b
        .get(&format!("/api/v1/communities/{remote}"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["id"], remote.as_str());
    assert_eq!(v["name"], "南京读书会");
    assert_eq!(v["owner"], "ann@a.test");
    assert_eq!(v["role"], Value::Null);

    // Posting needs joining, as for a local user.
    let r = post(&b, &bob, &remote, "还没加入").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", body(&r));
    let r = join(&b, &bob, &remote).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json()["status"], "member");

    let r = post(&b, &bob, &remote, "长江大桥的照片").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    assert_eq!(r.json()["author"], "bob@b.test");
    assert_eq!(r.json()["community"], remote.as_str());

    // The host's member sees it; the remote member reads the host's feed.
    assert_eq!(
        feed(&a, &ann, &id).await,
        [pair("bob@b.test", "长江大桥的照片")]
    );
    let r = post(&a, &ann, &id, "欢迎").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let ann_post = r.json()["id"].as_u64().unwrap();
    assert_eq!(
        feed(&b, &bob, &remote).await,
        [
            pair("ann@a.test", "欢迎"),
            pair("bob@b.test", "长江大桥的照片")
        ]
    );

    // Comments and favourites go through the host too.
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{remote}/posts/{ann_post}/comments"),
            Some(&bob),
            Some(&json!({"text": "谢谢"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let r = a
        .get(
            &format!("/api/v1/communities/{id}/posts/{ann_post}/comments"),
            Some(&ann),
        )
        .await;
    assert_eq!(r.json()["comments"][0]["author"], "bob@b.test");
    assert_eq!(r.json()["comments"][0]["text"], "谢谢");
    let r = b
        .get(
            &format!("/api/v1/communities/{remote}/posts/{ann_post}/comments"),
            Some(&bob),
        )
        .await;
    assert_eq!(r.json()["comments"][0]["text"], "谢谢", "{}", body(&r));
    let r = b
        .call(
            "PUT",
            &format!("/api/v1/communities/{remote}/posts/{ann_post}/favourite"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    let r = b
        .get(&format!("/api/v1/communities/{remote}/posts"), Some(&bob))
        .await;
    assert_eq!(r.json()["posts"][0]["favourite"], true);

    // Every call is in Bob's disclosure log; Ann's post reaching b.test is in hers.
    let bobs = nodes[1].node().disclosures("bob").await.unwrap();
    assert!(
        bobs.iter()
            .any(|(peer, kind, _, n)| peer == "a.test" && kind == "community" && *n >= 5),
        "{bobs:?}"
    );
    let anns = nodes[0].node().disclosures("ann").await.unwrap();
    assert!(
        anns.iter()
            .any(|(peer, kind, _, _)| peer == "b.test" && kind == "community"),
        "{anns:?}"
    );

    // A ban on the host stops the remote member in a public community too.
    moderate(&a, &ann, &id, "bob@b.test", "ban").await;
    let r = post(&b, &bob, &remote, "被禁以后").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", body(&r));
    assert_eq!(r.error_code(), "banned");
    assert_eq!(feed(&a, &ann, &id).await.len(), 2, "nothing new arrived");
}

#[tokio::test]
async fn a_private_community_admits_a_remote_user_on_approval_and_a_ban_stops_them() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann, "closed", "private").await;
    let remote = format!("{id}@a.test");

    let r = join(&b, &bob, &remote).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", body(&r));
    assert_eq!(r.json()["status"], "asked");
    let r = post(&b, &bob, &remote, "让我进去").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));

    moderate(&a, &ann, &id, "bob@b.test", "admit").await;
    let r = post(&b, &bob, &remote, "谢谢批准").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await, [pair("bob@b.test", "谢谢批准")]);

    // The host's ban applies to the remote member at once: as for a local member banned from
    // a private community, it is no longer there for them.
    moderate(&a, &ann, &id, "bob@b.test", "ban").await;
    let r = post(&b, &bob, &remote, "被禁以后").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));
    let r = b
        .get(&format!("/api/v1/communities/{remote}/posts"), Some(&bob))
        .await;
    assert_ne!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await.len(), 1, "nothing new arrived");
    let r = a
        .get(&format!("/api/v1/communities/{id}/log"), Some(&ann))
        .await;
    let log = r.json();
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "ban" && e["target"] == "bob@b.test"),
        "{log}"
    );
}

#[tokio::test]
async fn the_remote_authors_erasure_removes_their_posts_on_the_host() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann, "walks", "public").await;
    let remote = format!("{id}@a.test");
    assert_eq!(join(&b, &bob, &remote).await.status, StatusCode::OK);
    let r = post(&b, &bob, &remote, "玄武湖边散步").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let p = r.json()["id"].as_u64().unwrap();
    let r = post(&a, &ann, &id, "安的帖子").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let ann_post = r.json()["id"].as_u64().unwrap();
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{remote}/posts/{ann_post}/comments"),
            Some(&bob),
            Some(&json!({"text": "鲍勃的评论"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await.len(), 2);
    let shown = |r: &tests::Reply| (r.json()["members"].as_u64(), r.status);
    let r = a
        .get(&format!("/api/v1/communities/{id}"), Some(&ann))
        .await;
    assert_eq!(shown(&r), (Some(2), StatusCode::OK));
    // Sealed at rest under Bob's shadow key on the host.
    let raw = std::fs::read(nodes[0].db_path()).unwrap();
    assert!(
        !contains(&raw, "玄武湖边散步"),
        "the post is sealed at rest"
    );
    assert!(
        !contains(&raw, "bob@b.test"),
        "so is the remote author's address"
    );

    nodes[1]
        .admin(AdminRequest::UsersErase {
            address: "bob@b.test".into(),
            reason: "test".into(),
        })
        .await;
    eventually(10, "bob's post leaves the host", || async {
        (feed(&a, &ann, &id).await == [pair("ann@a.test", "安的帖子")]).then_some(())
    })
    .await;
    let r = a
        .get(&format!("/api/v1/communities/{id}/posts/{p}"), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Not only unreadable (their shadow key is gone): their rows are gone too — the comment
    // no longer counts on Ann's post, and they no longer count as a member.
    let r = a
        .get(
            &format!("/api/v1/communities/{id}/posts/{ann_post}"),
            Some(&ann),
        )
        .await;
    assert_eq!(r.json()["comments"], 0, "{}", body(&r));
    let r = a
        .get(&format!("/api/v1/communities/{id}"), Some(&ann))
        .await;
    assert_eq!(shown(&r), (Some(1), StatusCode::OK));
}

#[tokio::test]
async fn a_community_of_another_region_needs_consent_and_the_host_keeps_back_its_users_posts() {
    let nodes = federation(&[("a.test", "CN"), ("c.test", "EU")], "").await;
    let (a, c) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let carol = c.user("carol", &phone(3)).await;
    let id = community(&a, &ann, "open", "public").await;
    let remote = format!("{id}@a.test");
    let file = upload(&a, &ann, "application/octet-stream", vec![9; 1000]).await;
    let with_file = post_with_file(&a, &ann, &id, "附件", &file).await;
    let r = post(&a, &ann, &id, "只给本区域").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let media_path = format!("/api/v1/communities/{remote}/posts/{with_file}/media/{file}");

    // Carol has not consented: 451, nothing sent, nothing logged.
    let r = c
        .get(&format!("/api/v1/communities/{remote}"), Some(&carol))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
        "{}",
        body(&r)
    );
    assert_eq!(r.error_code(), "residency");
    let r = join(&c, &carol, &remote).await;
    assert_eq!(r.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    assert!(
        nodes[1]
            .node()
            .disclosures("carol")
            .await
            .unwrap()
            .is_empty()
    );
    let r = a
        .get(&format!("/api/v1/communities/{id}/members"), Some(&ann))
        .await;
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 1);

    // With her consent she joins and posts; Ann's post stays home until Ann consents too.
    let r = c.consent(&carol, "cross_border_transfer", true).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(join(&c, &carol, &remote).await.status, StatusCode::OK);
    // Nor is she told of Ann's new posts: the first event she gets is of her own.
    let mut ws = c.ws(Some(&carol), None).await;
    let r = post(&a, &ann, &id, "还是只给本区域").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = post(&c, &carol, &remote, "来自欧洲").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let e = tests::next_of(&mut ws, "community").await;
    assert_eq!(e["post"], r.json()["id"], "her own post, not Ann's");
    // The members list leaves Ann out too.
    let listed: Vec<String> = members(&c, &carol, &remote)
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(listed, ["carol@c.test"]);
    assert_eq!(
        feed(&c, &carol, &remote).await,
        [pair("carol@c.test", "来自欧洲")]
    );
    let r = c
        .get(&format!("/api/v1/communities/{remote}"), Some(&carol))
        .await;
    assert_eq!(
        r.json()["owner"],
        Value::Null,
        "the owner's address stays home"
    );
    // Her media neither, when asked for by the post's number.
    let r = c.get(&media_path, Some(&carol)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));
    assert!(
        nodes[0].node().disclosures("ann").await.unwrap().is_empty(),
        "nothing of Ann's went"
    );
    let r = a.consent(&ann, "cross_border_transfer", true).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        feed(&c, &carol, &remote).await,
        [
            pair("carol@c.test", "来自欧洲"),
            pair("ann@a.test", "还是只给本区域"),
            pair("ann@a.test", "只给本区域"),
            pair("ann@a.test", "附件"),
        ]
    );
    let r = c.get(&media_path, Some(&carol)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert!(r.body == vec![9; 1000]);
    assert_eq!(members(&c, &carol, &remote).await.len(), 2, "with Ann now");
}

/// (id, name, role, reachable) of `t`'s communities, in the order listed.
async fn mine(c: &Client, t: &str) -> Vec<(String, String, Value, bool)> {
    let r = c.get("/api/v1/communities/mine", Some(t)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    r.json()["communities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
                c["role"].clone(),
                c["reachable"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn my_communities_list_those_of_partner_nodes_as_their_hosts_show_them() {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let book = community(&a, &ann, "南京读书会", "public").await;
    let run = community(&a, &ann, "跑步", "public").await;
    let closed = community(&a, &ann, "内部", "private").await;
    let here = community(&b, &bob, "本地", "public").await;
    let (book_at, run_at, closed_at) = (
        format!("{book}@a.test"),
        format!("{run}@a.test"),
        format!("{closed}@a.test"),
    );
    assert_eq!(
        mine(&b, &bob).await.len(),
        1,
        "only this node's, before joining"
    );
    for (id, status) in [
        (&book_at, StatusCode::OK),
        (&run_at, StatusCode::OK),
        (&closed_at, StatusCode::ACCEPTED),
    ] {
        let r = join(&b, &bob, id).await;
        assert_eq!(r.status, status, "{}", body(&r));
    }
    let member = json!("member");
    let mut listed = mine(&b, &bob).await;
    listed[1..].sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (here.clone(), "本地".to_string(), json!("owner"), true),
        (
            book_at.clone(),
            "南京读书会".to_string(),
            member.clone(),
            true,
        ),
        (run_at.clone(), "跑步".to_string(), member.clone(), true),
        (closed_at.clone(), "内部".to_string(), Value::Null, true),
    ];
    want[1..].sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(listed, want, "the private one shows the request");

    // Left here, banned there: gone from the list, and the host is not asked again.
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{run_at}/leave"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    moderate(&a, &ann, &book, "bob@b.test", "ban").await;
    let ids: Vec<String> = mine(&b, &bob).await.into_iter().map(|c| c.0).collect();
    assert_eq!(ids, [here.clone(), closed_at.clone()]);

    // The export holds what this node knows, without asking the host.
    assert_eq!(
        b.call("POST", "/api/v1/me/export", Some(&bob), None)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let v = b.get("/api/v1/me/export", Some(&bob)).await.json();
    let held: Vec<(&str, &Value)> = v["communities"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), &m["role"]))
        .collect();
    assert_eq!(
        held,
        [
            (here.as_str(), &json!("owner")),
            (closed_at.as_str(), &Value::Null)
        ]
    );

    // Renamed on the host: listed by its new name, which is what is kept as last known.
    let r = a
        .call(
            "PATCH",
            &format!("/api/v1/communities/{closed}"),
            Some(&ann),
            Some(&json!({"name": "内部资料"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(mine(&b, &bob).await[1].1, "内部资料");

    // A host that is down leaves its community listed as last known.
    nodes[0].stop().await;
    assert_eq!(
        mine(&b, &bob).await,
        [
            (here, "本地".to_string(), json!("owner"), true),
            (closed_at, "内部资料".to_string(), Value::Null, false),
        ]
    );
}

#[tokio::test]
async fn a_remote_member_edits_and_deletes_their_own_posts_and_comments_through_the_host() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann, "读书会", "public").await;
    let remote = format!("{id}@a.test");
    assert_eq!(join(&b, &bob, &remote).await.status, StatusCode::OK);
    let r = post(&b, &bob, &remote, "初稿").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let p = r.json()["id"].as_u64().unwrap();
    let anns = post(&a, &ann, &id, "安的帖子").await.json()["id"]
        .as_u64()
        .unwrap();
    let at = |path: &str| format!("/api/v1/communities/{remote}/posts/{path}");

    // Edited: the host holds the new text, and the answer is the post as it is now.
    let r = b
        .call(
            "PATCH",
            &at(&p.to_string()),
            Some(&bob),
            Some(&json!({"text": "定稿"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json()["text"], "定稿");
    assert!(r.json()["edited"].is_string(), "{}", body(&r));
    assert_eq!(
        feed(&a, &ann, &id).await,
        [pair("ann@a.test", "安的帖子"), pair("bob@b.test", "定稿")]
    );
    // Text only crosses; and only the author edits.
    let r = b
        .call(
            "PATCH",
            &at(&p.to_string()),
            Some(&bob),
            Some(&json!({"text": "x", "place": "南京"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", body(&r));
    let r = b
        .call(
            "PATCH",
            &at(&anns.to_string()),
            Some(&bob),
            Some(&json!({"text": "改别人的"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", body(&r));

    // A comment, edited, then deleted.
    let r = b
        .call(
            "POST",
            &at(&format!("{anns}/comments")),
            Some(&bob),
            Some(&json!({"text": "好"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let cm = r.json()["id"].as_u64().unwrap();
    let r = b
        .call(
            "PATCH",
            &at(&format!("{anns}/comments/{cm}")),
            Some(&bob),
            Some(&json!({"text": "很好"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json()["text"], "很好");
    let comments = |c: Client, t: String, path: String| async move {
        c.get(&path, Some(&t)).await.json()["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let on_host = format!("/api/v1/communities/{id}/posts/{anns}/comments");
    assert_eq!(
        comments(a.clone(), ann.clone(), on_host.clone()).await,
        ["很好"]
    );
    let r = b
        .call(
            "DELETE",
            &at(&format!("{anns}/comments/{cm}")),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    assert!(comments(a.clone(), ann.clone(), on_host).await.is_empty());

    // The post, deleted: gone on the host; deleting it again finds nothing.
    let r = b
        .call("DELETE", &at(&p.to_string()), Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await, [pair("ann@a.test", "安的帖子")]);
    let r = b
        .call("DELETE", &at(&p.to_string()), Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));
    // Nor may a member delete another's post.
    let r = b
        .call("DELETE", &at(&anns.to_string()), Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", body(&r));

    // Made a moderator there, he removes a member's post through the host, and the
    // community's log names him.
    let cal = a.user("cal", &phone(3)).await;
    assert_eq!(join(&a, &cal, &id).await.status, StatusCode::OK);
    let cals = post(&a, &cal, &id, "卡尔的帖子").await.json()["id"]
        .as_u64()
        .unwrap();
    moderate(&a, &ann, &id, "bob@b.test", "moderator").await;
    let r = b
        .call("DELETE", &at(&cals.to_string()), Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await, [pair("ann@a.test", "安的帖子")]);
    let r = a
        .get(&format!("/api/v1/communities/{id}/log"), Some(&ann))
        .await;
    assert!(body(&r).contains("bob@b.test"), "{}", body(&r));
}

/// (community, text) of each post of a page of `t`'s feed, and the page's `next` and `cursor`.
async fn my_feed_page(c: &Client, t: &str, query: &str) -> (Vec<(String, String)>, Value, Value) {
    let r = c
        .get(&format!("/api/v1/communities/feed?limit=2{query}"), Some(t))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let v = r.json();
    let posts = v["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["community"].as_str().unwrap().to_string(),
                p["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (posts, v["next"].clone(), v["cursor"].clone())
}

#[tokio::test]
async fn my_feed_and_favourites_merge_partner_nodes_communities_newest_first_page_by_page() {
    let clock = Arc::new(ManualClock::new(Millis(tests::now_ms())));
    let nodes = tests::federation_on(
        &[("a.test", "CN"), ("b.test", "CN")],
        &[],
        "",
        "",
        clock.clone(),
    )
    .await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let there = community(&a, &ann, "那边", "public").await;
    let remote = format!("{there}@a.test");
    let here = community(&b, &bob, "这边", "public").await;
    assert_eq!(join(&b, &bob, &remote).await.status, StatusCode::OK);
    // Alternating, a second apart: here 1, there 2, there 3, here 4, there 5.
    for (on, text) in [
        ("here", "一"),
        ("there", "二"),
        ("there", "三"),
        ("here", "四"),
        ("there", "五"),
    ] {
        clock.advance_ms(1_000);
        let r = match on {
            "here" => post(&b, &bob, &here, text).await,
            _ => post(&a, &ann, &there, text).await,
        };
        assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    }
    let p = |c: &str, t: &str| (c.to_string(), t.to_string());
    let (first, next, cursor) = my_feed_page(&b, &bob, "").await;
    assert_eq!(first, [p(&remote, "五"), p(&here, "四")]);
    assert_eq!(
        next,
        Value::Null,
        "a partner node's post is in: only the cursor pages"
    );
    let cursor = cursor.as_str().unwrap().to_string();
    let q = |c: &str| format!("&cursor={}", c.replace(':', "%3A"));
    let (second, _, cursor) = my_feed_page(&b, &bob, &q(&cursor)).await;
    assert_eq!(second, [p(&remote, "三"), p(&remote, "二")]);
    let (third, _, cursor) = my_feed_page(&b, &bob, &q(cursor.as_str().unwrap())).await;
    assert_eq!(third, [p(&here, "一")]);
    assert_eq!(cursor, Value::Null, "the end");

    // My favourites merge the same way: a remote favourite is kept by its host.
    let fav = |c: &Client, t: &str, path: String| {
        let (c, t) = (c.clone(), t.to_string());
        async move { c.call("PUT", &path, Some(&t), None).await.status }
    };
    let remote_posts = b
        .get(&format!("/api/v1/communities/{remote}/posts"), Some(&bob))
        .await
        .json();
    let (five, two) = (
        remote_posts["posts"][0]["id"].as_u64().unwrap(),
        remote_posts["posts"][2]["id"].as_u64().unwrap(),
    );
    let local_posts = b
        .get(&format!("/api/v1/communities/{here}/posts"), Some(&bob))
        .await
        .json();
    let four = local_posts["posts"][0]["id"].as_u64().unwrap();
    for path in [
        format!("/api/v1/communities/{remote}/posts/{five}/favourite"),
        format!("/api/v1/communities/{remote}/posts/{two}/favourite"),
        format!("/api/v1/communities/{here}/posts/{four}/favourite"),
    ] {
        assert_eq!(fav(&b, &bob, path).await, StatusCode::NO_CONTENT);
    }
    let r = b
        .get("/api/v1/communities/favourites?limit=2", Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let texts = |v: &Value| -> Vec<String> {
        v["posts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap().to_string())
            .collect()
    };
    let v = r.json();
    assert_eq!(texts(&v), ["五", "四"]);
    let cursor = v["cursor"].as_str().unwrap().replace(':', "%3A");
    let r = b
        .get(
            &format!("/api/v1/communities/favourites?limit=2&cursor={cursor}"),
            Some(&bob),
        )
        .await;
    assert_eq!(texts(&r.json()), ["二"]);
    assert_eq!(r.json()["cursor"], Value::Null);
    let r = b
        .get("/api/v1/communities/favourites?before=999999", Some(&bob))
        .await;
    assert_eq!(texts(&r.json()), ["四"], "`before`: this node's only");

    // `before` pages this node's posts only, as it did.
    let r = b
        .get("/api/v1/communities/feed?before=999999&limit=5", Some(&bob))
        .await;
    let v = r.json();
    let texts: Vec<&str> = v["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["四", "一"]);
    assert!(v.get("cursor").is_none(), "{}", body(&r));
    // A cursor is the server's own, and goes without `before`.
    for bad in [
        "&cursor=l%3A0",
        "&cursor=nonsense",
        "&before=5&cursor=l%3At",
    ] {
        let r = b
            .get(
                &format!("/api/v1/communities/feed?limit=2{bad}"),
                Some(&bob),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            body(&r)
        );
    }
    drop(cursor);
}

#[tokio::test]
async fn a_host_that_takes_the_call_and_says_nothing_is_reported_within_the_call_timeout() {
    let (host, _nodes, a, alice) =
        tests::alice_in_a_hosted_group("community_call_timeout_ms = 500").await;
    host.hold();
    // Without the deadline the one attempt would wait for the request timeout (30 s), and
    // then be sent twice more: the bound here only keeps a failing run short.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        a.get("/api/v1/communities/00000000000000c1@e.test", Some(&alice)),
    )
    .await
    .expect("answered within the call timeout");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", body(&r));
    assert_eq!(r.json()["error"]["code"], "peer_unreachable");
    assert_eq!(
        host.community_calls(),
        1,
        "a hung attempt is not sent again"
    );

    // Once the host answers, its answer (it hosts no such community) is the user's.
    host.release();
    let r = a
        .get("/api/v1/communities/00000000000000c1@e.test", Some(&alice))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));
    assert_eq!(host.community_calls(), 2);
}

async fn upload(c: &Client, t: &str, ct: &str, data: Vec<u8>) -> String {
    let r = c.raw("POST", "/api/v1/media", Some(t), ct, data).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["media_id"].as_str().unwrap().to_string()
}

/// The number of a post `t` makes in `id` with `text` and the file `media` in it.
async fn post_with_file(c: &Client, t: &str, id: &str, text: &str, media: &str) -> u64 {
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/posts"),
            Some(t),
            Some(&json!({
                "text": text,
                "media": [{"type": "file", "media_id": media, "name": "报告.bin"}],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["id"].as_u64().unwrap()
}

#[tokio::test]
async fn a_remote_member_reads_the_media_a_post_shows_through_the_host_part_by_part() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let open = community(&a, &ann, "资料", "public").await;
    let closed = community(&a, &ann, "内部", "private").await;
    // Three parts of 256 KiB, the last one short.
    let data: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let m = upload(&a, &ann, "application/octet-stream", data.clone()).await;
    let other = upload(&a, &ann, "application/octet-stream", vec![1; 10]).await;
    let p = post_with_file(&a, &ann, &open, "年度报告", &m).await;
    let hidden = post_with_file(&a, &ann, &closed, "内部报告", &m).await;
    let r = post(&a, &ann, &open, "没有附件").await;
    let plain = r.json()["id"].as_u64().unwrap();
    let at = format!("{open}@a.test");
    assert_eq!(join(&b, &bob, &at).await.status, StatusCode::OK);

    let r = b
        .get(&format!("/api/v1/communities/{at}/posts"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(
        r.json()["posts"][1]["media"],
        json!([{"type": "file", "media_id": m, "name": "报告.bin"}])
    );
    assert_eq!(r.json()["posts"][1]["id"], p);
    assert_eq!(r.json()["posts"][0]["media"], json!([]));
    let r = b
        .get(
            &format!("/api/v1/communities/{at}/posts/{p}/media/{m}"),
            Some(&bob),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert!(r.body == data, "the same bytes, in order");
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(r.headers["content-disposition"], "attachment");

    // Media the post does not show (also when another post shows it), and a post of a
    // community bob may not read: not found, the same answer as for no such media.
    for path in [
        format!("/api/v1/communities/{at}/posts/{p}/media/{other}"),
        format!("/api/v1/communities/{at}/posts/{plain}/media/{m}"),
        format!("/api/v1/communities/{closed}@a.test/posts/{hidden}/media/{m}"),
        format!("/api/v1/communities/{at}/posts/{p}/media/no-such-media"),
    ] {
        let r = b.get(&path, Some(&bob)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The host's own route serves its users the same way.
    let r = a
        .get(
            &format!("/api/v1/communities/{open}/posts/{p}/media/{m}"),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert!(r.body == data);
}

#[tokio::test]
async fn a_remote_member_hears_of_new_posts_and_comments_they_may_see_from_the_host() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let cat = b.user("cat", &phone(3)).await;
    let id = community(&a, &ann, "江边", "public").await;
    let at = format!("{id}@a.test");
    assert_eq!(join(&b, &bob, &at).await.status, StatusCode::OK);
    let mut ws = b.ws(Some(&bob), None).await;
    let mut other = b.ws(Some(&cat), None).await;

    let r = post(&a, &ann, &id, "涨水了").await;
    let p = r.json()["id"].as_u64().unwrap();
    let e = tests::next_of(&mut ws, "community").await;
    assert_eq!(
        (&e["community"], e["post"].as_u64(), &e["comment"]),
        (&json!(at), Some(p), &Value::Null)
    );
    let r = a
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/posts/{p}/comments"),
            Some(&ann),
            Some(&json!({"text": "注意安全"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let cm = r.json()["id"].as_u64();
    let e = tests::next_of(&mut ws, "community").await;
    assert_eq!((e["post"].as_u64(), e["comment"].as_u64()), (Some(p), cm));
    assert!(!contains(e.to_string().as_bytes(), "注意"), "numbers only");

    // A friends-only post is no event for bob, who is not ann's friend: the next one he hears
    // of is the members' post after it.
    let r = a
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/posts"),
            Some(&ann),
            Some(&json!({"text": "只给朋友", "visibility": "friends"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let after = post(&a, &ann, &id, "大家好").await.json()["id"].as_u64();
    let e = tests::next_of(&mut ws, "community").await;
    assert_eq!(e["post"].as_u64(), after);

    // Cat, on the same node but no member, heard of none of it: her first community event is
    // of the community she joins now.
    assert_eq!(join(&b, &cat, &at).await.status, StatusCode::OK);
    let last = post(&a, &ann, &id, "欢迎").await.json()["id"].as_u64();
    let e = tests::next_of(&mut other, "community").await;
    assert_eq!((&e["community"], e["post"].as_u64()), (&json!(at), last));
}

/// (address, role, status) of the members `t` is shown of `id`.
async fn members(c: &Client, t: &str, id: &str) -> Vec<(String, Value, String)> {
    let r = c
        .get(&format!("/api/v1/communities/{id}/members"), Some(t))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let mut list: Vec<(String, Value, String)> = r.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().to_string(),
                m["role"].clone(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

#[tokio::test]
async fn a_moderator_of_another_node_lists_members_admits_bans_and_reads_the_log_through_the_host()
{
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let cat = b.user("cat", &phone(3)).await;
    let id = community(&a, &ann, "内部", "private").await;
    let at = format!("{id}@a.test");
    assert_eq!(join(&b, &bob, &at).await.status, StatusCode::ACCEPTED);
    moderate(&a, &ann, &id, "bob@b.test", "admit").await;
    moderate(&a, &ann, &id, "bob@b.test", "moderator").await;
    assert_eq!(join(&b, &cat, &at).await.status, StatusCode::ACCEPTED);

    let (owner, moderator) = (json!("owner"), json!("moderator"));
    assert_eq!(
        members(&b, &bob, &at).await,
        [
            ("ann@a.test".into(), owner.clone(), "member".into()),
            ("bob@b.test".into(), moderator.clone(), "member".into()),
            ("cat@b.test".into(), Value::Null, "asked".into()),
        ]
    );
    // Bob lets cat in through the host, then bans her; he may not act on the owner.
    moderate(&b, &bob, &at, "cat@b.test", "admit").await;
    assert_eq!(members(&b, &cat, &at).await.len(), 3, "cat is a member now");
    moderate(&b, &bob, &at, "cat@b.test", "ban").await;
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{at}/moderation"),
            Some(&bob),
            Some(&json!({"address": "ann@a.test", "action": "remove"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", body(&r));
    assert_eq!(
        members(&a, &ann, &id).await,
        [
            ("ann@a.test".into(), owner, "member".into()),
            ("bob@b.test".into(), moderator, "member".into()),
            ("cat@b.test".into(), Value::Null, "banned".into()),
        ],
        "as the host holds it"
    );

    // The log, newest first, names everyone by address.
    let r = b
        .get(&format!("/api/v1/communities/{at}/log"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let log: Vec<(String, Value, Value)> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].clone(),
                e["target"].clone(),
            )
        })
        .collect();
    assert_eq!(
        log[..3],
        [
            ("ban".into(), json!("bob@b.test"), json!("cat@b.test")),
            ("approve".into(), json!("bob@b.test"), json!("cat@b.test")),
            ("set_role".into(), json!("ann@a.test"), json!("bob@b.test")),
        ]
    );
    // Cat, banned, reads none of it.
    let r = b
        .get(&format!("/api/v1/communities/{at}/log"), Some(&cat))
        .await;
    assert!(r.status.is_client_error(), "{}", body(&r));
}

#[tokio::test]
async fn a_remote_members_files_are_fetched_by_the_host_shown_with_the_post_and_removed_with_it() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann, "资料", "public").await;
    let at = format!("{id}@a.test");
    assert_eq!(join(&b, &bob, &at).await.status, StatusCode::OK);
    // Three parts of 256 KiB, the last one short.
    let data: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let m = upload(&b, &bob, "application/octet-stream", data.clone()).await;

    // What bob may not post there: a file that is not his, a kind its type contradicts, a
    // place.
    let ann_file = upload(&a, &ann, "application/octet-stream", vec![3; 10]).await;
    let chunks_before = nodes[0].node().stored_media_chunks().await.unwrap();
    for (media, field) in [
        (
            json!([{"type": "file", "media_id": ann_file}]),
            "media.media_id",
        ),
        (json!([{"type": "image", "media_id": m}]), "media.type"),
    ] {
        let r = b
            .call(
                "POST",
                &format!("/api/v1/communities/{at}/posts"),
                Some(&bob),
                Some(&json!({"text": "x", "media": media})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", body(&r));
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(field), "{message}");
    }
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{at}/posts"),
            Some(&bob),
            Some(&json!({"text": "x", "place": "南京"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await, vec![], "nothing was posted");

    // His file goes as a reference; the post shows the host's copy of it.
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{at}/posts"),
            Some(&bob),
            Some(&json!({
                "text": "",
                "media": [{"type": "file", "media_id": m, "name": "会议纪要.bin"}],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let p = r.json()["id"].as_u64().unwrap();
    let shown = r.json()["media"].clone();
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown[0]["type"], "file");
    assert_eq!(shown[0]["name"], "会议纪要.bin");
    let copy = shown[0]["media_id"].as_str().unwrap().to_string();
    assert_ne!(copy, m, "the host's own id for its copy");

    // The host fetches it from b.test; then its users read it with the post.
    let got = eventually(20, "the copy on the host", || async {
        let r = a
            .get(
                &format!("/api/v1/communities/{id}/posts/{p}/media/{copy}"),
                Some(&ann),
            )
            .await;
        (r.status == StatusCode::OK).then_some(r)
    })
    .await;
    assert!(got.body == data, "the same bytes, in order");
    assert_eq!(nodes[0].node().pending_media_fetches().await.unwrap(), 0);
    let r = a
        .get(&format!("/api/v1/communities/{id}/posts"), Some(&ann))
        .await;
    assert_eq!(r.json()["posts"][0]["media"], shown);
    assert_eq!(r.json()["posts"][0]["author"], "bob@b.test");
    // And bob reads it back through the host, as any member of his node would.
    let r = b
        .get(
            &format!("/api/v1/communities/{at}/posts/{p}/media/{copy}"),
            Some(&bob),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert!(r.body == data);

    // The files of his post stay as posted; its text may change.
    let path = format!("/api/v1/communities/{at}/posts/{p}");
    let r = b
        .call("PATCH", &path, Some(&bob), Some(&json!({"media": []})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", body(&r));

    // Deleting the post removes the host's copy with it.
    let r = b.call("DELETE", &path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    assert_eq!(
        nodes[0].node().stored_media_chunks().await.unwrap(),
        chunks_before
    );
    let r = a
        .get(
            &format!("/api/v1/communities/{id}/posts/{p}/media/{copy}"),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Bob's own file stays his, on his node.
    let r = b.get(&format!("/api/v1/media/{m}"), Some(&bob)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_file_still_on_its_way_to_the_host_is_arriving_for_those_who_see_the_post_on_either_node()
{
    // At most 8 federation requests a minute to a node from one address: the host's fetch of
    // a 12-part file from the member's node stops part way, and stays stopped for the test.
    let nodes = federation(
        &[("a.test", "CN"), ("b.test", "CN")],
        "[rate_limit]\nfederation_per_minute = 8\n",
    )
    .await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let dan = a.user("dan", &phone(3)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann, "大文件", "public").await;
    let at = format!("{id}@a.test");
    assert_eq!(join(&b, &bob, &at).await.status, StatusCode::OK);
    let data: Vec<u8> = (0..(11 * 256 * 1024 + 1000) as u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 9) as u8)
        .collect();
    let m = upload(&b, &bob, "application/octet-stream", data).await;
    let r = b
        .call(
            "POST",
            &format!("/api/v1/communities/{at}/posts"),
            Some(&bob),
            Some(&json!({
                "text": "全部录像",
                "visibility": "members",
                "media": [{"type": "file", "media_id": m, "name": "录像.bin"}],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let p = r.json()["id"].as_u64().unwrap();
    let copy = r.json()["media"][0]["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(nodes[0].node().pending_media_fetches().await.unwrap(), 1);

    // Whoever sees the post is told it is arriving, and when to ask again: the host's members
    // through its API, the member's node's users through the host.
    let here = format!("/api/v1/communities/{id}/posts/{p}/media/{copy}");
    let there = format!("/api/v1/communities/{at}/posts/{p}/media/{copy}");
    for r in [
        a.get(&here, Some(&ann)).await,
        b.get(&there, Some(&bob)).await,
    ] {
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", body(&r));
        assert_eq!(r.error_code(), "media_arriving");
        assert_eq!(r.headers["retry-after"], "2");
    }
    // Anyone else learns nothing of it: the post is for members.
    assert_eq!(a.get(&here, Some(&dan)).await.status, StatusCode::NOT_FOUND);
}
