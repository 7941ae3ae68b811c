-- Yearly reviews: every generation is kept, immutable, with the store change counter it was
-- built from, so a review can always be traced to the data behind it.
CREATE TABLE reviews (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    year            INTEGER NOT NULL,
    node            TEXT    NOT NULL,
    lang            TEXT    NOT NULL,
    trigger         TEXT    NOT NULL, -- 'schedule' or 'on_demand'
    generated_at    TEXT    NOT NULL,
    change_counter  INTEGER NOT NULL,
    markdown        TEXT    NOT NULL,
    html            TEXT    NOT NULL,
    tables          TEXT    NOT NULL  -- JSON object: table name -> CSV text
);

-- One row per scheduled run: the primary key makes the run happen once however many
-- aggregator processes share the database.
CREATE TABLE review_jobs (
    scheduled_for   TEXT    PRIMARY KEY,
    claimed_by      TEXT    NOT NULL,
    claimed_at      TEXT    NOT NULL,
    review_id       INTEGER REFERENCES reviews (id)
);
