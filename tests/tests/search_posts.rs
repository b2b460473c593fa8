//! Search over communities and posts (policy 1.5), over HTTPS: each searcher finds only the
//! communities they may read and the posts they may see (private communities, members-only
//! and friends-only posts, bans), edits and removals leave the results at once, an erased
//! author's posts cannot be found by anyone (nor after a restart rebuilds the index), and a new
//! account or nickname is found without any handler telling search.

use http::StatusCode;
use serde_json::{Value, json};
use tests::setup::{self, befriend, post_text as post};
use tests::{Client, TestNode, phone};

fn body(r: &tests::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

async fn search(c: &Client, token: &str, body: Value) -> Value {
    let r = c
        .call("POST", "/api/v1/search", Some(token), Some(&body))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// The snippets of the posts `token` finds for `q`, sorted.
async fn posts(c: &Client, token: &str, q: &str) -> Vec<String> {
    let v = search(c, token, json!({"query": q, "scopes": ["posts"]})).await;
    let mut out: Vec<String> = v["posts"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["snippet"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The names of the communities `token` finds for `q`, sorted.
async fn communities(c: &Client, token: &str, q: &str) -> Vec<String> {
    let v = search(c, token, json!({"query": q, "scopes": ["communities"]})).await;
    let mut out: Vec<String> = v["communities"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn community(c: &Client, t: &str, name: &str, about: &str, visibility: &str) -> String {
    let v = setup::create_community(c, t, name, about, visibility).await;
    v["id"].as_str().unwrap().to_string()
}

async fn join(c: &Client, t: &str, id: &str) {
    let r = setup::join_community(c, t, id).await;
    assert!(r.status.is_success(), "{}", body(&r));
}

async fn moderate(c: &Client, t: &str, id: &str, address: &str, action: &str) {
    let r = setup::moderate_community(c, t, id, address, action).await;
    assert!(r.status.is_success(), "{}", body(&r));
}

#[tokio::test]
async fn each_searcher_finds_only_the_communities_and_posts_they_may_read() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let ben = c.user("ben", &phone(2)).await;
    let cat = c.user("cat", &phone(3)).await;
    let fay = c.user("fay", &phone(4)).await;
    let open = community(&c, &ann, "南京读书会", "每周读书", "public").await;
    let secret = community(&c, &ann, "秘密花园", "只给成员看的读书小组", "private").await;
    join(&c, &ben, &open).await;
    befriend(&c, &ann, &fay, "fay@localhost").await;
    let p = post(&c, &ann, &open, "南京市长江大桥的照片", "public").await;
    post(&c, &ann, &open, "成员才看得到的市长新闻", "members").await;
    post(&c, &ann, &open, "朋友才看得到的市长故事", "friends").await;
    post(&c, &ann, &secret, "花园里的市长秘密", "public").await;

    // An outsider: public posts of public communities, and no trace of the private one.
    assert_eq!(posts(&c, &cat, "市长").await, ["南京市长江大桥的照片"]);
    assert_eq!(communities(&c, &cat, "读书").await, ["南京读书会"]);
    assert!(communities(&c, &cat, "秘密").await.is_empty());
    assert!(posts(&c, &cat, "花园").await.is_empty());
    // A member of the public community also reads its members' posts; a friend of the
    // author their friends-only post.
    assert_eq!(
        posts(&c, &ben, "市长").await,
        ["南京市长江大桥的照片", "成员才看得到的市长新闻"]
    );
    assert_eq!(
        posts(&c, &fay, "市长").await,
        ["南京市长江大桥的照片", "朋友才看得到的市长故事"]
    );
    // The author and owner finds everything, the private community by its description too.
    assert_eq!(posts(&c, &ann, "市长").await.len(), 4);
    assert_eq!(
        communities(&c, &ann, "读书").await,
        ["南京读书会", "秘密花园"]
    );

    // Hits are highlighted, name the community and link to the post.
    let v = search(&c, &cat, json!({"query": "长江", "scopes": ["posts"]})).await;
    let hit = &v["posts"]["items"][0];
    assert_eq!(hit["community"], open.as_str(), "{v}");
    assert_eq!(hit["community_name"], "南京读书会");
    assert_eq!(hit["id"], p);
    assert_eq!(hit["author"], "ann@localhost");
    assert_eq!(hit["highlights"], json!([[3, 5]]));
    let v = search(
        &c,
        &cat,
        json!({"query": "读书", "scopes": ["communities"]}),
    )
    .await;
    let hit = &v["communities"]["items"][0];
    assert_eq!(hit["highlights"], json!([[2, 4]]), "{v}");
    assert_eq!(hit["description_highlights"], json!([[2, 4]]));
    assert_eq!(
        (hit["visibility"].clone(), hit["member"].clone()),
        (json!("public"), json!(false))
    );

    // Banned: nothing of the community any more, its public posts included.
    moderate(&c, &ann, &open, "ben@localhost", "ban").await;
    assert!(posts(&c, &ben, "市长").await.is_empty());
    assert!(communities(&c, &ben, "南京").await.is_empty());
    // The community turns private: outsiders lose it and its posts at once.
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/communities/{open}"),
            Some(&ann),
            Some(&json!({"visibility": "private"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(posts(&c, &cat, "市长").await.is_empty());
    assert!(communities(&c, &cat, "读书").await.is_empty());
}

#[tokio::test]
async fn edited_deleted_and_removed_posts_and_renamed_communities_leave_the_results() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let ben = c.user("ben", &phone(2)).await;
    let id = community(&c, &ann, "摄影小组", "拍照", "public").await;
    join(&c, &ben, &id).await;
    let mine = post(&c, &ben, &id, "北京吃饭的地方 zebrafish", "public").await;
    let other = post(&c, &ben, &id, "北京烤鸭很好吃", "public").await;
    assert_eq!(posts(&c, &ann, "北京").await.len(), 2);
    assert_eq!(posts(&c, &ann, "zebra").await.len(), 1);

    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/communities/{id}/posts/{mine}"),
            Some(&ben),
            Some(&json!({"text": "上海的夜景"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(
        posts(&c, &ann, "zebrafish").await.is_empty(),
        "the old text"
    );
    assert_eq!(posts(&c, &ann, "夜景").await, ["上海的夜景"]);
    // The author deletes one; a moderator removes the other.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{mine}"),
            Some(&ben),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(posts(&c, &ann, "夜景").await.is_empty());
    assert_eq!(posts(&c, &ann, "北京").await, ["北京烤鸭很好吃"]);
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{other}"),
            Some(&ann),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(posts(&c, &ben, "北京").await.is_empty());

    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/communities/{id}"),
            Some(&ann),
            Some(&json!({"name": "旅行小组"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(communities(&c, &ben, "摄影").await.is_empty());
    assert_eq!(communities(&c, &ben, "旅行").await, ["旅行小组"]);
}

#[tokio::test]
async fn an_erased_authors_posts_cannot_be_found_by_anyone_nor_after_a_restart() {
    let n = TestNode::start().await;
    let c = n.client();
    let dora = c.user("dora", &phone(1)).await;
    let ed = c.user("eddy", &phone(2)).await;
    let id = community(&c, &ed, "eddy's place", "a place", "public").await;
    join(&c, &dora, &id).await;
    post(&c, &dora, &id, "独一无二的暗号 zebrafish", "public").await;
    post(&c, &ed, &id, "收到暗号", "public").await;
    assert_eq!(posts(&c, &ed, "zebrafish").await.len(), 1);

    n.admin(node::AdminRequest::UsersErase {
        address: "dora@localhost".into(),
        reason: "test".into(),
    })
    .await;
    assert!(posts(&c, &ed, "zebrafish").await.is_empty());
    assert!(posts(&c, &ed, "独一无二").await.is_empty());
    assert_eq!(
        posts(&c, &ed, "暗号").await,
        ["收到暗号"],
        "only his own words"
    );
    let mut n = n;
    n.restart_in_place().await;
    let c = n.client();
    assert!(posts(&c, &ed, "zebrafish").await.is_empty());
    assert_eq!(
        posts(&c, &ed, "暗号").await,
        ["收到暗号"],
        "the rebuilt index has the rest"
    );
    assert_eq!(communities(&c, &ed, "place").await, ["eddy's place"]);
}

#[tokio::test]
async fn pages_of_posts_follow_the_cursor_and_hold_every_match_once() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let id = community(&c, &ann, "日记", "每天", "public").await;
    for i in 0..7 {
        post(&c, &ann, &id, &format!("今天的北京 {i}"), "members").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut b = json!({"query": "北京", "scopes": ["posts"], "limit": 3});
        if let Some(cur) = &cursor {
            b["cursor"] = json!(cur);
        }
        let v = search(&c, &ann, b).await;
        for it in v["posts"]["items"].as_array().unwrap() {
            seen.push(it["id"].as_u64().unwrap());
        }
        match v["posts"]["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7), "{seen:?}");
}

#[tokio::test]
async fn a_new_account_and_a_new_nickname_are_found_from_the_store_alone() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let lin = c.user("linwei", &phone(2)).await;
    let v = search(&c, &ann, json!({"query": "linwei", "scopes": ["people"]})).await;
    assert_eq!(v["people"]["items"].as_array().unwrap().len(), 1, "{v}");
    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&lin),
            Some(&json!({"nickname": "林大伟"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    let v = search(&c, &ann, json!({"query": "大伟", "scopes": ["people"]})).await;
    assert_eq!(
        v["people"]["items"][0]["address"], "linwei@localhost",
        "{v}"
    );
    // Erasure begun: the person is gone from people search at once.
    n.admin(node::AdminRequest::UsersErase {
        address: "linwei@localhost".into(),
        reason: "test".into(),
    })
    .await;
    let v = search(&c, &ann, json!({"query": "大伟", "scopes": ["people"]})).await;
    assert_eq!(v["people"]["items"], json!([]));
}

/// The comments `token` finds for `q`: (post, comment id, snippet), sorted.
async fn comments(c: &Client, token: &str, q: &str) -> Vec<(u64, u64, String)> {
    let v = search(c, token, json!({"query": q, "scopes": ["comments"]})).await;
    let mut out: Vec<(u64, u64, String)> = v["comments"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["post"].as_u64().unwrap(),
                m["id"].as_u64().unwrap(),
                m["snippet"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn comment(c: &Client, t: &str, id: &str, p: u64, text: &str) -> u64 {
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/posts/{p}/comments"),
            Some(t),
            Some(&json!({ "text": text })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["id"].as_u64().unwrap()
}

#[tokio::test]
async fn comments_are_found_by_a_chinese_substring_by_whoever_may_see_their_post() {
    let mut n = TestNode::start().await;
    let mut c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let ben = c.user("ben", &phone(2)).await;
    let cat = c.user("cat", &phone(3)).await;
    let dora = c.user("dora", &phone(4)).await;
    let open = community(&c, &ann, "旅行", "到处走走", "public").await;
    let secret = community(&c, &ann, "密室", "只给成员", "private").await;
    join(&c, &ben, &open).await;
    join(&c, &dora, &open).await;
    let public = post(&c, &ann, &open, "照片", "public").await;
    let members = post(&c, &ann, &open, "成员的帖子", "members").await;
    let hidden = post(&c, &ann, &secret, "密室的帖子", "public").await;
    let c1 = comment(&c, &ben, &open, public, "南京市长江大桥的夜景").await;
    let c2 = comment(&c, &ben, &open, members, "市长也来吃饭").await;
    comment(&c, &ann, &secret, hidden, "密室里的市长").await;

    // The outsider finds the comment on the public post, by a substring across words, and
    // nothing on the members' post or in the private community; the post's text is not it.
    assert_eq!(
        comments(&c, &cat, "市长").await,
        [(public, c1, "南京市长江大桥的夜景".to_string())]
    );
    assert!(comments(&c, &cat, "照片").await.is_empty());
    assert_eq!(
        comments(&c, &ben, "市长").await.len(),
        2,
        "a member sees both"
    );
    assert_eq!(comments(&c, &ann, "市长").await.len(), 3);
    let v = search(&c, &cat, json!({"query": "江大", "scopes": ["comments"]})).await;
    let hit = &v["comments"]["items"][0];
    assert_eq!(hit["community"], open.as_str(), "{v}");
    assert_eq!(hit["community_name"], "旅行");
    assert_eq!(hit["author"], "ben@localhost");
    assert_eq!(hit["highlights"], json!([[4, 6]]));
    // All scopes by default: comments among them.
    let v = search(&c, &cat, json!({"query": "夜景"})).await;
    assert_eq!(v["comments"]["items"].as_array().unwrap().len(), 1, "{v}");

    // Edited: the new words are found, the old ones not.
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/communities/{open}/posts/{public}/comments/{c1}"),
            Some(&ben),
            Some(&json!({"text": "北京吃饭"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(comments(&c, &cat, "江大").await.is_empty());
    assert_eq!(comments(&c, &cat, "京吃").await.len(), 1);
    // The post turns members-only: its comments go with it for outsiders.
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/communities/{open}/posts/{public}"),
            Some(&ann),
            Some(&json!({"visibility": "members"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(comments(&c, &cat, "京吃").await.is_empty());
    assert_eq!(comments(&c, &ben, "京吃").await.len(), 1);
    // Deleted by its author: gone for everyone.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{open}/posts/{members}/comments/{c2}"),
            Some(&ben),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", body(&r));
    assert!(comments(&c, &ann, "吃饭").await.iter().all(|h| h.1 != c2));

    // An erased commenter's words cannot be found by anyone, nor after a restart.
    comment(&c, &dora, &open, members, "独一无二的暗号 zebrafish").await;
    assert_eq!(comments(&c, &ann, "zebrafish").await.len(), 1);
    n.admin(node::AdminRequest::UsersErase {
        address: "dora@localhost".into(),
        reason: "test".into(),
    })
    .await;
    assert!(comments(&c, &ann, "zebrafish").await.is_empty());
    assert!(comments(&c, &ann, "暗号").await.is_empty());
    n.restart_in_place().await;
    c = n.client();
    assert!(comments(&c, &ann, "暗号").await.is_empty());
    assert_eq!(
        comments(&c, &ben, "京吃").await.len(),
        1,
        "the rebuilt index has the rest"
    );
}
