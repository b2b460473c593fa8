//! Runnable examples for shanliao. The load generator (`loadgen`) and the two-node federation
//! example arrive with the messaging, federation and performance issues; nothing is here yet.
