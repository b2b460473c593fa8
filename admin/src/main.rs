//! `node-admin`: the operator's tool for a shanliao node. For now it only describes itself:
//! its commands (retention, account deletion, legal hold, audit) arrive with the admin issue.

use clap::Parser;

/// The administration tool for a shanliao chat node.
///
/// No commands exist yet: retention, account deletion, legal holds and the audit log come
/// with the node-admin work. Until then there is nothing for it to do.
#[derive(Parser)]
#[command(name = "node-admin", version, arg_required_else_help = true)]
struct Args {}

fn main() {
    Args::parse();
}
