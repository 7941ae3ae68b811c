-- Every revision of every report, kept forever: the audit trail DHIS2 users ask for.
-- seq is the store's change counter: it only grows, one step per stored revision.
CREATE TABLE submissions (
    seq            BIGSERIAL        PRIMARY KEY,
    submission_id  TEXT             NOT NULL UNIQUE,
    unit_code      TEXT             NOT NULL,
    data_set       TEXT             NOT NULL,
    period         TEXT             NOT NULL,
    revision       BIGINT           NOT NULL,
    content_hash   TEXT             NOT NULL,
    prepared_by    TEXT             NOT NULL,
    client_time    TIMESTAMPTZ,
    received_at    TIMESTAMPTZ      NOT NULL,
    deadline       TIMESTAMPTZ      NOT NULL,
    on_time        BOOLEAN          NOT NULL,
    window_start   DATE             NOT NULL,
    window_end     DATE             NOT NULL,
    results        TEXT             NOT NULL,
    shortcomings   TEXT             NOT NULL,
    proposals      TEXT             NOT NULL,
    warnings       TEXT             NOT NULL, -- JSON array of strings
    UNIQUE (unit_code, data_set, period, revision)
);

CREATE TABLE submission_values (
    seq        BIGINT           NOT NULL REFERENCES submissions (seq),
    indicator  TEXT             NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    comment    TEXT,
    PRIMARY KEY (seq, indicator)
);

-- The latest revision per (unit, data set, period): what analytics read. Its row is also the
-- lock that gives concurrent revisions of one report distinct, gap-free numbers.
CREATE TABLE current_reports (
    unit_code  TEXT   NOT NULL,
    data_set   TEXT   NOT NULL,
    period     TEXT   NOT NULL,
    revision   BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (unit_code, data_set, period)
);
