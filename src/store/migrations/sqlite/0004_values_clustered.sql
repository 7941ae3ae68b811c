-- submission_values and current_reports become tables WITHOUT ROWID, each stored in the order
-- of its primary key. As rowid tables every row's key lived twice, in the table's row and in
-- the primary key's index, and ingest wrote both B-trees for each of a report's twenty values
-- and for its current_reports row; clustered, it writes one, and reads by key find the row in
-- the key's B-tree itself.
-- The foreign key from submission_values to submissions goes, as it went in PostgreSQL in
-- 0003: the store writes a report's values only in the transaction that writes its submission
-- row, and the check cost one look-up in submissions per value.
CREATE TABLE submission_values_clustered (
    seq        INTEGER NOT NULL,
    indicator  TEXT    NOT NULL,
    value      REAL    NOT NULL,
    comment    TEXT,
    PRIMARY KEY (seq, indicator)
) WITHOUT ROWID;

INSERT INTO submission_values_clustered (seq, indicator, value, comment)
    SELECT seq, indicator, value, comment FROM submission_values;

DROP TABLE submission_values;

ALTER TABLE submission_values_clustered RENAME TO submission_values;

CREATE TABLE current_reports_clustered (
    unit_code  TEXT    NOT NULL,
    data_set   TEXT    NOT NULL,
    period     TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (unit_code, data_set, period)
) WITHOUT ROWID;

INSERT INTO current_reports_clustered (unit_code, data_set, period, revision, seq)
    SELECT unit_code, data_set, period, revision, seq FROM current_reports;

DROP TABLE current_reports;

ALTER TABLE current_reports_clustered RENAME TO current_reports;
