//! Integration tests, one binary (DataFusion links once).

mod cli;
mod config;
mod generate;
mod ingest;
mod keys;
mod support;
