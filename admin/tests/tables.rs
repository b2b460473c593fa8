//! `node-admin`'s tables as an operator reads them: columns line up with Chinese text in them.

use tests::{TestNode, phone};
use unicode_width::UnicodeWidthStr;

mod common;
use common::admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_line_up_when_a_cell_holds_chinese_text() {
    let n = TestNode::start().await;
    let c = n.client();
    c.user("ann", &phone(1)).await;
    c.user("bob", &phone(2)).await;
    let dir = n.dir.path();
    for (who, basis) in [("ann", "法院调查令第十二号"), ("bob", "case 12")] {
        let (code, _, err) = admin(dir, &["legal-hold", "set", who, "--basis", basis]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = admin(dir, &["legal-hold", "list"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    // The column after BASIS starts at the same display column on every line.
    let header_at = lines[0].find("SINCE").expect("a SINCE column");
    let header_col = lines[0][..header_at].width();
    for l in &lines[1..] {
        let at = l.find("20").expect("a date");
        assert_eq!(l[..at].width(), header_col, "misaligned:\n{out}");
    }
}
