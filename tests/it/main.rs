//! Integration tests, one binary (DataFusion links once).

mod cli;
mod config;
mod generate;
mod ingest;
mod ingest_cases;
mod keys;
mod support;
