//! Integration tests, one binary (DataFusion links once).

mod cli;
mod config;
mod conformance;
mod contract;
mod crash;
mod deliver;
mod demo;
mod explain;
mod fault_matrix;
mod generate;
mod ground_truth;
mod hostile;
mod hostile_http;
mod http_feeds;
mod ingest;
mod ingest_cases;
mod keys;
mod month;
mod operate;
mod publish;
mod report;
mod robustness;
mod rules;
mod secrets;
mod support;
