//! The data contract: what the writers produce is what `schemas/out/`
//! declares, and `schemas/out/README.md` documents exactly those contracts.

use qinglian::project::{OutputContract, Project};
use qinglian::score::outputs;

use crate::support::root;

const MARKER: &str = "<!-- generated from schemas/out/*.toml by tests/it/contract.rs (QINGLIAN_BLESS=1 rewrites it) -->";

fn type_name(c: &qinglian::project::ColumnSpec) -> String {
    use datafusion::arrow::datatypes::DataType;
    match &c.data_type {
        DataType::Utf8 => "string".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp (ms, UTC)".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s}), yuan"),
        other => other.to_string(),
    }
}

fn render(contracts: &[&OutputContract]) -> String {
    let mut out = format!("{MARKER}\n");
    for c in contracts {
        out.push_str(&format!(
            "\n### `{}` (version {})\n\n{}. Key: {}.\n\n| column | type | null | meaning |\n|---|---|---|---|\n",
            c.dataset,
            c.version,
            c.description,
            c.key
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for col in &c.columns {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                col.name,
                type_name(col),
                if col.nullable { "yes" } else { "no" },
                col.description
            ));
        }
    }
    out
}

#[test]
fn the_contract_document_matches_the_contracts() {
    let project = Project::load(&root()).expect("project");
    let order = [
        "codes",
        "changes",
        "profiles",
        "hits",
        "demonstration",
        "leads",
        "quarantine",
        "runs",
        "warnings",
        "public",
        "public_events",
    ];
    let contracts: Vec<&OutputContract> = order
        .iter()
        .map(|d| project.contracts.get(*d).expect("contract"))
        .collect();
    assert_eq!(contracts.len(), project.contracts.len());
    let path = root().join("schemas/out/README.md");
    let text = std::fs::read_to_string(&path).expect("schemas/out/README.md");
    let (preamble, generated) = text.split_once(MARKER).expect("the marker line");
    let expected = render(&contracts);
    if crate::support::blessing() {
        let changed = crate::support::bless(&path, &format!("{preamble}{expected}"));
        crate::support::blessed("contract", &changed.into_iter().collect::<Vec<_>>());
    }
    assert_eq!(
        format!("{MARKER}{generated}"),
        expected,
        "schemas/out/README.md is out of date; QINGLIAN_BLESS=1 ./scripts/test contract rewrites it"
    );
}

#[test]
fn every_writer_produces_what_its_contract_declares() {
    let project = Project::load(&root()).expect("project");
    let written = [
        ("profiles", outputs::profiles_schema()),
        ("hits", outputs::hits_schema()),
        ("codes", outputs::codes_schema()),
        ("changes", outputs::changes_schema()),
        ("leads", qinglian::score::leads::leads_schema()),
        ("quarantine", qinglian::land::quarantine_schema()),
        ("warnings", qinglian::warnings::record::warnings_schema()),
        ("public", qinglian::score::public::public_schema()),
        (
            "public_events",
            qinglian::score::public::public_events_schema(),
        ),
    ];
    for (dataset, schema) in written {
        let problems = project.contracts[dataset].differences(&schema);
        assert!(problems.is_empty(), "{dataset}: {problems:?}");
    }
    // And a drift is caught, naming the column.
    let mut fields: Vec<_> = outputs::codes_schema().fields().iter().cloned().collect();
    fields.pop();
    let drifted = datafusion::arrow::datatypes::Schema::new(fields);
    assert_eq!(
        project.contracts["codes"].differences(&drifted),
        ["column \"rules_version\" is missing"]
    );
}
