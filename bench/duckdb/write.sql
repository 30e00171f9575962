-- write.sql: the outputs as Parquet into {out}.
COPY profiles TO '{out}/profiles.parquet' (FORMAT parquet, COMPRESSION zstd);
COPY hits TO '{out}/hits.parquet' (FORMAT parquet, COMPRESSION zstd);
COPY codes TO '{out}/codes.parquet' (FORMAT parquet, COMPRESSION zstd);
COPY (SELECT * FROM quarantine ORDER BY feed, source_record_id)
    TO '{out}/quarantine.parquet' (FORMAT parquet, COMPRESSION zstd);
