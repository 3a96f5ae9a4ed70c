//! trustledger: tamper-evident deployment governance as a hash-chained, event-sourced log.
//!
//! This crate is the product's edge: the data directory layout ([`data_dir`]), the commands the
//! `trustledger` binary runs ([`commands`]), and (as the API lands) authentication and HTTP.
//! The log itself lives in the `events` crate; auditing in `replay`.
#![deny(missing_docs)]

pub mod api;
pub mod cluster;
pub mod commands;
pub mod data_dir;
pub mod export_tiles;
pub mod governance;
pub mod key_rotation;
pub mod monitor;
pub mod serve;
pub mod simulate;
pub mod vote_client;
pub mod web;
pub mod witness;
pub mod witnessing;
