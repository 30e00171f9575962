//! Rules must plan: each rule's SQL is planned by DataFusion against empty
//! tables of the declared schemas, and its output checked against the hit
//! columns the scoring stage reads. SQL mappings must plan too, over the
//! raw fields they name, as the mapper plans them at run time.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::Project;
use super::diag::Diagnostic;
use super::model::HIT_COLUMNS;
use crate::keys;

/// A session with every feed registered as an empty table of its canonical
/// schema and the key functions available, as rules see them.
pub fn rule_context(project: &Project) -> datafusion::error::Result<SessionContext> {
    let ctx = SessionContext::new();
    keys::udf::register(&ctx);
    for schema in project.schemas.values() {
        let table = MemTable::try_new(schema.arrow_schema(), vec![vec![]])?;
        ctx.register_table(schema.feed.as_str(), Arc::new(table))?;
    }
    Ok(ctx)
}

/// Raw fields a SQL mapping reads: its double-quoted identifiers.
pub fn sql_fields(sql: &str) -> BTreeSet<String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| match t {
            Token::Word(w) if w.quote_style == Some('"') => Some(w.value),
            _ => None,
        })
        .collect()
}

/// A SQL mapping as the mapper evaluates it over a batch of raw fields:
/// parsed, its types coerced, simplified (DataFusion evaluates some
/// functions only in their simplified form: `COALESCE` becomes a `CASE`,
/// and unsimplified it fails on the first batch), then planned.
pub fn mapping_expr(
    ctx: &SessionContext,
    sql: &str,
    df_schema: &datafusion::common::DFSchema,
) -> datafusion::error::Result<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    let expr = ctx.parse_sql_expr(sql, df_schema)?;
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(df_schema.clone()))
            .build(),
    );
    let expr = simplifier.simplify(simplifier.coerce(expr, df_schema)?)?;
    ctx.create_physical_expr(expr, df_schema)
}

