//! Search (policy 1.5) and recent searches (1.4.1, 1.8.1), over HTTPS: Chinese substrings,
//! what each user may find (members only for private groups and messages, the device's own
//! history view), what leaves the index (recall, deletion for me, erasure), and the search log
//! that exists only with `personalisation`.

use http::StatusCode;
use serde_json::{Value, json};
use tests::{Client, TestNode, phone};

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

/// The snippets of my messages matching `q`.
async fn found(c: &Client, token: &str, q: &str) -> Vec<String> {
    let v = search(c, token, json!({"query": q, "scopes": ["messages"]})).await;
    v["messages"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["snippet"].as_str().unwrap().to_string())
        .collect()
}

/// The highlighted parts of a snippet.
fn marked(item: &Value) -> Vec<String> {
    let chars: Vec<char> = item["snippet"].as_str().unwrap().chars().collect();
    item["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let (s, e) = (
                h[0].as_u64().unwrap() as usize,
                h[1].as_u64().unwrap() as usize,
            );
            chars[s..e].iter().collect()
        })
        .collect()
}

async fn group(c: &Client, token: &str, name: &str, members: &[&str], public: bool) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(token),
            Some(&json!({"kind": "group", "name": name, "members": members, "public": public})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn chinese_substrings_across_word_boundaries_find_my_messages_highlighted() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let ben = c.user("ben", &phone(2)).await;
    let conv = c.direct(&ann, "ben@localhost").await;
    c.say(&ben, &conv, "t1", "我们明天去南京市长江大桥看看")
        .await;
    c.say(&ann, &conv, "t2", "好的，然后在北京吃饭").await;
    c.say(&ann, &conv, "t3", "The Artist will start soon").await;

    let v = search(&c, &ann, json!({"query": "市长", "scopes": ["messages"]})).await;
    let items = v["messages"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(marked(&items[0]), ["市长"]);
    assert_eq!(items[0]["sender"], "ben@localhost");
    assert_eq!(items[0]["conversation"], conv.as_str());
    assert_eq!(items[0]["id"], format!("{conv}/1"));
    assert_eq!(found(&c, &ann, "京吃").await, ["好的，然后在北京吃饭"]);
    assert_eq!(found(&c, &ann, "桥").await.len(), 1, "one character");
    assert_eq!(
        found(&c, &ann, "ART").await.len(),
        1,
        "a word's start, any case"
    );
    assert!(
        found(&c, &ann, "tart").await.is_empty(),
        "not a fragment of start"
    );
    assert!(found(&c, &ann, "江市").await.is_empty());
    assert_eq!(
        found(&c, &ben, "北京 吃饭").await.len(),
        1,
        "every part, and the other member finds it too"
    );
    assert!(
        v.get("people").is_none() && v.get("groups").is_none(),
        "only what was asked"
    );
}

#[tokio::test]
async fn a_non_member_never_finds_a_private_group_or_its_messages() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let _ben = c.user("ben", &phone(2)).await;
    let cat = c.user("cat", &phone(3)).await;
    let secret = group(&c, &ann, "秘密计划小组", &["ben@localhost"], false).await;
    c.say(&ann, &secret, "s1", "秘密计划的细节").await;
    let open = group(&c, &ann, "公开读书会", &[], true).await;

    let v = search(&c, &cat, json!({"query": "秘密"})).await;
    assert_eq!(v["groups"]["items"], json!([]), "{v}");
    assert_eq!(v["messages"]["items"], json!([]));
    let v = search(&c, &cat, json!({"query": "读书", "scopes": ["groups"]})).await;
    let g = &v["groups"]["items"][0];
    assert_eq!(g["id"], open.as_str());
    assert_eq!(
        (g["public"].clone(), g["member"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(g["highlights"], json!([[2, 4]]));

    let v = search(&c, &ann, json!({"query": "秘密"})).await;
    assert_eq!(v["groups"]["items"][0]["id"], secret.as_str());
    assert_eq!(v["groups"]["items"][0]["member"], true);
    assert_eq!(v["messages"]["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn people_are_found_by_handle_start_and_nickname() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let zhang = c.user("zhangsan", &phone(2)).await;
    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&zhang),
            Some(&json!({"nickname": "张三丰"})),
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = search(&c, &ann, json!({"query": "三丰", "scopes": ["people"]})).await;
    let p = &v["people"]["items"][0];
    assert_eq!(p["address"], "zhangsan@localhost", "{v}");
    assert_eq!(p["nickname_highlights"], json!([[1, 3]]));
    let v = search(&c, &ann, json!({"query": "zhang", "scopes": ["people"]})).await;
    assert_eq!(
        v["people"]["items"][0]["address_highlights"],
        json!([[0, 5]])
    );
    let v = search(&c, &ann, json!({"query": "hangsan", "scopes": ["people"]})).await;
    assert_eq!(v["people"]["items"], json!([]), "not inside a word");
    // Someone who registers later is found at once.
    c.user("zhangwei", &phone(3)).await;
    let v = search(&c, &ann, json!({"query": "zhang", "scopes": ["people"]})).await;
    assert_eq!(v["people"]["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn recalled_and_deleted_for_me_messages_are_not_found() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let ben = c.user("ben", &phone(2)).await;
    let conv = c.direct(&ann, "ben@localhost").await;
    c.say(&ann, &conv, "a1", "撤回的消息 oops").await;
    c.say(&ann, &conv, "a2", "删除的消息 hidden").await;
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages/1/recall"),
            Some(&ann),
            None,
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        found(&c, &ben, "撤回").await.is_empty(),
        "recalled: gone for everyone"
    );
    assert!(found(&c, &ann, "oops").await.is_empty());
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{conv}/messages/2"),
            Some(&ben),
            None,
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(found(&c, &ben, "删除").await.is_empty(), "deleted for me");
    assert_eq!(
        found(&c, &ann, "删除").await.len(),
        1,
        "still there for the other"
    );
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&ann),
            None,
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(found(&c, &ann, "删除").await.is_empty(), "cleared for me");
}

#[tokio::test]
async fn a_new_device_without_cloud_sync_finds_nothing_old_and_with_it_the_kept_history() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let ben = c.user("ben", &phone(2)).await;
    let conv = c.direct(&ann, "ben@localhost").await;
    c.say(&ben, &conv, "b1", "旧的消息在这里").await;
    assert_eq!(found(&c, &ann, "旧的").await.len(), 1);
    let (second, _) = c.login("ann").await;
    assert!(
        found(&c, &second, "旧的").await.is_empty(),
        "a device without cloud history sees nothing from before it signed in"
    );
    c.say(&ben, &conv, "b2", "新的消息在这里").await;
    assert_eq!(found(&c, &second, "新的").await.len(), 1);
    assert!(
        c.consent(&ann, "cloud_sync", true)
            .await
            .status
            .is_success()
    );
    let (third, _) = c.login("ann").await;
    assert_eq!(
        found(&c, &third, "消息").await.len(),
        2,
        "with cloud_sync, the kept history"
    );
    // Revoking deletes the kept history from the view at once.
    assert!(
        c.consent(&ann, "cloud_sync", false)
            .await
            .status
            .is_success()
    );
    assert!(found(&c, &third, "消息").await.is_empty());
    assert_eq!(
        found(&c, &ben, "消息").await.len(),
        2,
        "ben's history is his"
    );
}

#[tokio::test]
async fn an_erased_users_words_cannot_be_found_by_anyone() {
    let n = TestNode::start().await;
    let c = n.client();
    let dora = c.user("dora", &phone(1)).await;
    let eddy = c.user("eddy", &phone(2)).await;
    let conv = c.direct(&dora, "eddy@localhost").await;
    c.say(&dora, &conv, "d1", "独一无二的暗号 zebrafish").await;
    c.say(&eddy, &conv, "e1", "收到暗号").await;
    assert_eq!(found(&c, &eddy, "zebrafish").await.len(), 1);
    let v = search(&c, &eddy, json!({"query": "dora", "scopes": ["people"]})).await;
    assert_eq!(v["people"]["items"].as_array().unwrap().len(), 1);

    n.admin(node::AdminRequest::UsersErase {
        address: "dora@localhost".into(),
        reason: "test".into(),
    })
    .await;
    assert!(found(&c, &eddy, "zebrafish").await.is_empty());
    assert!(found(&c, &eddy, "独一无二").await.is_empty());
    assert_eq!(
        found(&c, &eddy, "暗号").await,
        ["收到暗号"],
        "only eddy's own words"
    );
    let v = search(&c, &eddy, json!({"query": "dora", "scopes": ["people"]})).await;
    assert_eq!(v["people"]["items"], json!([]));
    // Nor after a restart, when the index is rebuilt from the store.
    let mut n = n;
    n.restart_in_place().await;
    let c = n.client();
    assert!(found(&c, &eddy, "zebrafish").await.is_empty());
    assert_eq!(
        found(&c, &eddy, "暗号").await.len(),
        1,
        "the rebuilt index has the rest"
    );
}

#[tokio::test]
async fn pages_follow_the_cursor_and_hold_every_match_once() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let conv = group(&c, &ann, "日记", &[], false).await;
    for i in 0..7 {
        c.say(&ann, &conv, &format!("t{i}"), &format!("第{i}天 天气很好"))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut body = json!({"query": "天气", "scopes": ["messages"], "limit": 3});
        if let Some(cur) = &cursor {
            body["cursor"] = json!(cur);
        }
        let v = search(&c, &ann, body).await;
        for m in v["messages"]["items"].as_array().unwrap() {
            seen.push(m["seq"].as_u64().unwrap());
        }
        match v["messages"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7]);
}

#[tokio::test]
async fn bad_searches_are_refused_naming_the_field() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    for (body, field) in [
        (json!({"query": "  ,. "}), "query"),
        (json!({"query": "长".repeat(101)}), "query"),
        (json!({"query": "a\u{7}b"}), "query"),
        (json!({"query": "a", "scopes": ["files"]}), "scopes"),
        (json!({"query": "a", "scopes": []}), "scopes"),
        (json!({"query": "a", "limit": 0}), "limit"),
        (json!({"query": "a", "limit": 51}), "limit"),
        (json!({"query": "a", "cursor": "m.1.1"}), "cursor"),
        (
            json!({"query": "a", "scopes": ["messages"], "cursor": "zz"}),
            "cursor",
        ),
        (
            json!({"query": "a", "scopes": ["people"], "cursor": "m.1.1"}),
            "cursor",
        ),
    ] {
        let r = c
            .call("POST", "/api/v1/search", Some(&ann), Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.starts_with(&format!("{field}:")), "{body}: {msg}");
    }
    let r = c
        .call(
            "POST",
            "/api/v1/search",
            Some(&ann),
            Some(&json!({"q": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c
        .call("POST", "/api/v1/search", None, Some(&json!({"query": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn recent_searches_exist_only_with_personalisation_and_go_when_cleared_or_revoked() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let recent = |t: String| {
        let c = c.clone();
        async move {
            let r = c.get("/api/v1/me/searches", Some(&t)).await;
            assert_eq!(r.status, StatusCode::OK);
            r.json()["searches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["query"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let v = search(&c, &ann, json!({"query": "不记录QZXW"})).await;
    assert_eq!(v["logged"], false);
    assert!(
        recent(ann.clone()).await.is_empty(),
        "nothing without the purpose"
    );

    assert!(
        c.consent(&ann, "personalisation", true)
            .await
            .status
            .is_success()
    );
    assert_eq!(
        search(&c, &ann, json!({"query": "火锅QZXW"})).await["logged"],
        true
    );
    search(&c, &ann, json!({"query": "奶茶"})).await;
    search(&c, &ann, json!({"query": "火锅QZXW"})).await;
    assert_eq!(
        recent(ann.clone()).await,
        ["火锅QZXW", "奶茶"],
        "newest first, once each"
    );
    // Kept sealed: the text is nowhere in the database file.
    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(!raw.windows(4).any(|w| w == b"QZXW"));

    let r = c
        .call("DELETE", "/api/v1/me/searches", Some(&ann), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["removed"], 3);
    assert!(recent(ann.clone()).await.is_empty());

    search(&c, &ann, json!({"query": "饺子"})).await;
    assert_eq!(recent(ann.clone()).await, ["饺子"]);
    assert!(
        c.consent(&ann, "personalisation", false)
            .await
            .status
            .is_success()
    );
    assert!(
        recent(ann.clone()).await.is_empty(),
        "revoking deletes what was kept"
    );
    assert!(
        c.consent(&ann, "personalisation", true)
            .await
            .status
            .is_success()
    );
    assert!(
        recent(ann.clone()).await.is_empty(),
        "and it does not come back"
    );
}

#[tokio::test]
async fn my_export_holds_my_logged_searches_and_nothing_without_personalisation() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    search(&c, &ann, json!({"query": "未记录"})).await;
    assert!(
        c.consent(&ann, "personalisation", true)
            .await
            .status
            .is_success()
    );
    search(&c, &ann, json!({"query": "电影票"})).await;
    let r = c.call("POST", "/api/v1/me/export", Some(&ann), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = c.get("/api/v1/me/export", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::OK);
    let a = r.json();
    assert_eq!(a["complete"], true);
    let queries: Vec<&str> = a["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["query"].as_str().unwrap())
        .collect();
    assert_eq!(queries, ["电影票"]);
}
