-- write_landed.sql: a feed's canonical rows as Parquet, as our pipeline
-- lands landing/<feed>/.../data.parquet ({feed}, {out} from pipeline.py).
COPY {feed}_landed TO '{out}/landing/{feed}.parquet' (FORMAT parquet, COMPRESSION zstd);