/// Plans every SQL mapping over the raw fields it names, each text as
/// every raw field is: an unknown function, or arguments of types it does
/// not take, is reported by `validate` instead of failing the feed at
/// night.
pub(super) fn plan_mappings(project: &Project) -> Vec<Diagnostic> {
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::common::DFSchema;
    let ctx = SessionContext::new();
    keys::udf::register(&ctx);
    let mut problems = Vec::new();
    for (feed, source) in &project.sources {
        let mappings = std::iter::once(("mapping".to_string(), &source.columns)).chain(
            source
                .parts
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("part[{i}].mapping"), &p.columns)),
        );
        for (column, mapping, at) in
            mappings.flat_map(|(at, columns)| columns.iter().map(move |(c, m)| (c, m, at.clone())))
        {
            let super::model::ColumnMapping::Sql { sql, .. } = mapping else {
                continue;
            };
            let fields = sql_fields(sql);
            let schema = Schema::new(
                fields
                    .iter()
                    .map(|f| Field::new(f, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            );
            let planned = DFSchema::try_from(schema)
                .and_then(|df_schema| mapping_expr(&ctx, sql, &df_schema));
            if let Err(e) = planned {
                let message = e.to_string();
                problems.push(Diagnostic {
                    file: format!("pipelines/sources/{feed}.toml"),
                    path: format!("{at}.columns.{column}.sql"),
                    message: format!(
                        "{sql:?} does not plan over the raw fields it names (as text: {}): {}",
                        fields.iter().cloned().collect::<Vec<_>>().join(", "),
                        message.lines().next().unwrap_or_default()
                    ),
                });
            }
        }
    }
    problems
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The feed tables a rule's SQL reads, `None` when it does not parse.
fn tables_read(ctx: &SessionContext, sql: &str) -> Option<Vec<String>> {
    let state = ctx.state();
    let statement = state
        .sql_to_statement(sql, &datafusion::config::Dialect::default())
        .ok()?;
    let refs = state.resolve_table_references(&statement).ok()?;
    Some(refs.iter().map(|t| t.table().to_string()).collect())
}

/// A `SELECT` (or `WITH … SELECT`, `VALUES`, a set operation): nothing
/// that defines, writes or changes settings.
fn is_query(statement: &datafusion::sql::parser::Statement) -> bool {
    use datafusion::sql::parser::Statement;
    use datafusion::sql::sqlparser::ast;
    matches!(statement, Statement::Statement(s) if matches!(**s, ast::Statement::Query(_)))
}

/// Plans every rule. Rules reading a schema whose file has problems of its
/// own are skipped: that file's problems are already reported.
pub(super) async fn plan_rules(
    project: &Project,
    broken_schemas: &BTreeSet<String>,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let ctx = match rule_context(project) {
        Ok(ctx) => ctx,
        Err(e) => {
            problems.push(Diagnostic {
                file: "schemas".into(),
                path: String::new(),
                message: format!("cannot register the schemas as tables: {e}"),
            });
            return problems;
        }
    };
    // Any date plans the same; a fixed one keeps messages reproducible.
    let date = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default();
    for rule in &project.rules {
        let index = project
            .rules
            .iter()
            .filter(|r| r.file == rule.file)
            .position(|r| r.id == rule.id)
            .unwrap_or(0);
        let mut report = |message: String| {
            problems.push(Diagnostic {
                file: format!("pipelines/rules/{}.toml", rule.file),
                path: format!("rule[{index}] ({}).sql", rule.id),
                message,
            })
        };
        let sql = rule.render_sql(date);
        if tables_read(&ctx, &sql)
            .is_some_and(|tables| tables.iter().any(|t| broken_schemas.contains(t)))
        {
            continue;
        }
        // Planned, never executed: `ctx.sql` would run DDL (a `CREATE
        // EXTERNAL TABLE` reads files, `COPY` writes them) while validating.
        let state = ctx.state();
        let not_planned = |e: datafusion::error::DataFusionError| {
            let message = e.to_string();
            format!(
                "does not plan against the declared schemas: {}",
                message.lines().next().unwrap_or_default()
            )
        };
        let statement = match state.sql_to_statement(&sql, &datafusion::config::Dialect::default())
        {
            Ok(statement) => statement,
            Err(e) => {
                report(not_planned(e));
                continue;
            }
        };
        if !is_query(&statement) {
            let words: Vec<&str> = sql.split_whitespace().take(3).collect();
            report(format!(
                "is not a query (it starts {:?}): a rule is one SELECT, and validation runs nothing",
                words.join(" ")
            ));
            continue;
        }
        let plan = match state.statement_to_plan(statement).await {
            Ok(plan) => plan,
            Err(e) => {
                report(not_planned(e));
                continue;
            }
        };
        let fields = plan.schema().fields();
        let found: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        let expected: Vec<&str> = HIT_COLUMNS.iter().map(|(n, _)| *n).collect();
        // After the hit columns, only the columns its event names.
        let extra_named = found
            .iter()
            .skip(expected.len())
            .all(|c| rule.event.contains(c));
        if found.len() < expected.len() || found[..expected.len()] != expected || !extra_named {
            let events = rule
                .event
                .iter()
                .filter(|c| !expected.contains(&c.as_str()))
                .map(String::as_str);
            let with: Vec<&str> = expected.iter().copied().chain(events).collect();
            report(format!(
                "returns columns ({}), expected ({})",
                found.join(", "),
                with.join(", ")
            ));
            continue;
        }
        for c in rule.event.iter().filter(|c| !found.contains(c)) {
            report(format!(
                "event names column {c:?}, which the query does not return (it returns {})",
                found.join(", ")
            ));
        }
        for (field, (name, want)) in fields.iter().zip(HIT_COLUMNS.iter()) {
            let got = field.data_type();
            let ok = if is_string(want) {
                is_string(got)
            } else {
                got == want
            };
            if !ok {
                report(format!("column {name} is {got}, expected {want}"));
            }
        }
    }
    problems
}
